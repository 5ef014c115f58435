import math

import numpy as np
import pytest

from facexai.metrics.localisation import chance_level, regional_precision
from facexai.metrics.topq import (mask_metrics, pointing_game, region_auc, regional_recall, relevance_rank_accuracy,
                                  spatial_coherence, top_count, topq_iou)


def _blobs(rng, n, size):
    """Random blob regions, each non-empty and not the whole image."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size), bool)
    for i in range(n):
        cy, cx, r = rng.uniform(0.2 * size, 0.8 * size, 2).tolist() + [rng.uniform(0.1, 0.3) * size]
        out[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    return out


# --- hand-computed cases -------------------------------------------------------------------------

# 4x4 map with values 1..16 (16 at the bottom right), region = the right column
MAP = np.arange(1, 17, dtype=float).reshape(1, 4, 4)
REGION = np.zeros((1, 4, 4), bool)
REGION[0, :, 3] = True


def test_recall_iou_and_rank_accuracy_by_hand():
    # top 25% = the 4 highest pixels 13..16 = the bottom row; it meets the right column in 1 pixel (16)
    assert top_count(25, 16) == 4
    assert regional_recall(MAP, REGION, q=25)[0] == pytest.approx(1 / 4)
    assert topq_iou(MAP, REGION, q=25)[0] == pytest.approx(1 / (4 + 4 - 1))
    # |R| = 4: the same top 4 pixels, so rank accuracy = 1/4
    assert relevance_rank_accuracy(MAP, REGION)[0] == pytest.approx(1 / 4)
    # top 50% = pixels 9..16 (two bottom rows): 2 of them in the column
    assert regional_recall(MAP, REGION, q=50)[0] == pytest.approx(2 / 4)


def test_pointing_game_by_hand_with_tolerance():
    region = np.zeros((1, 4, 4), bool)
    region[0, 0, 0] = True
    assert pointing_game(MAP, REGION)[0] == 1.0             # 16 sits in the right column
    assert pointing_game(MAP, region)[0] == 0.0             # maximum at (3, 3), region at (0, 0)
    assert pointing_game(MAP, region, tolerance=4.0)[0] == 0.0  # distance sqrt(18) = 4.24
    assert pointing_game(MAP, region, tolerance=4.3)[0] == 1.0


def test_spatial_coherence_by_hand():
    a = np.zeros((1, 5, 5))
    a[0, 0, 0] = a[0, 0, 1] = 3.0            # one component of 2 pixels
    a[0, 4, 4] = 2.0                          # a second one, diagonal neighbours count as connected:
    a[0, 3, 3] = 2.0                          # (3,3)-(4,4) form one 8-connected component
    n, share = spatial_coherence(a, q=16)     # k = 4 pixels
    assert n[0] == 2 and share[0] == pytest.approx(0.5)


def test_region_auc_by_hand():
    # region values {4, 2}, outside {3, 1, 2}: pairs (in > out) = 4>3,4>1,4>2, 2>1, tie 2=2 -> (4 + 0.5) / 6
    a = np.array([[[4.0, 2.0, 3.0, 1.0, 2.0]]])
    r = np.array([[[True, True, False, False, False]]])
    assert region_auc(a, r)[0] == pytest.approx(4.5 / 6)


def test_ties_are_broken_on_average():
    # map: 2 pixels at 5, then 6 pixels tied at 1; top 4 = both 5s + 2 of the 6 tied pixels.
    a = np.array([[[5, 5, 1, 1, 1, 1, 1, 1]]], float)
    r = np.array([[[True, False, True, True, True, False, False, False]]])
    # expected hits = 1 (a 5 in R) + 2 * (3 of the 6 tied pixels are in R) / 6 = 2
    assert regional_recall(a, r, q=50)[0] == pytest.approx(2 / 4)


# --- properties ----------------------------------------------------------------------------------

def test_map_equal_to_region_is_perfect():
    rng = np.random.default_rng(0)
    regions = _blobs(rng, 6, 32)
    maps = regions.astype(float)
    assert np.allclose(regional_precision(maps, regions), 1)
    assert np.allclose(relevance_rank_accuracy(maps, regions), 1)
    assert np.allclose(pointing_game(maps, regions), 1)
    assert np.allclose(region_auc(maps, regions), 1)
    # recall = 1 once top_q is at least as large as the region
    q = 100 * regions.sum(axis=(1, 2)).max() / 32 ** 2 + 1
    assert np.allclose(regional_recall(maps, regions, q=q), 1)


def test_map_on_the_complement_scores_zero():
    rng = np.random.default_rng(1)
    regions = _blobs(rng, 6, 32)
    maps = (~regions).astype(float)
    for values in (regional_precision(maps, regions), regional_recall(maps, regions), topq_iou(maps, regions),
                   relevance_rank_accuracy(maps, regions), pointing_game(maps, regions), region_auc(maps, regions)):
        assert np.allclose(values, 0)


def test_uniform_map_scores_chance():
    rng = np.random.default_rng(2)
    regions = _blobs(rng, 5, 40)
    maps = np.full(regions.shape, 0.25)
    chance = chance_level(regions)
    assert np.allclose(regional_recall(maps, regions, q=20), top_count(20, 1600) / 1600)
    assert np.allclose(relevance_rank_accuracy(maps, regions), chance)
    assert np.allclose(pointing_game(maps, regions), chance)
    assert np.allclose(region_auc(maps, regions), 0.5)


def test_batch_order_does_not_matter():
    rng = np.random.default_rng(3)
    maps, regions = rng.normal(size=(7, 24, 24)), _blobs(rng, 7, 24)
    perm = rng.permutation(7)
    a, b = mask_metrics(maps, regions, q=15, tolerance=2), mask_metrics(maps[perm], regions[perm], q=15, tolerance=2)
    for name, values in a.items():
        if name != "degenerate":
            np.testing.assert_array_equal(values[perm], b[name])


def test_chunking_does_not_change_values():
    rng = np.random.default_rng(4)
    maps, regions = rng.random((9, 8, 8)).astype(np.float32), _blobs(rng, 9, 32)
    a, b = mask_metrics(maps, regions, chunk=2), mask_metrics(maps, regions, chunk=64)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_degenerate_rows_are_nan_never_zero_or_one():
    maps = np.stack([np.zeros((8, 8)), -np.ones((8, 8)), np.ones((8, 8)), np.ones((8, 8))])
    maps[3, 0, 0] = np.inf
    regions = np.ones((4, 8, 8), bool)
    regions[:, :4] = False
    regions[2] = False
    out = mask_metrics(maps, regions)
    assert list(out["degenerate"]) == ["zero_map", "zero_map", "empty_region", "nonfinite_map"]
    for name in ("rp", "lift", "recall", "iou", "rank_accuracy", "pointing", "auc"):
        assert np.isnan(out[name]).all(), name
    assert np.isnan(out["components"][[0, 1, 3]]).all() and out["components"][2] == 1


def test_bad_parameters_are_clear_errors():
    with pytest.raises(ValueError, match="percentage"):
        regional_recall(MAP, REGION, q=0)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(MAP, REGION, tolerance=-1)


# --- cross-check against Quantus 0.6 ---------------------------------------------------------------

def test_cross_check_against_quantus():
    """Where definitions coincide, equal to Quantus to 1e-6 on random continuous maps (no ties)."""
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(5)
    n, size = 12, 48
    maps = rng.random((n, size, size))
    maps[:, 20:30, 20:30] += rng.random((n, 1, 1))      # some maps with mass concentrated somewhere
    regions = _blobs(rng, n, size)

    rma = quantus.RelevanceMassAccuracy(disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=regions)
    np.testing.assert_allclose(regional_precision(maps, regions), rma, atol=1e-6)

    rra = quantus.RelevanceRankAccuracy(disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=regions)
    np.testing.assert_allclose(relevance_rank_accuracy(maps, regions), rra, atol=1e-6)

    pg = quantus.PointingGame(disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=regions)
    np.testing.assert_allclose(pointing_game(maps, regions), np.asarray(pg, float), atol=1e-6)

    # Quantus' TopKIntersection is |top_k ∩ R| / k; our recall is |top_k ∩ R| / |R|
    q = 10
    k = top_count(q, size * size)
    tki = quantus.TopKIntersection(k=k, disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=regions)
    recall = regional_recall(maps, regions, q=q)
    np.testing.assert_allclose(recall * regions.sum(axis=(1, 2)) / k, tki, atol=1e-6)

    auc = quantus.AUC(disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=regions)
    np.testing.assert_allclose(region_auc(maps, regions), auc, atol=1e-6)
    assert math.isfinite(float(np.sum(auc)))


@pytest.mark.parametrize("mode,tolerance", [("positive", 0.0), ("absolute", 2.0), ("negative", 0.0)])
def test_fused_mask_metrics_equal_the_public_functions(mode, tolerance):
    """mask_metrics (one sort per row, threads) against the one-metric-at-a-time definitions, on maps
    with many ties (float16 values, zeroed blocks) and at another resolution than the regions."""
    from facexai.metrics.localisation import lift, resize_maps

    rng = np.random.default_rng(7)
    maps = np.round(rng.normal(size=(9, 12, 12)), 1).astype(np.float16)
    maps[2, :6] = 0
    maps[3] = 0
    regions = _blobs(rng, 9, 36)
    regions[4] = False
    out = mask_metrics(maps, regions, q=15, tolerance=tolerance, mode=mode, chunk=4)
    big = resize_maps(maps.astype(np.float32), 36)
    rp = regional_precision(big, regions, mode)
    expected = {"rp": rp, "chance": chance_level(regions), "lift": lift(rp, chance_level(regions)),
                "recall": regional_recall(big, regions, 15, mode), "iou": topq_iou(big, regions, 15, mode),
                "rank_accuracy": relevance_rank_accuracy(big, regions, mode),
                "pointing": pointing_game(big, regions, tolerance, mode), "auc": region_auc(big, regions, mode)}
    expected["components"], expected["largest_share"] = spatial_coherence(big, 15, mode)
    for name, values in expected.items():
        np.testing.assert_allclose(out[name], values, rtol=1e-6, atol=1e-9, err_msg=name)


def test_region_auc_on_a_region_covering_the_image_names_its_reason():
    maps = np.random.default_rng(9).random((2, 8, 8))
    regions = np.ones((2, 8, 8), bool)
    regions[1, 0, 0] = False
    out = mask_metrics(maps, regions, q=10)
    assert np.isnan(out["auc"][0]) and out["auc_degenerate"][0] == "region_covers_image"
    assert out["rp"][0] == pytest.approx(1.0) and out["degenerate"][0] == ""   # the rest stays defined
    assert np.isfinite(out["auc"][1]) and out["auc_degenerate"][1] == ""


def test_a_map_with_minus_infinity_is_nonfinite_not_without_mass():
    """-inf has no positive part, but the map is broken: NaN with `nonfinite_map`, not `zero_map` (which
    the pair verdicts score as a uniform map)."""
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 0, 0] = -np.inf
    maps[1, 1, 1] = 1.0
    maps[1, 2, 2] = -np.inf  # finite positive mass elsewhere: still broken
    regions = np.zeros((2, 4, 4), bool)
    regions[:, 1:3, 1:3] = True
    out = mask_metrics(maps, regions)
    assert list(out["degenerate"]) == ["nonfinite_map", "nonfinite_map"] and np.isnan(out["rp"]).all()
