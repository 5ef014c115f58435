"""The metric registry is the one list of metrics: adding a toy metric touches only the registry and
the metric's own function, and the per-sample table, the aggregate tables, the statistics and the
gallery pick it up."""

import numpy as np
import pandas as pd
import pytest
import yaml

from facexai.aggregate import summarise
from facexai.attributions.store import make_shard, read_shard
from facexai.metrics import chance_level, positive_part, registry, regional_precision, resize_maps
from facexai.layout import META
from facexai.metrics.run import metric_table
from facexai.stats import beats_random

from conftest import REPO


def class_inputs(maps, tmp) -> dict:
    """A metric job's inputs for an attribute model's maps (the rule's names)."""
    return {"attributions": maps, "data": tmp / "d.h5", "meta": tmp / "model" / META}


def toy_lift(maps, regions, settings):
    """Lift computed the slow way: RP of the resized positive part over the region's pixel share."""
    mass = positive_part(resize_maps(maps, regions.shape[-1]), settings["mass"])
    return regional_precision(mass, regions) / chance_level(regions)


def test_the_registry_holds_each_metric_once_with_a_direction():
    names = [m.name for m in registry.metrics()]
    assert len(names) == len(set(names))
    assert registry.direction("deletion_auc") == registry.LOWER and registry.direction("rp") == registry.HIGHER
    assert "chance" not in registry.tested() and "components" not in registry.tested()
    assert set(registry.tested()) <= set(registry.summarised())
    assert "rp_dissimilarity" in registry.summarised(pairs=True) and "rp_dissimilarity" not in registry.summarised()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Metric("rp", "RP", compute=toy_lift))
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        registry.get("nope")


@pytest.fixture
def toy_metric():
    metric = registry.register(registry.Metric("toy_lift", "toy lift", registry.HIGHER, shown=True,
                                               sortable=True, compute=toy_lift))
    yield metric
    registry.unregister("toy_lift")
    assert "toy_lift" not in registry.summarised()


@pytest.fixture
def tiny_inputs(tmp_path):
    """A dataset of 6 faces (16 px images, 32 px labels), a model trained for one epoch, a shard of maps."""
    return make_tiny_inputs(tmp_path)


def make_tiny_inputs(tmp_path, label_size: int = 32):
    import h5py

    from facexai.models.train import train_attribute_classifier

    rng = np.random.default_rng(0)
    n = 6
    labels = np.zeros((n, label_size, label_size), np.uint8)
    top, bottom, left, right = (v * label_size // 32 for v in (8, 20, 6, 26))
    labels[:, top:bottom, left:right] = 4   # l_eye: the region "eyes"
    attributes = -np.ones((n, 40), np.int8)
    attributes[:, 15] = 1
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["images"] = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        h5["labels"], h5["attributes"], h5["ids"] = labels, attributes, np.arange(n)
        h5.attrs["image_size"], h5.attrs["mask_size"] = 16, label_size
    pd.DataFrame({"row": np.arange(n), "id": np.arange(n), "identity": np.arange(n),
                  "split": ["train"] * 4 + ["test"] * 2}).to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    train_attribute_classifier(tmp_path / "d.h5", tmp_path / "split.tsv", tmp_path / "model", arch="resnet_small",
                               attributes=["Eyeglasses"], epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, seed=0,
                               width=4, progress=False)
    maps = rng.normal(size=(n, 16, 16)).astype(np.float32)
    maps[0] = 0.0  # degenerate: no positive mass
    # given maps under a real method's name (the sanity check recomputes maps with that method)
    for name, method in (("toy", "gradcam"), ("random", "random")):
        make_shard(tmp_path / f"{name}.h5", maps if name == "toy" else rng.random((n, 16, 16)), method=method,
                   model="m", score=np.full(n, 0.7))
    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    settings = {**config["metrics"], "deletion": {"steps": 2, "baseline": "black"},
                "road": {"percentages": [50], "noise": 0.01}, "falsification": {**config["metrics"]["falsification"],
                                                                                "k": 2},
                "sanity": {"stages": 1, "max_samples": 1}}
    return tmp_path, config, settings


def test_a_registered_metric_reaches_every_consumer(toy_metric, tiny_inputs):
    from facexai.gallery import build_gallery

    tmp, config, settings = tiny_inputs
    tables = []
    for method in ("toy", "random"):
        tables.append(metric_table("attributes", class_inputs(tmp / f"{method}.h5", tmp), tmp / f"{method}.csv",
                                   regions=config["regions"], attribute_regions=config["attribute_regions"],
                                   settings=settings))
    table = pd.concat(tables, ignore_index=True)
    # the per-sample table: the toy column, equal to the fast path's lift, NaN on the degenerate map
    assert "toy_lift" in pd.read_csv(tmp / "toy.csv").columns
    np.testing.assert_allclose(table["toy_lift"], table["lift"], rtol=1e-5)
    assert np.isnan(table.loc[0, "toy_lift"]) and table.loc[0, "degenerate"] == "zero_map"
    # aggregation and statistics
    summary = summarise(table, ["model", "method", "region"], n_resamples=50)
    assert {"toy_lift_mean", "toy_lift_n_valid", "toy_lift_ci_low"} <= set(summary.columns)
    assert list(summary.loc[summary["method"] == "gradcam", "toy_lift_n_valid"]) == [5]
    verdicts = beats_random(table)
    assert "toy_lift" in set(verdicts["metric"])
    # the gallery's cards and sort menu
    assert ("toy_lift", "toy lift") in registry.shown() and registry.sortable()["toy_lift"] == 1
    out = tmp / "gallery.html"
    build_gallery([tmp / "toy.csv", tmp / "random.csv"], {("m", "gradcam"): [tmp / "toy.h5"],
                                                          ("m", "random"): [tmp / "random.h5"]},
                  {"m": tmp / "d.h5"}, out, regions=config["regions"])
    assert '"toy_lift"' in out.read_text()


def test_store_round_trip(tmp_path):
    maps = np.random.default_rng(1).normal(size=(3, 8, 8))
    make_shard(tmp_path / "s.h5", maps, method="rise", model="vgg", params={"n_masks": 4}, ids=[7, 8, 9],
               attribute=["Smiling", "Bangs", "Smiling"])
    shard = read_shard(tmp_path / "s.h5")
    assert (shard.method, shard.model, shard.params) == ("rise", "vgg", {"n_masks": 4})
    assert shard.keys() == [(7, "Smiling"), (8, "Bangs"), (9, "Smiling")] and not shard.is_pairs
    np.testing.assert_allclose(shard.maps, maps.astype(np.float16).astype(np.float32))
    assert read_shard(tmp_path / "s.h5", maps=False).maps is None


def test_a_method_s_own_diagnostics_reach_the_tables(tiny_inputs):
    tmp, config, settings = tiny_inputs
    maps = np.random.default_rng(3).normal(size=(6, 16, 16))
    error = np.array([0.01, 0.2, 0.03, np.nan, 0.04, 0.5])
    make_shard(tmp / "ig.h5", maps, method="integrated_gradients", model="m", params={"n_steps": 2},
               completeness_error=error, completeness_flagged=error > 0.05)
    table = metric_table("attributes", class_inputs(tmp / "ig.h5", tmp), tmp / "ig.csv", regions=config["regions"],
                         attribute_regions=config["attribute_regions"], settings=settings)
    np.testing.assert_allclose(table["completeness_error"], error)
    summary = summarise(table, ["model", "method"], n_resamples=50).iloc[0]
    assert summary["n_completeness_flagged"] == 2 and summary["completeness_error_n_valid"] == 5


def test_rank_based_metrics_ignore_a_strictly_increasing_transform(tmp_path):
    """Every metric the registry calls rank-based gives the same value for a non-negative map a and
    for f(a), f strictly increasing with f(0) = 0 (a^3, sqrt(a), a + a^2: a pixel without mass keeps
    none); the metrics that read the mass (RP) do not, so the comparison can fail. A third of the
    pixels are 0 (as ReLU maps have), the others on a grid of 1/64 in [1, 2), with ties: they stay
    distinct and ordered through each f and the float16 store. Labels at the model's resolution: a
    bilinear resize to another resolution mixes neighbouring values, which a non-linear f does not
    commute with (docs/definitions.md)."""
    tmp, config, settings = make_tiny_inputs(tmp_path, label_size=16)
    settings = {**settings, "sanity": {"stages": 1, "max_samples": 1, "smooth": {"samples": 0}}}
    rng = np.random.default_rng(11)
    base = np.where(rng.random((6, 16, 16)) < 1 / 3, 0.0, 1 + rng.integers(0, 64, (6, 16, 16)) / 64)

    def table_of(maps, name):
        make_shard(tmp / f"{name}.h5", maps, method="gradcam", model="m", score=np.full(6, 0.7))
        return metric_table("attributes", class_inputs(tmp / f"{name}.h5", tmp), tmp / f"{name}.csv",
                            regions=config["regions"], attribute_regions=config["attribute_regions"],
                            settings=settings)

    reference = table_of(base, "base")
    compared = [m for m in registry.rank_based() if m in reference]
    assert {"recall", "pointing", "auc", "deletion_auc", "road_gap", "falsified_sized"} <= set(compared)
    assert "rp" not in registry.rank_based() and "falsified" not in registry.rank_based()
    for name, f in (("cube", np.power(base, 3)), ("root", np.sqrt(base)), ("a + a^2", base + base ** 2)):
        other = table_of(f, name)
        for metric in compared:
            np.testing.assert_allclose(other[metric].to_numpy(float), reference[metric].to_numpy(float),
                                       rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=f"{metric} under {name}")
        assert not np.allclose(other["rp"], reference["rp"], equal_nan=True)  # the mass moved: RP reads it


def test_an_empty_shard_is_explained_and_scored_without_a_row(tiny_inputs):
    """More shards than test samples (or no positive decision in a shard): an attribution file and
    a metric table with their columns and no row, not a crash."""
    from facexai.attributions.run import explain_shard
    from facexai.attributions.store import read_shard

    tmp, config, settings = tiny_inputs
    inputs = {"data": tmp / "d.h5", "split": tmp / "split.tsv", "meta": tmp / "model" / META}
    sizes = [explain_shard("attributes", inputs, tmp / f"e{s}.h5", name="m", method="random", params={}, shard=s,
                           n_shards=3, selection={"attributes": ["Eyeglasses"]}, progress=False) for s in range(3)]
    assert sizes == [1, 1, 0]   # 2 test samples in 3 shards
    assert len(read_shard(tmp / "e2.h5")) == 0
    table = metric_table("attributes", {"attributions": tmp / "e2.h5", **inputs}, tmp / "e2.csv",
                         regions=config["regions"], attribute_regions=config["attribute_regions"], settings=settings)
    assert len(table) == 0 and {"rp", "lift", "degenerate"} <= set(pd.read_csv(tmp / "e2.csv").columns)
