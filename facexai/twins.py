"""Fair vs biased twin: where each method's map mass goes for the shortcut attribute, as a table.

A twin is two models of one architecture, the fair one trained on the main set and the biased one on
the shortcut set (a background tint that agrees with one attribute in most training images). For the
decisions on that attribute, each map's mass (the configured mass, resized to the label resolution)
is split over the parts of a partition of the label map (`labels.MASS_PARTS`). Per twin, method and
part: the mean share for each model with a 95 % bootstrap CI, and the paired difference biased - fair
over the images both explain, with its CI. The unit is the image (one decision per image here);
maps without mass are counted (`n_*_no_mass`), never dropped silently.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from .aggregate import cluster_bootstrap_mean_ci
from .atomic import atomic_path
from .attributions.store import read_maps, read_shard
from .data.samples import read_rows
from .labels import MASS_PARTS
from .metrics.localisation import mass_shares

COLUMNS = ["fair", "biased", "method", "attribute", "part", "unit", "fair_mean", "fair_ci_low", "fair_ci_high",
           "fair_n_images", "fair_n_no_mass", "biased_mean", "biased_ci_low", "biased_ci_high", "biased_n_images",
           "biased_n_no_mass", "difference_mean", "difference_ci_low", "difference_ci_high", "n_paired"]


def decision_shares(dataset_h5, shard_paths, attribute: str, mode: str = "positive") -> pd.DataFrame:
    """One row per explained decision on `attribute`: its sample id and the share of its map's mass in
    each part (NaN where the map has no mass)."""
    frames = []
    for path in shard_paths:
        shard = read_shard(path, maps=False)
        keep = np.flatnonzero(shard["attribute"] == attribute)
        if not len(keep):
            continue
        with h5py.File(dataset_h5, "r") as h5:
            labels = read_rows(h5, "labels", shard["row"][keep])
        shares = mass_shares(read_maps(path, keep), labels, mode)
        frames.append(pd.DataFrame(shares, columns=list(MASS_PARTS)).assign(id=shard["ids"][keep]))
    if not frames:
        return pd.DataFrame(columns=["id", *MASS_PARTS])
    return pd.concat(frames, ignore_index=True)


def _bootstrap_mean(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    low, high = cluster_bootstrap_mean_ci(values, np.arange(values.size), n_resamples, seed)
    return (float(values.mean()) if values.size else np.nan), low, high


def _twin_records(shares: dict, fair: str, biased: str, method: str, attribute: str, n_resamples: int,
                  seed: int) -> list[dict]:
    """The rows of one twin and method from the two models' decision shares."""
    records = []
    paired = shares[fair].merge(shares[biased], on="id", suffixes=("_fair", "_biased"))
    for part in MASS_PARTS:
        record = {"fair": fair, "biased": biased, "method": method, "attribute": attribute, "part": part,
                  "unit": "image"}
        for side, model in (("fair", fair), ("biased", biased)):
            values = shares[model][part].to_numpy(np.float64)
            mean, low, high = _bootstrap_mean(values, n_resamples, seed)
            record.update({f"{side}_mean": mean, f"{side}_ci_low": low, f"{side}_ci_high": high,
                           f"{side}_n_images": int(shares[model]["id"].nunique()),
                           f"{side}_n_no_mass": int((~np.isfinite(values)).sum())})
        difference = (paired[f"{part}_biased"] - paired[f"{part}_fair"]).to_numpy(np.float64)
        mean, low, high = _bootstrap_mean(difference, n_resamples, seed)
        record.update(difference_mean=mean, difference_ci_low=low, difference_ci_high=high,
                      n_paired=int(np.isfinite(difference).sum()))
        records.append(record)
    return records


def _all_shares(dataset_h5s, attribution_h5s, twins, attribute, mode) -> dict:
    methods = sorted({method for _, method in attribution_h5s})
    return {(model, method): decision_shares(dataset_h5s[model], attribution_h5s[(model, method)], attribute, mode)
            for pair in twins for model in pair for method in methods}


def twin_shift(dataset_h5s: dict, attribution_h5s: dict, twins, attribute: str, *, mode: str = "positive",
               n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """attribution_h5s: {(model, method): [shard files]}; dataset_h5s: {model: its fused dataset}."""
    shares = _all_shares(dataset_h5s, attribution_h5s, twins, attribute, mode)
    records = []
    for fair, biased in twins:
        for method in sorted({method for _, method in attribution_h5s}):
            records += _twin_records({m: shares[(m, method)] for m in (fair, biased)}, fair, biased, method,
                                     attribute, n_resamples, seed)
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def twin_shift_by_group(dataset_h5s: dict, attribution_h5s: dict, twins, attribute: str, groups, *,
                        mode: str = "positive", n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """`twin_shift` within each group's members and the rest (config `groups`; an image of unknown
    membership in neither), with columns `group` and `member` after `attribute`."""
    from .groups import MEMBER, REST, membership

    shares = _all_shares(dataset_h5s, attribution_h5s, twins, attribute, mode)
    records = []
    for group in groups:
        side_of = {key: membership(dataset_h5s[key[0]], frame["id"].to_numpy(), [group])[group].to_numpy()
                   for key, frame in shares.items()}
        for side in (MEMBER, REST):
            for fair, biased in twins:
                for method in sorted({method for _, method in attribution_h5s}):
                    kept = {m: shares[(m, method)][side_of[(m, method)] == side] for m in (fair, biased)}
                    records += [{**r, "group": group, "member": side}
                                for r in _twin_records(kept, fair, biased, method, attribute, n_resamples, seed)]
    columns = COLUMNS[:4] + ["group", "member"] + COLUMNS[4:]
    return pd.DataFrame.from_records(records, columns=columns)


def write_twin_shift(dataset_h5s: dict, attribution_h5s: dict, twins, attribute: str, out_csv, *, groups=None,
                     **kwargs) -> None:
    """The twin table; with `groups`, the same per group and membership (`twin_shift_by_group`)."""
    if groups is None:
        table = twin_shift(dataset_h5s, attribution_h5s, twins, attribute, **kwargs)
    else:
        table = twin_shift_by_group(dataset_h5s, attribution_h5s, twins, attribute, groups, **kwargs)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
