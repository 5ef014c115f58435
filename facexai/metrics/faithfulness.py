"""Faithfulness metrics: does perturbing what the map ranks high change the model's score?

Every function takes a `Task` (see `facexai.attributions.base`: a classifier output, or a pair's
cosine similarity with the partner fixed), model-ready images x (N, 3, H, W) and maps (N, H, W) at
the model resolution, and runs the model in batches. Scores: the target's probability for a
classifier (never the logit: curves are compared across samples), the cosine similarity for a pair.

Pixel order: descending raw map value (most positive first). Tied pixels (Grad-CAM's ReLU zeros,
upsampled blocks, float16 storage) are ordered by a random permutation seeded per sample, never by
their position: an order by index would remove the top rows of the image first and reward or punish
a map for where its plateaus lie. The order is the same on every run and machine.

Degenerate maps. A map that is constant (all-zero included) or not finite orders nothing: deletion,
insertion and ROAD are NaN for it, with the reason in `degenerate_map` (`constant_map`,
`nonfinite_map`), exactly as the mask metrics treat a map without mass.

* Deletion / insertion (Petsiuk et al. 2018): after removing (inserting) the first f of the pixels
  in map order, for f = 0, 1/steps, ..., 1. Deletion replaces them by a baseline (black by default);
  insertion starts from a Gaussian-blurred copy (kernel 11, sigma 5) and puts the original pixels
  back. AUC by the trapezoid over f in [0, 1]. Good maps: low deletion AUC, high insertion AUC.
* Confidence change under occlusion: the score Y of the image and O with the region (subject) or
  its complement (background) filled; average drop max(0, Y - O) / Y, increase 1[O > Y].
"""

from __future__ import annotations

import numpy as np
import torch

from ..perturbation import BASELINES, baseline_images
from ..tasks import ClassTask, Task

FILLS = BASELINES


def fill_images(x: torch.Tensor, fill: str) -> torch.Tensor:
    """What removed pixels become, in the model's normalised input space (the attribution methods'
    baselines: black, grey, or a Gaussian blur with kernel 11 and sigma 5)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    return baseline_images(x, fill)


def scoring(task: Task) -> Task:
    """The task as the metrics score it: probabilities for a classifier, from float64 logits (so a
    confident model's probability is not rounded to exactly 1)."""
    if not isinstance(task, ClassTask):
        return task
    scored = task.with_probability(True)
    scored.float64 = True
    return scored


@torch.no_grad()
def batched_scores(task: Task, x: torch.Tensor, rows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores of images x, image j explained as batch row rows[j], batch_size images at a time."""
    out = np.empty(len(x), np.float64)
    for a in range(0, len(x), batch_size):
        out[a:a + batch_size] = task.score(x[a:a + batch_size], rows[a:a + batch_size]).double().cpu().numpy()
    return out


TIE_BREAK = 0x71E


def pixel_ranks(maps: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
    """(N, H*W) int: the position of each pixel in descending map order (0 = most relevant); tied
    pixels in a random order drawn from the sample's seed (`seeds`, e.g. the sample ids; default
    0..N-1)."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    seeds = np.arange(len(flat)) if seeds is None else np.asarray(seeds)
    ranks = np.empty(flat.shape, np.int64)
    positions = np.arange(flat.shape[1])
    for i, row in enumerate(flat):
        shuffle = np.random.default_rng([int(seeds[i]), TIE_BREAK]).permutation(flat.shape[1])
        order = np.lexsort((shuffle, -row))  # by value, descending; ties by the random key
        ranks[i, order] = positions
    return ranks


def degenerate_maps(maps: np.ndarray) -> np.ndarray:
    """Per map: '' or why it orders no pixels (`nonfinite_map`, `constant_map`)."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    out = np.full(len(flat), "", dtype=object)
    if flat.shape[1] == 0:
        return out
    finite = np.isfinite(flat).all(axis=1)
    out[~finite] = "nonfinite_map"
    with np.errstate(invalid="ignore"):
        constant = finite & (flat.max(axis=1) == flat.min(axis=1))
    out[constant] = "constant_map"
    return out


def trapezoid_auc(curves: np.ndarray) -> np.ndarray:
    """AUC of curves (N, S+1) sampled at f = 0, 1/S, ..., 1."""
    x = np.linspace(0.0, 1.0, curves.shape[1])
    return np.trapezoid(curves, x, axis=1)


def deletion_insertion(task: Task, x: torch.Tensor, maps: np.ndarray, *, steps: int = 16,
                       baseline: str = "black", batch_size: int = 256,
                       threshold: float | None = None, same: np.ndarray | None = None,
                       seeds: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Deletion and insertion curves (N, steps + 1) and their AUCs (N,); NaN rows for degenerate
    maps (reason in `degenerate`). `seeds` (per sample) order tied pixels.

    For a pair task with the EER `threshold` (a number, or one per row: 0 for a triplet's
    preference) and `same` (True where the pair is one person), also the curves of verification
    correctness (score >= threshold) == same and their AUCs.
    """
    if steps < 1:
        raise ValueError(f"deletion/insertion steps must be >= 1, got {steps}")
    task = scoring(task)
    n, _, h, w = x.shape
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    degenerate = degenerate_maps(maps)
    ranks = torch.from_numpy(pixel_ranks(np.nan_to_num(np.asarray(maps, np.float64)), seeds)).to(x.device)
    removed_base, inserted_base = fill_images(x, baseline), fill_images(x, "blur")
    per_chunk = max(1, batch_size // (steps + 1))
    curves = {"deletion": np.empty((n, steps + 1)), "insertion": np.empty((n, steps + 1))}
    counts_t = torch.from_numpy(counts).to(x.device)
    for a in range(0, n, per_chunk):
        b = min(a + per_chunk, n)
        # mask[i, s] = pixel among the first counts[s] in map order, (B, S+1, 1, H, W)
        mask = (ranks[a:b, None, :] < counts_t[None, :, None]).view(b - a, steps + 1, 1, h, w).float()
        xs = x[a:b, None]
        deleted = xs * (1 - mask) + removed_base[a:b, None] * mask
        inserted = inserted_base[a:b, None] * (1 - mask) + xs * mask
        rows = np.repeat(np.arange(a, b), steps + 1)
        curves["deletion"][a:b] = batched_scores(task, deleted.flatten(0, 1), rows, batch_size).reshape(b - a, -1)
        curves["insertion"][a:b] = batched_scores(task, inserted.flatten(0, 1), rows, batch_size).reshape(b - a, -1)
    bad = degenerate != ""
    out = {f"{k}_curve": v for k, v in curves.items()}
    out.update({f"{k}_auc": trapezoid_auc(v) for k, v in curves.items()})
    if threshold is not None:
        if same is None or len(same) != n:
            raise ValueError("verification accuracy curves need `same` (one bool per pair)")
        cut = np.asarray(threshold, np.float64)
        cut = cut[:, None] if cut.ndim == 1 else cut
        for k, v in curves.items():
            correct = ((v >= cut) == np.asarray(same, bool)[:, None]).astype(np.float64)
            out[f"{k}_accuracy_curve"] = correct
            out[f"{k}_accuracy_auc"] = trapezoid_auc(correct)
    for key, values in out.items():  # a map that orders nothing has no curve (the clean score stays)
        if key.endswith("_auc"):
            values[bad] = np.nan
        else:
            values[bad, 1:] = np.nan
    out["fractions"] = counts / (h * w)
    out["degenerate"] = degenerate
    return out


def confidence_change(task: Task, x: torch.Tensor, regions: np.ndarray, *, fill: str = "blur",
                      batch_size: int = 256) -> dict[str, np.ndarray]:
    """Average drop and increase when the region (subject) or its complement (background) is filled.

    regions: bool (N, H, W) at the model resolution. Drop is NaN (undefined) where the clean score
    Y <= 0 (a pair similarity can be negative) or the occluded part is empty. A classifier whose
    clean probability is exactly 1 even in float64 (logit above ~37) cannot show a drop or an
    increase: NaN with the reason `saturated_score` in `degenerate`.
    """
    task = scoring(task)
    regions = torch.from_numpy(np.array(regions, bool)).to(x.device)[:, None]
    if regions.shape[0] != x.shape[0] or regions.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"regions {tuple(regions.shape)} do not match images {tuple(x.shape)}")
    filled = fill_images(x, fill)
    rows = np.arange(len(x))
    clean = batched_scores(task, x, rows, batch_size)
    saturated = (clean >= 1.0) if isinstance(task, ClassTask) else np.zeros(len(x), bool)
    out = {"score_clean": clean}
    for name, part in (("subject", regions), ("background", ~regions)):
        occluded = batched_scores(task, torch.where(part, filled, x), rows, batch_size)
        empty = ~part.flatten(1).any(dim=1).cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            drop = np.maximum(0.0, clean - occluded) / clean
        drop[(clean <= 0) | empty | saturated] = np.nan
        increase = (occluded > clean).astype(np.float64)
        increase[empty | saturated] = np.nan
        out[f"drop_{name}"], out[f"increase_{name}"], out[f"score_{name}_occluded"] = drop, increase, occluded
    out["degenerate"] = np.where(saturated, "saturated_score", "").astype(object)
    return out
