import numpy as np
import pandas as pd
import pytest
from scipy import stats

from facexai.aggregate import bootstrap_mean_ci
from facexai.stats import (beats_random, fr_vs_rp, holm, image_bootstrap_correlation, method_comparisons,
                           paired_wilcoxon, best_adjusted_p)


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
    out = beats_random(_table(rng), ["rp", "falsified_sized"])
    good = out[(out.method == "good") & (out.metric == "rp")]
    bad = out[(out.method == "bad") & (out.metric == "rp")]
    assert good["beats_random"].all() and not bad["beats_random"].any()
    assert (good["verdict_random"] == "beats").all() and (bad["verdict_random"] == "does not beat").all()
    assert (out[out.metric == "falsified_sized"]["direction"] == "lower").all()


def _always_better(n_images, n_methods):
    """Every method beats random on every image by a margin that differs per image."""
    rows = []
    for i in range(n_images):
        rows.append({"model": "m", "method": "random", "id": i, "attribute": "A", "rp": 0.1})
        for k in range(n_methods):
            rows.append({"model": "m", "method": f"m{k:02d}", "id": i, "attribute": "A", "rp": 0.2 + 0.01 * i})
    return pd.DataFrame(rows)


def test_best_attainable_adjusted_p_by_hand():
    # a family of 40 tests at p = 1/256 (8 images, all favourable): each could at best reach
    # 1/256 too, which Holm's first step multiplies by 40: 0.156
    assert np.allclose(best_adjusted_p(np.full(40, 1 / 256), np.full(40, 1 / 256)), 40 / 256)
    # Holm's step-down: a weak test (best 2^-5) in a family whose 9 others are overwhelming is
    # adjusted by 1 at the last step, so it can pass: not untestable
    p = np.array([2.0 ** -40] * 9 + [0.5])
    assert best_adjusted_p(p, np.array([2.0 ** -40] * 9 + [2.0 ** -5]))[-1] == pytest.approx(2.0 ** -5)
    assert np.isnan(best_adjusted_p([np.nan, 0.01], [np.nan, 0.01])[0])


def test_the_best_attainable_p_is_scipys_own_with_ties_and_zeros():
    """With a zero or tied differences scipy leaves the exact test (at 13 here) for the normal
    approximation, whose best p is far above 2^-n: the bound comes from scipy itself."""
    d = np.concatenate([np.arange(1, 14) * 0.1, [0.0]])        # 13 non-zero, one zero
    res = paired_wilcoxon(d, np.zeros_like(d), "two-sided")
    best = stats.wilcoxon(np.abs(d), alternative="two-sided", zero_method="wilcox").pvalue
    assert res["p_best"] == pytest.approx(best) and best > 4 * 2.0 ** -12
    flipped = d.copy()
    flipped[:3] *= -1                                           # some differences the wrong way
    res = paired_wilcoxon(flipped, np.zeros_like(d), "greater")
    assert res["p_best"] == pytest.approx(stats.wilcoxon(np.abs(d), alternative="greater",
                                                         zero_method="wilcox").pvalue)
    assert res["p_best"] < res["p"]


def test_a_verdict_that_cannot_pass_is_untestable_not_does_not_beat():
    # docs/study.md's sMPRT: 8 images inside a Holm family of 40: even 8 wins out of 8 cannot pass
    out = beats_random(_always_better(8, 40), ["rp"])
    assert len(out) == 40 and np.allclose(out["p"], 1 / 256)
    assert (out["p_holm"] > 0.05).all() and not out["beats_random"].any()
    assert (out["verdict_random"] == "untestable").all()
    assert np.allclose(out["min_p_holm"], 40 / 256) and (out["n_nonzero"] == 8).all()
    assert np.allclose(out["p_best"], 1 / 256)
    # the same wins on 12 images are testable, and pass
    out = beats_random(_always_better(12, 40), ["rp"])
    assert (out["verdict_random"] == "beats").all() and out["beats_random"].all()
    # a testable n where the method is no better: does not beat
    table = _always_better(12, 1)
    table.loc[table.method == "m00", "rp"] = 0.1 + np.where(np.arange(12) % 2, 0.01, -0.01)
    assert beats_random(table, ["rp"]).iloc[0]["verdict_random"] == "does not beat"
    # two-sided method comparison of 5 images: 2/32 > 0.05 whatever the maps do
    table = _always_better(5, 1)
    row = method_comparisons(table, ["rp"]).iloc[0]
    assert row["verdict"] == "untestable" and row["min_p_holm"] == pytest.approx(2 / 32)
    # the reviewer's case: 13 images perfectly separated and one tie, a family of 63 comparisons:
    # p_holm 0.093 is the best these differences allow, so untestable, not "no difference found"
    rows = [{"model": model, "method": f"m{k}", "id": i, "attribute": "A",
             "rp": 0.5 if i == 13 else 0.01 * (k + 1) * (i + 1)}
            for model in ("a", "b", "c") for k in range(7) for i in range(14)]
    out = method_comparisons(pd.DataFrame(rows), ["rp"])
    assert len(out) == 63 and (out["p_holm"] > 0.05).all()
    assert (out["verdict"] == "untestable").all() and (out["min_p_holm"] >= 0.05).all()
    assert (63 * 2.0 ** -12 < 0.05)                          # the 2^-n bound would have called it testable


def test_fr_vs_rp_points_and_undefined_counts():
    rng = np.random.default_rng(4)
    table = _table(rng)
    table.loc[0, "falsified"] = np.nan
    points, corr = fr_vs_rp(table, n_resamples=200)
    assert len(points) == 6 and corr["fr"]["all"]["n_points"] == 6 and corr["fr_sized"]["all"]["n_points"] == 6
    assert corr["fr_sized"]["methods"]["n_points"] == 4  # random is model-free: not a headline point
    first = points[(points.model == "m1") & (points.method == "good")].iloc[0]
    assert first["fr_n_undefined"] == 1 and first["fr_n"] == 29 and first["fr_sized_n"] == 30
    # good maps: high RP, low FR -> the correlation across points is negative here
    assert corr["fr"]["all"]["spearman"] < 0 and corr["fr_sized"]["all"]["spearman"] < 0


def _baseline_carried(rng, n=40):
    """Attribution methods whose FR does not follow their RP, and a random baseline far away."""
    rows = []
    for model in ("m1", "m2", "m3"):
        for i in range(n):
            fal = float(rng.random() < 0.4)  # one verdict per image, shared by the methods: FR ignores RP
            for k, method in enumerate(("a", "b", "c", "d")):
                rp = 0.4 + 0.05 * k + rng.normal(0, 0.05)
                rows.append({"model": model, "method": method, "budget": "1 pass", "id": i, "attribute": "A",
                             "rp": rp, "falsified_sized": fal, "falsified": fal})
            rows.append({"model": model, "method": "random", "budget": "model-free", "id": i, "attribute": "A",
                         "rp": 0.05 + rng.normal(0, 0.01), "falsified_sized": float(rng.random() < 0.9),
                         "falsified": 1.0})
    return pd.DataFrame(rows)


def test_fr_vs_rp_headline_leaves_the_baselines_out():
    points, corr = fr_vs_rp(_baseline_carried(np.random.default_rng(7)), n_resamples=300)
    assert set(points.loc[points["model_free"], "method"]) == {"random"}
    with_baselines, methods = corr["fr_sized"]["all"], corr["fr_sized"]["methods"]
    assert with_baselines["n_points"] == 15 and methods["n_points"] == 12
    # the random points alone make a strong negative correlation; without them there is none to claim
    assert with_baselines["pearson"] < -0.6 and with_baselines["pearson_ci_high"] < 0
    assert methods["pearson_ci_low"] < 0 < methods["pearson_ci_high"]


def test_image_bootstrap_resamples_images_and_recomputes_every_point():
    """The CI against a slow reference: each resample's rows are the drawn images' rows, repeated
    as often as the image was drawn; every point's means and both correlations are recomputed."""
    rng = np.random.default_rng(8)
    table = _baseline_carried(rng, n=12)
    points, _ = fr_vs_rp(table, n_resamples=10)
    out = image_bootstrap_correlation(table, points, "falsified_sized", n_resamples=60, seed=3)
    images = np.unique(table["id"])
    draw = np.random.default_rng(3)
    pearson = []
    for _ in range(60):
        drawn = images[draw.integers(0, len(images), len(images))]
        sample = pd.concat([table[table["id"] == i] for i in drawn])
        means = sample.groupby(["model", "method"])[["rp", "falsified_sized"]].mean()
        pearson.append(stats.pearsonr(means["rp"], means["falsified_sized"])[0])
    low, high = np.quantile(pearson, [0.025, 0.975])
    assert out["pearson_ci_low"] == pytest.approx(low) and out["pearson_ci_high"] == pytest.approx(high)
    means = table.groupby(["model", "method"])[["rp", "falsified_sized"]].mean()
    assert out["pearson"] == pytest.approx(stats.pearsonr(means["rp"], means["falsified_sized"])[0])
    assert out["n_images"] == 12 and out["bootstrap"] == "images" and out["n_resamples_incomplete"] == 0
    # a point with rows on 2 of the 12 images is missing from some resamples: counted
    sparse = pd.concat([table, pd.DataFrame([{"model": "m9", "method": "a", "budget": "1 pass", "id": i,
                                               "attribute": "A", "rp": 0.3, "falsified_sized": 0.0}
                                              for i in (0, 1)])], ignore_index=True)
    points, _ = fr_vs_rp(sparse, n_resamples=10)
    out = image_bootstrap_correlation(sparse, points, "falsified_sized", n_resamples=200, seed=3)
    assert 0 < out["n_resamples_incomplete"] < 200


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
