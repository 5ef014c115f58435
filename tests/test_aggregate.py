import numpy as np
import pandas as pd
import pytest

from facexai.aggregate import bootstrap_mean_ci, cluster_bootstrap_mean_ci, summarise


def test_bootstrap_ci_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 200
    for k in range(trials):
        draws = rng.normal(1.0, 2.0, 60)
        low, high = bootstrap_mean_ci(draws, 1000, seed=k)
        hits += low <= 1.0 <= high
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_is_seeded_and_undefined_below_two_values():
    x = np.arange(10.0)
    assert bootstrap_mean_ci(x, 500, 3) == bootstrap_mean_ci(x, 500, 3)
    assert all(np.isnan(bootstrap_mean_ci(np.array([1.0]), 500, 3)))


def test_summary_counts_degenerate_rows_and_ignores_their_nan():
    table = pd.DataFrame({
        "model": "m", "method": "g", "attribute": "Smiling", "region": "mouth", "id": [1, 2, 3, 4],
        "rp": [0.2, 0.4, np.nan, 0.6], "lift": [2.0, 4.0, np.nan, 6.0],
        "degenerate": ["", "", "zero_map", np.nan]})
    s = summarise(table, ["model", "method", "region"], n_resamples=200, seed=0).iloc[0]
    assert s["n"] == 4 and s["n_degenerate"] == 1 and s["n_images"] == 4 and s["unit"] == "image"
    assert s["rp_n_valid"] == 3 and s["rp_mean"] == pytest.approx(0.4) and s["rp_median"] == pytest.approx(0.4)
    assert s["rp_ci_low"] <= 0.4 <= s["rp_ci_high"]


def test_cluster_bootstrap_with_one_row_per_image_is_the_row_bootstrap():
    x = np.random.default_rng(1).normal(size=30)
    assert cluster_bootstrap_mean_ci(x, np.arange(30), 500, 7) == bootstrap_mean_ci(x, 500, 7)
    assert all(np.isnan(cluster_bootstrap_mean_ci(np.array([1.0, 2.0]), np.array([5, 5]), 500, 7)))


def test_the_unit_is_the_image_not_the_row():
    # every image explained for 4 attributes with the same value: 4 rows carry one image's information,
    # so the CI must be that of the 20 images, not of 80 independent rows
    values = np.random.default_rng(2).normal(size=20)
    rows = pd.DataFrame({"model": "m", "method": "g", "region": "mouth", "id": np.repeat(np.arange(20), 4),
                         "attribute": np.tile(["A", "B", "C", "D"], 20), "rp": np.repeat(values, 4),
                         "degenerate": ""})
    s = summarise(rows, ["model", "method", "region"], n_resamples=2000, seed=0).iloc[0]
    one = summarise(rows.drop_duplicates("id"), ["model", "method", "region"], n_resamples=2000, seed=0).iloc[0]
    assert s["n"] == 80 and s["n_images"] == 20
    assert (s["rp_ci_low"], s["rp_ci_high"]) == pytest.approx((one["rp_ci_low"], one["rp_ci_high"]))
    naive = bootstrap_mean_ci(rows["rp"].to_numpy(), 2000, 0)
    assert naive[1] - naive[0] < 0.6 * (s["rp_ci_high"] - s["rp_ci_low"])  # rows would claim ~half the width


def test_cluster_bootstrap_covers_the_true_mean_under_clustering():
    rng = np.random.default_rng(3)
    hits = 0
    for t in range(150):
        image_effect = rng.normal(0, 1, 30)
        values = np.repeat(image_effect, 4) + rng.normal(0, 0.2, 120)  # 4 correlated decisions per image
        low, high = cluster_bootstrap_mean_ci(values, np.repeat(np.arange(30), 4), 500, t)
        hits += low <= 0.0 <= high
    assert 0.88 <= hits / 150 <= 0.99
