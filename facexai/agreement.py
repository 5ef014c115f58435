"""Do the metrics agree? Method rankings per metric, Kendall's tau between metrics, a consensus ranking.

Metrics often rank attribution methods differently (LATEC, NeurIPS 2024): one metric's winner is not
a finding. Per model (or per verification pair kind), for every tested metric of the registry:

* each method's score is the mean over images of its per-image mean (the unit is the image), taken
  over the images where every compared method has a finite value of that metric (complete cases, so
  all methods are scored on the same images);
* methods are ranked in the metric's good direction (1 = best, ties share the mean rank);
* two metrics agree as much as Kendall's tau-b between their rankings (1: same order, -1: reversed);
* the consensus ranking is each method's mean rank over the metrics.

Uncertainty: a bootstrap over images (one draw of images, with replacement, serves every metric at
once, so the taus of one resample are computed on the same images), with percentile CIs for every
tau and every method's consensus rank. Resamples where a tau is undefined (a metric ties every
method) are left out of its CI and counted.

The model-free baselines (random, edge, centre, parts) and the pair oracle (difference) are not ranked:
every metric puts random last (and the oracle first on localisation), which would make any two
metrics agree. With fewer than 3 ranked methods tau says little; `n_methods` is
in every row.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .attributions import MODEL_FREE_BASELINES, ORACLES, RANDOM
from .metrics import registry


def per_image_matrix(rows: pd.DataFrame, metric: str, methods: list[str]) -> pd.DataFrame:
    """Images x methods: each method's mean of `metric` over the image's decisions (NaN rows left
    out), restricted to the images where every method has a value."""
    wide = (rows[["id", "method", metric]].dropna(subset=[metric]).groupby(["id", "method"])[metric].mean()
            .unstack("method").reindex(columns=methods))
    return wide.dropna(how="any")


def ranks(scores: np.ndarray, direction: int) -> np.ndarray:
    """Ranks of methods (last axis), 1 = best in the metric's direction, ties at their mean rank;
    rows with a NaN score stay NaN."""
    scores = np.asarray(scores, np.float64)
    out = rankdata(-direction * scores, axis=-1)
    out[~np.isfinite(scores).all(axis=-1)] = np.nan
    return out


def kendall_tau_b(rank_a: np.ndarray, rank_b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between two rankings of the same methods (last axis; any leading axes):
    sum sign(a_i - a_j) sign(b_i - b_j) / sqrt(#pairs untied in a * #pairs untied in b); NaN when
    either ranking ties every method or has a NaN."""
    rank_a, rank_b = np.asarray(rank_a, np.float64), np.asarray(rank_b, np.float64)
    i, j = np.triu_indices(rank_a.shape[-1], k=1)
    sa, sb = np.sign(rank_a[..., i] - rank_a[..., j]), np.sign(rank_b[..., i] - rank_b[..., j])
    denom = np.sqrt((sa ** 2).sum(axis=-1) * (sb ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (sa * sb).sum(axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)


def _ci(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def metric_agreement(table: pd.DataFrame, metrics=None, group: str = "model", n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95, exclude=(RANDOM, *MODEL_FREE_BASELINES, *ORACLES)
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(agreement, ranks) tables.

    agreement: per group and pair of metrics, tau with its bootstrap CI, n_methods, the complete-case
    images of each metric, and n_resamples_undefined. ranks: per group, metric and method, the
    method's score (mean of per-image means), rank and n_images; and rows with metric = `consensus`:
    the mean rank over metrics with its bootstrap CI."""
    metrics = registry.tested() if metrics is None else metrics
    agreement_records, rank_records = [], []
    for name, rows in table.groupby(group, sort=True):
        methods = sorted(set(rows["method"]) - set(exclude))
        present = [m for m in metrics if m in rows and rows[m].notna().any()]
        mats = {m: per_image_matrix(rows, m, methods) for m in present}
        used = [m for m in present if len(mats[m]) > 0]
        if len(methods) < 2 or not used:
            continue
        images = np.unique(np.concatenate([mats[m].index.to_numpy() for m in used]))
        position = {image: k for k, image in enumerate(images)}
        rng = np.random.default_rng(seed)
        # weights: how often each image is drawn in each resample (multinomial = draws with replacement)
        weights = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), size=n_resamples)
        point_ranks, boot_ranks = {}, {}
        for m in used:
            values = mats[m].to_numpy(np.float64)
            cols = [position[i] for i in mats[m].index]
            w = weights[:, cols].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot_means = (w @ values) / w.sum(axis=1, keepdims=True)
            direction = registry.direction(m)
            point_means = values.mean(axis=0)
            point_ranks[m] = ranks(point_means, direction)
            boot_ranks[m] = ranks(boot_means, direction)
            for k, method in enumerate(methods):
                low, high = _ci(boot_ranks[m][:, k], level)
                rank_records.append({group: name, "metric": m, "method": method, "score": float(point_means[k]),
                                     "rank": float(point_ranks[m][k]), "rank_ci_low": low, "rank_ci_high": high,
                                     "n_images": len(values), "n_methods": len(methods)})
        for a, b in itertools.combinations(used, 2):
            tau = float(kendall_tau_b(point_ranks[a], point_ranks[b]))
            boot = kendall_tau_b(boot_ranks[a], boot_ranks[b])
            low, high = _ci(boot, level)
            agreement_records.append({group: name, "metric_a": a, "metric_b": b, "tau": tau, "ci_low": low,
                                      "ci_high": high, "n_methods": len(methods), "n_images_a": len(mats[a]),
                                      "n_images_b": len(mats[b]), "n_resamples": n_resamples,
                                      "n_resamples_undefined": int((~np.isfinite(boot)).sum())})
        point = np.mean(np.stack([point_ranks[m] for m in used]), axis=0)
        with warnings.catch_warnings():  # a resample where no metric is defined stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            boot = np.nanmean(np.stack([boot_ranks[m] for m in used]), axis=0)
        for k, method in enumerate(methods):
            low, high = _ci(boot[:, k], level)
            rank_records.append({group: name, "metric": "consensus", "method": method, "score": float(point[k]),
                                 "rank": float(point[k]), "rank_ci_low": low, "rank_ci_high": high,
                                 "n_images": len(images), "n_methods": len(methods)})
    agreement = pd.DataFrame.from_records(agreement_records, columns=[
        group, "metric_a", "metric_b", "tau", "ci_low", "ci_high", "n_methods", "n_images_a", "n_images_b",
        "n_resamples", "n_resamples_undefined"])
    rank_table = pd.DataFrame.from_records(rank_records, columns=[
        group, "metric", "method", "score", "rank", "rank_ci_low", "rank_ci_high", "n_images", "n_methods"])
    return agreement, rank_table


def agreement_summary(agreement: pd.DataFrame, rank_table: pd.DataFrame, group: str = "model") -> dict:
    """Per group: the mean tau over metric pairs, the share of pairs whose CI excludes 0 on the
    positive side (agree) and on the negative side (disagree), and the consensus ranking (best
    first: method, mean rank over metrics with its CI)."""
    out = {}
    for name in sorted(set(agreement[group]) | set(rank_table[group]), key=str):
        pairs = agreement[agreement[group] == name]
        consensus = rank_table[(rank_table[group] == name) & (rank_table["metric"] == "consensus")]
        consensus = consensus.sort_values("score")
        out[str(name)] = {
            "n_metrics": int(len(set(pairs["metric_a"]) | set(pairs["metric_b"]))),
            "n_methods": int(consensus["n_methods"].iloc[0]) if len(consensus) else 0,
            "mean_tau": float(pairs["tau"].mean()) if len(pairs) else None,
            "share_agree": float((pairs["ci_low"] > 0).mean()) if len(pairs) else None,
            "share_disagree": float((pairs["ci_high"] < 0).mean()) if len(pairs) else None,
            "consensus": [{"method": r.method, "mean_rank": r.score, "ci_low": r.rank_ci_low,
                           "ci_high": r.rank_ci_high} for r in consensus.itertuples()],
        }
    return out
