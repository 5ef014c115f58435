"""Statistics across methods and models: paired tests, the FR-vs-RP correlation, beats-random verdicts.

Inputs are the per-sample metric tables (one row per explained decision, keyed by model, id and
attribute). Methods are compared on the same decisions (paired), never on pooled means.

The unit is the image: an image explained for several attributes gives rows that are not
independent. Paired tests first keep the decisions both methods scored (finite on both sides), then
average each method's values per image, and test the per-image differences; `n_images` is the
sample size of the test, `n_rows` the decisions behind it, `n_dropped` the decisions with a NaN.

* `holm`: Holm's step-down adjustment of a family of p-values (NaN entries are left out of the family).
* `paired_wilcoxon`: Wilcoxon signed-rank test on the paired differences (scipy), rows with a NaN on
  either side dropped and counted.
* `method_comparisons`: every pair of methods, per model and metric, two-sided; Holm over all the
  comparisons of one metric.
* `beats_random`: every method against the random baseline, per model and metric, one-sided in the
  metric's good direction; Holm over the family of one metric; verdict = adjusted p < alpha; and the
  same against the other model-free baselines (edge, centre) when the run has them.
* `fr_vs_rp`: one point per (model, method) = (mean regional precision, falsification rate);
  Pearson and Spearman correlation across the points, with percentile-bootstrap CIs over points.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from .aggregate import method_budgets, with_budget
from .metrics import registry

PAIR_KEY = ("model", "id", "attribute")


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
    out = {"n_pairs": int(ok.sum()), "n_dropped": int((~ok).sum()), "median_difference": np.nan,
           "statistic": np.nan, "p": np.nan}
    if d.size == 0:
        return out
    out["median_difference"] = float(np.median(d))
    if not np.any(d != 0):  # no difference at all: nothing to reject
        out.update(statistic=0.0, p=1.0)
        return out
    res = stats.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    out.update(statistic=float(res.statistic), p=float(res.pvalue))
    return out


def paired_by_image(table: pd.DataFrame, metric: str, method_a: str, method_b: str, key,
                    alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of per-image means over the decisions both methods scored."""
    a = table[table["method"] == method_a].set_index(list(key))[metric]
    b = table[table["method"] == method_b].set_index(list(key))[metric]
    both = a.index.intersection(b.index)
    a, b = a.loc[both].to_numpy(np.float64), b.loc[both].to_numpy(np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    images = both.get_level_values("id").to_numpy()[ok] if len(both) else np.zeros(0)
    per_image = pd.DataFrame({"id": images, "a": a[ok], "b": b[ok]}).groupby("id").mean()
    res = paired_wilcoxon(per_image["a"].to_numpy(), per_image["b"].to_numpy(), alternative)
    return {"unit": "image", "n_images": res.pop("n_pairs"), "n_rows": int(ok.sum()),
            **{k: v for k, v in res.items() if k != "n_dropped"}, "n_dropped": int((~ok).sum())}


def _key(table: pd.DataFrame):
    return [k for k in PAIR_KEY if k in table.columns] + (["partner_id"] if "partner_id" in table else [])


TEST_COLUMNS = ["unit", "n_images", "n_rows", "n_dropped", "median_difference", "statistic", "p"]


def method_comparisons(table: pd.DataFrame, metrics=None, group: str = "model") -> pd.DataFrame:
    """Two-sided paired Wilcoxon (by image) for every pair of methods, per model and metric
    (default: the registry's tested metrics); Holm per metric."""
    metrics = registry.tested() if metrics is None else metrics
    key = _key(table)
    records = []
    for metric in (m for m in metrics if m in table):
        for model, rows in table.groupby(group, sort=True):
            for a, b in itertools.combinations(sorted(rows["method"].unique()), 2):
                res = paired_by_image(rows, metric, a, b, key)
                records.append({"metric": metric, group: model, "method_a": a, "method_b": b, **res})
    out = pd.DataFrame.from_records(records, columns=["metric", group, "method_a", "method_b", *TEST_COLUMNS])
    out["p_holm"] = np.nan
    for metric, idx in out.groupby("metric").groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"])
    return out


# the model-free baselines besides random (methods whose `model_free` is set): each method is also
# tested against each of them present in the table
MODEL_FREE_BASELINES = ("edge", "centre")


def _verdicts(table: pd.DataFrame, metrics, baseline: str, alpha: float, group: str,
              exclude=()) -> pd.DataFrame:
    """One-sided paired Wilcoxon (by image) of each method (but `baseline` and `exclude`) against
    `baseline` in each metric's good direction, per `group` and metric; Holm per metric; `beats`."""
    key = _key(table)
    records = []
    for metric in (m for m in metrics if m in table):
        direction = registry.direction(metric)
        for model, rows in table.groupby(group, sort=True):
            for method in sorted(set(rows["method"]) - {baseline, *exclude}):
                res = paired_by_image(rows, metric, method, baseline, key, "greater" if direction > 0 else "less")
                records.append({"metric": metric, group: model, "method": method,
                                "direction": "higher" if direction > 0 else "lower", **res})
    out = pd.DataFrame.from_records(records, columns=["metric", group, "method", "direction", *TEST_COLUMNS])
    out["p_holm"] = np.nan
    for metric, idx in out.groupby("metric").groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"])
    out["beats"] = out["p_holm"] < alpha
    return out


def beats_random(table: pd.DataFrame, metrics=None, random_method: str = "random",
                 alpha: float = 0.05, group: str = "model", baselines=MODEL_FREE_BASELINES) -> pd.DataFrame:
    """One-sided paired Wilcoxon (by image) of each method against the random baseline in the
    metric's good direction, per model and metric; Holm per metric; `beats_random` = adjusted
    p < alpha. For each other model-free baseline in the table (edge, centre), the same test against
    it (its own Holm family per metric) in columns suffixed with its name: n_images_edge,
    median_difference_edge, p_edge, p_holm_edge and the verdict `beats_edge` (empty on the
    baseline's own row)."""
    metrics = registry.tested() if metrics is None else metrics
    if random_method not in set(table["method"]):
        return pd.DataFrame(columns=["metric", group, "method", "direction", *TEST_COLUMNS, "p_holm",
                                     "beats_random"])
    out = _verdicts(table, metrics, random_method, alpha, group).rename(columns={"beats": "beats_random"})
    keys = ["metric", group, "method"]
    for baseline in (b for b in baselines if b in set(table["method"]) and b != random_method):
        other = _verdicts(table, metrics, baseline, alpha, group, exclude=(random_method,))
        other = other[keys + ["n_images", "median_difference", "p", "p_holm", "beats"]].rename(
            columns={c: f"{c}_{baseline}" for c in ("n_images", "median_difference", "p", "p_holm", "beats")})
        out = out.merge(other, on=keys, how="left")
        out[f"beats_{baseline}"] = out[f"beats_{baseline}"].astype("boolean")
    return out


def verdict_columns(verdicts: pd.DataFrame) -> list[str]:
    """The verdict columns of a beats-random table: beats_random, then one per other baseline."""
    return [c for c in verdicts.columns if c.startswith("beats_")]


def bootstrap_correlation(x, y, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Pearson and Spearman correlation of paired points with percentile-bootstrap CIs (points
    resampled with replacement; resamples where a correlation is undefined are left out)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"n_points": int(x.size)}
    for name in ("pearson", "spearman"):
        out.update({name: np.nan, f"{name}_p": np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    out["pearson"], out["pearson_p"] = map(float, stats.pearsonr(x, y))
    out["spearman"], out["spearman_p"] = map(float, stats.spearmanr(x, y))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, (n_resamples, x.size))
    xs, ys = x[idx], y[idx]
    alpha = (1 - level) / 2
    for name, fx, fy in (("pearson", xs, ys),
                         ("spearman", stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))):
        fx = fx - fx.mean(axis=1, keepdims=True)
        fy = fy - fy.mean(axis=1, keepdims=True)
        denom = np.sqrt((fx ** 2).sum(axis=1) * (fy ** 2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (fx * fy).sum(axis=1) / denom
        r = r[np.isfinite(r)]
        if r.size:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = map(float, np.quantile(r, [alpha, 1 - alpha]))
    return out


# FR variants: the column of the per-sample tables and the prefix of its point columns
FR_VARIANTS = {"fr_sized": "falsified_sized", "fr": "falsified"}


def _mean_n(values: np.ndarray) -> tuple[float, int, int]:
    finite = np.isfinite(values)
    return (float(values[finite].mean()) if finite.any() else np.nan), int(finite.sum()), int((~finite).sum())


def fr_vs_rp(table: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Points (model, method, mean RP, both FR variants, their n) and, per FR variant, the correlation
    between FR and RP across the points: {"fr_sized": {...}, "fr": {...}}.

    The headline is the size-controlled FR (`fr_sized`): every method is perturbed with the same
    number of pixels, so FR differences come from where a map points, not from how sparse it is
    (a sparse map's threshold sets are tiny and barely move the model); RP, a share of the mass,
    does not depend on sparsity either."""
    records = []
    for (model, method), group in table.groupby(["model", "method"], sort=True):
        record = {"model": model, "method": method}
        record["rp_mean"], record["rp_n"], _ = _mean_n(group["rp"].to_numpy(np.float64))
        for prefix, column in FR_VARIANTS.items():
            values = group[column].to_numpy(np.float64) if column in group else np.full(len(group), np.nan)
            record[prefix], record[f"{prefix}_n"], record[f"{prefix}_n_undefined"] = _mean_n(values)
        records.append(record)
    points = pd.DataFrame.from_records(records)
    corr = {prefix: bootstrap_correlation(points["rp_mean"], points[prefix], n_resamples, seed) if len(points)
            else bootstrap_correlation([], []) for prefix in FR_VARIANTS}
    return points, corr


SUMMARY_SCHEMA = "facexai-summary/3"


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


def best_methods(table: pd.DataFrame, metrics=None, random_method: str = "random",
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


def write_statistics(per_sample_csvs, outputs: dict, *, n_resamples: int = 1000, seed: int = 0,
                     alpha: float = 0.05, twin_csv=None) -> dict:
    """Method comparisons, beats-random verdicts, FR-vs-RP points and correlation: three CSVs and
    summary.json (schema: docs/summary.md)."""
    import json

    from .atomic import atomic_path

    from .agreement import agreement_summary, metric_agreement

    table = pd.concat([pd.read_csv(p) for p in per_sample_csvs], ignore_index=True)
    budgets = method_budgets(table)
    comparisons = with_budgets(method_comparisons(table), budgets)
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
        "fr_vs_rp": {**corr["fr_sized"], "fr_variant": "size-controlled",
                     "threshold_variant": corr["fr"], "points": points.to_dict(orient="records")},
        "beats_random": verdicts[["model", "method", "metric", "direction", "median_difference", "p_holm",
                                  *verdict_columns(verdicts)]].to_dict(orient="records") if len(verdicts) else [],
    }
    summary["metric_agreement"] = agreement_summary(agreement, ranks)
    if twin_csv:
        summary["twin_shift"] = pd.read_csv(twin_csv).to_dict(orient="records")
    with atomic_path(outputs["summary"]) as tmp:
        tmp.write_text(json.dumps(_clean(summary), indent=2, sort_keys=False))
    return summary


def write_pair_statistics(per_pair_csvs, outputs: dict, *, alpha: float = 0.05, n_resamples: int = 1000,
                          seed: int = 0) -> None:
    """Verification pairs: paired method comparisons, beats-random verdicts and metric agreement per
    pair kind (unit: the explained image of the pair), on the registry's tested pair metrics."""
    from .atomic import atomic_path

    from .agreement import metric_agreement

    table = pd.concat([pd.read_csv(p) for p in per_pair_csvs], ignore_index=True)
    budgets = method_budgets(table)
    # a method that cannot run on the embedder (counted in the localisation table) tests nothing
    if "not_applicable" in table:
        table = table[table["not_applicable"].fillna("") == ""]
    metrics = registry.tested(pairs=True)
    agreement, ranks = metric_agreement(table, metrics, group="kind", n_resamples=n_resamples, seed=seed)
    frames = {"comparisons": with_budgets(method_comparisons(table, metrics, group="kind"), budgets),
              "beats_random": beats_random(table, metrics, alpha=alpha, group="kind"),
              "agreement": agreement, "ranks": ranks}
    for name, frame in frames.items():
        if name in outputs:
            with atomic_path(outputs[name]) as tmp:
                with_budget(frame, budgets).to_csv(tmp, index=False)
