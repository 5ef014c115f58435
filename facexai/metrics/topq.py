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
from .registry import mask_columns


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


MASK_METRICS = mask_columns()


def _row(mass: np.ndarray, region: np.ndarray, target: np.ndarray | None, shape, k: int) -> tuple:
    """Every metric of one map (flat float32 mass) and region (flat bool), from one sort.

    The same definitions as the public functions above (which the tests compare it with), computed
    so that the one O(P log P) sort serves every rank: thresholds, tie counts and AUC mid-ranks are
    binary searches, and the counts inside R look only at R's values."""
    n_pixels = mass.size
    n_in = int(np.count_nonzero(region))
    total = float(mass.sum(dtype=np.float64))
    if not np.isfinite(total) or not total > 0:
        reason = "empty_region" if n_in == 0 else "nonfinite_map" if not np.isfinite(total) else "zero_map"
        return (np.nan,) * 8 + (reason,)
    ordered = np.sort(mass)
    inside = mass[region]
    inside_sorted = np.sort(inside)

    def above_tied(values_sorted, t):
        right, left = np.searchsorted(values_sorted, t, "right"), np.searchsorted(values_sorted, t, "left")
        return values_sorted.size - right, right - left

    def expected_hits(kk):
        t = ordered[n_pixels - kk]
        n_above, n_tied = above_tied(ordered, t)
        h_above, h_tied = above_tied(inside_sorted, t)
        return h_above + (kk - n_above) * h_tied / n_tied

    # spatial coherence needs no region
    top = ((mass >= ordered[n_pixels - k]) & (mass > 0)).reshape(shape)
    labels, n_comp = ndimage.label(top, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())[1:]
    coherence = (float(n_comp), sizes.max() / sizes.sum())
    if n_in == 0:
        return (np.nan,) * 5 + coherence + (np.nan, "empty_region")
    rp = float(inside.sum(dtype=np.float64)) / total
    hits_q = expected_hits(k)
    recall, iou = hits_q / n_in, hits_q / (k + n_in - hits_q)
    rank_accuracy = expected_hits(n_in) / n_in
    peak = ordered[-1]
    n_peak = above_tied(ordered, peak)[1]
    pointing = np.count_nonzero((inside_sorted if target is None else mass[target]) == peak) / n_peak
    auc = np.nan
    if n_in < n_pixels:
        midrank = (np.searchsorted(ordered, inside_sorted, "left") + np.searchsorted(ordered, inside_sorted, "right")
                   + 1) / 2
        auc = (midrank.sum() - n_in * (n_in + 1) / 2) / (n_in * (n_pixels - n_in))
    return (rp, recall, iou, rank_accuracy, pointing, *coherence, auc, "")


def mask_metrics(maps, regions, *, q: float = 10, tolerance: float = 0.0, mode: str = "positive",
                 chunk: int = 64, workers: int = 2) -> dict[str, np.ndarray]:
    """Every metric against the region masks, in chunks of `chunk` samples (bounded memory).

    maps (N, h, w) at any resolution are resized (bilinear) to the regions' (N, H, W) chunk by
    chunk. Returns columns (N,) each: rp, chance, lift, recall, iou, rank_accuracy, pointing,
    components, largest_share, auc, and `degenerate` (str: '' or why the values are NaN). Rows are
    computed by `workers` threads (numpy's sorts run without the GIL). `auc_degenerate` names why
    only the AUC is NaN on a row that is otherwise defined (`region_covers_image`).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .localisation import positive_part, resize_maps

    maps, regions = np.asarray(maps), np.asarray(regions, bool)
    if maps.ndim != 3 or regions.ndim != 3 or len(maps) != len(regions):
        raise ValueError(f"maps {maps.shape} and regions {regions.shape} must be (N, h, w) and (N, H, W)")
    if tolerance < 0:
        raise ValueError(f"pointing game tolerance must be >= 0 pixels, got {tolerance}")
    n, shape = len(maps), regions.shape[1:]
    k = top_count(q, shape[0] * shape[1])
    out = {name: np.full(n, np.nan) for name in MASK_METRICS}
    out["degenerate"] = np.full(n, "", dtype=object)
    out["chance"] = regions.reshape(n, shape[0] * shape[1]).mean(axis=1) if n else np.zeros(0)
    disk = _disk(tolerance) if tolerance > 0 else None
    order = ("rp", "recall", "iou", "rank_accuracy", "pointing", "components", "largest_share", "auc")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            if maps.shape[1:] == shape:
                m = positive_part(maps[a:b], mode)
            else:
                m = positive_part(resize_maps(maps[a:b].astype(np.float32), shape), mode)
            m = m.reshape(b - a, -1)
            r = regions[a:b].reshape(b - a, -1)

            def one(i, m=m, r=r, a=a):
                target = None if disk is None else ndimage.binary_dilation(regions[a + i], disk).ravel()
                return _row(np.ascontiguousarray(m[i]), r[i], target, shape, k)

            for i, values in enumerate(pool.map(one, range(b - a))):
                for name, value in zip(order, values[:-1]):
                    out[name][a + i] = value
                out["degenerate"][a + i] = values[-1]
    # a map with a non-finite pixel is broken even where its positive part looks finite (-inf has no
    # positive mass): NaN for every value, named
    pixels = int(np.prod(maps.shape[1:]))
    broken = ~np.isfinite(maps.reshape(n, pixels)).all(axis=1) & (out["degenerate"] != "empty_region")
    for name in order:
        out[name][broken] = np.nan
    out["degenerate"][broken] = "nonfinite_map"
    with np.errstate(invalid="ignore", divide="ignore"):
        out["lift"] = np.where(out["chance"] > 0, out["rp"] / out["chance"], np.nan)
    # AUC alone is undefined when the region is the whole image (no pixel outside to separate from)
    out["auc_degenerate"] = np.where((out["degenerate"] == "") & (out["chance"] == 1.0), "region_covers_image", "")
    return out
