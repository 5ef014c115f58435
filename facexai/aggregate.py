"""Aggregate per-sample metric tables: mean, median, seeded 95 % bootstrap CI, n valid, n degenerate.

The statistical unit is the image: several explained decisions of one image (up to one per
explained attribute) are not independent, so the bootstrap resamples images (a cluster bootstrap:
each resample draws images with replacement and pools all their rows), never rows. Tables say so
(`unit`, `n_images`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .metrics import registry

GROUPS = {"by_attribute": ["model", "method", "attribute", "region"],
          "by_region": ["model", "method", "region"],
          # by the decision's outcome at the model's threshold: explanations of wrong decisions apart
          "by_outcome": ["model", "method", "region", "outcome"]}


def method_budgets(table: pd.DataFrame) -> dict[str, str]:
    """method -> its budget string (the `budget` column of the per-sample tables; '' without it).
    One budget per method: two shards of one method explained at different budgets is an error."""
    if "budget" not in table or not len(table):
        return {str(m): "" for m in table.get("method", [])}
    budgets = table.groupby("method")["budget"].unique()
    mixed = {m: list(b) for m, b in budgets.items() if len(b) > 1}
    if mixed:
        raise ValueError(f"methods explained at different budgets in one run: {mixed}")
    return {str(m): ("" if pd.isna(b[0]) else str(b[0])) for m, b in budgets.items()}


def with_budget(frame: pd.DataFrame, budgets: dict[str, str], method_column: str = "method",
                budget_column: str = "budget") -> pd.DataFrame:
    """`frame` with the budget of each row's method in a column right after the method's."""
    if method_column not in frame:
        return frame
    frame = frame.drop(columns=[budget_column], errors="ignore")
    frame.insert(frame.columns.get_loc(method_column) + 1, budget_column,
                 frame[method_column].map(lambda m: budgets.get(str(m), "")))
    return frame


def bootstrap_mean_ci(values: np.ndarray, n_resamples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; NaN with fewer than 2 values."""
    values = np.asarray(values, np.float64)
    if values.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # bounded memory for large n
        stop = min(start + 1000, n_resamples)
        idx = rng.integers(0, values.size, (stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def cluster_bootstrap_mean_ci(values: np.ndarray, clusters: np.ndarray, n_resamples: int, seed: int,
                              level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the pooled mean, resampling whole clusters (images) with
    replacement; NaN with fewer than 2 clusters. With one row per cluster it is the row bootstrap."""
    values = np.asarray(values, np.float64)
    _, cluster_of = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(cluster_of.max()) + 1 if values.size else 0
    if n_clusters < 2:
        return float("nan"), float("nan")
    sums = np.bincount(cluster_of, weights=values, minlength=n_clusters)
    counts = np.bincount(cluster_of, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # bounded memory for many clusters
        stop = min(start + 1000, n_resamples)
        idx = rng.integers(0, n_clusters, (stop - start, n_clusters))
        means[start:stop] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


# why a row's model-based values are undefined (counted per group, never dropped silently)
REASON_COLUMNS = ("auc_degenerate", "perturbation_degenerate", "occlusion_degenerate", "falsification_degenerate",
                  "falsification_sized_degenerate", "not_applicable", "degenerate_dissimilarity", "game_degenerate")


def undefined(reasons: pd.Series) -> pd.Series:
    """Rows whose reason column names why a value is undefined; '' (defined) and the reasons that
    only say the metric does not apply to the row's kind (`not_a_region_pair`, `not_a_triplet`) are
    not counted."""
    text = reasons.astype(str)
    return (text != "") & ~text.str.startswith("not_a_")


def summarise(table: pd.DataFrame, by: list[str], n_resamples: int = 1000, seed: int = 0,
              metrics=None, unit: str = "id") -> pd.DataFrame:
    """Per group: n rows, n images, n degenerate (per reason column), and per summarised metric
    (default: the registry's for attribute decisions) n valid, mean, median and the bootstrap CI of
    the mean, resampling images (column `unit`)."""
    metrics = registry.summarised() if metrics is None else metrics
    records = []
    table = table.assign(degenerate=table["degenerate"].fillna(""))
    for key in by:  # an empty key (a pair without a region) is a group of its own, not dropped
        if not pd.api.types.is_numeric_dtype(table[key]) or table[key].isna().all():
            table[key] = table[key].fillna("")
    reasons = [c for c in REASON_COLUMNS if c in table]
    checks = [c for c in ("sanity_reason", "smprt_reason") if c in table]
    for column in reasons + checks:
        table[column] = table[column].fillna("")
    for keys, group in table.groupby(by, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        record = dict(zip(by, keys))
        record["unit"] = "image"
        record["n"] = len(group)
        record["n_images"] = int(group[unit].nunique())
        record["n_degenerate"] = int(undefined(group["degenerate"]).sum())
        for column in reasons:
            record[f"n_{column}"] = int(undefined(group[column]).sum())
        for column in ("degenerate", *reasons):  # and per reason
            for value, count in group.loc[undefined(group[column]), column].value_counts().sort_index().items():
                record[f"n_{column}:{value}"] = int(count)
        for column in checks:  # randomised maps that collapsed (scored as changed)
            record[f"n_{column.split('_')[0]}_collapsed"] = int((group[column] == "collapsed").sum())
        if "completeness_flagged" in group:
            record["n_completeness_flagged"] = int(group["completeness_flagged"].isin([True, "True"]).sum())
        for metric in (m for m in metrics if m in group):
            values = group[metric].to_numpy(np.float64)
            finite = np.isfinite(values)
            valid = values[finite]
            low, high = cluster_bootstrap_mean_ci(valid, group[unit].to_numpy()[finite], n_resamples, seed)
            record.update({f"{metric}_n_valid": valid.size,
                           f"{metric}_mean": valid.mean() if valid.size else np.nan,
                           f"{metric}_median": np.median(valid) if valid.size else np.nan,
                           f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        records.append(record)
    return with_budget(pd.DataFrame.from_records(records), method_budgets(table))


def aggregate(per_sample_csvs, model_metric_tsvs: dict[str, str], outputs: dict[str, str], *,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write one summary CSV per grouping; rows of flagged model attributes carry model_flagged=True."""
    table = pd.concat([pd.read_csv(p, keep_default_na=True) for p in per_sample_csvs], ignore_index=True)
    flags = pd.concat([pd.read_csv(p, sep="\t").assign(model=m)[["model", "attribute", "flagged", "auroc"]]
                       for m, p in model_metric_tsvs.items()], ignore_index=True)
    flags = flags.rename(columns={"flagged": "model_flagged", "auroc": "model_auroc"})
    out = {}
    for name, by in GROUPS.items():
        if name not in outputs:
            continue
        summary = summarise(table, by, n_resamples, seed)
        if "attribute" in by:
            summary = summary.merge(flags, on=["model", "attribute"], how="left")
        with atomic_path(outputs[name]) as tmp:
            summary.to_csv(tmp, index=False)
        out[name] = summary
    return out


def summarise_tables(csvs, out_csv, *, by: list[str], metrics, n_resamples: int = 1000, seed: int = 0,
                     prepare=None) -> pd.DataFrame:
    """Concatenate per-sample tables and summarise `metrics` per group into one CSV; `prepare`
    (table -> table) is applied first (verification pairs: `stats.pair_rows_at_chance`)."""
    table = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    if prepare is not None:
        table = prepare(table)
    summary = summarise(table, by, n_resamples, seed, metrics=metrics)
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    return summary
