"""Model-free baselines, energy pointing, sMPRT, metric agreement, outcomes and budgets."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from facexai.agreement import agreement_summary, kendall_tau_b, metric_agreement, ranks
from facexai.aggregate import method_budgets, summarise, with_budget
from facexai.attributions import METHODS, ClassTask, get_method
from facexai.attributions.base import method_budget
from facexai.attributions.model_free import centre_prior, part_share, sobel_magnitude
from facexai.data.samples import to_model_input
from facexai.metrics.localisation import energy_pointing, region_box, regional_precision
from facexai.subjects.base import outcomes
from facexai.metrics.sanity import noisy_copies, smoothed_randomisation
from facexai.models.backbones import build_model
from facexai.stats import MODEL_FREE_BASELINES, beats_random

# --- model-free baselines ---------------------------------------------------------------------------------


def test_edge_baseline_is_the_hand_computed_sobel_magnitude_of_a_step():
    # grey step: 0 in columns 0..3, 0.8 in columns 4..9; Sobel's x kernel [1 2 1]^T x [-1 0 1] gives
    # (1 + 2 + 1) * 0.8 = 3.2 at columns 3 and 4 (each sees one side of the step), 0 elsewhere
    grey = np.zeros((8, 10))
    grey[:, 4:] = 0.8
    expected = np.zeros((8, 10))
    expected[:, 3:5] = 3.2
    np.testing.assert_allclose(sobel_magnitude(grey), expected, atol=1e-12)
    # through the method: a grey RGB image (R = G = B) gives the same map (luminance weights sum to 1)
    image = np.repeat((grey * 255).round().astype(np.uint8)[None, :, :, None], 3, axis=3)
    maps = get_method("edge", {})(ClassTask(None, torch.zeros(1, dtype=torch.long)), to_model_input(image),
                                  np.array([0]), 0)
    step = np.round(0.8 * 255) / 255
    np.testing.assert_allclose(maps[0], expected / 0.8 * step, atol=1e-5)
    # a diagonal gradient: |grad| = sqrt(gx^2 + gy^2), both 8 * slope inside the image
    ramp = np.add.outer(np.arange(9.0), np.arange(9.0)) * 0.1
    assert sobel_magnitude(ramp)[4, 4] == pytest.approx(np.hypot(0.8, 0.8))
    with pytest.raises(ValueError, match="methods.edge.sigma"):
        sobel_magnitude(ramp, -1)


def test_centre_prior_peaks_in_the_middle_and_is_the_same_for_every_image():
    prior = centre_prior(8, 8, 0.25)
    # pixel centres at 0.5..7.5, image centre 4: the four middle pixels are at distance sqrt(0.5)
    assert prior[3, 3] == pytest.approx(np.exp(-0.5 / (2 * 2.0 ** 2)))
    assert prior.max() == prior[3, 3] == prior[4, 4] and prior[0, 0] == prior.min()
    np.testing.assert_allclose(prior, prior[::-1, ::-1])
    rng = np.random.default_rng(0)
    x = to_model_input((rng.random((3, 8, 8, 3)) * 255).astype(np.uint8))
    maps = get_method("centre", {})(ClassTask(None, torch.zeros(3, dtype=torch.long)), x, np.arange(3), 0)
    for m in maps:
        np.testing.assert_allclose(m, prior, rtol=1e-6)
    with pytest.raises(ValueError, match="methods.centre.sigma"):
        centre_prior(8, 8, 0)


def test_the_model_free_methods_are_the_statistics_baselines():
    free = {name for name, cls in METHODS.items() if cls.model_free and not cls.oracle}  # the oracle is a ceiling
    assert free == {"random", *MODEL_FREE_BASELINES}
    assert all(method_budget(name) == "model-free" for name in free)


def test_budgets_name_each_methods_cost():
    assert method_budget("integrated_gradients", {"n_steps": 16}) == "16 steps"
    assert method_budget("rise", {"n_masks": 1000}) == "1000 masks"
    assert method_budget("lime", {"num_samples": 500, "n_segments": 50}) == "500 samples, 50 segments"
    assert method_budget("gradcam") == "1 pass"
    table = pd.DataFrame({"method": ["a", "a", "b"], "budget": ["8 steps", "8 steps", "1 pass"]})
    assert method_budgets(table) == {"a": "8 steps", "b": "1 pass"}
    framed = with_budget(pd.DataFrame({"model": ["m"], "method": ["b"], "x": [1]}), method_budgets(table))
    assert list(framed.columns) == ["model", "method", "budget", "x"] and framed["budget"][0] == "1 pass"
    mixed = pd.DataFrame({"method": ["a", "a"], "budget": ["8 steps", "16 steps"]})
    with pytest.raises(ValueError, match="different budgets"):
        method_budgets(mixed)


# --- energy pointing --------------------------------------------------------------------------------------


def test_energy_pointing_by_hand_and_on_the_regions_box():
    region = np.zeros((1, 10, 10), bool)
    region[0, 2, 2] = region[0, 2, 7] = True          # two "eyes": the box is row 2, columns 2..7
    box = region_box(region)
    assert box.sum() == 6 and box[0, 2, 2:8].all()
    # a map equal to the box gives 1, whatever its values inside
    inside = np.where(box, np.linspace(0.1, 1.0, 100).reshape(1, 10, 10), 0.0)
    assert energy_pointing(inside, region)[0] == pytest.approx(1.0)
    # hand-computed: mass 3 in the box (between the eyes), 1 outside -> 0.75; RP (the mask) sees 0
    m = np.zeros((1, 10, 10))
    m[0, 2, 4], m[0, 9, 9] = 3.0, 1.0
    assert energy_pointing(m, region)[0] == pytest.approx(0.75)
    assert regional_precision(m, region)[0] == 0.0
    # a uniform map scores the box's share of the image; undefined maps and regions stay NaN
    assert energy_pointing(np.ones((1, 10, 10)), region)[0] == pytest.approx(6 / 100)
    assert np.isnan(energy_pointing(np.zeros((1, 10, 10)), region)[0])
    assert np.isnan(energy_pointing(np.ones((1, 10, 10)), np.zeros((1, 10, 10), bool))[0])


def test_energy_pointing_is_registered_and_reaches_the_tables():
    from facexai.metrics import registry

    metric = registry.get("energy_pointing")
    # the raw share is described; its chance-normalised value is the one tested and ranked
    assert metric.compute is not None and metric.direction == registry.NONE and metric.pairs
    assert "energy_pointing" not in registry.tested() and "energy_pointing_lift" in registry.tested()
    assert "energy_pointing" not in registry.mask_columns()
    maps = np.ones((2, 4, 4), np.float32)          # model resolution 4, label resolution 8
    regions = np.zeros((2, 8, 8), bool)
    regions[:, :4, :4] = True
    np.testing.assert_allclose(metric.compute(maps, regions, {"mass": "positive"}), 0.25)
    np.testing.assert_allclose(registry.get("energy_pointing_lift").compute(maps, regions, {"mass": "positive"}), 1.0)


def test_energy_pointing_lift_by_hand_and_uniform_maps_score_one_on_every_region():
    from facexai.metrics.localisation import energy_pointing_lift

    # two "eyes" of 2 x 2 at columns 1-2 and 7-8 of a 10 x 10 image: their box is rows 3-4, columns
    # 1-8: 16 pixels, 0.16 of the image. A map with 0.4 of its mass in the box: EP 0.4, lift 2.5
    region = np.zeros((1, 10, 10), bool)
    region[0, 3:5, 1:3] = region[0, 3:5, 7:9] = True
    m = np.zeros((1, 10, 10))
    m[0, 4, 5] = 0.4           # between the eyes: inside the box, outside the region
    m[0, 9, 9] = 0.6
    assert energy_pointing_lift(m, region)[0] == pytest.approx(0.4 / 0.16)
    # a uniform map: EP = the box's share, which differs from region to region; the lift is 1 on all
    rng = np.random.default_rng(0)
    for _ in range(5):
        r = np.zeros((1, 32, 32), bool)
        top, left = rng.integers(0, 20, 2)
        r[0, top:top + rng.integers(1, 12), left:left + rng.integers(1, 12)] = True
        assert energy_pointing_lift(np.ones((1, 32, 32)), r)[0] == pytest.approx(1.0)
        assert energy_pointing(np.ones((1, 32, 32)), r)[0] == pytest.approx(region_box(r).mean())
    assert np.isnan(energy_pointing_lift(np.zeros((1, 10, 10)), region)[0])
    assert np.isnan(energy_pointing_lift(np.ones((1, 10, 10)), np.zeros((1, 10, 10), bool))[0])


# --- sMPRT ------------------------------------------------------------------------------------------------


def _images(n=3, size=24, seed=4):
    rng = np.random.default_rng(seed)
    return to_model_input((rng.random((n, size, size, 3)) * 255).astype(np.uint8))


def test_smprt_sees_no_change_for_a_model_independent_method_and_a_change_for_gradcam():
    torch.manual_seed(0)
    model = build_model("resnet_small", 3, width=8).eval()
    x, ids = _images(), np.arange(3)
    targets = torch.zeros(3, dtype=torch.long)
    results = {}
    for name in ("edge", "gradcam"):
        method = get_method(name, {})
        out = smoothed_randomisation(model, lambda m, xn, method=method: method(ClassTask(m, targets), xn, ids, 0),
                                     x, ids, samples=3, noise=0.05, seed=0)
        results[name] = out
    np.testing.assert_allclose(results["edge"]["spearman"], 1.0)        # the same smoothed map: no change
    assert (results["edge"]["reason"] == "").all()
    assert np.nanmean(results["gradcam"]["spearman"]) < 0.9             # depends on the weights
    with pytest.raises(ValueError, match="smooth.samples"):
        smoothed_randomisation(model, None, x, ids, samples=0)


def test_noisy_copies_are_seeded_per_sample_not_per_batch():
    x, ids = _images(n=4), np.array([5, 6, 7, 8])
    whole = list(noisy_copies(x, ids, 2, 0.1, seed=1))
    part = list(noisy_copies(x[2:], ids[2:], 2, 0.1, seed=1))
    for a, b in zip(whole, part):
        torch.testing.assert_close(a[2:], b)
    assert not torch.equal(whole[0], whole[1])
    # noise std in pixel units: 0.1 in [0, 1] is 0.1 / 0.25 in model input units
    assert float((whole[0] - x).std()) == pytest.approx(0.4, rel=0.05)


# --- outcomes ---------------------------------------------------------------------------------------------


def test_outcomes_at_the_threshold():
    got = outcomes([True, False, True, False], [True, True, False, False])
    assert list(got) == ["TP", "FP", "FN", "TN"]


def test_localisation_by_outcome_keeps_wrong_decisions_apart():
    table = pd.DataFrame({"model": "m", "method": "g", "budget": "1 pass", "region": "eyes",
                          "id": [0, 1, 2, 3], "outcome": ["TP", "TP", "FN", "FN"],
                          "rp": [0.8, 0.6, 0.1, 0.3], "degenerate": ""})
    out = summarise(table, ["model", "method", "region", "outcome"], n_resamples=50, metrics=["rp"])
    assert list(out["outcome"]) == ["FN", "TP"] and list(out["budget"]) == ["1 pass", "1 pass"]
    np.testing.assert_allclose(out["rp_mean"], [0.2, 0.7])


# --- metric agreement -------------------------------------------------------------------------------------


def test_kendall_tau_b_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 4, 6).astype(float), rng.integers(0, 4, 6).astype(float)
        expected = scipy.stats.kendalltau(a, b).statistic
        got = kendall_tau_b(a, b)
        assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert np.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    np.testing.assert_array_equal(ranks([[0.1, 0.9, 0.5]], +1), [[3, 1, 2]])
    np.testing.assert_array_equal(ranks([[0.1, 0.9, 0.5]], -1), [[1, 3, 2]])


def _ranked_table(n_images=30, seed=0):
    """Three methods with a clear order on 'rp' (a > b > c); 'lift' gives the same order, 'auc' the
    reverse; 'deletion_auc' (lower is better) ranks like rp; random is there too."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        for method, level in (("a", 0.8), ("b", 0.5), ("c", 0.2), ("random", 0.5)):
            v = level + rng.normal(0, 0.02)
            rows.append({"model": "m", "method": method, "id": i, "attribute": "A", "rp": v, "lift": 3 * v,
                         "auc": 1 - v, "deletion_auc": 1 - v})
    return pd.DataFrame(rows)


def test_agreement_is_one_for_the_same_order_and_minus_one_for_the_reverse():
    agreement, rank_table = metric_agreement(_ranked_table(), ["rp", "lift", "auc", "deletion_auc"],
                                             n_resamples=200)
    tau = {(r.metric_a, r.metric_b): r for r in agreement.itertuples()}
    assert tau[("rp", "lift")].tau == 1.0 and tau[("rp", "lift")].ci_low == 1.0
    assert tau[("rp", "auc")].tau == -1.0 and tau[("rp", "auc")].ci_high == -1.0
    assert tau[("rp", "deletion_auc")].tau == 1.0             # the direction of each metric is used
    assert set(agreement["n_methods"]) == {3}                  # the random baseline is not ranked
    rp = rank_table[rank_table["metric"] == "rp"].set_index("method")
    assert list(rp.loc[["a", "b", "c"], "rank"]) == [1.0, 2.0, 3.0]
    consensus = rank_table[rank_table["metric"] == "consensus"].set_index("method")
    # a: ranks 1, 1, 3, 1 -> 1.5; b: 2 everywhere; c: 3, 3, 1, 3 -> 2.5
    np.testing.assert_allclose(consensus.loc[["a", "b", "c"], "rank"], [1.5, 2.0, 2.5])
    assert (consensus["rank_ci_low"] <= consensus["rank"]).all()
    assert (consensus["rank"] <= consensus["rank_ci_high"]).all()
    summary = agreement_summary(agreement, rank_table)["m"]
    assert summary["n_metrics"] == 4 and [c["method"] for c in summary["consensus"]] == ["a", "b", "c"]
    assert summary["share_agree"] == pytest.approx(0.5) and summary["share_disagree"] == pytest.approx(0.5)


def test_agreement_ci_is_wide_when_methods_are_indistinguishable():
    table = _ranked_table()
    rng = np.random.default_rng(5)
    table["rp"] = rng.random(len(table))                       # no order at all
    table["lift"] = rng.random(len(table))
    agreement, _ = metric_agreement(table, ["rp", "lift"], n_resamples=300)
    row = agreement.iloc[0]
    assert row.ci_low < 0 < row.ci_high


def test_agreement_scores_methods_on_the_same_images():
    table = _ranked_table(n_images=10)
    # method a has no value on images 0..4: every method is scored on images 5..9 only
    table.loc[(table["method"] == "a") & (table["id"] < 5), "rp"] = np.nan
    table.loc[(table["method"] == "b") & (table["id"] < 5), "rp"] = 100.0   # would win if those images counted
    _, rank_table = metric_agreement(table, ["rp", "lift"], n_resamples=50)
    rp = rank_table[rank_table["metric"] == "rp"].set_index("method")
    assert set(rp["n_images"]) == {5} and rp.loc["a", "rank"] == 1.0


# --- beats edge / centre ----------------------------------------------------------------------------------


def test_beats_random_gains_edge_and_centre_verdicts_that_can_fail():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(25):
        for method, rp in (("good", 0.9), ("weak", 0.4), ("edge", 0.6), ("centre", 0.3), ("random", 0.1)):
            rows.append({"model": "m", "method": method, "id": i, "attribute": "A",
                         "rp": rp + rng.normal(0, 0.05)})
    verdicts = beats_random(pd.DataFrame(rows), ["rp"]).set_index("method")
    assert verdicts.loc["good", "beats_random"] and verdicts.loc["weak", "beats_random"]
    assert verdicts.loc["good", "beats_edge"] and not verdicts.loc["weak", "beats_edge"]
    assert verdicts.loc["weak", "beats_centre"] and verdicts.loc["good", "beats_centre"]
    assert pd.isna(verdicts.loc["edge", "beats_edge"]) and pd.isna(verdicts.loc["centre", "beats_centre"])
    assert {"p_holm_edge", "median_difference_centre", "n_images_edge"} <= set(verdicts.columns)


def test_agreement_figure_is_drawn_with_budgets(tmp_path):
    from PIL import Image

    from facexai.metric_figures import agreement_figure

    table = _ranked_table().assign(budget=lambda t: t["method"].map({"a": "8 steps", "b": "1 pass", "c": "256 masks",
                                                                    "random": "model-free"}))
    agreement, rank_table = metric_agreement(table, ["rp", "lift", "auc", "deletion_auc"], n_resamples=50)
    rank_table = with_budget(rank_table, method_budgets(table))
    agreement_figure(agreement, rank_table, tmp_path / "agreement.png")
    image = np.asarray(Image.open(tmp_path / "agreement.png"))
    assert image.shape[0] > 200 and image.shape[1] > 400 and image.std() > 10
    assert (tmp_path / "agreement.pdf").stat().st_size > 1000


def test_parts_baseline_by_hand():
    """Labels 4 x 4 with the nose on 3 of the top-left 2 x 2 block and a mouth pixel bottom-right:
    at 2 x 2 the share of part pixels is 0.75 and 0.25 there (area average); only the classes named
    count; the map needs the explained images' labels and names the key of a bad class."""
    from facexai.labels import CLASS_INDEX

    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0, :2] = labels[0, 1, 0] = CLASS_INDEX["nose"]
    labels[0, 3, 3] = CLASS_INDEX["mouth"]
    np.testing.assert_allclose(part_share(labels, ["nose", "mouth"], 2), [[[0.75, 0.0], [0.0, 0.25]]])
    np.testing.assert_allclose(part_share(labels, ["mouth"], 2), [[[0.0, 0.0], [0.0, 0.25]]])
    np.testing.assert_array_equal(part_share(labels, ["nose"], 8)[0, :2, :4], [[1, 1, 1, 1], [1, 1, 1, 1]])
    # labels finer than the model but not a whole multiple (512 -> 112): still an area average, so a
    # thin part keeps its area instead of vanishing between sampled rows
    brow = np.zeros((1, 512, 512), np.uint8)
    brow[0, 200:203, 100:400] = CLASS_INDEX["l_brow"]
    share = part_share(brow, ["l_brow"], 112)
    assert share.max() <= 1 and share.sum() == pytest.approx(3 * 300 * (112 / 512) ** 2, rel=0.2)
    assert (share[0, 200 * 112 // 512, 100 * 112 // 512 + 1:400 * 112 // 512] > 0).all()
    method = get_method("parts", {"classes": ["nose", "mouth"], "sigma": 0.0})
    task = ClassTask(torch.nn.Identity(), torch.zeros(1, dtype=torch.long))
    images = torch.zeros(1, 3, 2, 2)
    with pytest.raises(ValueError, match="methods.parts: needs the label maps"):
        method(task, images, np.array([0]), seed=0)
    task.part_labels = labels
    np.testing.assert_allclose(method(task, images, np.array([0]), seed=0), [[[0.75, 0.0], [0.0, 0.25]]])
    # model-free: another model, the same map; a baseline every method is tested against, not an oracle
    other = ClassTask(torch.nn.Linear(2, 2), torch.zeros(1, dtype=torch.long))
    other.part_labels = labels
    np.testing.assert_array_equal(method(other, images, np.array([0]), seed=0), method(task, images, np.array([0]), 0))
    from facexai.attributions import MODEL_FREE_BASELINES, ORACLES

    assert "parts" in MODEL_FREE_BASELINES and "parts" not in ORACLES
    with pytest.raises(ValueError, match="methods.parts.classes: unknown"):
        get_method("parts", {"classes": ["nostril"]})(task, images, np.array([0]), seed=0)
