"""Falsification test: does perturbing what the map calls important move the model more than
perturbing what it calls unimportant?

The mass. Sets are drawn from the configured mass a+ (`metrics.mass`: max(a, 0) by default, like
every other metric), min-max normalised to [0, 1]. A signed map is not normalised as it is: for
Integrated Gradients its most negative pixels would form the "low" set, and they are influential.

Two variants, both reported:

* **threshold** (the definition): high = {a+ > 0.7}, low = {a+ < 0.3}; each counterfactual
  perturbs m = ceil(fraction * min(|high|, |low|)) pixels of its set, so both sets are perturbed
  equally, but m differs between methods (a sparse map has tiny sets).
* **size-controlled**: high = the top q % of the mass, low = the bottom q % (ties ordered by a
  random permutation seeded per sample, never by position); m = ceil(fraction * q % of the pixels)
  is the same for every method, so methods are compared at one perturbation size.

For each set, K counterfactuals each refill a fresh random subset of m pixels of the set with fresh
uniform random colours. The change they cause is read in the score the map explains:

* classifier: the target **logit** (a space that does not saturate: a float32 sigmoid is exactly 1
  above logit ~17, where every probability drop would be 0);
* verification pair: the pair score with the partner, s(x', partner) (a triplet: the preference
  s(x', M) - s(x', M')). The partner is part of what is explained: the same image and map with
  another partner is another test (a distance between emb(x) and emb(x') would only say where
  the embedder is sensitive, not what the pair's score rests on).

The distance of a counterfactual is the change the map's mass predicts: for `mass: positive`
(similarity maps, evidence for the score) the signed drop Y - O of the score; for `mass: negative`
(dissimilarity maps, evidence against it) the signed rise O - Y; for `absolute`, |Y - O|.

The map is **falsified** when the mean distance over the high counterfactuals is not larger than
over the low ones. `magnitude: true` adds `falsified_magnitude`, the same test on |Y - O| (a
random fill can raise the score as well as lower it; named as such, never the default).

Degenerate rows are NaN with a reason: a map that is not finite (`nonfinite_map`), has no mass
(`zero_mass`) or constant mass (`constant_map`), an empty set (`empty_high`, `empty_low`), or a
model that none of the 2K counterfactuals moved at all (`score_unchanged`). FR = mean(falsified)
over the valid rows, reported with the count of the others.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..tasks import ClassTask, Task
from ..data.samples import normalise
from .faithfulness import batched_scores, pixel_ranks
from .localisation import positive_part


def normalise01(maps: np.ndarray, mode: str = "positive") -> tuple[np.ndarray, np.ndarray]:
    """The configured mass min-max normalised to [0, 1] (N, H, W), and per map '' or why it has no
    usable mass (`nonfinite_map`, `zero_mass`, `constant_map`)."""
    maps = np.asarray(maps, np.float64)
    reason = np.full(len(maps), "", dtype=object)
    finite = np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    mass = positive_part(np.nan_to_num(maps), mode).astype(np.float64)
    lo, hi = mass.min(axis=(1, 2)), mass.max(axis=(1, 2))
    reason[~(hi > lo)] = "constant_map"
    reason[~(hi > 0)] = "zero_mass"
    reason[~finite] = "nonfinite_map"
    ok = reason == ""
    span = np.where(ok, hi - lo, 1.0)[:, None, None]
    normed = np.where(ok[:, None, None], (mass - lo[:, None, None]) / span, np.nan)
    return normed, reason


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
def _changes(task: Task, x_clean: torch.Tensor, x_cf: torch.Tensor, row: int, batch_size: int) -> np.ndarray:
    """Per counterfactual: Y - O, the drop of the explained score (a classifier's logit, a pair's
    score with its partner), in float64."""
    clean = batched_scores(task, x_clean[None], np.array([row]))[0]
    return clean - batched_scores(task, x_cf, np.full(len(x_cf), row), batch_size)


def _test(task, x_i, sets: dict, m: int, k: int, rng, row: int, batch_size: int, mass: str) -> dict:
    """Distances of the two sets' counterfactuals (module docstring) and the verdict."""
    drop = {name: _changes(task, x_i, counterfactuals(x_i, s, m, k, rng), row, batch_size)
            for name, s in sets.items()}
    d = {name: np.abs(v) if mass == "absolute" else (-v if mass == "negative" else v) for name, v in drop.items()}
    out = {"dist_high": d["high"].mean(), "dist_low": d["low"].mean(), "degenerate": "",
           "drop_high": drop["high"].mean(), "drop_low": drop["low"].mean(),
           "falsified_magnitude": float(not np.abs(drop["high"]).mean() > np.abs(drop["low"]).mean())}
    if not (np.any(drop["high"] != 0) or np.any(drop["low"] != 0)):
        out["degenerate"] = "score_unchanged"
        out["falsified"] = np.nan
        out["falsified_magnitude"] = np.nan
    else:
        out["falsified"] = float(not out["dist_high"] > out["dist_low"])
    return out


def falsification(task: Task, x: torch.Tensor, maps: np.ndarray, *, k: int = 8, high: float = 0.7,
                  low: float = 0.3, fraction: float = 0.5, q: float = 10, mass: str = "positive",
                  seeds: np.ndarray | None = None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Both variants per sample. Threshold variant: dist_high, dist_low (mean distance over K),
    drop_high, drop_low (mean signed drop of the score), falsified (1.0 / 0.0 / NaN),
    falsified_magnitude, n_high, n_low, m, degenerate. Size-controlled variant: the
    same keys prefixed `sized_` (sized_falsified ...), with m = ceil(fraction * q % of the pixels)."""
    if k < 2:
        raise ValueError(f"falsification needs K >= 2 counterfactuals per set, got {k}")
    if not 0 <= low < high <= 1:
        raise ValueError(f"falsification thresholds need 0 <= low < high <= 1, got low={low}, high={high}")
    if not 0 < fraction <= 1:
        raise ValueError(f"falsification fraction must be in (0, 1], got {fraction}")
    if not 0 < q <= 50:
        raise ValueError(f"falsification size-controlled q must be in (0, 50] percent, got {q}")
    if isinstance(task, ClassTask):
        task = task.with_probability(False)  # logits: they do not saturate
    n, _, h, w = x.shape
    seeds = np.arange(n) if seeds is None else np.asarray(seeds)
    normed, reason = normalise01(np.asarray(maps), mass)
    keys = ("dist_high", "dist_low", "drop_high", "drop_low", "falsified", "falsified_magnitude")
    out = {key: np.full(n, np.nan) for key in keys}
    out.update({f"sized_{key}": np.full(n, np.nan) for key in keys})
    out.update(n_high=np.zeros(n, np.int64), n_low=np.zeros(n, np.int64), m=np.zeros(n, np.int64),
               degenerate=np.full(n, "", dtype=object), sized_degenerate=np.full(n, "", dtype=object))
    size = max(1, math.ceil(q / 100 * h * w))
    sized_m = max(1, math.ceil(fraction * size))
    out["sized_m"] = np.full(n, sized_m, np.int64)
    for i in range(n):
        if reason[i]:
            out["degenerate"][i] = out["sized_degenerate"][i] = reason[i]
            continue
        # threshold variant
        sets = {"high": normed[i] > high, "low": normed[i] < low}
        out["n_high"][i], out["n_low"][i] = int(sets["high"].sum()), int(sets["low"].sum())
        empty = [name for name, s in sets.items() if not s.any()]
        if empty:
            out["degenerate"][i] = "empty_" + "_".join(empty)
        else:
            m = max(1, math.ceil(fraction * min(out["n_high"][i], out["n_low"][i])))
            out["m"][i] = m
            res = _test(task, x[i], sets, m, k, np.random.default_rng([int(seeds[i]), 0xFA15]), i, batch_size, mass)
            for key, value in res.items():
                out[key][i] = value
        # size-controlled variant: top and bottom q % of the mass, ties in a seeded random order
        ranks = pixel_ranks(normed[i][None], seeds[i:i + 1])[0].reshape(h, w)
        sets = {"high": ranks < size, "low": ranks >= h * w - size}
        res = _test(task, x[i], sets, sized_m, k, np.random.default_rng([int(seeds[i]), 0x512E]), i, batch_size,
                    mass)
        for key, value in res.items():
            out[f"sized_{key}"][i] = value
    return out
