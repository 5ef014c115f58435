"""Falsification test: does perturbing what the map calls important move the model more than
perturbing what it calls unimportant?

Per sample: the map is min-max normalised to [0, 1]; high = {a > 0.7}, low = {a < 0.3}. For each
set, K counterfactuals are built; each one refills m randomly chosen pixels of the set (a fresh
random subset per counterfactual) with random colours (fresh uniform noise per counterfactual),
so no two counterfactuals are copies of one masking. m = ceil(fraction * min(|high|, |low|)) is the
same for both sets, so a larger set is not favoured by perturbing more pixels.

Distance between the image and a counterfactual: for a classifier, the change of the target
probability |Y - O|; for a verification embedder, the geodesic distance arccos(cos(f(x), f(x')))
between the two embeddings. SPEC.md says "drop of the target score"; we take its magnitude on
purpose: a random fill is not a removal, it can push the score either way, and a signed mean would
let increases cancel drops, so a set that moves the model a lot could look inert. The signed mean
drops are kept too (drop_high, drop_low). The map is **falsified** when the mean distance over the high counterfactuals
is not larger than over the low ones. Samples where either set is empty (or the map is constant)
get NaN with the reason in `degenerate`, so FR = mean(falsified) over the valid samples, reported
with the count of the others.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..attributions.base import PairTask, Task
from ..data.samples import normalise
from .faithfulness import batched_scores, scoring


def normalise01(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max normalised maps, and a bool per map: False where it is constant or not finite."""
    maps = np.asarray(maps, np.float64)
    lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    ok = (np.isfinite(lo) & np.isfinite(hi) & (hi > lo)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok[:, None, None], (maps - lo) / (hi - lo), np.nan), ok


def counterfactuals(x: torch.Tensor, pixel_set: np.ndarray, m: int, k: int,
                    rng: np.random.Generator) -> torch.Tensor:
    """K copies of one image x (3, H, W) (normalised), each with m random pixels of `pixel_set`
    (bool (H, W)) refilled by random colours."""
    _, h, w = x.shape
    candidates = np.flatnonzero(pixel_set)
    out = x.unsqueeze(0).repeat(k, 1, 1, 1).view(k, 3, h * w)
    for j in range(k):
        chosen = torch.from_numpy(rng.choice(candidates, size=m, replace=False)).to(x.device)
        colours = torch.from_numpy(rng.random((3, m), dtype=np.float32)).to(x.device)
        out[j][:, chosen] = normalise(colours)
    return out.view(k, 3, h, w)


@torch.no_grad()
def _distances(task: Task, x_clean: torch.Tensor, x_cf: torch.Tensor, row: int, batch_size: int) -> np.ndarray:
    if isinstance(task, PairTask):
        emb_clean = F.normalize(task.model(x_clean[None]), dim=1)
        emb_cf = F.normalize(task.model(x_cf), dim=1)
        cos = (emb_cf @ emb_clean.T)[:, 0].clamp(-1.0, 1.0)
        return torch.arccos(cos).double().cpu().numpy()
    clean = batched_scores(task, x_clean[None], np.array([row]))[0]
    return clean - batched_scores(task, x_cf, np.full(len(x_cf), row), batch_size)  # signed drops


def falsification(task: Task, x: torch.Tensor, maps: np.ndarray, *, k: int = 8, high: float = 0.7,
                  low: float = 0.3, fraction: float = 0.5, seeds: np.ndarray | None = None,
                  batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per sample: dist_high, dist_low (mean distance over K), drop_high, drop_low (mean signed
    drop, classifiers only), falsified (1.0 / 0.0 / NaN) and degenerate."""
    if k < 2:
        raise ValueError(f"falsification needs K >= 2 counterfactuals per set, got {k}")
    if not 0 <= low < high <= 1:
        raise ValueError(f"falsification thresholds need 0 <= low < high <= 1, got low={low}, high={high}")
    if not 0 < fraction <= 1:
        raise ValueError(f"falsification fraction must be in (0, 1], got {fraction}")
    task = scoring(task)
    n = len(x)
    seeds = np.arange(n) if seeds is None else np.asarray(seeds)
    normed, ok = normalise01(np.asarray(maps))
    pair = isinstance(task, PairTask)
    out = {"dist_high": np.full(n, np.nan), "dist_low": np.full(n, np.nan), "falsified": np.full(n, np.nan),
           "drop_high": np.full(n, np.nan), "drop_low": np.full(n, np.nan),
           "n_high": np.zeros(n, np.int64), "n_low": np.zeros(n, np.int64),
           "degenerate": np.full(n, "", dtype=object)}
    for i in range(n):
        if not ok[i]:
            out["degenerate"][i] = "constant_map"
            continue
        sets = {"high": normed[i] > high, "low": normed[i] < low}
        out["n_high"][i], out["n_low"][i] = int(sets["high"].sum()), int(sets["low"].sum())
        empty = [name for name, s in sets.items() if not s.any()]
        if empty:
            out["degenerate"][i] = "empty_" + "_".join(empty)
            continue
        m = max(1, math.ceil(fraction * min(out["n_high"][i], out["n_low"][i])))
        rng = np.random.default_rng([int(seeds[i]), 0xFA15])
        for name, pixel_set in sets.items():
            cf = counterfactuals(x[i], pixel_set, m, k, rng)
            d = _distances(task, x[i], cf, i, batch_size)
            out[f"dist_{name}"][i] = d.mean() if pair else np.abs(d).mean()
            if not pair:
                out[f"drop_{name}"][i] = d.mean()
        out["falsified"][i] = float(not out["dist_high"][i] > out["dist_low"][i])
    return out
