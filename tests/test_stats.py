import numpy as np
import pandas as pd
import pytest
from scipy import stats

from facexai.aggregate import bootstrap_mean_ci
from facexai.stats import (beats_random, bootstrap_correlation, fr_vs_rp, holm, method_comparisons,
                           paired_wilcoxon)


def test_holm_on_a_known_case():
    # p sorted: 0.01, 0.02, 0.03, 0.04 with m = 4 -> 0.04, 0.06, 0.06 (monotone), 0.06
    np.testing.assert_allclose(holm([0.03, 0.01, 0.04, 0.02]), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])          # capped at 1
    out = holm([0.01, np.nan, 0.04])                                   # NaN is not in the family
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.04)


def test_paired_wilcoxon_equals_scipy_and_drops_nan_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 1, 40), rng.normal(0, 1, 40)
    a[3] = np.nan
    res = paired_wilcoxon(a, b, "greater")
    ref = stats.wilcoxon(np.delete(a, 3) - np.delete(b, 3), alternative="greater")
    assert res["n_pairs"] == 39 and res["n_dropped"] == 1
    assert res["p"] == pytest.approx(ref.pvalue) and res["statistic"] == pytest.approx(ref.statistic)
    same = paired_wilcoxon(np.ones(5), np.ones(5))
    assert same["p"] == 1.0 and same["median_difference"] == 0
    assert np.isnan(paired_wilcoxon([np.nan], [1.0])["p"])


def _table(rng, n=30):
    rows = []
    for model in ("m1", "m2"):
        for i in range(n):
            truth = rng.random()
            for method, rp in (("good", truth * 0.5 + 0.5), ("random", rng.random() * 0.3),
                               ("bad", rng.random() * 0.3)):
                fal = float(rng.random() < (0.1 if method == "good" else 0.5))
                rows.append({"model": model, "method": method, "id": i, "attribute": "A", "rp": rp,
                             "falsified": fal, "falsified_sized": fal})
    return pd.DataFrame(rows)


def test_comparisons_pair_rows_by_sample_whatever_the_row_order():
    rng = np.random.default_rng(1)
    table = _table(rng)
    shuffled = table.sample(frac=1, random_state=0)
    a, b = method_comparisons(table, ["rp"]), method_comparisons(shuffled, ["rp"])
    pd.testing.assert_frame_equal(a, b)
    row = a[(a.model == "m1") & (a.method_a == "bad") & (a.method_b == "good")].iloc[0]
    sub = table[table.model == "m1"]
    ref = stats.wilcoxon(sub[sub.method == "bad"]["rp"].to_numpy() - sub[sub.method == "good"]["rp"].to_numpy())
    assert row["p"] == pytest.approx(ref.pvalue) and row["n_images"] == 30 and row["unit"] == "image"
    assert len(a) == 2 * 3 and (a["p_holm"] >= a["p"]).all()


def test_beats_random_verdicts():
    rng = np.random.default_rng(2)
    out = beats_random(_table(rng), ["rp", "falsified"])
    good = out[(out.method == "good") & (out.metric == "rp")]
    bad = out[(out.method == "bad") & (out.metric == "rp")]
    assert good["beats_random"].all() and not bad["beats_random"].any()
    assert (out[out.metric == "falsified"]["direction"] == "lower").all()


def test_bootstrap_correlation_equals_scipy_with_a_sensible_ci():
    rng = np.random.default_rng(3)
    x = rng.normal(size=25)
    y = 0.7 * x + rng.normal(scale=0.5, size=25)
    out = bootstrap_correlation(x, y, n_resamples=2000, seed=0)
    assert out["pearson"] == pytest.approx(stats.pearsonr(x, y)[0])
    assert out["spearman"] == pytest.approx(stats.spearmanr(x, y)[0])
    for name in ("pearson", "spearman"):
        assert out[f"{name}_ci_low"] < out[name] < out[f"{name}_ci_high"]
    assert np.isnan(bootstrap_correlation([1, 2], [3, 4])["pearson"])     # too few points


def test_fr_vs_rp_points_and_undefined_counts():
    rng = np.random.default_rng(4)
    table = _table(rng)
    table.loc[0, "falsified"] = np.nan
    points, corr = fr_vs_rp(table, n_resamples=200)
    assert len(points) == 6 and corr["fr"]["n_points"] == 6 and corr["fr_sized"]["n_points"] == 6
    first = points[(points.model == "m1") & (points.method == "good")].iloc[0]
    assert first["fr_n_undefined"] == 1 and first["fr_n"] == 29 and first["fr_sized_n"] == 30
    # good maps: high RP, low FR -> the correlation across points is negative here
    assert corr["fr"]["spearman"] < 0 and corr["fr_sized"]["spearman"] < 0


def test_paired_tests_are_by_image_not_by_row():
    # 12 images, each explained for 4 attributes with the same small advantage of method a: by rows
    # there would be 48 pairs and a tiny p; by image, 12 differences
    rng = np.random.default_rng(6)
    rows = []
    for i in range(12):
        base, edge = rng.random(), rng.normal(0.02, 0.05)
        for attribute in "ABCD":
            rows += [{"model": "m", "method": "a", "id": i, "attribute": attribute, "rp": base + edge},
                     {"model": "m", "method": "random", "id": i, "attribute": attribute, "rp": base}]
    table = pd.DataFrame(rows)
    row = method_comparisons(table, ["rp"]).iloc[0]
    per_image = table.groupby(["method", "id"])["rp"].mean().unstack(0)
    ref = stats.wilcoxon(per_image["a"] - per_image["random"])
    assert row["n_images"] == 12 and row["n_rows"] == 48 and row["p"] == pytest.approx(ref.pvalue)
    a, r = (table[table.method == m]["rp"].to_numpy() for m in ("a", "random"))
    by_rows = stats.wilcoxon(a - r)
    assert by_rows.pvalue < row["p"]       # what pairing rows would have claimed
    verdict = beats_random(table, ["rp"]).iloc[0]
    assert verdict["n_images"] == 12 and verdict["unit"] == "image"


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    hits, trials = 0, 400
    for t in range(trials):
        draws = rng.exponential(1.0, 60)     # skewed, true mean 1
        low, high = bootstrap_mean_ci(draws, 500, seed=t)
        hits += low <= 1.0 <= high
    # the percentile bootstrap under-covers slightly for skewed data at n = 60; 400 trials give a
    # standard error of about 1.1 points
    assert 0.90 <= hits / trials <= 0.975
