"""RISE (Petsiuk et al. 2018) and CorrRISE, written here (no maintained library implements them).

Masks: `n_masks` binary grids of `cells` x `cells` cells, each cell kept with probability `p`,
upsampled bilinearly to (cells + 1) * ceil(H / cells) and cropped at a random shift, so the masks
are smooth and not aligned to a fixed grid. Masked image = M * x + (1 - M) * black. The same mask
set (drawn from the seed) serves every sample, so a map does not depend on batching or sharding.

    RISE      map(p) = sum_k (S(x * M_k) - c) M_k(p) / (n_masks * p)
              c = 0 as in the paper, or (`center`, default) c = mean_k S(x * M_k). Without centring
              every pixel carries about mean(S), a constant offset that says nothing about the
              pixel but dilutes every mass-based metric (regional precision of a perfect map
              falls towards chance); centring leaves rankings unchanged and removes it.
    CorrRISE  map(p) = Spearman rank correlation over k of M_k(p) and S(x * M_k)

For a verification pair, S is the cosine similarity to the partner: CorrRISE's positive part is
the similarity map (keeping those pixels raises similarity), its negative part the
dissimilarity map (keeping them lowers it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from ..data.samples import normalise
from .base import AttributionMethod

BLACK = normalise(0.0)


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

    def __call__(self, task, images, sample_ids) -> tuple[torch.Tensor, torch.Tensor]:
        masks = self.masks(tuple(images.shape[-2:]), images.device)
        n, k = images.shape[0], masks.shape[0]
        batch = int(self.params["batch_size"])
        scores = torch.empty(n, k, device=images.device)
        # rows of one sample (several attributes, or several partners) share the masked copies
        groups: dict[int, list[int]] = {}
        for i, sample_id in enumerate(sample_ids):
            groups.setdefault(int(sample_id), []).append(i)
        with torch.no_grad():
            for rows in groups.values():
                image = images[rows[0]:rows[0] + 1]
                for start in range(0, k, batch):
                    m = masks[start:start + batch]
                    masked = m * image + (1 - m) * BLACK
                    scores[rows, start:start + len(m)] = task.score_matrix(masked, rows).T
        return masks, scores


class RISE(AttributionMethod):
    name = "rise"
    defaults = {"n_masks": 256, "cells": 8, "p": 0.5, "batch_size": 32, "center": True}
    uses_probability = True

    def attribute(self, task, images, sample_ids, seed):
        masks, scores = _MaskedScores(self.params, seed)(task, images, sample_ids)
        if self.params["center"]:
            scores = scores - scores.mean(dim=1, keepdim=True)
        flat = masks.view(masks.shape[0], -1)
        maps = scores @ flat / (masks.shape[0] * float(self.params["p"]))
        return maps.view(images.shape[0], *images.shape[-2:]).cpu().numpy()


class CorrRISE(AttributionMethod):
    name = "corrrise"
    defaults = {"n_masks": 256, "cells": 8, "p": 0.5, "batch_size": 32}
    uses_probability = True

    def attribute(self, task, images, sample_ids, seed):
        masks, scores = _MaskedScores(self.params, seed)(task, images, sample_ids)
        flat = masks.view(masks.shape[0], -1).cpu().numpy()
        mask_ranks = rankdata(flat, axis=0)
        mask_ranks -= mask_ranks.mean(axis=0)
        mask_norm = np.sqrt((mask_ranks**2).sum(axis=0))
        score_ranks = rankdata(scores.cpu().numpy(), axis=1)
        score_ranks -= score_ranks.mean(axis=1, keepdims=True)
        score_norm = np.sqrt((score_ranks**2).sum(axis=1, keepdims=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (score_ranks @ mask_ranks) / (score_norm * mask_norm[None, :])
        # a pixel every mask keeps alike, or a score no mask changes, correlates with nothing
        corr = np.where(np.isfinite(corr), corr, 0.0)
        return corr.reshape(images.shape[0], *images.shape[-2:])
