"""The inpainting game on triplets (after Williford, May and Byrne, ECCV 2020).

A triplet: probe P, mate M (same identity), twin M' (M with a donor's region R), and P' (P with the
same donor's R). The score is the embedder's preference for the mate, s(x, M) - s(x, M'), positive
on P (the triplet was kept because the swap matters to the embedder). The game switches P's pixels
to P''s in the map's order (most salient first; ties in the seeded random order every ranking
metric uses) and records when the hybrid first prefers the twin (preference < 0):

* `game_flip_fraction`: the fraction of the image switched at that point (lower is better). The
  preference is evaluated on a grid of `steps` + 1 switched fractions (0, 1/steps, ..., 1); inside
  the first grid step where it is negative, a bisection finds a switched count n with preference
  >= 0 at n - 1 and < 0 at n, to the pixel (where the preference is not monotone inside that step,
  a crossing in it, not necessarily the first pixel).
* `game_region_share`: the share of the n switched pixels inside R on P (model resolution), and
  `game_region_lift` = that share over R's share of the image (1: no better than a uniform draw).

Rows where nothing can flip: when P' itself still prefers the mate (`unwinnable`: switching every
pixel does not change the verdict) the flip fraction is 1 for every map, whatever the preference
does on the way, and the shares are those of the whole image (lift 1): the row is a tie between all
methods, counted by reason in `game_degenerate`, never dropped. A constant map (all-zero included)
plays the random tie order: its value is what chance gives, its reason `constant_map` is counted
beside it. NaN, with the reason: a non-finite map (`nonfinite_map`), a probe that already prefers
the twin (`probe_prefers_twin`: not a kept triplet) and a region with no pixel at the model
resolution (`empty_region`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..tasks import Task
from .faithfulness import batched_scores, degenerate_maps, pixel_ranks


def _hybrids(x: torch.Tensor, x_swap: torch.Tensor, ranks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(len(counts), 3, H, W): x with its first counts[j] pixels in map order taken from x_swap."""
    h, w = x.shape[-2:]
    switched = (ranks[None, :] < counts[:, None]).view(len(counts), 1, h, w)
    return torch.where(switched, x_swap[None], x[None])


def inpainting_game(task: Task, x: torch.Tensor, x_swap: torch.Tensor, maps: np.ndarray, regions: np.ndarray, *,
                    steps: int = 32, seeds: np.ndarray | None = None, batch_size: int = 256,
                    rows=None) -> dict[str, np.ndarray]:
    """Per row: game_flip_fraction, game_region_share, game_region_lift, game_degenerate (module
    docstring). x, x_swap: P and P' (N, 3, H, W) model input; maps (N, H, W); regions bool (N, H, W)
    at the model resolution; task scores the preference, row i of x being the task's row rows[i]
    (default i)."""
    if steps < 1:
        raise ValueError(f"metrics.game.steps must be >= 1, got {steps}")
    n, _, h, w = x.shape
    total = h * w
    out = {"game_flip_fraction": np.full(n, np.nan), "game_region_share": np.full(n, np.nan),
           "game_region_lift": np.full(n, np.nan), "game_degenerate": degenerate_maps(maps)}
    if n == 0:
        return out
    ranks_all = torch.from_numpy(pixel_ranks(np.nan_to_num(np.asarray(maps, np.float64)), seeds)).to(x.device)
    regions = np.asarray(regions, bool).reshape(n, -1)
    rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)
    grid = torch.from_numpy(np.round(np.linspace(0, total, steps + 1)).astype(np.int64)).to(x.device)
    flip = np.full(n, -1, np.int64)
    for i in range(n):
        if out["game_degenerate"][i] == "nonfinite_map":
            continue
        hybrids = _hybrids(x[i], x_swap[i], ranks_all[i], grid)
        pref = batched_scores(task, hybrids, np.full(len(grid), rows[i]), batch_size)
        if pref[0] < 0:  # P itself prefers the twin: no game (a kept triplet's preference can land
            # below 0 here only by float noise near a margin of 0), whatever P' does
            out["game_degenerate"][i] = "probe_prefers_twin"
            flip[i] = 0
            continue
        if not pref[-1] < 0:  # P' itself: the same for every map
            out["game_degenerate"][i] = "unwinnable"
            flip[i] = total
            continue
        first = int(np.flatnonzero(pref < 0)[0])
        lo, hi = int(grid[first - 1]), int(grid[first])  # preference >= 0 at lo, < 0 at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            value = batched_scores(task, _hybrids(x[i], x_swap[i], ranks_all[i],
                                                  torch.tensor([mid], device=x.device)), rows[i:i + 1])[0]
            lo, hi = (lo, mid) if value < 0 else (mid, hi)
        flip[i] = hi
    for i in np.flatnonzero(flip > 0):
        chance = regions[i].mean()
        if chance == 0:  # the region vanished at the model resolution
            out["game_degenerate"][i] = "empty_region"
            continue
        switched = ranks_all[i].cpu().numpy() < flip[i]
        out["game_flip_fraction"][i] = flip[i] / total
        share = regions[i][switched].mean()
        out["game_region_share"][i] = share
        out["game_region_lift"][i] = share / chance if chance > 0 else np.nan
    return out
