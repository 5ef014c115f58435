"""Aggregate per-sample metric tables: mean, median, seeded 95 % bootstrap CI, n valid, n degenerate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .metrics import registry

GROUPS = {"by_attribute": ["model", "method", "attribute", "region"],
          "by_region": ["model", "method", "region"]}


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


def summarise(table: pd.DataFrame, by: list[str], n_resamples: int = 1000, seed: int = 0,
              metrics=None) -> pd.DataFrame:
    """Per group: n, n degenerate, and per summarised metric (default: the registry's for attribute
    decisions) n valid, mean, median and the bootstrap CI of the mean."""
    metrics = registry.summarised() if metrics is None else metrics
    records = []
    table = table.assign(degenerate=table["degenerate"].fillna(""))
    for key in by:  # an empty key (a pair without a region) is a group of its own, not dropped
        if not pd.api.types.is_numeric_dtype(table[key]) or table[key].isna().all():
            table[key] = table[key].fillna("")
    if "falsification_degenerate" in table:
        table["falsification_degenerate"] = table["falsification_degenerate"].fillna("")
    for keys, group in table.groupby(by, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        record = dict(zip(by, keys))
        record["n"] = len(group)
        record["n_degenerate"] = int((group["degenerate"] != "").sum())
        if "falsification_degenerate" in group:
            record["n_falsification_degenerate"] = int((group["falsification_degenerate"] != "").sum())
        for metric in (m for m in metrics if m in group):
            values = group[metric].to_numpy(np.float64)
            valid = values[np.isfinite(values)]
            low, high = bootstrap_mean_ci(valid, n_resamples, seed)
            record.update({f"{metric}_n_valid": valid.size,
                           f"{metric}_mean": valid.mean() if valid.size else np.nan,
                           f"{metric}_median": np.median(valid) if valid.size else np.nan,
                           f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        records.append(record)
    return pd.DataFrame.from_records(records)


def aggregate(per_sample_csvs, model_metric_tsvs: dict[str, str], outputs: dict[str, str], *,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write one summary CSV per grouping; rows of flagged model attributes carry model_flagged=True."""
    table = pd.concat([pd.read_csv(p, keep_default_na=True) for p in per_sample_csvs], ignore_index=True)
    flags = pd.concat([pd.read_csv(p, sep="\t").assign(model=m)[["model", "attribute", "flagged", "auroc"]]
                       for m, p in model_metric_tsvs.items()], ignore_index=True)
    flags = flags.rename(columns={"flagged": "model_flagged", "auroc": "model_auroc"})
    out = {}
    for name, by in GROUPS.items():
        summary = summarise(table, by, n_resamples, seed)
        if "attribute" in by:
            summary = summary.merge(flags, on=["model", "attribute"], how="left")
        with atomic_path(outputs[name]) as tmp:
            summary.to_csv(tmp, index=False)
        out[name] = summary
    return out


def summarise_tables(csvs, out_csv, *, by: list[str], metrics, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Concatenate per-sample tables and summarise `metrics` per group into one CSV."""
    table = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    summary = summarise(table, by, n_resamples, seed, metrics=metrics)
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    return summary
