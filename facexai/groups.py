"""Per-group audits: does a method score, or put its mass, differently on one group of faces than on
the rest?

A group is a binary attribute of the explained image (config `groups`: CelebA attribute columns
such as Male, Young, Pale_Skin; in the synthetic set Pale_Skin follows the drawn skin tone). An
image is a member when the dataset's attribute is positive, not one when it is negative; 0
(unknown, e.g. a photo folder without the column) leaves it out of that group's rows, counted.
For a verification pair the group is that of the explained image (image a).

* `group_rows`: the per-sample rows once per group, with columns `group` (the attribute) and
  `member` (yes / no), to be summarised like any table (CIs by image).
* `group_differences`: per model, method, region, metric and group, the mean over member images
  against the mean over the other images (each image's decisions averaged first), the difference
  with a bootstrap CI, and a two-sided Mann-Whitney U test (exact permutation p, ties included, up
  to EXACT_UP_TO units; scipy's normal approximation above). The unit of the test and the CI is the
  person where the dataset names persons (`identity`: one person's images are not independent): the
  test compares the persons' means, the bootstrap resamples persons with all their images within
  each side; else the image. A person whose images fall on both sides (an attribute such as Smiling
  or Young that varies between photos) is a unit on each side, so the two sides are then not
  independent samples. Holm per metric and
  model over methods, regions and groups; `untestable` where even complete separation of the two
  sides (the smallest p their sizes allow, 2 / C(n1 + n2, n1) when exact) could not pass in its
  family, so a small group is never reported as "no difference".
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
from scipy import stats

from .labels import ATTRIBUTE_INDEX

MEMBER, REST, UNKNOWN = "yes", "no", ""
DIFFERENCE_COLUMNS = ["metric", "model", "method", "region", "group", "unit", "n_member", "n_rest", "n_member_units",
                      "n_rest_units", "n_unknown", "n_dropped",
                      "mean_member", "mean_rest", "difference", "difference_ci_low", "difference_ci_high", "statistic",
                      "p", "p_best", "p_holm", "min_p_holm", "verdict"]


def check_groups(groups) -> list[str]:
    unknown = [g for g in groups if g not in ATTRIBUTE_INDEX]
    if unknown:
        raise ValueError(f"groups: unknown attribute(s) {unknown}; groups are CelebA attribute names "
                         f"({', '.join(list(ATTRIBUTE_INDEX)[:4])}, ...)")
    return list(groups)


def membership(dataset_h5, ids, groups) -> pd.DataFrame:
    """Per id (in the order given): yes / no / "" (unknown) for each group, from the dataset's
    attribute columns."""
    groups = check_groups(groups)
    with h5py.File(dataset_h5, "r") as h5:
        index = pd.Series(np.arange(len(h5["ids"])), index=h5["ids"][:])
        if index.index.has_duplicates:
            raise ValueError(f"{dataset_h5}: duplicate sample ids")
        ids = np.asarray(ids, np.int64)
        missing = sorted(set(ids.tolist()) - set(index.index.tolist()))
        if missing:
            raise ValueError(f"{dataset_h5}: sample id(s) {missing[:10]} are not in the dataset")
        attributes = h5["attributes"][:][index.loc[ids].to_numpy()] if len(ids) else np.zeros((0, 40), np.int8)
    out = {}
    for g in groups:
        values = attributes[:, ATTRIBUTE_INDEX[g]]
        out[g] = np.where(values > 0, MEMBER, np.where(values < 0, REST, UNKNOWN))
    return pd.DataFrame(out, index=range(len(ids)))


def persons(dataset_h5, ids) -> np.ndarray | None:
    """Each id's person (the dataset's `identity`), or None when the dataset names no persons."""
    with h5py.File(dataset_h5, "r") as h5:
        if "identity" not in h5:
            return None
        index = pd.Series(np.arange(len(h5["ids"])), index=h5["ids"][:])
        identity = h5["identity"][:]
    rows = index.loc[np.asarray(ids, np.int64)].to_numpy() if len(ids) else np.array([], np.int64)
    return identity[rows]


# the column `with_membership` adds for each row's person (NaN: the dataset names none)
PERSON = "_person"


def with_membership(table: pd.DataFrame, dataset_h5s: dict, groups, model_column: str = "model") -> pd.DataFrame:
    """`table` with one column `group:NAME` per group: its rows' images' membership, read from each
    model's dataset (dataset_h5s: model -> file; one file for every model when given as {None: file}),
    and PERSON: the image's person (NaN where the dataset names none)."""
    table = table.reset_index(drop=True)
    columns = {f"group:{g}": np.full(len(table), UNKNOWN, dtype=object) for g in groups}
    person = np.full(len(table), np.nan)
    for model, rows in table.groupby(model_column, sort=False):
        path = dataset_h5s.get(model, dataset_h5s.get(None))
        if path is None:
            raise ValueError(f"groups: no dataset for model {model!r}")
        found = membership(path, rows["id"].to_numpy(), groups)
        for g in groups:
            columns[f"group:{g}"][rows.index] = found[g].to_numpy()
        who = persons(path, rows["id"].to_numpy())
        if who is not None:
            person[rows.index] = who
    return table.assign(**columns, **{PERSON: person})


def group_rows(table: pd.DataFrame, groups) -> pd.DataFrame:
    """The rows once per group (rows of unknown membership left out): columns `group`, `member`."""
    parts = []
    for g in groups:
        member = table[f"group:{g}"]
        parts.append(table[member != UNKNOWN].assign(group=g, member=member[member != UNKNOWN]))
    out = pd.concat(parts, ignore_index=True) if parts else table.iloc[:0].assign(group="", member="")
    return out.drop(columns=[f"group:{g}" for g in groups] + [PERSON], errors="ignore")


# up to this many images in all (both sides) the p-value is exact (the permutation distribution of
# the rank sum, ties included); above it scipy's normal approximation with its tie correction
EXACT_UP_TO = 120


def rank_sum_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact permutation p of the Mann-Whitney / Wilcoxon rank-sum statistic of `a`
    against `b`, ties included (mid-ranks): twice the smaller tail, each tail the share of the
    C(n1 + n2, n1) ways to choose which values are `a` whose rank sum is at least (at most) the
    observed one. The distribution is counted by dynamic programming over the (doubled, integer)
    mid-ranks. Without ties it equals scipy's exact test."""
    pooled = np.concatenate([a, b])
    doubled = np.rint(2 * stats.rankdata(pooled)).astype(np.int64)   # mid-ranks are multiples of 1/2
    n1, total = a.size, int(doubled.sum())
    counts = np.zeros((n1 + 1, total + 1))
    counts[0, 0] = 1.0
    for r in doubled:
        counts[1:, r:] = counts[1:, r:] + counts[:-1, :total + 1 - r].copy()
    dist = counts[n1] / counts[n1].sum()
    observed = int(doubled[:n1].sum())
    # twice the smaller tail (scipy's two-sided convention; with ties the distribution is not symmetric)
    return float(min(1.0, 2 * min(dist[observed:].sum(), dist[:observed + 1].sum())))


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(U of a, two-sided p, p_best): Mann-Whitney U of a against b (one value per unit: person or
    image), p exact up to EXACT_UP_TO units (ties included), asymptotic above; p_best the p of
    complete separation of samples of these sizes (exact: 2 / C(n1 + n2, n1)), the smallest any
    outcome can give, never above p."""
    import math

    if a.size == 0 or b.size == 0:
        return np.nan, np.nan, np.nan
    statistic = float(stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").statistic)
    if a.size + b.size <= EXACT_UP_TO:
        p = rank_sum_p(a, b)
        best = min(1.0, 2 / math.comb(a.size + b.size, a.size))
    else:
        p = float(stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)
        best = float(stats.mannwhitneyu(np.arange(a.size), a.size + np.arange(b.size), alternative="two-sided",
                                        method="asymptotic").pvalue)
    return statistic, p, min(best, p)


def cluster_means(values: np.ndarray, units: np.ndarray, n_resamples: int, rng) -> np.ndarray:
    """Bootstrap distribution (n_resamples,) of the mean of `values`, whole units resampled with
    replacement (each with all its values); NaN with fewer than 2 units. values may be (n, k):
    then (n_resamples, k), one resample serving every column."""
    values = np.asarray(values, np.float64)
    shape = (n_resamples,) + values.shape[1:]
    if not values.shape[0]:
        return np.full(shape, np.nan)
    _, inverse = np.unique(np.asarray(units), return_inverse=True)
    m = int(inverse.max()) + 1
    if m < 2:
        return np.full(shape, np.nan)
    flat = values.reshape(values.shape[0], -1)
    sums = np.stack([np.bincount(inverse, flat[:, j], m) for j in range(flat.shape[1])], axis=1)
    count = np.bincount(inverse, minlength=m).astype(np.float64)
    weights = np.zeros((n_resamples, m))
    np.add.at(weights, (np.repeat(np.arange(n_resamples), m), rng.integers(0, m, n_resamples * m)), 1.0)
    return ((weights @ sums) / (weights @ count)[:, None]).reshape(shape)


def _difference_ci(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int, units_a=None,
                   units_b=None) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(a) - mean(b), each side resampled on its own, by unit (person)
    when units are given, else by value."""
    rng = np.random.default_rng(seed)
    ua = np.arange(a.size) if units_a is None else units_a
    ub = np.arange(b.size) if units_b is None else units_b
    diffs = cluster_means(a, ua, n_resamples, rng) - cluster_means(b, ub, n_resamples, rng)
    if not np.isfinite(diffs).all():
        return np.nan, np.nan
    return float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))


def by_unit(values: pd.Series, units: pd.Series | None) -> np.ndarray:
    """The mean of `values` per unit (person), or the values when there are no units."""
    if units is None:
        return values.to_numpy(np.float64)
    return values.groupby(units.to_numpy()).mean().to_numpy(np.float64)


def group_differences(table: pd.DataFrame, groups, metrics, *, by=("model", "method", "region"),
                      alpha: float = 0.05, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """See the module docstring; `table` has the `group:NAME` columns (`with_membership`)."""
    from .stats import best_adjusted_p, holm

    by = list(by)
    records = []
    for metric in (m for m in metrics if m in table):
        for keys, rows in table.groupby(by, sort=True, dropna=False):
            keys = keys if isinstance(keys, tuple) else (keys,)
            values = rows[metric].to_numpy(np.float64)
            ok = np.isfinite(values)
            if not ok.any():
                continue
            # images without a finite value of the metric in any of their rows: counted, in no side
            dropped = rows["id"].nunique() - rows.loc[ok, "id"].nunique()
            per_image = rows[ok].assign(_v=values[ok]).groupby("id")
            means = per_image["_v"].mean()
            # the person is the unit when the dataset names persons (group membership is theirs)
            person = per_image[PERSON].first() if PERSON in rows else None
            if person is not None and person.isna().any():
                person = None
            for g in groups:
                side = per_image[f"group:{g}"].first()
                a, b = means[side == MEMBER].to_numpy(), means[side == REST].to_numpy()
                ua = None if person is None else person[side == MEMBER]
                ub = None if person is None else person[side == REST]
                unit_a, unit_b = by_unit(means[side == MEMBER], ua), by_unit(means[side == REST], ub)
                statistic, p, p_best = _mann_whitney(unit_a, unit_b)
                low, high = _difference_ci(a, b, n_resamples, seed, None if ua is None else ua.to_numpy(),
                                           None if ub is None else ub.to_numpy())
                records.append({"metric": metric, **dict(zip(by, keys)), "group": g,
                                "unit": "image" if person is None else "person",
                                "n_member": a.size, "n_rest": b.size, "n_member_units": unit_a.size,
                                "n_rest_units": unit_b.size, "n_unknown": int((side == UNKNOWN).sum()),
                                "n_dropped": int(dropped),
                                "mean_member": a.mean() if a.size else np.nan,
                                "mean_rest": b.mean() if b.size else np.nan,
                                "difference": a.mean() - b.mean() if a.size and b.size else np.nan,
                                "difference_ci_low": low, "difference_ci_high": high, "statistic": statistic,
                                "p": p, "p_best": p_best})
    out = pd.DataFrame.from_records(records, columns=[c for c in DIFFERENCE_COLUMNS if c not in
                                                      ("p_holm", "min_p_holm", "verdict")])
    for c in by:
        if c not in out:
            out[c] = pd.Series(dtype=object)
    out["p_holm"] = np.nan
    out["min_p_holm"] = np.nan
    for _, idx in out.groupby(["metric", "model"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"])
        out.loc[idx, "min_p_holm"] = best_adjusted_p(out.loc[idx, "p"], out.loc[idx, "p_best"])
    differ = out["p_holm"] < alpha
    untestable = ~(out["min_p_holm"] < alpha)
    out["verdict"] = np.where(differ, "differ", np.where(untestable, "untestable", "no difference found"))
    return out[[c for c in DIFFERENCE_COLUMNS if c in out] + [c for c in by if c not in DIFFERENCE_COLUMNS]]


def write_group_tables(per_sample_csvs, dataset_h5s: dict, groups, outputs: dict, *, metrics=None,
                       summarised=None, by=("model", "method", "region"), prepare=None, alpha: float = 0.05,
                       n_resamples: int = 1000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The per-group tables of per-sample metric tables: outputs["by_group"] (the summary of the
    `summarised` metrics per group and membership, over all decisions (`outcome` = all) and per
    decision outcome) and outputs["differences"] (`group_differences` on the `metrics`). Defaults:
    the registry's metrics for attribute decisions; `prepare` (table -> table) first (verification
    pairs: `stats.pair_rows_at_chance`). Without groups both files hold their header only."""
    from .aggregate import summarise
    from .atomic import atomic_path
    from .metrics import registry

    groups = check_groups(groups)
    table = pd.concat([pd.read_csv(p) for p in per_sample_csvs], ignore_index=True)
    if prepare is not None:
        table = prepare(table)
    table = with_membership(table, dataset_h5s, groups)
    rows = group_rows(table, groups)
    by = list(by)
    parts = []
    if len(rows):
        parts.append(summarise(rows.assign(outcome="all"), [*by, "outcome", "group", "member"], n_resamples, seed,
                               metrics=summarised))
        if "outcome" in rows:
            parts.append(summarise(rows, [*by, "outcome", "group", "member"], n_resamples, seed, metrics=summarised))
    summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*by, "outcome", "group",
                                                                                       "member"])
    differences = group_differences(table, groups, registry.tested() if metrics is None else metrics, by=by,
                                    alpha=alpha, n_resamples=n_resamples, seed=seed)
    for name, frame in (("by_group", summary), ("differences", differences)):
        with atomic_path(outputs[name]) as tmp:
            frame.to_csv(tmp, index=False)
    return {"by_group": summary, "differences": differences}
