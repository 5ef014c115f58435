import numpy as np
import pandas as pd
import pytest

from facexai.aggregate import bootstrap_mean_ci, summarise


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
        "model": "m", "method": "g", "attribute": "Smiling", "region": "mouth",
        "rp": [0.2, 0.4, np.nan, 0.6], "lift": [2.0, 4.0, np.nan, 6.0],
        "degenerate": ["", "", "zero_map", np.nan]})
    s = summarise(table, ["model", "method", "region"], n_resamples=200, seed=0).iloc[0]
    assert s["n"] == 4 and s["n_degenerate"] == 1
    assert s["rp_n_valid"] == 3 and s["rp_mean"] == pytest.approx(0.4) and s["rp_median"] == pytest.approx(0.4)
    assert s["rp_ci_low"] <= 0.4 <= s["rp_ci_high"]
