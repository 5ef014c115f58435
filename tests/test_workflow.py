"""End to end: the whole DAG at tiny size, its outputs checked, then a rerun that has nothing to do."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facexai.data.synthetic import SyntheticConfig, generate
from facexai.labels import ATTRIBUTE_INDEX
from facexai.metrics import registry
from facexai.stats import pair_rows_at_chance
from facexai.subjects.pairs import by_image, pair_shard

from conftest import has_dlib_extra, independent_refusion, snakemake

pytestmark = pytest.mark.slow

# the tiny run's embedders (conftest.tiny_run): trained here, dlib's when installed, a TorchScript file
EMBEDDERS = ("trained", "dlib", "scripted") if has_dlib_extra() else ("trained", "scripted")


# the pair kinds tests/tiny.yaml explains (triplets only where the embedder keeps some)
TINY_KINDS = ["region", "swap", "swap_control", "triplet", "genuine"]  # tests/tiny.yaml, in its order
EXPLAINED_KINDS = set(TINY_KINDS)


def test_fused_dataset_equals_an_independent_refusion(tiny_run):
    root = tiny_run / "results/synthetic/main/CelebAMask-HQ"
    with h5py.File(tiny_run / "results/data/main/dataset.h5") as h5:
        ids = h5["ids"][:]
        assert list(ids) == list(range(86))  # 80 photos + 6 region-pair partners
        labels = h5["labels"][:]
        assert h5["images"].shape == (86, 32, 32, 3)
        for k, sample_id in enumerate(ids):
            assert np.array_equal(labels[k], independent_refusion(root, sample_id, 32))
    assert (tiny_run / "results/data/main/bad_samples.tsv").read_text().strip() == "id\tfile\tproblem"


def test_split_keeps_identities_apart(tiny_run):
    split = pd.read_csv(tiny_run / "results/data/main/split.tsv", sep="\t")
    train = set(split.loc[split.split == "train", "identity"])
    test = set(split.loc[split.split == "test", "identity"])
    assert train and test and not train & test


def test_attributions_and_metrics_cover_the_test_split(tiny_run):
    split = pd.read_csv(tiny_run / "results/data/main/split.tsv", sep="\t")
    test_ids = set(split.loc[split.split == "test"].sort_values("id")["id"].iloc[:16])
    with h5py.File(tiny_run / "results/data/main/dataset.h5") as h5:
        attributes = h5["attributes"][:]
    explained = set()
    for method in ("gradcam", "random"):
        rows = []
        for shard in (0, 1):
            with h5py.File(tiny_run / f"results/attributions/resnet/{method}/{shard}.h5") as f:
                assert f["maps"].dtype == np.float16 and f["maps"].shape[1:] == (32, 32)
                assert f.attrs["method"] == method
                for sample_id, name in zip(f["ids"][:], f["attribute"][:]):
                    assert sample_id in test_ids
                    assert attributes[sample_id, ATTRIBUTE_INDEX[name.decode()]] == 1  # only_positive
                    explained.add((method, int(sample_id), name.decode()))
            table = pd.read_csv(tiny_run / f"results/metrics/resnet/{method}/{shard}.csv")
            rows.append(table)
        table = pd.concat(rows)
        valid = table["rp"].dropna()
        assert ((valid >= 0) & (valid <= 1)).all()
        assert set(table["region"]) <= {"eyes", "hat", "hair"}
        assert len(table) == sum(1 for e in explained if e[0] == method)
    gradcam = {e[1:] for e in explained if e[0] == "gradcam"}
    assert gradcam == {e[1:] for e in explained if e[0] == "random"} and gradcam


MASK_METRICS = tuple(m.name for m in registry.metrics() if m.kind == "mask" and m.classes and not m.optional)
MODEL_METRICS = tuple(m.name for m in registry.metrics() if m.kind == "model" and m.classes and not m.optional)


def test_every_metric_is_computed_for_every_method_and_model(tiny_run):
    for model in ("resnet", "biased"):
        for method in ("gradcam", "random"):
            table = pd.concat(pd.read_csv(tiny_run / f"results/metrics/{model}/{method}/{s}.csv") for s in (0, 1))
            assert set(MASK_METRICS + MODEL_METRICS) <= set(table.columns)
            # curves: 4 deletion steps + f = 0 (tiny config), ROAD at 30 and 70 %
            assert {f"deletion@{f:.4f}" for f in (0, 0.25, 0.5, 0.75, 1)} <= set(table.columns)
            assert {"road_morf@30", "road_lerf@70"} <= set(table.columns)
            for name in ("rp", "recall", "iou", "rank_accuracy", "pointing", "auc", "falsified"):
                valid = table[name].dropna()
                assert ((valid >= 0) & (valid <= 1)).all(), name
            ok = table["degenerate"].isna()          # '' is read back as NaN
            assert table.loc[ok, list(MASK_METRICS)].notna().all().all()
            assert table.loc[~ok, "rp"].isna().all()
            ordered = table["perturbation_degenerate"].isna()   # maps that order pixels
            assert table.loc[ordered, ["deletion_auc", "insertion_auc", "road_gap"]].notna().all().all()
            assert table.loc[~ordered, ["deletion_auc", "insertion_auc", "road_gap"]].isna().all().all()
            assert set(table.loc[~ordered, "perturbation_degenerate"]) <= {"constant_map", "nonfinite_map"}
            # the deletion curve starts at the clean probability of the explained output
            np.testing.assert_allclose(table["deletion@0.0000"], table["score"], atol=1e-3)
            checked = table[table["sanity_checked"]]
            assert len(checked) == 4 and table.loc[~table["sanity_checked"], "sanity_spearman"].isna().all()
            # the smoothed check runs on the same rows; NaN only where the smoothed map itself is constant
            assert table.loc[~table["sanity_checked"], "smprt_spearman"].isna().all()
            np.testing.assert_array_equal(checked["smprt_spearman"].isna(), checked["smprt_reason"] == "constant_map")
            if method == "random":   # maps that ignore the model fail both sanity checks
                np.testing.assert_allclose(checked["sanity_spearman"], 1.0)
                np.testing.assert_allclose(checked["smprt_spearman"], 1.0)
            assert set(table["outcome"]) <= {"TP", "FN"}          # only_positive: positives only
            assert table["budget"].nunique() == 1
            for variant, reason in (("falsified", "falsification_degenerate"),
                                    ("falsified_sized", "falsification_sized_degenerate")):
                assert table[variant].notna().sum() + table[reason].notna().sum() == len(table)


def test_statistics_and_summary(tiny_run):
    summary = json.loads((tiny_run / "results/summary.json").read_text())
    assert summary["schema"] == "facexai-summary/5"
    assert summary["budgets"] == {"gradcam": "1 pass", "random": "model-free", "edge": "model-free"}
    assert set(summary["n_decisions"]) == {"resnet", "biased"}
    fr = summary["fr_vs_rp"]
    # the headline: 2 models x gradcam; random and edge (model-free) only in the second line
    assert fr["n_points"] == 2 and fr["with_baselines"]["n_points"] == len(fr["points"]) == 6
    assert fr["bootstrap"] == "images" and {p["method"] for p in fr["points"] if p["model_free"]} == {"random", "edge"}
    comparisons = pd.read_csv(tiny_run / "results/tables/method_comparison.csv")
    assert set(comparisons["model"]) == {"resnet", "biased"}
    assert ((comparisons["p_holm"] >= comparisons["p"]) | comparisons["p"].isna()).all()
    assert (comparisons["unit"] == "image").all() and (comparisons["n_images"] <= comparisons["n_rows"]).all()
    verdicts = pd.read_csv(tiny_run / "results/tables/beats_random.csv")
    assert set(verdicts["method"]) == {"gradcam", "edge"} and verdicts["beats_random"].dtype == bool
    # gradcam is also tested against the edge baseline; the edge row has no verdict against itself
    assert verdicts.loc[verdicts["method"] == "gradcam", "beats_edge"].notna().all()
    assert verdicts.loc[verdicts["method"] == "edge", "beats_edge"].isna().all()
    assert "beats_edge" in summary["beats_random"][0] and "beats_centre" not in verdicts
    # each verdict: beats, does not beat, or untestable (no outcome could pass at this n and family)
    assert set(verdicts["verdict_random"]) <= {"beats", "does not beat", "untestable"}
    untestable = verdicts["verdict_random"] == "untestable"
    assert (verdicts.loc[untestable, "min_p_holm"] >= summary["alpha"]).all()
    assert (verdicts.loc[~untestable, "min_p_holm"] < summary["alpha"]).all()
    assert "verdict_random" in summary["beats_random"][0]
    # one ranked method per model (edge and random are baselines): no agreement to measure there;
    # the verification pairs rank gradcam and corrrise under every pair metric
    assert pd.read_csv(tiny_run / "results/tables/metric_agreement.csv").empty
    pair_agreement = pd.read_csv(tiny_run / "results/tables/verification/trained/metric_agreement.csv")
    assert {"region", "swap", "genuine"} <= set(pair_agreement["kind"]) <= EXPLAINED_KINDS
    assert (pair_agreement["n_methods"] == 2).all()
    assert pair_agreement["tau"].dropna().isin([-1.0, 1.0]).all()
    pair_ranks = pd.read_csv(tiny_run / "results/tables/verification/trained/method_ranks.csv")
    assert {"consensus", "rp", "energy_pointing_lift"} <= set(pair_ranks["metric"])
    assert "energy_pointing" not in set(pair_ranks["metric"])  # described, not ranked
    assert set(pair_ranks["budget"]) == {"1 pass", "32 masks"}
    by_outcome = pd.read_csv(tiny_run / "results/tables/localisation_by_outcome.csv")
    assert set(by_outcome["outcome"]) <= {"TP", "FN"} and by_outcome["n"].sum() == sum(
        sum(v.values()) for v in summary["n_decisions"].values())
    assert fr["fr_variant"] == "size-controlled" and "pearson" in fr["threshold_variant"]
    assert {"fr", "fr_sized"} <= set(fr["points"][0])
    twin = pd.read_csv(tiny_run / "results/tables/twin_shift.csv")
    assert set(twin["method"]) == {"gradcam", "random", "edge"} and (twin["unit"] == "image").all()
    assert summary["twin_shift"] and len(summary["twin_shift"]) == len(twin)
    pair_tests = pd.read_csv(tiny_run / "results/tables/verification/trained/method_comparison.csv")
    assert {"region", "swap", "genuine"} <= set(pair_tests["kind"]) <= EXPLAINED_KINDS
    assert (pair_tests["unit"] == "image").all()
    assert set(pair_tests["method_a"]) | set(pair_tests["method_b"]) == {"gradcam", "corrrise"}
    # the tiny config explains pairs without the random baseline: no verdicts, but the table exists
    assert {"kind", "n_images", "beats_random"} <= set(pd.read_csv(
        tiny_run / "results/tables/verification/trained/beats_random.csv").columns)


def test_metric_figures_are_png_and_pdf(tiny_run):
    figures = tiny_run / "results/figures"
    for stem in ("box_rp_lift", "fr_vs_rp", "curves", "lift_heatmap", "metric_agreement"):
        with Image.open(figures / f"{stem}.png") as image:
            width, height = image.size
            assert width >= 300 and height >= 200, stem
            # not a blank canvas: a drawn figure has many distinct colours
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 20, stem
        pdf = (figures / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_aggregate_tables(tiny_run):
    by_attribute = pd.read_csv(tiny_run / "results/tables/localisation_by_attribute.csv")
    assert set(by_attribute["method"]) == {"gradcam", "random", "edge"}
    assert set(by_attribute["attribute"]) <= {"Eyeglasses", "Wearing_Hat", "Bangs"}
    assert {"rp_mean", "rp_ci_low", "rp_ci_high", "lift_mean", "n_degenerate", "model_flagged"} <= set(
        by_attribute.columns)
    per_sample = pd.concat(pd.read_csv(p) for p in (tiny_run / "results/metrics").rglob("*.csv"))
    for (model, method, attribute), group in per_sample.groupby(["model", "method", "attribute"]):
        row = by_attribute[(by_attribute.model == model) & (by_attribute.method == method)
                           & (by_attribute.attribute == attribute)].iloc[0]
        assert row["n"] == len(group)
        assert row["n_degenerate"] == group["degenerate"].notna().sum()
        valid = group["rp"].dropna()
        assert row["rp_n_valid"] == len(valid)
        if len(valid):
            assert row["rp_mean"] == pytest.approx(valid.mean())
        else:  # all degenerate: reported as undefined, never as 0 or 1
            assert np.isnan(row["rp_mean"])


def test_group_tables_and_mean_maps(tiny_run):
    """The default groups (Pale_Skin: the synthetic set's skin tone) give per-group rows and tests for
    the attribute models and each embedder's pairs, every explained image counted once per test; the
    mean maps' shares are distributions."""
    results = tiny_run / "results"
    with h5py.File(results / "data/main/dataset.h5", "r") as h5:
        pale = h5["attributes"][:, ATTRIBUTE_INDEX["Pale_Skin"]]
        identity = h5["identity"][:]
    # a property of the person: every image of one identity has the same membership, and both occur
    assert all(len(set(pale[identity == i])) == 1 for i in np.unique(identity)) and set(pale) == {-1, 1}
    per_sample = pd.concat([pd.read_csv(p) for p in (results / "metrics").glob("*/*/*.csv")
                            if p.parent.parent.name != "verification"], ignore_index=True)
    by_group = pd.read_csv(results / "tables/localisation_by_group.csv", keep_default_na=False)
    assert set(by_group["group"]) == {"Pale_Skin"} and set(by_group["member"]) <= {"yes", "no"}
    assert "all" in set(by_group["outcome"]) and {"TP"} <= set(by_group["outcome"])
    # the images counted per membership are those of the dataset's Pale_Skin column
    with h5py.File(results / "data/main/dataset.h5", "r") as h5:
        member = dict(zip(h5["ids"][:].tolist(), np.where(pale > 0, "yes", "no")))
    main = per_sample[per_sample["model"] == "resnet"].assign(member=lambda t: t["id"].map(member))
    expected = main.groupby(["method", "region", "member"])["id"].nunique()
    counted = by_group[(by_group["model"] == "resnet") & (by_group["outcome"] == "all")].set_index(
        ["method", "region", "member"])["n_images"]
    assert counted.sort_index().to_dict() == expected.sort_index().to_dict()
    differences = pd.read_csv(results / "tables/group_differences.csv")
    assert set(differences["verdict"]) <= {"differ", "no difference found", "untestable"}
    for r in differences[differences["metric"] == "rp"].itertuples():
        rows = per_sample[(per_sample["model"] == r.model) & (per_sample["method"] == r.method)
                          & (per_sample["region"] == r.region) & np.isfinite(per_sample["rp"])]
        assert r.n_member + r.n_rest + r.n_unknown == rows["id"].nunique()
    # summary.json counts every test once, by model, group and verdict, and lists the differing ones
    groups = json.loads((results / "summary.json").read_text())["groups"]
    assert groups["groups"] == ["Pale_Skin"]
    for model, g in differences.groupby("model"):
        assert groups["verdicts"][model]["Pale_Skin"] == g["verdict"].value_counts().to_dict()
    assert len(groups["differ"]) == (differences["verdict"] == "differ").sum()
    for embedder in ("trained", "scripted"):
        pairs = pd.read_csv(results / f"tables/verification/{embedder}/group_differences.csv")
        assert len(pairs) and set(pairs["group"]) == {"Pale_Skin"}
    for model in ("resnet", "biased"):
        shares = pd.read_csv(results / f"tables/mean_maps_{model}.csv")
        with_mass = shares[shares["n_images"] > 0]
        totals = with_mass.groupby(["method", "attribute", "split", "value"])["share_mean"].sum()
        np.testing.assert_allclose(totals, 1.0, atol=1e-6)
        assert {"all", "outcome", "Pale_Skin"} <= set(shares["split"])
        with Image.open(results / f"figures/mean_maps_{model}.png") as im:
            assert im.size[0] > 400
        with h5py.File(results / f"mean_maps/{model}.h5", "r") as h5:
            assert len(h5["maps"]) == len(shares.drop_duplicates(["method", "attribute", "split", "value"]))


def test_overlay_figure_and_logs(tiny_run):
    with Image.open(tiny_run / "results/figures/overlay_resnet.png") as im:
        width, height = im.size
        pixels = np.asarray(im.convert("L"))
    assert width >= 400 and height >= 200  # 4 columns, up to 3 rows
    assert pixels.std() > 10  # not blank
    assert "resnet_small" in (tiny_run / "results/logs/train/resnet.log").read_text()
    assert (tiny_run / "results/benchmarks/train/resnet.tsv").is_file()


def test_overlay_and_pair_figures_are_png_and_pdf(tiny_run):
    for name in ("overlay_resnet", "overlay_biased", *(f"verification_pairs_{e}" for e in EMBEDDERS)):
        png = tiny_run / f"results/figures/{name}.png"
        with Image.open(png) as im:
            assert im.size[0] >= 400 and np.asarray(im.convert("L")).std() > 10, name
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF"), name
    for embedder in EMBEDDERS:
        log = (tiny_run / f"results/logs/figures/verification_pairs_{embedder}.log").read_text()
        assert "Traceback" not in log


def _browser():
    """Headless Chromium driven by its chromedriver (Debian's chromium and chromium-driver)."""
    import os
    import shutil

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver must be installed in CI (.ci/run installs them)")
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_gallery_in_a_real_browser(tiny_run):
    from selenium.webdriver.support.ui import Select

    tables = pd.concat(pd.read_csv(p, keep_default_na=False) for p in (tiny_run / "results/metrics").glob("*/*/*.csv")
                       if "verification" not in p.parts)
    decisions = tables[["model", "id", "attribute", "region"]].drop_duplicates()
    url = (tiny_run / "results/gallery/index.html").as_uri()
    browser = _browser()
    try:
        browser.get(url)
        cards = lambda: browser.find_elements("css selector", ".card")  # noqa: E731
        maps = lambda: [(i.get_attribute("data-key"), i.get_attribute("src"))  # noqa: E731
                        for i in browser.find_elements("css selector", ".card .map img")]
        assert len(cards()) == len(decisions) > 0
        assert browser.find_element("id", "count").text.startswith(f"{len(decisions)} of {len(decisions)}")
        # every picture decodes (a broken data URI has naturalWidth 0)
        assert browser.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        before = maps()
        assert len(before) == len(decisions) and all(":gradcam:" in k for k, _ in before)
        Select(browser.find_element("id", "method")).select_by_value("random")
        after = maps()
        assert len(after) == len(before) and all(":random:" in k for k, _ in after)
        assert all(a[1] != b[1] for a, b in zip(before, after))  # every shown map changed
        assert "method=random" in browser.current_url
        Select(browser.find_element("id", "method")).select_by_value("(all)")
        assert len(maps()) == 3 * len(decisions)
        labels = [o.text for o in Select(browser.find_element("id", "method")).options]
        assert "gradcam (1 pass)" in labels and "random (model-free)" in labels   # budgets beside methods
        Select(browser.find_element("id", "model")).select_by_value("biased")
        Select(browser.find_element("id", "region")).select_by_value("hat")
        expected = ((decisions.model == "biased") & (decisions.region == "hat")).sum()
        assert len(cards()) == expected > 0
        assert {c.get_attribute("data-region") for c in cards()} == {"hat"}
        # the view survives a reload from its address
        browser.get(url + "#model=resnet&method=random&region=%28all%29&attribute=Bangs&sort=rp")
        assert len(cards()) == ((decisions.model == "resnet") & (decisions.attribute == "Bangs")).sum()
        values = [float(v.text) if v.text else float("-inf")
                  for v in browser.find_elements("css selector", "td.v[data-metric=rp]")]
        assert values == sorted(values, reverse=True)
    finally:
        browser.quit()


def test_pair_gallery_in_a_real_browser(tiny_run):
    from selenium.webdriver.support.ui import Select

    pairs = pd.read_csv(tiny_run / "results/metrics/verification/scripted/corrrise/0.csv", keep_default_na=False)
    browser = _browser()
    try:
        browser.get((tiny_run / "results/gallery/verification_scripted.html").as_uri())
        cards = lambda: browser.find_elements("css selector", ".card")  # noqa: E731
        assert len(cards()) == len(pairs) > 0
        assert browser.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        labels = [o.text for o in Select(browser.find_element("id", "method")).options]
        assert "corrrise dissimilarity (32 masks)" in labels and "gradcam similarity (1 pass)" in labels
        assert browser.find_element("id", "attribute-label").text == "pair kind"
        # TorchScript: Grad-CAM's panels say why there is no map
        Select(browser.find_element("id", "method")).select_by_value("gradcam similarity")
        assert all("TorchScript" in c.text for c in cards())
        # region-swap pairs sorted by the dissimilarity lift of CorrRISE's dissimilarity map, best first
        browser.get((tiny_run / "results/gallery/verification_scripted.html").as_uri()
                    + "#method=%28all%29&attribute=swap&sort=lift_dissimilarity")
        assert len(cards()) == (pairs["kind"] == "swap").sum() == 4
        values = [float(v.text) for v in browser.find_elements(
            "css selector", "td.v[data-metric=lift_dissimilarity][data-method='corrrise dissimilarity']")]
        expected = sorted(pairs.loc[pairs["kind"] == "swap", "lift_dissimilarity"], reverse=True)
        assert len(values) == 4  # shown to 3 significant digits
        assert all(abs(v - float(e)) <= 5e-3 * abs(float(e)) for v, e in zip(values, expected)), (values, expected)
    finally:
        browser.quit()


def test_snakemake_report_has_every_stage(tiny_run, tmp_path):
    out = tmp_path / "report.html"  # not in the shared run, which other tests copy meanwhile
    result = snakemake(tiny_run, "--report", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr[-3000:]
    html = out.read_text()
    for category in ("1 Models", "2 Attribution maps", "3 Metrics", "4 Statistics"):
        assert category in html, category
    for name in ("model_accuracy.csv", "overlay_resnet.png", "verification_pairs_trained.png", "index.html",
                 "verification_scripted.html",
                 "verification_pairs_scripted.png",
                 "localisation_by_region.csv", "lift_heatmap.png", "beats_random.csv", "fr_vs_rp.png"):
        assert f"Adding {name}" in result.stderr, name


def test_second_run_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_verification_through_the_real_reader_with_dlib_and_region_swaps(tmp_path):
    """A small folder in the published CelebAMask-HQ layout (with CelebA's identity file) read by the
    real reader: region-swap pairs on its part masks, the trained and the dlib embedder, every pair
    metric, tables and figures per embedder."""
    root = tmp_path / "CelebAMask-HQ"
    generate(SyntheticConfig(n_images=80, n_identities=16, image_size=64, mask_size=32, seed=5), root,
             progress=False)
    (root / "synthetic-pairs.txt").unlink()  # a real folder has no region pairs: only swaps
    embedders = ["trained", "dlib"] if has_dlib_extra() else ["trained"]
    dlib = "    - {name: dlib, kind: dlib}\n" if has_dlib_extra() else ""
    real = tmp_path / "real.yaml"
    real.write_text(
        # two threads per job (the other runs use one): fusion's worker processes and NCHW training
        # with two threads inside Snakemake jobs
        f"threads: 2\ndataset_root: {root}\ndataset:\n  source: celebamask_hq\n  image_size: 32\n  mask_size: 32\n"
        "  shard_size: 40\nmodels:\n  - {name: resnet}\n"
        "verification:\n  embedders:\n"
        "    - {name: trained, kind: trained, arch: resnet_small, width: 8, dim: 16, epochs: 2, batch_size: 16,\n"
        "       lr: 0.003, margin: 0.2, scale: 16.0}\n" + dlib +
        "  region_swap: {regions: [eyes, nose, mouth, hair], pairs_per_region: 2, dilation: 1, feather: 1}\n"
        "  explain: {kinds: [swap, genuine, impostor]}\n")
    targets = [f"results/{t}" for e in embedders
               for t in (f"tables/verification/{e}/localisation.csv", f"figures/verification_pairs_{e}.png")]
    result = snakemake(tmp_path, *targets, "--configfile", str(real))
    assert result.returncode == 0, result.stderr[-3000:]
    pairs = pd.read_csv(tmp_path / "results/verification/pairs.tsv", sep="\t", keep_default_na=False)
    # every kind is built (the defaults draw swap controls and triplets); the run explains three of them
    assert set(pairs["kind"]) == {"genuine", "impostor", "swap", "swap_control", "triplet"}
    assert pairs[pairs["kind"] == "swap"]["region"].value_counts().to_dict() == {r: 2 for r in
                                                                                 ("eyes", "nose", "mouth", "hair")}
    for embedder in embedders:
        table = pd.read_csv(tmp_path / f"results/tables/verification/{embedder}/localisation.csv")
        swap = table[(table["kind"] == "swap") & (table["method"] == "corrrise")]
        assert sorted(swap["region"]) == ["eyes", "hair", "mouth", "nose"] and (swap["n"] == 2).all()
        assert swap["lift_dissimilarity_n_valid"].sum() == 8
        eer = json.loads((tmp_path / f"results/verification/{embedder}/eer.json").read_text())
        assert set(eer["swap_pairs"]) == {"eyes", "nose", "mouth", "hair"}


def test_bad_real_dataset_fails_naming_the_file(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    generate(SyntheticConfig(n_images=12, n_identities=4, image_size=64, mask_size=32), root, progress=False)
    broken = root / "CelebA-HQ-img" / "7.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    real = tmp_path / "real.yaml"
    real.write_text(f"dataset_root: {root}\ndataset:\n  source: celebamask_hq\n  image_size: 32\n"
                    "  mask_size: 32\n  shard_size: 40\nmodels:\n  - {name: resnet}\n")
    result = snakemake(tmp_path, "--configfile", str(real))
    assert result.returncode != 0
    log = (tmp_path / "results/logs/fuse/main/0.log").read_text()
    assert f"sample 7: {broken}: unreadable or truncated image" in log
    assert not (tmp_path / "results/data/main/shards/fused_0.h5").exists()
    shards = tmp_path / "results/data/main/shards"
    assert not shards.exists() or not any(p.name.startswith(".fused_0") for p in shards.iterdir())


def test_models_biased_twin_and_verification_outputs(tiny_run):
    accuracy = pd.read_csv(tiny_run / "results/tables/model_accuracy.csv")
    assert set(zip(accuracy["model"], accuracy["dataset"])) == {
        ("resnet", "main"), ("resnet", "shortcut"), ("biased", "main"), ("biased", "shortcut")}
    cue = accuracy.dropna(subset=["cue_agrees_accuracy"])
    assert set(cue["dataset"]) == {"shortcut"} and set(cue["attribute"]) == {"Bangs"}
    assert (cue["cue_agrees_n"] + cue["cue_conflicts_n"] == cue["n_test"]).all()
    for model in ("resnet", "biased"):
        assert (tiny_run / f"results/figures/training_curves_{model}.png").stat().st_size > 1000
    # the shortcut dataset differs from the main one only by the background tint
    with h5py.File(tiny_run / "results/data/main/dataset.h5") as a, \
            h5py.File(tiny_run / "results/data/shortcut/dataset.h5") as b:
        assert np.array_equal(a["labels"][:], b["labels"][:])
        assert np.array_equal(a["attributes"][:], b["attributes"][:])
        background = a["labels"][:, ::1, ::1] == 0
        assert not np.array_equal(a["images"][:], b["images"][:]) and background.any()
    pairs = pd.read_csv(tiny_run / "results/verification/pairs.tsv", sep="\t", keep_default_na=False)
    assert set(pairs["kind"]) == {"genuine", "impostor", "region", "swap", "swap_control", "triplet"}
    swap = pairs[pairs["kind"] == "swap"]
    assert sorted(swap["region"]) == ["eyes", "eyes", "mouth", "mouth"] and (swap["row_b"] < 0).all()
    counts = json.loads((tiny_run / "results/verification/pairs.json").read_text())
    assert counts["swap"]["eyes"]["made"] == 2 and counts["pairs"]["swap"] == 4
    for embedder in EMBEDDERS:
        summary = json.loads((tiny_run / f"results/verification/{embedder}/eer.json").read_text())
        assert 0.0 <= summary["eer"] <= 1.0 and summary["n_genuine"] == (pairs["kind"] == "genuine").sum()
        assert set(summary["region_pairs"]) <= {"eyes", "nose", "mouth", "hat", "hair"}
        assert set(summary["swap_pairs"]) == {"eyes", "mouth"}
        assert summary["similarity"] == ("euclidean" if embedder == "dlib" else "cosine")


def test_region_swap_sheet(tiny_run, tmp_path):
    from facexai.cli import main

    main(["figures", "swap-pairs", str(tiny_run / "results"), str(tmp_path / "swap.png"), "--per-region", "1"])
    with Image.open(tmp_path / "swap.png") as im:
        assert im.size[0] >= 300 and np.asarray(im.convert("L")).std() > 10
    assert (tmp_path / "swap.pdf").read_bytes().startswith(b"%PDF")


def test_verification_pair_maps(tiny_run):
    pairs = pd.read_csv(tiny_run / "results/verification/pairs.tsv", sep="\t", keep_default_na=False)
    for embedder in EMBEDDERS:
        for method in ("gradcam", "corrrise"):
            with h5py.File(tiny_run / f"results/attributions/verification/{embedder}/{method}/0.h5") as f:
                kinds = [k.decode() for k in f["kind"][:]]
                assert {"region", "swap", "genuine"} <= set(kinds) <= EXPLAINED_KINDS
                assert f["maps"].shape[1:] == (32, 32)
                assert f.attrs["model"] == embedder
                maps = f["maps"][:].astype(np.float32)
                if embedder == "scripted" and method == "gradcam":
                    # TorchScript forbids hooks: NaN maps and the reason, never zeros or a crash
                    assert np.isnan(maps).all() and "TorchScript" in f.attrs["not_applicable"]
                else:
                    assert np.isfinite(maps).all() and f.attrs["not_applicable"] == ""
                pair = np.array([k != "triplet" for k in kinds])  # a triplet's score: a preference, any sign
                if embedder == "dlib":  # minus the Euclidean distance
                    assert (f["score"][:][pair] <= 0).all()
                else:
                    assert ((f["score"][:][pair] >= -1.0001) & (f["score"][:][pair] <= 1.0001)).all()
                    assert (np.abs(f["score"][:][~pair]) <= 2.0002).all()
                for a, b, kind in zip(f["ids"][:], f["partner_id"][:], kinds):
                    assert ((pairs.id_a == a) & (pairs.id_b == b) & (pairs.kind == kind)).any()
                # explained with the rows of one image side by side, written in the shard's own order
                scores = pd.read_csv(tiny_run / f"results/verification/{embedder}/scores.tsv", sep="\t",
                                     keep_default_na=False)
                own = pair_shard(scores, 0, 1, TINY_KINDS, 4)
                assert list(zip(own["kind"], own["id_a"], own["id_b"])) == list(zip(kinds, f["ids"][:],
                                                                                    f["partner_id"][:]))
                assert (by_image(own) != np.arange(len(own))).any()  # the explaining order did differ


def test_verification_localisation_table(tiny_run):
    for embedder in EMBEDDERS:
        per_pair = pd.concat(pd.read_csv(p) for p in (tiny_run / f"results/metrics/verification/{embedder}")
                             .rglob("*.csv"))
        summary = pd.read_csv(tiny_run / f"results/tables/verification/{embedder}/localisation.csv")
        assert set(summary["method"]) == {"gradcam", "corrrise"} and set(per_pair["model"]) == {embedder}
        per_pair["region"] = per_pair["region"].fillna("")
        summary["region"] = summary["region"].fillna("")
        for (method, kind, region), group in per_pair.groupby(["method", "kind", "region"]):
            row = summary[(summary.method == method) & (summary.kind == kind) & (summary.region == region)].iloc[0]
            assert row["n"] == len(group)
            # the summary scores maps without mass as a uniform map (stats.pair_rows_at_chance)
            valid = pair_rows_at_chance(group)["rp_dissimilarity"].dropna()
            assert row["rp_dissimilarity_n_valid"] == len(valid)
            assert ((valid >= 0) & (valid <= 1)).all()
        # region-swap pairs are scored against their expected region
        swap = per_pair[(per_pair["kind"] == "swap") & (per_pair["method"] == "corrrise")]
        assert len(swap) == 4 and swap["lift_dissimilarity"].notna().all()
        assert {"deletion_accuracy_auc", "insertion_accuracy_auc", "road_gap", "falsified"} <= set(per_pair.columns)
        applicable = per_pair["not_applicable"].fillna("") == ""
        ordered = per_pair["perturbation_degenerate"].isna() & applicable  # all-zero maps order nothing
        assert per_pair.loc[ordered, "deletion_accuracy_auc"].between(0, 1).all()
        assert per_pair.loc[~ordered, "deletion_accuracy_auc"].isna().all()
        genuine = per_pair[(per_pair["kind"] == "genuine") & applicable]
        assert genuine["rp"].isna().all() and (genuine["degenerate"] == "not_a_region_pair").all()
        skipped = summary[summary["method"] == "gradcam"]["n_not_applicable"]
        assert (skipped == (summary[summary["method"] == "gradcam"]["n"] if embedder == "scripted" else 0)).all()
        ranks = pd.read_csv(tiny_run / f"results/tables/verification/{embedder}/method_ranks.csv")
        # on the TorchScript embedder only CorrRISE ran: one method, nothing to rank
        assert set(ranks["method"]) == (set() if embedder == "scripted" else {"gradcam", "corrrise"})


def test_headlines_of_a_run(tiny_run):
    from facexai.headlines import headlines

    text = headlines(tiny_run / "results")
    assert "### Verification triplets" in text and "### The inpainting game" in text
    section = text.split("### Verification pairs that differ in one region")[1]
    for embedder in EMBEDDERS:
        assert f"| {embedder} |" in section and "| swap | mouth | corrrise (32 masks) | 2 |" in section
    assert "| scripted |" in section and "(2 not applicable)" in section
    assert "### FR vs RP" in text and "| size-controlled, attribution methods (headline) | 2 |" in text
    assert "| size-controlled, with the model-free baselines | 6 |" in text
    assert "untestable (n images, best attainable adjusted p)" in text
    assert "### Beats the edge baseline" in text and "| resnet | gradcam |" in text.split("edge baseline")[1]
    assert "| resnet | gradcam |" in text and "### Fair vs biased twin" in text


SKEWED = ("models:\n  - {name: resnet}\n  - {name: biased, dataset: shortcut}\n"
          "  - {name: skewed, group_share: {group: Male, share: %s, size: 40}}\n")


def test_group_imbalanced_twin_through_the_workflow(tiny_run, tmp_path):
    from facexai.headlines import headlines

    from conftest import copy_run

    work = copy_run(tiny_run, tmp_path / "run")
    (work / "skewed.yaml").write_text(SKEWED % 0.1)
    weights = work / "results/models/resnet/weights.pt"
    before = weights.stat().st_mtime_ns
    targets = ["results/figures/group_twin.png", "results/tables/group_twin_accuracy.csv"]
    result = snakemake(work, *targets, "--configfile", str(work / "skewed.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert weights.stat().st_mtime_ns == before          # the fair partner is the tiny run's resnet, not retrained
    meta = json.loads((work / "results/models/skewed/model.json").read_text())
    assert meta["group_share"]["n_train"] == meta["n_train"] == 40 and meta["group_share"]["n_member"] == 4
    accuracy = pd.read_csv(work / "results/tables/group_twin_accuracy.csv")
    assert set(zip(accuracy["fair"], accuracy["skewed"], accuracy["group"])) == {("resnet", "skewed", "Male")}
    assert list(accuracy["attribute"].unique()) == ["all", "Eyeglasses", "Smiling", "Wearing_Hat", "Bangs"]
    assert (accuracy["skewed_n_train"] == 40).all() and (accuracy["skewed_train_share"] == 0.1).all()
    test_rows = pd.read_csv(work / "results/data/main/split.tsv", sep="\t").query("split == 'test'")
    gap = accuracy[accuracy["side"] == "yes - no"]
    assert (gap["n_member"] + gap["n_rest"] + gap["n_unknown"] == len(test_rows)).all()
    assert set(gap["verdict"]) <= {"differ", "no difference found", "untestable"}
    shift = pd.read_csv(work / "results/tables/group_twin_shift.csv")
    assert set(shift["method"]) == {"gradcam", "random", "edge"} and "all" in set(shift["attribute"])
    # the model-free maps do not read the model: no shift at all
    free = shift[shift["method"].isin(["random", "edge"]) & shift["difference_mean"].notna()]
    assert len(free) and (free["difference_mean"] == 0).all()
    assert (work / "results/figures/group_twin.pdf").stat().st_size > 1000
    assert "Group-imbalanced twin" in headlines(work / "results")
    # another share retrains the skewed model and remakes its tables, nothing of the other models
    (work / "skewed.yaml").write_text(SKEWED % 0.5)
    dry = snakemake(work, *targets, "-n", "--configfile", str(work / "skewed.yaml"))
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = dict(line.split()[:2] for line in dry.stdout.split("Job stats:")[1].split("total")[0].splitlines()[3:]
                if line.strip())
    assert jobs == {"train_attribute_model": "1", "attribute": "6", "group_twin": "1", "group_twin_figure": "1"}, jobs
