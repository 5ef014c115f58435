"""Rank-based localisation metrics: which pixels a map ranks highest, against the expected region.

All functions take maps (N, H, W) and boolean regions (N, H, W) at the label resolution, rank the
mass a+ (see `positive_part`), and return one value per sample, NaN where the value is undefined
(no finite positive mass, or an empty region; `degenerate_reason` says which).

Definitions (R the region, Omega all pixels, k = ceil(q/100 * |Omega|)):

    regional recall(q)        |top_q ∩ R| / |R|
    top-q IoU(q)              |top_q ∩ R| / |top_q ∪ R|
    relevance rank accuracy   |top_|R| ∩ R| / |R|
    pointing game(r)          the maximum lies within r pixels of R
    spatial coherence(q)      number of 8-connected components of top_q, and the share of top_q in
                              the largest one
    region AUC                ROC AUC of a+ as a score separating R from its complement
                              (P(a+ in R > a+ outside) + P(equal) / 2)

Ties. A map often has many equal values (Grad-CAM's ReLU zeros, upsampled blocks), and the top k
pixels are then not one set. We count the hits that the top-k set has on average over all ways to
break the ties (the pixels above the threshold, plus the share of the tied pixels that fit in k).
The pointing game likewise scores the share of the maximal pixels that lie in R. So a uniform map
scores chance (recall = q/100, pointing = |R|/|Omega|) instead of whatever pixel order happens to
say, and on maps without ties every value equals the plain definition (and Quantus'). Spatial
coherence takes the top set with its ties at the threshold, but never pixels of zero mass.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .localisation import _check, positive_part


def top_count(q: float, n_pixels: int) -> int:
    """k: the number of pixels in the top q percent (at least 1)."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be a percentage in (0, 100], got {q}")
    return max(1, math.ceil(q / 100 * n_pixels - 1e-9))


def _flat(maps, regions, mode):
    maps, regions = _check(maps, regions)
    n = len(maps)
    mass = positive_part(maps, mode).reshape(n, -1)
    regions = regions.reshape(n, -1)
    finite = np.isfinite(mass).all(axis=1)
    defined = finite & (np.where(finite[:, None], mass, 0).sum(axis=1) > 0)
    return mass, regions, defined


def _kth_largest(mass: np.ndarray, k) -> np.ndarray:
    """Per row, the k-th largest value (k an int or one per row)."""
    n_pixels = mass.shape[1]
    ks = np.broadcast_to(np.asarray(k), (len(mass),))
    if len(set(ks.tolist())) <= 1 and len(mass):
        kk = int(ks[0])
        return np.partition(mass, n_pixels - kk, axis=1)[:, n_pixels - kk]
    return np.array([np.partition(row, n_pixels - kk)[n_pixels - kk] for row, kk in zip(mass, ks)], mass.dtype)


def _expected_hits(mass: np.ndarray, regions: np.ndarray, k) -> np.ndarray:
    """E|top_k ∩ R| over the ways of breaking ties at the threshold."""
    k = np.broadcast_to(np.asarray(k, np.float64), (len(mass),))
    t = _kth_largest(mass, k.astype(np.int64))[:, None]
    above, tied = mass > t, mass == t
    n_above, n_tied = above.sum(axis=1), tied.sum(axis=1)
    hits_above, hits_tied = (above & regions).sum(axis=1), (tied & regions).sum(axis=1)
    return hits_above + (k - n_above) * hits_tied / np.maximum(n_tied, 1)


def _finish(values: np.ndarray, defined: np.ndarray, regions: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    values[~defined | ~regions.any(axis=1)] = np.nan
    return values


def _recall_iou(mass, regions, defined, q):
    k = top_count(q, mass.shape[1])
    hits, size = _expected_hits(mass, regions, k), regions.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _finish(hits / size, defined, regions), _finish(hits / (k + size - hits), defined, regions)


def regional_recall(maps, regions, q: float = 10, mode: str = "positive") -> np.ndarray:
    """|top_q ∩ R| / |R| (N,)."""
    return _recall_iou(*_flat(maps, regions, mode), q)[0]


def topq_iou(maps, regions, q: float = 10, mode: str = "positive") -> np.ndarray:
    """|top_q ∩ R| / |top_q ∪ R| (N,), the intersection counted as in `regional_recall`."""
    return _recall_iou(*_flat(maps, regions, mode), q)[1]


def relevance_rank_accuracy(maps, regions, mode: str = "positive") -> np.ndarray:
    """|top_|R| ∩ R| / |R| (N,): of the |R| highest pixels, the share inside R."""
    return _rank_accuracy(*_flat(maps, regions, mode))


def _rank_accuracy(mass, regions, defined):
    size = regions.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hits = _expected_hits(mass, regions, np.maximum(size, 1))
        return _finish(hits / size, defined, regions)


def _disk(radius: float) -> np.ndarray:
    r = math.floor(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return yy ** 2 + xx ** 2 <= radius ** 2


def pointing_game(maps, regions, tolerance: float = 0.0, mode: str = "positive") -> np.ndarray:
    """Share of the map's maximal pixels that lie within `tolerance` pixels (Euclidean) of R (N,):
    1 or 0 when the maximum is unique."""
    return _pointing(*_flat(maps, regions, mode), np.asarray(regions).shape[1:], tolerance)


def _pointing(mass, regions, defined, shape, tolerance):
    target = regions
    if tolerance < 0:
        raise ValueError(f"pointing game tolerance must be >= 0 pixels, got {tolerance}")
    if tolerance > 0:
        disk = _disk(tolerance)
        target = np.stack([ndimage.binary_dilation(r.reshape(shape), disk).ravel() for r in regions])
    peak = mass == np.max(np.where(np.isfinite(mass), mass, -np.inf), axis=1, keepdims=True)
    return _finish((peak & target).sum(axis=1) / np.maximum(peak.sum(axis=1), 1), defined, regions)


_EIGHT = np.ones((3, 3), bool)


def spatial_coherence(maps, q: float = 10, mode: str = "positive") -> tuple[np.ndarray, np.ndarray]:
    """(number of 8-connected components of top_q, share of top_q in the largest one), each (N,);
    NaN where the map has no finite positive mass."""
    maps = np.asarray(maps)
    mass, _, defined = _flat(maps, np.ones(maps.shape, bool), mode)
    return _coherence(mass, defined, maps.shape[1:], q)


def _coherence(mass, defined, shape, q):
    k = top_count(q, mass.shape[1])
    t = _kth_largest(mass, k)
    n_comp, largest = np.full(len(mass), np.nan), np.full(len(mass), np.nan)
    for i in np.flatnonzero(defined):
        top = ((mass[i] >= t[i]) & (mass[i] > 0)).reshape(shape)
        labels, n = ndimage.label(top, structure=_EIGHT)
        sizes = np.bincount(labels.ravel())[1:]
        n_comp[i], largest[i] = n, sizes.max() / sizes.sum()
    return n_comp, largest


def region_auc(maps, regions, mode: str = "positive") -> np.ndarray:
    """ROC AUC of a+ separating R from its complement (N,), ties counted one half (mid-ranks);
    NaN when R or its complement is empty."""
    return _auc(*_flat(maps, regions, mode))


def _auc(mass, regions, defined):
    out = np.full(len(mass), np.nan)
    n_pixels = mass.shape[1]
    for i in np.flatnonzero(defined):
        inside = mass[i][regions[i]]
        n_in = len(inside)
        if n_in == 0 or n_in == n_pixels:
            continue
        ordered = np.sort(mass[i])
        midrank = (np.searchsorted(ordered, inside, "left") + np.searchsorted(ordered, inside, "right") + 1) / 2
        out[i] = (midrank.sum() - n_in * (n_in + 1) / 2) / (n_in * (n_pixels - n_in))
    return out


def mask_metrics(maps, regions, *, q: float = 10, tolerance: float = 0.0, mode: str = "positive",
                 chunk: int = 64) -> dict[str, np.ndarray]:
    """Every metric against the region masks, in chunks of `chunk` samples (bounded memory).

    maps (N, h, w) at any resolution are resized (bilinear) to the regions' (N, H, W) chunk by
    chunk. Returns columns (N,) each: rp, chance, lift, recall, iou, rank_accuracy, pointing,
    components, largest_share, auc, and `degenerate` (str: '' or why the values are NaN).
    """
    from .localisation import (
        chance_level,
        degenerate_reason,
        lift,
        regional_precision,
        resize_maps,
    )

    maps, regions = np.asarray(maps), np.asarray(regions, bool)
    if maps.ndim != 3 or regions.ndim != 3 or len(maps) != len(regions):
        raise ValueError(f"maps {maps.shape} and regions {regions.shape} must be (N, h, w) and (N, H, W)")
    if regions.shape[1] != regions.shape[2]:
        raise ValueError(f"regions must be square, got {regions.shape[1:]}")
    names = ("rp", "chance", "lift", "recall", "iou", "rank_accuracy", "pointing", "components",
             "largest_share", "auc")
    out = {name: np.full(len(maps), np.nan) for name in names}
    out["degenerate"] = np.full(len(maps), "", dtype=object)
    size = regions.shape[1]
    for a in range(0, len(maps), chunk):
        b = min(a + chunk, len(maps))
        m, r = resize_maps(maps[a:b], size), regions[a:b]
        rp = regional_precision(m, r, mode)
        chance = chance_level(r)
        flat = _flat(m, r, mode)
        recall, iou = _recall_iou(*flat, q)
        comp, largest = _coherence(flat[0], flat[2], r.shape[1:], q)
        values = {"rp": rp, "chance": chance, "lift": lift(rp, chance), "recall": recall, "iou": iou,
                      "rank_accuracy": _rank_accuracy(*flat), "pointing": _pointing(*flat, r.shape[1:], tolerance),
                      "components": comp, "largest_share": largest, "auc": _auc(*flat)}
        for name in names:
            out[name][a:b] = values[name]
        out["degenerate"][a:b] = degenerate_reason(m, r, mode)
    return out
