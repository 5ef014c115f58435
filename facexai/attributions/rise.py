"""RISE (Petsiuk et al. 2018) and CorrRISE, written here (no maintained library implements them).

Masks: `n_masks` binary grids of `cells` x `cells` cells, each cell kept with probability `p`,
upsampled bilinearly to (cells + 1) * ceil(H / cells) and cropped at a random shift, so the masks
are smooth and not aligned to a fixed grid. Masked image = M * x + (1 - M) * fill. The same mask
set (drawn from the seed) serves every sample, so a map does not depend on batching or sharding.

Fills (`fill`): `black` (the paper's), `blur` (a Gaussian blur of the image, kernel 11, sigma 5),
`mean` (the image's mean colour), and, for genuine / impostor pairs only, `partner`: masked pixels
take the partner photo's pixels (a counterfactual: "how much of the score survives where this
photo is replaced by the partner"). Fully masked, the copy is the partner itself (similarity 1 for
a cosine embedder), so keeping any pixel can only lower the score: the similarity (positive) part
of the map is nearly empty and the dissimilarity part carries the map. For pairs whose ground truth
is where two images differ (region, swap, triplet) the partner fill is refused: a masked copy
equals the partner outside the changed area, so the score, and the map, depend only on where the
images differ, for any network.

    RISE      `estimator: difference` (default): the mean score over the masks that keep p minus the
              mean over the masks that drop it, weighted by the soft mask values:
                  map(p) = sum_k S_k M_k(p) / sum_k M_k(p) - sum_k S_k (1 - M_k(p)) / sum_k (1 - M_k(p))
              Each pixel is compared with itself: the map does not depend on how often this
              particular mask set happens to keep p, and a constant added to every score cancels.
              `paper`: map(p) = sum_k S_k M_k(p) / (n_masks * p) (Petsiuk et al.). It carries the
              offset mean(S) * m(p) / p, where m(p) = mean_k M_k(p) is this mask set's keep rate of
              p (0.42-0.56 at 256 masks, one pattern shared by every image): the pattern of the mask
              set, not of the model, and large next to the signal.
              `centred`: the paper's sum with mean(S) subtracted, = cov_k(S, M(p)) / p. The offset is
              gone but each pixel is still scaled by its own keep variance m(p)(1 - m(p)): centring
              changes rankings, and still follows the mask set.
    CorrRISE  map(p) = Spearman rank correlation over k of M_k(p) and S(x * M_k): normalised per
              pixel, so it has no keep-rate artefact either.

For a verification pair, S is the pair score with the partner: CorrRISE's positive part is
the similarity map (keeping those pixels raises similarity), its negative part the
dissimilarity map (keeping them lowers it).

A masked copy is b + M (x - b) for the fill b, exactly x where b equals x. When no mask moves the
score by more than float32 rounding (range over the masks <= 1e-6 x max(1, |S|)), the map is 0
(an all-zero map, reported as such): ranking or averaging rounding noise would draw a pattern
that means nothing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.samples import normalise
from ..perturbation import gaussian_blur
from .base import AttributionMethod, PairTask

BLACK = normalise(0.0)
FILLS = ("black", "blur", "mean", "partner")


def fill_images(task, images: torch.Tensor, fill: str) -> torch.Tensor:
    """What masked pixels become, per row (N, 3, H, W), in model input units."""
    if fill == "black":
        return torch.full_like(images, BLACK)
    if fill == "blur":
        return gaussian_blur(images, kernel_size=11, sigma=5.0)
    if fill == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    if fill == "partner":
        partners = getattr(task, "partner_images", None) if isinstance(task, PairTask) else None
        if partners is None:
            raise ValueError("fill 'partner' needs a verification pair task with the partner photos")
        return partners.to(images.device)
    raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")


def rise_masks(n_masks: int, cells: int, p: float, size: tuple[int, int], seed: int) -> torch.Tensor:
    """(n_masks, 1, H, W) float masks in [0, 1]."""
    h, w = size
    rng = np.random.default_rng([seed, 7919])
    grid = torch.from_numpy((rng.random((n_masks, 1, cells, cells)) < p).astype(np.float32))
    cell_h, cell_w = math.ceil(h / cells), math.ceil(w / cells)
    up = F.interpolate(grid, size=((cells + 1) * cell_h, (cells + 1) * cell_w), mode="bilinear",
                       align_corners=False)
    shifts = rng.integers(0, [cell_h, cell_w], size=(n_masks, 2))
    masks = torch.stack([up[k, :, dy:dy + h, dx:dx + w] for k, (dy, dx) in enumerate(shifts)])
    return masks.clamp_(0.0, 1.0)  # bilinear weights can overshoot 1 by a rounding error


class _MaskedScores:
    """Scores S(x_i * M_k) for every row i and mask k, batched over masks."""

    def __init__(self, params: dict, seed: int):
        self.params, self.seed = params, seed
        self._masks = None

    def masks(self, size, device):
        if self._masks is None or self._masks.shape[-2:] != size:
            self._masks = rise_masks(int(self.params["n_masks"]), int(self.params["cells"]),
                                     float(self.params["p"]), size, self.seed).to(device)
        return self._masks

    def __call__(self, task, images, sample_ids, masks=None, rows=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(masks, scores (N, K)) for `masks` (default: the whole set); with `rows`, only the
        groups that hold one of these rows are scored (the other rows' scores are NaN)."""
        masks = self.masks(tuple(images.shape[-2:]), images.device) if masks is None else masks
        n, k = images.shape[0], masks.shape[0]
        batch = int(self.params["batch_size"])
        fill = self.params["fill"]
        fills = fill_images(task, images, fill)
        scores = torch.full((n, k), float("nan"), device=images.device)
        # rows of one sample (several attributes, or several partners) share the masked copies,
        # unless the fill depends on the row (the partner's photo)
        groups: dict[int, list[int]] = {}
        for i, sample_id in enumerate(sample_ids):
            groups.setdefault(i if fill == "partner" else int(sample_id), []).append(i)
        wanted = None if rows is None else set(int(r) for r in rows)
        with torch.no_grad():
            for group in groups.values():
                if wanted is not None and not wanted.intersection(group):
                    continue
                image, background = images[group[0]:group[0] + 1], fills[group[0]:group[0] + 1]
                for start in range(0, k, batch):
                    m = masks[start:start + batch]
                    # b + m (x - b): exactly x where the fill equals the image (a partner photo
                    # equal to it outside a swapped region), so no rounding noise reaches the score
                    masked = background + m * (image - background)
                    scores[group, start:start + len(m)] = task.score_matrix(masked, group).T
        return masks, scores


ESTIMATORS = ("difference", "centred", "paper")


def rise_estimate(scores: torch.Tensor, masks: torch.Tensor, estimator: str, p: float) -> torch.Tensor:
    """Maps (N, P) from scores (N, K) and flat soft masks (K, P); see the module docstring."""
    if estimator == "difference":
        kept, dropped = masks.sum(dim=0), (1 - masks).sum(dim=0)
        mean_kept = (scores @ masks) / kept.clamp_min(1e-12)
        mean_dropped = (scores @ (1 - masks)) / dropped.clamp_min(1e-12)
        informative = (kept > 0) & (dropped > 0)  # a pixel every mask keeps (or drops) says nothing
        return torch.where(informative, mean_kept - mean_dropped, torch.zeros_like(mean_kept))
    if estimator == "centred":
        scores = scores - scores.mean(dim=1, keepdim=True)
    elif estimator != "paper":
        raise ValueError(f"methods.rise.estimator: one of {ESTIMATORS}, got {estimator!r}")
    return scores @ masks / (masks.shape[0] * p)


# a score that no mask changes by more than float32 rounding carries no information: its map is 0
# (reported as an all-zero map), not the pattern of the rounding noise
CONSTANT_SCORE_TOLERANCE = 1e-6


def constant_rows(scores) -> np.ndarray:
    """Rows of (N, K) scores whose range over the masks is within float32 rounding of their size."""
    s = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, np.float64)
    if s.size == 0:
        return np.zeros(len(s), bool)
    return np.ptp(s, axis=1) <= CONSTANT_SCORE_TOLERANCE * np.maximum(1.0, np.abs(s).max(axis=1))


class RISE(AttributionMethod):
    name = "rise"
    defaults = {"n_masks": 256, "cells": 8, "p": 0.5, "batch_size": 32, "estimator": "difference", "fill": "black"}
    uses_probability = True

    def budget(self):
        return f"{int(self.params['n_masks'])} masks"

    def attribute(self, task, images, sample_ids, seed):
        masks, scores = _MaskedScores(self.params, seed)(task, images, sample_ids)
        flat = masks.view(masks.shape[0], -1)
        maps = rise_estimate(scores, flat, self.params["estimator"], float(self.params["p"]))
        maps = maps.view(images.shape[0], *images.shape[-2:]).cpu().numpy()
        maps[constant_rows(scores)] = 0.0
        return maps


def correlation_maps(scores: np.ndarray, flat_masks: np.ndarray) -> np.ndarray:
    """CorrRISE maps (N, P): per pixel, the Spearman correlation over the K masks of its keep value
    (flat_masks (K, P)) with the score (scores (N, K)); 0 where either is constant."""
    from scipy.stats import rankdata  # here: importing scipy.stats costs every attribution job 0.5 s

    mask_ranks = rankdata(flat_masks, axis=0)
    mask_ranks -= mask_ranks.mean(axis=0)
    mask_norm = np.sqrt((mask_ranks**2).sum(axis=0))
    score_ranks = rankdata(scores, axis=1)
    score_ranks -= score_ranks.mean(axis=1, keepdims=True)
    score_norm = np.sqrt((score_ranks**2).sum(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (score_ranks @ mask_ranks) / (score_norm * mask_norm[None, :])
    # a pixel every mask keeps alike, or a score no mask changes, correlates with nothing
    corr = np.where(np.isfinite(corr), corr, 0.0)
    corr[constant_rows(scores)] = 0.0
    return corr


def map_change(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Relative change of each row's map between two mask counts: ||new - old|| / ||new|| (L2 over
    the pixels); 0 for a map that is 0 at both counts."""
    diff = np.sqrt(((new - old) ** 2).sum(axis=1))
    size = np.sqrt((new**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, diff / size, np.where(diff > 0, np.inf, 0.0))


def converged_counts(scores: np.ndarray, flat_masks: np.ndarray, block: int, tolerance: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Where each row would stop: the mask count (a multiple of `block`, at least 2 blocks) at which its
    map first changed by less than `tolerance` since the previous block (`map_change`), else all
    K masks; and its map there. For scores already drawn for all K masks (benchmarks); the method
    draws them block by block through the same rule (`_converge`)."""
    return _converge(lambda rows, start, stop: scores[:, start:stop], flat_masks, block, tolerance, len(scores))


def _converge(draw, flat_masks: np.ndarray, block: int, tolerance: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The stopping rule: `draw(rows, start, stop)` gives the scores (n, stop - start) of masks
    start..stop (those of `rows`, the rows still going, at least); returns (masks used, maps)."""
    k = flat_masks.shape[0]
    scores = np.full((n, k), np.nan)
    used = np.full(n, k, np.int64)
    out = np.zeros((n, flat_masks.shape[1]))
    active = np.ones(n, bool)
    previous, done = None, 0
    for count in [*range(block, k, block), k]:
        rows = np.flatnonzero(active)
        scores[:, done:count] = draw(rows, done, count)
        done = count
        current = correlation_maps(scores[rows, :count], flat_masks[:count])
        if previous is not None:
            stop = map_change(current, previous) < tolerance
            used[rows[stop]], out[rows[stop]] = count, current[stop]
            active[rows[stop]] = False
            current = current[~stop]
        previous = current
        if not active.any():
            break
    out[active] = previous
    return used, out


class CorrRISE(AttributionMethod):
    """CorrRISE (Lu, Xu and Ebrahimi, WACV 2024): correlation of each pixel's keep value with the
    score over random masks; for a pair, similarity (positive) and dissimilarity (negative) maps.

    `tolerance` > 0 draws the masks `block` at a time and stops a row when its map changed by less
    than `tolerance` (relative L2, `map_change`) over the last block, from the second block on;
    `n_masks` is then the most a row gets. The masks are the first ones of the same seeded set,
    and each row's count is stored beside its map (`masks_used`). 0: every row gets n_masks."""

    name = "corrrise"
    defaults = {"n_masks": 1000, "cells": 8, "p": 0.5, "batch_size": 32, "fill": "blur", "tolerance": 0.0,
                "block": 250}
    uses_probability = True

    def budget(self):
        n = int(self.params["n_masks"])
        tolerance = float(self.params["tolerance"])
        return f"{n} masks" if tolerance <= 0 else \
            f"<= {n} masks, tol {tolerance:g} per {int(self.params['block'])}"

    def attribute(self, task, images, sample_ids, seed):
        scorer = _MaskedScores(self.params, seed)
        tolerance, block = float(self.params["tolerance"]), int(self.params["block"])
        n = images.shape[0]
        if tolerance <= 0:
            masks, scores = scorer(task, images, sample_ids)
            flat = masks.view(masks.shape[0], -1).cpu().numpy()
            corr = correlation_maps(scores.cpu().numpy(), flat)
            self.diagnostics = {"masks_used": np.full(n, masks.shape[0], np.int64)}
            return corr.reshape(n, *images.shape[-2:])
        if block < 1:
            raise ValueError(f"methods.{self.name}.block: masks per convergence check, at least 1; got {block}")
        masks = scorer.masks(tuple(images.shape[-2:]), images.device)

        def draw(rows, start, stop):
            return scorer(task, images, sample_ids, masks=masks[start:stop], rows=rows)[1].cpu().numpy()

        used, out = _converge(draw, masks.view(masks.shape[0], -1).cpu().numpy(), block, tolerance, n)
        self.diagnostics = {"masks_used": used}
        return out.reshape(n, *images.shape[-2:])
