import numpy as np
import pytest

from facexai.attributions.store import make_shard
from facexai.metrics.localisation import (chance_level, degenerate_reason, lift, positive_part,
                                          regional_precision, resize_maps)


def test_hand_computed_case():
    # 2x2 map, region = left column; positive mass 3 + 1 inside, 0 + 4 outside (the -2 is clipped)
    maps = np.array([[[3.0, -2.0], [1.0, 4.0]]])
    region = np.array([[[True, False], [True, False]]])
    rp = regional_precision(maps, region)
    assert rp[0] == pytest.approx(4 / 8)
    assert chance_level(region)[0] == pytest.approx(0.5)
    assert lift(rp, chance_level(region))[0] == pytest.approx(1.0)
    # absolute mass counts the -2: (3 + 1) / (3 + 2 + 1 + 4)
    assert regional_precision(maps, region, "absolute")[0] == pytest.approx(0.4)


def test_map_equal_to_region_gives_one_and_complement_zero():
    rng = np.random.default_rng(0)
    regions = rng.random((5, 16, 16)) < 0.3
    assert np.allclose(regional_precision(regions.astype(float), regions), 1.0)
    assert np.allclose(regional_precision((~regions).astype(float), regions), 0.0)
    chance = chance_level(regions)
    assert np.allclose(lift(regional_precision(regions.astype(float), regions), chance), 1 / chance)


def test_uniform_map_gives_chance_and_lift_one():
    rng = np.random.default_rng(1)
    regions = rng.random((4, 10, 12)) < rng.random((4, 1, 1))
    rp = regional_precision(np.full(regions.shape, 0.3), regions)
    assert np.allclose(rp, regions.mean(axis=(1, 2)))
    assert np.allclose(lift(rp, chance_level(regions)), 1.0)


def test_batch_order_does_not_matter():
    rng = np.random.default_rng(2)
    maps, regions = rng.normal(size=(6, 8, 8)), rng.random((6, 8, 8)) < 0.4
    perm = rng.permutation(6)
    assert np.allclose(regional_precision(maps, regions)[perm], regional_precision(maps[perm], regions[perm]))


def test_degenerate_cases_are_nan_and_named():
    maps = np.stack([np.zeros((4, 4)), -np.ones((4, 4)), np.ones((4, 4)), np.ones((4, 4))])
    maps[3, 0, 0] = np.nan
    regions = np.ones((4, 4, 4), bool)
    regions[2] = False
    rp = regional_precision(maps, regions)
    ch = chance_level(regions)
    assert np.isnan(rp[0]) and np.isnan(rp[1]) and np.isnan(rp[3])  # no positive mass / not finite
    assert np.isnan(rp[2]) and np.isnan(lift(rp, ch)[2])             # empty region: undefined
    assert list(degenerate_reason(maps, regions)) == ["zero_map", "zero_map", "empty_region", "nonfinite_map"]


def test_positive_part_modes():
    a = np.array([-1.0, 2.0])
    assert list(positive_part(a)) == [0.0, 2.0]
    assert list(positive_part(a, "absolute")) == [1.0, 2.0]
    with pytest.raises(ValueError, match="metrics.mass"):
        positive_part(a, "squared")


def test_resize_keeps_constant_maps_and_mass_location():
    maps = np.zeros((1, 4, 4), np.float32)
    maps[0, :, :2] = 1.0
    big = resize_maps(maps, 16)
    assert big.shape == (1, 16, 16)
    assert np.allclose(big[0, :, :6], 1.0) and np.allclose(big[0, :, 10:], 0.0)
    assert np.allclose(resize_maps(np.full((2, 3, 3), 0.7), 9), 0.7)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"must both be \(N, H, W\)"):
        regional_precision(np.zeros((2, 4, 4)), np.zeros((2, 8, 8), bool))


def test_negative_mode_counts_the_dissimilarity_part():
    maps = np.array([[[3.0, -2.0], [-1.0, 4.0]]])
    region = np.array([[[False, True], [False, False]]])
    assert regional_precision(maps, region, "negative")[0] == pytest.approx(2 / 3)
    assert regional_precision(maps, region, "positive")[0] == pytest.approx(0.0)


TINY_SETTINGS = {"mass": "positive", "q": 10, "pointing_tolerance": 0, "batch_size": 64,
                 "deletion": {"steps": 2, "baseline": "black"}, "road": {"percentages": [50], "noise": 0.0},
                 "occlusion": {"fill": "blur"},
                 "falsification": {"k": 2, "high": 0.7, "low": 0.3, "fraction": 0.5, "q": 10},
                 "sanity": {"stages": 1, "max_samples": 1}}


def test_pair_metrics_on_a_hand_made_file(tmp_path):
    import json

    import h5py
    import torch

    from facexai.labels import CLASS_INDEX, DEFAULT_REGIONS
    from facexai.metrics.run import metric_table
    from facexai.models.backbones import build_model

    labels = np.zeros((3, 4, 4), np.uint8)
    labels[1, 0, :2] = CLASS_INDEX["hat"]   # the partner wears a hat, the photo does not
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["labels"] = labels
        h5["images"] = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
        h5.attrs["mask_size"] = 4
    maps = np.zeros((2, 16, 16), np.float16)
    maps[0, 0:4, 0:8] = -1.0   # dissimilarity exactly where the hat is in the partner (label rows 0, cols 0-1)
    maps[0, 12:, 12:] = 2.0    # similarity elsewhere
    maps[1] = np.linspace(0, 1, 256).reshape(16, 16)   # a genuine pair: no region, mask metrics undefined
    make_shard(tmp_path / "a.h5", maps, method="random", model="embedder", row=[0, 2], partner_row=[1, 0],
               ids=[10, 12], partner_id=[11, 10], kind=["region", "genuine"], region=["hat", ""], score=[0.9, 0.8])
    embedder = tmp_path / "embedder"
    embedder.mkdir()
    torch.manual_seed(0)
    torch.save(build_model("resnet_small", 8, width=8).state_dict(), embedder / "weights.pt")
    (embedder / "model.json").write_text(json.dumps({"arch": "resnet_small", "dim": 8, "width": 8}))
    (tmp_path / "eer.json").write_text(json.dumps({"threshold": 0.5}))
    inputs = {"attributions": tmp_path / "a.h5", "data": tmp_path / "d.h5", "meta": embedder / "model.json",
              "eer": tmp_path / "eer.json"}
    table = metric_table("pairs", inputs, tmp_path / "out.csv",
                         regions={k: list(v) for k, v in DEFAULT_REGIONS.items()}, settings=TINY_SETTINGS)
    assert len(table) == 2 and list(table["kind"]) == ["region", "genuine"]
    row = table.iloc[0]
    assert row["rp_dissimilarity"] == pytest.approx(1.0) and row["rp"] == pytest.approx(0.0)
    assert row["chance"] == pytest.approx(2 / 16) and row["lift_dissimilarity"] == pytest.approx(8.0)
    genuine = table.iloc[1]
    assert np.isnan(genuine["rp"]) and genuine["degenerate"] == "not_a_region_pair"
    assert np.isnan(genuine["drop_subject"]) and np.isfinite(genuine["deletion_accuracy_auc"])
    assert list(table["perturbation_degenerate"].fillna("")) == ["", ""]
