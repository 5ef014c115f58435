"""ROAD: RemOve And Debias (Rong et al. 2022), with noisy linear imputation.

The removed pixels are not set to a constant (a constant patch tells the model where the removed
pixels were, which leaks the map's shape): each removed pixel takes the weighted mean of its 8
neighbours, weights 1/6 for the 4 direct and 1/12 for the 4 diagonal ones, where neighbours may
themselves be removed. That is one sparse linear system per image and percentage, the same matrix
for the 3 colour channels (3 right-hand sides, one factorisation), plus small Gaussian noise on
the imputed pixels. At the border, missing neighbours are left out of the mean.

Curves: the score after removing p % of the pixels, p in `percentages` (default 10..90), in map
order (MoRF: most relevant first) and in reverse map order (LeRF: least relevant first). A
faithful map makes MoRF fall fast and LeRF stay high: gap = mean(LeRF) - mean(MoRF) > 0.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from ..data.samples import normalise
from .faithfulness import batched_scores, degenerate_maps, pixel_ranks, scoring

# (dy, dx, weight) of the 8 neighbours
NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
              (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))
_DY = np.array([d[0] for d in NEIGHBOURS])
_DX = np.array([d[1] for d in NEIGHBOURS])
_W = np.array([d[2] for d in NEIGHBOURS])


def impute(image: np.ndarray, removed: np.ndarray, noise: float = 0.0,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """Linear imputation of `removed` pixels (bool (H, W)) of image (H, W, C) float; returns a copy.

    Each removed pixel i satisfies  sum_j w_ij x_i - sum_{j removed} w_ij x_j = sum_{j kept} w_ij x_j
    over its in-image neighbours j. Gaussian noise of std `noise` is added to the imputed values.
    """
    image = np.asarray(image, np.float64)
    h, w = removed.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape} and removed mask {removed.shape} differ in size")
    out = image.copy()
    idx = np.flatnonzero(removed)
    if idx.size == 0:
        return out
    if idx.size == h * w:
        raise ValueError("cannot impute an image with every pixel removed")
    flat = image.reshape(h * w, -1)
    position = np.full(h * w, -1, np.int64)
    position[idx] = np.arange(idx.size)
    ys, xs = np.divmod(idx, w)
    ny, nx = ys[:, None] + _DY[None], xs[:, None] + _DX[None]          # (n, 8)
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    neighbour = np.where(inside, ny * w + nx, 0)
    weight = np.where(inside, _W[None], 0.0)
    unknown = inside & removed.ravel()[neighbour]
    known_weight = np.where(inside & ~unknown, weight, 0.0)
    rhs = np.einsum("nk,nkc->nc", known_weight, flat[neighbour])
    rows = np.repeat(np.arange(idx.size), 8)[unknown.ravel()]
    cols = position[neighbour.ravel()[unknown.ravel()]]
    matrix = sp.csc_matrix((np.concatenate([weight.sum(axis=1), -weight.ravel()[unknown.ravel()]]),
                            (np.concatenate([np.arange(idx.size), rows]),
                             np.concatenate([np.arange(idx.size), cols]))), shape=(idx.size, idx.size))
    solution = spla.splu(matrix).solve(rhs)
    if noise > 0:
        solution = solution + (rng or np.random.default_rng()).normal(0.0, noise, solution.shape)
    out.reshape(h * w, -1)[idx] = solution
    return out


def removal_masks(ranks: np.ndarray, shape: tuple[int, int], percentage: float, order: str) -> np.ndarray:
    """Bool (H, W): the p % first pixels in map order (morf) or the p % last (lerf)."""
    n = ranks.size
    count = round(percentage / 100 * n)
    if order == "morf":
        return (ranks < count).reshape(shape)
    if order == "lerf":
        return (ranks >= n - count).reshape(shape)
    raise ValueError(f"ROAD order must be 'morf' or 'lerf', got {order!r}")


def road(task, images: np.ndarray, maps: np.ndarray, *, percentages=(10, 20, 30, 40, 50, 60, 70, 80, 90),
         noise: float = 0.01, seeds: np.ndarray | None = None, device="cpu",
         batch_size: int = 256, chunk: int = 16) -> dict[str, np.ndarray]:
    """ROAD curves for uint8 images (N, H, W, 3) at the model resolution.

    Imputation runs in pixel space [0, 1] (noise std `noise` in those units, seeded per sample by
    `seeds`, e.g. the sample ids), then images are normalised for the model.
    Returns morf_curve / lerf_curve (N, P), their means morf / lerf (N,), and gap = lerf - morf;
    NaN for a degenerate map (constant or not finite: it orders no pixels; reason in `degenerate`).
    Tied pixels are ordered by a random permutation seeded by `seeds`.
    """
    task = scoring(task)
    images = np.asarray(images)
    n, h, w, _ = images.shape
    if any(not 0 < p < 100 for p in percentages):
        raise ValueError(f"ROAD percentages must lie strictly between 0 and 100, got {list(percentages)}")
    seeds = np.arange(n) if seeds is None else np.asarray(seeds)
    degenerate = degenerate_maps(maps)
    ranks = pixel_ranks(np.nan_to_num(np.asarray(maps, np.float64)), seeds)
    scores = np.empty((n, 2, len(percentages)))
    for a in range(0, n, chunk):                      # bounded memory: `chunk` samples at a time
        b = min(a + chunk, n)
        imputed = np.empty((b - a, 2, len(percentages), h, w, 3), np.float32)
        for i in range(a, b):
            x01 = images[i].astype(np.float64) / 255.0
            if degenerate[i]:  # scored NaN below: no imputation needed
                imputed[i - a] = x01
                continue
            rng = np.random.default_rng([int(seeds[i]), 0x0AD])
            for o, order in enumerate(("morf", "lerf")):
                for j, p in enumerate(percentages):
                    imputed[i - a, o, j] = impute(x01, removal_masks(ranks[i], (h, w), p, order), noise, rng)
        x = torch.from_numpy(imputed).to(device).flatten(0, 2).permute(0, 3, 1, 2)
        x = normalise(x)
        rows = np.repeat(np.arange(a, b), 2 * len(percentages))
        scores[a:b] = batched_scores(task, x, rows, batch_size).reshape(b - a, 2, len(percentages))
    scores[degenerate != ""] = np.nan
    morf, lerf = scores[:, 0], scores[:, 1]
    return {"morf_curve": morf, "lerf_curve": lerf, "morf": morf.mean(axis=1), "lerf": lerf.mean(axis=1),
            "gap": lerf.mean(axis=1) - morf.mean(axis=1), "percentages": np.asarray(percentages),
            "degenerate": degenerate}
