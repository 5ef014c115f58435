"""Statistics across methods and models: paired tests, the FR-vs-RP correlation, beats-random verdicts.

Inputs are the per-sample metric tables (one row per explained decision, keyed by model, id and
attribute). Methods are compared on the same decisions (paired), never on pooled means.

The unit is the image: an image explained for several attributes gives rows that are not
independent. Paired tests first keep the decisions both methods scored (finite on both sides), then
average each method's values per image, and test the per-image differences; `n_images` is the
sample size of the test, `n_rows` the decisions behind it, `n_dropped` the decisions with a NaN.

* `holm`: Holm's step-down adjustment of a family of p-values (NaN entries are left out of the family).
* `best_adjusted_p`: the best p-value a test could reach after Holm over its family: the same
  signed-rank test (scipy, same options, the same differences with every sign in the favourable
  direction: this accounts for zeros, ties and scipy's switch from the exact to the normal
  approximation) put into the family of the other tests' observed p-values. Where even that is not
  below alpha, the verdict is `untestable` (with n and that p), never "does not beat".
* `paired_wilcoxon`: Wilcoxon signed-rank test on the paired differences (scipy), rows with a NaN on
  either side dropped and counted.
* `method_comparisons`: every pair of methods, per model and metric, two-sided; Holm over all the
  comparisons of one metric.
* `beats_random`: every method against the random baseline, per model and metric, one-sided in the
  metric's good direction; Holm over the family of one metric; verdict = adjusted p < alpha; and the
  same against the other model-free baselines (edge, centre, parts) when the run has them.
* `fr_vs_rp`: one point per (model, method) = (mean regional precision, falsification rate);
  Pearson and Spearman correlation across the attribution methods' points (the headline) and across
  all points with the model-free baselines, with percentile CIs from an image bootstrap (the test
  images resampled, every point recomputed in each resample).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .aggregate import method_budgets, with_budget
from .agreement import agreement_summary, metric_agreement
from .attributions import MODEL_FREE_BASELINES, ORACLES, RANDOM
from .metrics import registry



def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (same order); NaN stays NaN and does not count in the family."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def paired_wilcoxon(a, b, alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of a - b over pairs where both are finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    out = {"n_pairs": int(ok.sum()), "n_dropped": int((~ok).sum()), "n_nonzero": int((d != 0).sum()),
           "median_difference": np.nan, "statistic": np.nan, "p": np.nan, "p_best": np.nan}
    if d.size == 0:
        return out
    out["median_difference"] = float(np.median(d))
    if not np.any(d != 0):  # no difference at all: nothing to reject, and nothing could be
        out.update(statistic=0.0, p=1.0, p_best=1.0)
        return out
    res = stats.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    # the best outcome these differences allow: the same magnitudes, every sign favourable
    favourable = -np.abs(d) if alternative == "less" else np.abs(d)
    best = stats.wilcoxon(favourable, alternative=alternative, zero_method="wilcox")
    out.update(statistic=float(res.statistic), p=float(res.pvalue),
               p_best=min(float(best.pvalue), float(res.pvalue)))
    return out


def paired_by_image(table: pd.DataFrame, metric: str, method_a: str, method_b: str, key,
                    alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of per-image means over the decisions both methods scored."""
    return ByMethod(table, key).paired(metric, method_a, method_b, alternative)


class ByMethod:
    """One group's rows split by method and indexed by the row key once, for the many paired tests
    of a family (every pair of methods, or every method against a baseline, in every metric)."""

    def __init__(self, table: pd.DataFrame, key):
        self.frames = {m: g.set_index(list(key)) for m, g in table.groupby("method", sort=False)}
        self._common: dict = {}

    def _both(self, a: str, b: str):
        """The keys both methods scored, and their rows in each method's frame."""
        if (a, b) not in self._common:
            index_a, index_b = self.frames[a].index, self.frames[b].index
            both = index_a.intersection(index_b)
            ids = both.get_level_values("id").to_numpy() if len(both) else np.zeros(0)
            self._common[(a, b)] = (index_a.get_indexer(both), index_b.get_indexer(both), ids)
        return self._common[(a, b)]

    def paired(self, metric: str, method_a: str, method_b: str, alternative: str = "two-sided") -> dict:
        empty = pd.DataFrame(columns=[metric])
        frame_a, frame_b = self.frames.get(method_a, empty), self.frames.get(method_b, empty)
        if method_a in self.frames and method_b in self.frames:
            rows_a, rows_b, ids = self._both(method_a, method_b)
        else:
            rows_a = rows_b = np.zeros(0, np.int64)
            ids = np.zeros(0)
        a = frame_a[metric].to_numpy(np.float64)[rows_a]
        b = frame_b[metric].to_numpy(np.float64)[rows_b]
        ok = np.isfinite(a) & np.isfinite(b)
        # per-image means (the unit of the test), images in sorted order (pandas' compensated sums)
        per_image = pd.DataFrame({"a": a[ok], "b": b[ok]}).groupby(ids[ok]).mean()
        res = paired_wilcoxon(per_image["a"].to_numpy(), per_image["b"].to_numpy(), alternative)
        return {"unit": "image", "n_images": res.pop("n_pairs"), "n_rows": int(ok.sum()),
                **{k: v for k, v in res.items() if k != "n_dropped"}, "n_dropped": int((~ok).sum())}


def _key(table: pd.DataFrame):
    """The columns naming one row across methods (subjects.row_key): (model, id, attribute) for
    attribute decisions; (model, id, partner_id, region) for pairs."""
    from .subjects import row_key

    return row_key(table)


TEST_COLUMNS = ["unit", "n_images", "n_nonzero", "n_rows", "n_dropped", "median_difference", "statistic", "p",
                "p_best"]

VERDICTS = ("beats", "does not beat", "untestable")


def best_adjusted_p(p, p_best) -> np.ndarray:
    """Per test, the Holm-adjusted p it would get with its best attainable raw p (`p_best`: the same
    test on its differences with every sign favourable) while the other tests of the family keep
    their observed p-values. Holm's adjusted p is non-decreasing in each raw p, so no outcome of
    this test can pass where this is not below alpha; NaN tests are not in the family."""
    p, p_best = np.asarray(p, np.float64), np.asarray(p_best, np.float64)
    out = np.full(p.shape, np.nan)
    for i in np.flatnonzero(np.isfinite(p)):
        trial = p.copy()
        trial[i] = p_best[i] if np.isfinite(p_best[i]) else p[i]
        out[i] = holm(trial)[i]
    return out


def _adjust(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm per metric (`p_holm`), the best attainable adjusted p (`min_p_holm`, `best_adjusted_p`)
    and the verdict: beats (p_holm < alpha), untestable (min_p_holm >= alpha: no outcome of this
    test could pass, given its differences' magnitudes and the rest of its family) or does not beat."""
    out["p_holm"] = np.nan
    out["min_p_holm"] = np.nan
    for metric, idx in out.groupby("metric").groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"])
        out.loc[idx, "min_p_holm"] = best_adjusted_p(out.loc[idx, "p"], out.loc[idx, "p_best"])
    beats = out["p_holm"] < alpha
    untestable = ~(out["min_p_holm"] < alpha)
    out["verdict"] = np.where(beats, "beats", np.where(untestable, "untestable", "does not beat"))
    return out


def method_comparisons(table: pd.DataFrame, metrics=None, group: str = "model", alpha: float = 0.05) -> pd.DataFrame:
    """Two-sided paired Wilcoxon (by image) for every pair of methods, per model and metric
    (default: the registry's tested metrics); Holm per metric; `verdict` differ / no difference
    found / untestable."""
    metrics = registry.tested() if metrics is None else metrics
    key = _key(table)
    records = []
    splits = {model: ByMethod(rows, key) for model, rows in table.groupby(group, sort=True)}
    for metric in (m for m in metrics if m in table):
        for model, rows in table.groupby(group, sort=True):
            if not np.isfinite(rows[metric].to_numpy(np.float64)).any():
                continue  # a metric of another kind of row (the game outside triplets): nothing to test
            split = splits[model]
            for a, b in itertools.combinations(sorted(rows["method"].unique()), 2):
                res = split.paired(metric, a, b)
                records.append({"metric": metric, group: model, "method_a": a, "method_b": b, **res})
    out = pd.DataFrame.from_records(records, columns=["metric", group, "method_a", "method_b", *TEST_COLUMNS])
    out = _adjust(out, alpha)
    out["verdict"] = out["verdict"].replace({"beats": "differ", "does not beat": "no difference found"})
    return out


def _verdicts(table: pd.DataFrame, metrics, baseline: str, alpha: float, group: str,
              exclude=()) -> pd.DataFrame:
    """One-sided paired Wilcoxon (by image) of each method (but `baseline` and `exclude`) against
    `baseline` in each metric's good direction, per `group` and metric; Holm per metric; `beats`."""
    key = _key(table)
    records = []
    splits = {model: ByMethod(rows, key) for model, rows in table.groupby(group, sort=True)}
    for metric in (m for m in metrics if m in table):
        direction = registry.direction(metric)
        for model, rows in table.groupby(group, sort=True):
            if not np.isfinite(rows[metric].to_numpy(np.float64)).any():
                continue  # a metric of another kind of row (the game outside triplets): nothing to test
            split = splits[model]
            for method in sorted(set(rows["method"]) - {baseline, *exclude}):
                res = split.paired(metric, method, baseline, "greater" if direction > 0 else "less")
                records.append({"metric": metric, group: model, "method": method,
                                "direction": "higher" if direction > 0 else "lower", **res})
    out = pd.DataFrame.from_records(records, columns=["metric", group, "method", "direction", *TEST_COLUMNS])
    out = _adjust(out, alpha)
    out["beats"] = out["verdict"] == "beats"
    return out


def beats_random(table: pd.DataFrame, metrics=None, random_method: str = RANDOM,
                 alpha: float = 0.05, group: str = "model", baselines=MODEL_FREE_BASELINES) -> pd.DataFrame:
    """One-sided paired Wilcoxon (by image) of each method against the random baseline in the
    metric's good direction, per model and metric; Holm per metric; `beats_random` = adjusted
    p < alpha. For each other model-free baseline in the table (edge, centre, parts), the same test against
    it (its own Holm family per metric) in columns suffixed with its name: n_images_edge,
    median_difference_edge, p_edge, p_holm_edge and the verdict `beats_edge` (empty on the
    baseline's own row). `verdict_random` (and `verdict_edge`, ...): beats, does not beat, or
    untestable where even the best outcome its differences allow could not pass in its Holm family
    (`min_p_holm`)."""
    metrics = registry.tested() if metrics is None else metrics
    if random_method not in set(table["method"]):
        return pd.DataFrame(columns=["metric", group, "method", "direction", *TEST_COLUMNS, "p_holm",
                                     "min_p_holm", "verdict_random", "beats_random"])
    out = _verdicts(table, metrics, random_method, alpha, group).rename(
        columns={"beats": "beats_random", "verdict": "verdict_random"})
    keys = ["metric", group, "method"]
    per_baseline = ("n_images", "n_nonzero", "median_difference", "p", "p_holm", "min_p_holm", "verdict", "beats")
    for baseline in (b for b in baselines if b in set(table["method"]) and b != random_method):
        other = _verdicts(table, metrics, baseline, alpha, group, exclude=(random_method,))
        other = other[keys + list(per_baseline)].rename(columns={c: f"{c}_{baseline}" for c in per_baseline})
        out = out.merge(other, on=keys, how="left")
        out[f"beats_{baseline}"] = out[f"beats_{baseline}"].astype("boolean")
    return out


def verdict_columns(verdicts: pd.DataFrame) -> list[str]:
    """The verdict columns of a beats-random table: beats_random and verdict_random, then the same
    per other baseline, with the smallest attainable adjusted p of each."""
    return [c for c in verdicts.columns if c.startswith(("beats_", "verdict_", "min_p_holm", "n_nonzero"))]


# FR variants: the column of the per-sample tables and the prefix of its point columns
FR_VARIANTS = {"fr_sized": "falsified_sized", "fr": "falsified"}


def _mean_n(values: np.ndarray) -> tuple[float, int, int]:
    finite = np.isfinite(values)
    return (float(values[finite].mean()) if finite.any() else np.nan), int(finite.sum()), int((~finite).sum())


def model_free_methods(table: pd.DataFrame) -> set[str]:
    """Methods that never call the model (random, edge, centre): their rows carry the budget
    "model-free" (`AttributionMethod.model_free`)."""
    if "budget" in table:
        return set(table.loc[table["budget"].astype(str) == "model-free", "method"])
    return {RANDOM, *MODEL_FREE_BASELINES}


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan
    return float(stats.pearsonr(x, y)[0]), float(stats.spearmanr(x, y)[0])


def image_bootstrap_correlation(table: pd.DataFrame, points: pd.DataFrame, column: str, n_resamples: int = 1000,
                                seed: int = 0, level: float = 0.95) -> dict:
    """Pearson and Spearman correlation across `points` (model, method) between mean RP and the mean
    of `column` (an FR variant), with percentile CIs from an image bootstrap: each resample draws the
    test images with replacement and recomputes every point's two means from the rows of the drawn
    images (with their multiplicity), then both correlations. The points share their images, so
    resampling the points as if independent would understate the uncertainty. `pearson_p` and
    `spearman_p` are scipy's, which do treat the points as independent: for reference only."""
    out = {"n_points": 0, "n_images": 0, "bootstrap": "images", "n_resamples_incomplete": 0}
    for name in ("pearson", "spearman"):
        out.update({name: np.nan, f"{name}_p": np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
    if not len(points) or column not in table:
        return out
    keys = list(zip(points["model"], points["method"]))
    point_of = {k: j for j, k in enumerate(keys)}
    rows = table[[(m, t) in point_of for m, t in zip(table["model"], table["method"])]]
    images, image_index = np.unique(rows["id"].to_numpy(), return_inverse=True)
    p_idx = np.array([point_of[(m, t)] for m, t in zip(rows["model"], rows["method"])])
    sums, counts = {}, {}
    for name, col in (("rp", "rp"), ("fr", column)):
        values = rows[col].to_numpy(np.float64)
        ok = np.isfinite(values)
        sums[name] = np.zeros((len(keys), len(images)))
        counts[name] = np.zeros((len(keys), len(images)))
        np.add.at(sums[name], (p_idx[ok], image_index[ok]), values[ok])
        np.add.at(counts[name], (p_idx[ok], image_index[ok]), 1.0)

    def means(weights):
        with np.errstate(invalid="ignore", divide="ignore"):
            return tuple(sums[n] @ weights / (counts[n] @ weights) for n in ("rp", "fr"))

    rp, fr = means(np.ones(len(images)))
    ok = np.isfinite(rp) & np.isfinite(fr)
    out["n_points"], out["n_images"] = int(ok.sum()), int(len(images))
    if ok.sum() < 3 or np.ptp(rp[ok]) == 0 or np.ptp(fr[ok]) == 0:
        return out
    out["pearson"], out["pearson_p"] = map(float, stats.pearsonr(rp[ok], fr[ok]))
    out["spearman"], out["spearman_p"] = map(float, stats.spearmanr(rp[ok], fr[ok]))
    rng = np.random.default_rng(seed)
    draws = np.zeros((n_resamples, len(images)))
    for b in range(n_resamples):
        draws[b] = np.bincount(rng.integers(0, len(images), len(images)), minlength=len(images))
    with np.errstate(invalid="ignore", divide="ignore"):
        rp_b = (sums["rp"] @ draws.T) / (counts["rp"] @ draws.T)   # (points, resamples)
        fr_b = (sums["fr"] @ draws.T) / (counts["fr"] @ draws.T)
    # a point whose images were all left out of a resample is missing from that resample's
    # correlation: counted, so that a CI over fewer points is not taken for one over all of them
    out["n_resamples_incomplete"] = int((~np.isfinite(rp_b[ok]) | ~np.isfinite(fr_b[ok])).any(axis=0).sum())
    found = {"pearson": [], "spearman": []}
    for b in range(n_resamples):
        pearson, spearman = _correlations(rp_b[:, b], fr_b[:, b])
        for name, r in (("pearson", pearson), ("spearman", spearman)):
            if np.isfinite(r):
                found[name].append(r)
    alpha = (1 - level) / 2
    for name, values in found.items():
        if values:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = map(float, np.quantile(values, [alpha, 1 - alpha]))
    return out


def fr_vs_rp(table: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Points (model, method, mean RP, both FR variants, their n, model_free) and, per FR variant,
    the correlation between FR and RP across the points: {"fr_sized": {"methods": ..., "all": ...},
    "fr": {...}}. "methods": the attribution methods only (the headline); "all": with the model-free
    baselines, whose extreme points (random: low RP, high FR) would otherwise carry the correlation.
    CIs come from an image bootstrap (`image_bootstrap_correlation`).

    The headline is the size-controlled FR (`fr_sized`): every method is perturbed with the same
    number of pixels, so FR differences come from where a map points, not from how sparse it is
    (a sparse map's threshold sets are tiny and barely move the model); RP, a share of the mass,
    does not depend on sparsity either. The threshold FR is described, not tested."""
    records = []
    free = model_free_methods(table)
    for (model, method), group in table.groupby(["model", "method"], sort=True):
        record = {"model": model, "method": method, "model_free": method in free}
        record["rp_mean"], record["rp_n"], _ = _mean_n(group["rp"].to_numpy(np.float64))
        for prefix, column in FR_VARIANTS.items():
            values = group[column].to_numpy(np.float64) if column in group else np.full(len(group), np.nan)
            record[prefix], record[f"{prefix}_n"], record[f"{prefix}_n_undefined"] = _mean_n(values)
        records.append(record)
    points = pd.DataFrame.from_records(records, columns=["model", "method", "model_free", "rp_mean", "rp_n",
                                                         *(f"{p}{s}" for p in FR_VARIANTS
                                                           for s in ("", "_n", "_n_undefined"))])
    methods_only = points[~points["model_free"].astype(bool)]
    corr = {prefix: {"methods": image_bootstrap_correlation(table, methods_only, column, n_resamples, seed),
                     "all": image_bootstrap_correlation(table, points, column, n_resamples, seed)}
            for prefix, column in FR_VARIANTS.items()}
    return points, corr


SUMMARY_SCHEMA = "facexai-summary/5"


def with_budgets(comparisons: pd.DataFrame, budgets: dict[str, str]) -> pd.DataFrame:
    """A method-comparison table with each side's budget beside its method."""
    comparisons = with_budget(comparisons, budgets, "method_a", "budget_a")
    return with_budget(comparisons, budgets, "method_b", "budget_b")


def _clean(value):
    """JSON-safe: NaN and NA -> None, numpy scalars -> Python."""
    if value is pd.NA:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def best_methods(table: pd.DataFrame, metrics=None, random_method: str = RANDOM,
                 baselines=MODEL_FREE_BASELINES) -> dict:
    """Per model and metric, the method with the best mean (the model-free baselines excluded)."""
    metrics = registry.tested() if metrics is None else metrics
    out: dict = {}
    for model, group in table.groupby("model", sort=True):
        means = group[~group["method"].isin([random_method, *baselines])].groupby("method").mean(numeric_only=True)
        for metric in (m for m in metrics if m in means and means[m].notna().any()):
            series = means[metric].dropna()
            method = series.idxmax() if registry.direction(metric) > 0 else series.idxmin()
            out.setdefault(str(model), {})[metric] = {"method": str(method), "mean": float(series[method])}
    return out


ORACLE_METHOD = ORACLES[0]
GAME_COLUMNS = ("game_flip_fraction", "game_region_lift", "lift")


def verification_summary(embedders: dict) -> dict:
    """Per embedder (name -> (localisation.csv, eer.json)): EER and threshold, the triplet counts
    (made, kept, dropped, twin rejected at the threshold, P' prefers the twin) per region, and the
    inpainting game per region and method (mean and CI by probe image of the flip fraction, the
    game region lift and the lift in R, the lift as a share of the oracle's)."""
    import json

    out = {}
    for name, (localisation_csv, eer_json) in sorted(embedders.items()):
        eer = json.loads(Path(eer_json).read_text())
        table = pd.read_csv(localisation_csv, keep_default_na=False, na_values=[""])
        game = []
        for region, group in table[table["kind"] == "triplet"].groupby("region", sort=True):
            oracle = group.loc[group["method"] == ORACLE_METHOD, "lift_mean"]
            ceiling = float(oracle.iloc[0]) if len(oracle) else np.nan
            for _, r in group.sort_values("method").iterrows():
                record = {"region": region, "method": r["method"], "budget": r.get("budget", ""), "n": int(r["n"]),
                          "oracle": r["method"] == ORACLE_METHOD}
                for metric in GAME_COLUMNS:
                    record.update({f"{metric}_{k}": r.get(f"{metric}_{k}", np.nan)
                                   for k in ("mean", "ci_low", "ci_high")})
                record["lift_share_of_oracle"] = r["lift_mean"] / ceiling if ceiling > 0 else np.nan
                record["degenerate"] = {k.split(":", 1)[1]: int(v) for k, v in r.items()
                                        if k.startswith("n_game_degenerate:") and np.isfinite(v) and v > 0}
                game.append(record)
        out[name] = {"eer": eer["eer"], "threshold": eer["threshold"], "triplet_margin": eer.get("triplet_margin"),
                     "triplets": eer.get("triplets", {}), "game": game}
    return out


def groups_summary(differences: pd.DataFrame) -> dict:
    """summary.json's `groups`: per model and group the number of tests of each verdict, and the tests
    whose verdict is `differ` (docs/summary.md)."""
    keep = ["metric", "model", "method", "region", "group", "n_member", "n_rest", "n_unknown", "mean_member",
            "mean_rest", "difference", "difference_ci_low", "difference_ci_high", "p_holm", "verdict"]
    counts = {}
    for (model, group), g in differences.groupby(["model", "group"], sort=True):
        counts.setdefault(str(model), {})[str(group)] = {str(k): int(v) for k, v in g["verdict"].value_counts().items()}
    return {"groups": sorted(differences["group"].astype(str).unique().tolist()), "verdicts": counts,
            "differ": differences.loc[differences["verdict"] == "differ", keep].to_dict(orient="records")}


def write_statistics(per_sample_csvs, outputs: dict, *, n_resamples: int = 1000, seed: int = 0,
                     alpha: float = 0.05, twin_csv=None, group_twin_csvs=None, group_differences_csv=None,
                     verification: dict | None = None) -> dict:
    """Method comparisons, beats-random verdicts, FR-vs-RP points and correlation: three CSVs and
    summary.json (schema: docs/summary.md); `verification` (embedder -> (localisation.csv,
    eer.json)) adds each embedder's triplet game (`verification_summary`); group_twin_csvs
    ((accuracy.csv, shift.csv) of `facexai.group_twin`) the group-imbalanced twins: every accuracy row,
    and the shift rows of side `yes - no` (does the shift differ between the group and the rest);
    group_differences_csv (`groups.group_differences`) the per-group verdict counts and the
    differing tests."""
    import json

    from .atomic import atomic_path


    table = pd.concat([pd.read_csv(p) for p in per_sample_csvs], ignore_index=True)
    budgets = method_budgets(table)
    comparisons = with_budgets(method_comparisons(table, alpha=alpha), budgets)
    verdicts = beats_random(table, alpha=alpha)
    points, corr = fr_vs_rp(table, n_resamples, seed)
    agreement, ranks = metric_agreement(table, n_resamples=n_resamples, seed=seed)
    frames = {"comparisons": comparisons, "beats_random": verdicts, "fr_vs_rp": points, "agreement": agreement,
              "ranks": ranks}
    for name, frame in frames.items():
        if name in outputs:
            with atomic_path(outputs[name]) as tmp:
                with_budget(frame, budgets).to_csv(tmp, index=False)
    summary = {
        "schema": SUMMARY_SCHEMA,
        "alpha": alpha,
        "n_decisions": {str(m): {str(k): int(v) for k, v in g.groupby("method").size().items()}
                        for m, g in table.groupby("model")},
        "budgets": budgets,
        "best_method": best_methods(table),
        "fr_vs_rp": {**corr["fr_sized"]["methods"], "fr_variant": "size-controlled",
                     "point_set": "attribution methods (model-free baselines apart)",
                     "with_baselines": corr["fr_sized"]["all"],
                     "threshold_variant": {**corr["fr"]["methods"], "with_baselines": corr["fr"]["all"]},
                     "points": points.to_dict(orient="records")},
        "beats_random": verdicts[["model", "method", "metric", "direction", "median_difference", "p_holm",
                                  *verdict_columns(verdicts)]].to_dict(orient="records") if len(verdicts) else [],
    }
    summary["metric_agreement"] = agreement_summary(agreement, ranks)
    if verification:
        summary["verification"] = verification_summary(verification)
    if twin_csv:
        summary["twin_shift"] = pd.read_csv(twin_csv).to_dict(orient="records")
    if group_differences_csv:
        summary["groups"] = groups_summary(pd.read_csv(group_differences_csv))
    if group_twin_csvs:
        accuracy, shift = (pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in group_twin_csvs)
        summary["group_twins"] = {"accuracy": accuracy.to_dict(orient="records"),
                                  "shift": shift[shift["side"] == "yes - no"].to_dict(orient="records")}
    with atomic_path(outputs["summary"]) as tmp:
        tmp.write_text(json.dumps(_clean(summary), indent=2, sort_keys=False))
    return summary


# a map with no mass to place scores what a uniform map scores: lift-type values 1, shares of the
# region its share of the image, AUC 0.5, recall q / 100 (`q` given)
NO_MASS = ("zero_map",)
AT_CHANCE_ONE = (("lift", "degenerate"), ("energy_pointing_lift", "degenerate"), ("lift_part", "degenerate"),
                 ("lift_seam", "degenerate"), ("lift_dissimilarity", "degenerate_dissimilarity"))
AT_CHANCE_SHARE = (("rp", "degenerate"), ("pointing", "degenerate"), ("rp_dissimilarity", "degenerate_dissimilarity"))
# the model metrics of a map that orders no pixel (constant, all-zero included) are NaN per pair: its
# chance value is that of a random order, which the random baseline's map of the same pair gives
AT_RANDOM = (("deletion_auc", "perturbation_degenerate"), ("insertion_auc", "perturbation_degenerate"),
             ("deletion_accuracy_auc", "perturbation_degenerate"),
             ("insertion_accuracy_auc", "perturbation_degenerate"), ("road_gap", "perturbation_degenerate"),
             ("falsified", "falsification_degenerate"), ("falsified_sized", "falsification_sized_degenerate"))
ORDERS_NOTHING = ("constant_map", "zero_mass")
PAIR_ROW = ("model", "id", "partner_id", "kind", "region")


def pair_rows_at_chance(table: pd.DataFrame, q: float | None = None) -> pd.DataFrame:
    """Pair rows whose map has no mass to place (`zero_map`: e.g. CorrRISE where no mask moved the
    score, or the negative part of a map that has none) enter the summaries and verdicts with the
    values of a uniform map instead of dropping out (a method would otherwise be judged only on the
    rows it could explain): lift, energy-pointing lift, the part and seam lifts and the
    dissimilarity lift 1; RP, pointing and the dissimilarity RP the region's share of the image
    (`chance`); AUC 0.5; recall q / 100 when `q` (metrics.q) is given; the model metrics of a map
    that orders no pixel the random baseline's on the same pair (`model_metrics_at_random`). The game
    is at chance already (game.py). Non-finite maps, kinds without a region and rows of methods that could not run stay
    NaN. Counted per reason in the localisation table."""
    table = table.copy()
    for metric, reason in AT_CHANCE_ONE:
        if metric in table and reason in table:
            rows = table[reason].fillna("").isin(NO_MASS) & table[metric].isna()
            table.loc[rows, metric] = 1.0
    if "chance" in table:
        for metric, reason in AT_CHANCE_SHARE:
            if metric in table and reason in table:
                rows = table[reason].fillna("").isin(NO_MASS) & table[metric].isna()
                table.loc[rows, metric] = table.loc[rows, "chance"]
    if "degenerate" in table:
        rows = table["degenerate"].fillna("").isin(NO_MASS)
        if "auc" in table:
            table.loc[rows & table["auc"].isna(), "auc"] = 0.5
        if q is not None and "recall" in table:
            table.loc[rows & table["recall"].isna(), "recall"] = float(q) / 100
    return model_metrics_at_random(table)


def model_metrics_at_random(table: pd.DataFrame) -> pd.DataFrame:
    """Pair rows whose map orders no pixel (`constant_map`; for falsification also `zero_mass`: no
    mass of the configured sign to threshold) take, for each model metric, the value of the random
    baseline's map on the same pair: with `methods.random.cells: 0` (the default) a random pixel
    order, what a constant map's random tie order gives; with cells > 0, a random order at that cell
    scale. Without a random row for that pair the value stays NaN (counted as dropped in the
    verdicts). In a verdict against random such a row is a tie (difference 0), never a win."""
    if "method" not in table or not set(PAIR_ROW) <= set(table.columns) or RANDOM not in set(table["method"]):
        return table
    # one string per pair row (a genuine pair's region is empty: NaN once read back)
    key = pd.Series(["|".join(map(str, row)) for row in table[list(PAIR_ROW)].fillna("").itertuples(index=False)],
                    index=table.index)
    reference = table[table["method"] == RANDOM].assign(_key=key).drop_duplicates("_key").set_index("_key")
    for metric, reason in AT_RANDOM:
        if metric not in table or reason not in table:
            continue
        rows = (table[reason].fillna("").isin(ORDERS_NOTHING) & table[metric].isna()
                & (table["method"] != RANDOM)).to_numpy()
        if rows.any():
            table.loc[rows, metric] = reference[metric].reindex(key[rows]).to_numpy()
    return table


def write_pair_statistics(per_pair_csvs, outputs: dict, *, alpha: float = 0.05, n_resamples: int = 1000,
                          seed: int = 0, q: float | None = None) -> None:
    """Verification pairs: paired method comparisons, beats-random verdicts and metric agreement per
    pair kind (unit: the explained image of the pair), on the registry's tested pair metrics; rows
    with no mass to place at chance (`pair_rows_at_chance`)."""
    from .atomic import atomic_path

    table = pd.concat([pd.read_csv(p) for p in per_pair_csvs], ignore_index=True)
    budgets = method_budgets(table)
    # a method that cannot run on the embedder (counted in the localisation table) tests nothing
    if "not_applicable" in table:
        table = table[table["not_applicable"].fillna("") == ""]
    table = pair_rows_at_chance(table, q)
    metrics = registry.tested(pairs=True)
    agreement, ranks = metric_agreement(table, metrics, group="kind", n_resamples=n_resamples, seed=seed)
    frames = {"comparisons": with_budgets(method_comparisons(table, metrics, group="kind", alpha=alpha), budgets),
              "beats_random": beats_random(table, metrics, alpha=alpha, group="kind"),
              "agreement": agreement, "ranks": ranks}
    for name, frame in frames.items():
        if name in outputs:
            with atomic_path(outputs[name]) as tmp:
                with_budget(frame, budgets).to_csv(tmp, index=False)
