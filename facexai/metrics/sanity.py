"""Sanity check by cascading model randomisation (Adebayo et al. 2018).

The layers with weights (Conv2d, Linear) are taken from the output back to the input. Stage s
re-initialises the top n_s of them (each with its own seeded `reset_parameters`, cascading: every
stage keeps the earlier stages' layers random), the map is recomputed with the same method and
seed, and compared with the original map:

* |Spearman| rank correlation of the raw maps (average ranks for ties): the magnitude, as in
  Adebayo et al., since an inverted map is as dependent on the original as an equal one, and
* SSIM (scikit-image, data range 1) of the maps min-max normalised to [0, 1].

A method whose maps do not change when the model's weights are destroyed explains the image, not
the model: it fails. A randomised map that collapses (constant, all-zero included, or not finite)
while the original had structure has changed completely: it scores 0 on both, with the reason
`collapsed` (e.g. Grad-CAM's ReLU zeroes everything once the top layers are random). Where the
original map itself is constant or not finite there is nothing to compare: NaN, `constant_map`.
BatchNorm statistics and affine parameters are kept, as in Adebayo et al.'s weight cascade.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from scipy.stats import rankdata
from skimage.metrics import structural_similarity
from torch import nn

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def _is_weight_layer(module: nn.Module) -> bool:
    """A Conv2d / Linear, also inside a TorchScript file (scripted or traced from such modules, which
    keep their `original_name`)."""
    return isinstance(module, WEIGHT_LAYERS) or (
        isinstance(module, torch.jit.ScriptModule) and getattr(module, "original_name", None) in ("Conv2d", "Linear"))


def weight_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d / Linear modules, from the output back to the input (registration order
    reversed: our backbones register their layers in forward order)."""
    return [name for name, m in model.named_modules() if _is_weight_layer(m)][::-1]


def reset_layer(module: nn.Module) -> None:
    """Re-draw a layer's weights as PyTorch initialises them (Kaiming-uniform weight, bias uniform in
    +-1/sqrt(fan_in)); TorchScript layers have no reset_parameters, so it is done by hand there."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    with torch.no_grad():
        weight = module.weight
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        bias = getattr(module, "bias", None)
        if bias is not None:
            fan_in = weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(bias, -bound, bound)


def cascade_stages(n_layers: int, stages: int) -> list[int]:
    """How many top layers are random at each stage: `stages` counts evenly spaced up to all."""
    if stages < 1:
        raise ValueError(f"sanity.stages must be >= 1, got {stages}")
    return sorted({max(1, math.ceil(n_layers * s / stages)) for s in range(1, stages + 1)})


def randomised_copies(model: nn.Module, stages: int, seed: int):
    """Yield (n_random_layers, top_layer_name, model copy) for each cascade stage."""
    names = weight_layers(model)
    if not names:
        raise ValueError("sanity check: the model has no Conv2d or Linear layers to randomise")
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    done = 0
    for count in cascade_stages(len(names), stages):
        for j in range(done, count):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1000 + j)
                reset_layer(modules[names[j]])
        done = count
        yield count, names[count - 1], randomised


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each pair of maps (N,), NaN where either is constant."""
    ra = rankdata(np.asarray(a, np.float64).reshape(len(a), -1), axis=1)
    rb = rankdata(np.asarray(b, np.float64).reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ra * rb).sum(axis=1) / denom
    out[~(denom > 0)] = np.nan
    return out


def ssim_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of min-max normalised maps (N,), NaN where either is constant."""
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(np.asarray(a, np.float64), np.asarray(b, np.float64))):
        if not (np.ptp(x) > 0 and np.ptp(y) > 0 and np.isfinite(x).all() and np.isfinite(y).all()):
            continue
        x, y = (x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)
        win = min(7, min(x.shape) - (1 - min(x.shape) % 2))
        out[i] = structural_similarity(x, y, data_range=1.0, win_size=win)
    return out


def _structured(maps: np.ndarray) -> np.ndarray:
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    finite = np.isfinite(flat).all(axis=1)
    with np.errstate(invalid="ignore"):
        return finite & (np.ptp(np.nan_to_num(flat), axis=1) > 0)


def compare_maps(original: np.ndarray, randomised: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|Spearman|, SSIM and the reason per row: '' when both maps have structure, `collapsed` (0, 0)
    when only the original has, `constant_map` (NaN, NaN) when the original has none."""
    rho, ssim = np.abs(spearman_rows(original, randomised)), ssim_rows(original, randomised)
    had, has = _structured(original), _structured(randomised)
    reason = np.full(len(original), "", dtype=object)
    collapsed = had & ~has
    rho[collapsed], ssim[collapsed], reason[collapsed] = 0.0, 0.0, "collapsed"
    rho[~had], ssim[~had], reason[~had] = np.nan, np.nan, "constant_map"
    return rho, ssim, reason


def at_stored_precision(maps) -> np.ndarray:
    """Maps as float16 storage would hold them, each row first scaled by the power of two at or above
    its largest finite |value| (both comparisons ignore a positive scale per row: Spearman ranks, SSIM
    min-max normalises), so that a randomised network's huge values (dlib's ResNet has no
    normalisation layers) are not cast to inf. An unchanged map stays equal to its original, stored
    or not."""
    maps = np.asarray(maps, np.float64)
    flat = maps.reshape(len(maps), -1)
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.where(np.isfinite(flat), np.abs(flat), np.nan), axis=1, initial=0.0) \
            if flat.size else np.zeros(len(maps))
    # a power of two: scaling is then exact, and float16 rounding commutes with it
    scale = np.exp2(np.ceil(np.log2(np.where(peak > 0, peak, 1.0)))).reshape((-1,) + (1,) * (maps.ndim - 1))
    return (maps / scale).astype(np.float16).astype(np.float32)


def cascading_randomisation(model: nn.Module, explain, maps: np.ndarray, *, stages: int = 4,
                            seed: int = 0) -> dict[str, np.ndarray]:
    """explain(model) -> maps (N, H, W) recomputes the maps with a given model (same method, images,
    targets and seed). Returns spearman (|rho|) and ssim (N, S), reason (N, S) (see
    `compare_maps`), layers (S,) (random top layers per stage) and layer_names (S,) (the deepest
    layer randomised at that stage)."""
    maps = at_stored_precision(maps)
    counts, names, rho, ssim, reasons = [], [], [], [], []
    for count, name, randomised in randomised_copies(model, stages, seed):
        randomised.eval()
        # maps are compared at the precision they are stored in (float16): an unchanged map is equal
        new = at_stored_precision(explain(randomised))
        counts.append(count)
        names.append(name)
        r, s, why = compare_maps(maps, new)
        rho.append(r)
        ssim.append(s)
        reasons.append(why)
    return {"spearman": np.stack(rho, axis=1), "ssim": np.stack(ssim, axis=1), "reason": np.stack(reasons, axis=1),
            "layers": np.array(counts), "layer_names": np.array(names)}


def noisy_copies(x: torch.Tensor, ids, samples: int, noise: float, seed: int = 0):
    """Yield `samples` noisy copies of model input x (N, C, H, W): Gaussian noise of std `noise` in
    pixel units (the image in [0, 1]), drawn per row from (seed, sample id, copy), so a copy does not
    depend on which rows are batched together."""
    from ..data.samples import PIXEL_STD

    shape = tuple(x.shape[1:])
    for j in range(samples):
        eps = np.stack([np.random.default_rng([seed, int(i), j, 7]).standard_normal(shape) for i in ids]) \
            if len(ids) else np.zeros((0, *shape))
        yield x + torch.from_numpy(eps.astype(np.float32)).to(x.device) * (noise / PIXEL_STD)


def smoothed_randomisation(model: nn.Module, explain, x: torch.Tensor, ids, *, samples: int = 4,
                           noise: float = 0.05, seed: int = 0) -> dict[str, np.ndarray]:
    """Smoothed model parameter randomisation test (sMPRT; Hedström et al. 2023, "Sanity checks
    revisited"): each map is the mean of the method's maps over `samples` noisy copies of the input,
    for the original model and for the fully randomised one (every layer of the cascade), and the two
    smoothed maps are compared like the plain check does (`compare_maps`). Averaging removes the
    gradient noise that would otherwise pass for a dependence on the weights.

    explain(model, x) -> maps (N, H, W) for the rows of x. Returns spearman (|rho|), ssim and reason (N,)."""
    if samples < 1:
        raise ValueError(f"metrics.sanity.smooth.samples must be >= 1 to run sMPRT, got {samples}")

    def smoothed(m):
        total = None
        for xn in noisy_copies(x, ids, samples, noise, seed):
            maps = np.asarray(explain(m, xn), np.float64)
            total = maps if total is None else total + maps
        return at_stored_precision(total / samples)

    original = smoothed(model)
    # one stage holding every weight layer: the cascade's last stage (each layer's seed is its own)
    _, _, randomised = next(randomised_copies(model, 1, seed))
    randomised.eval()
    rho, ssim, reason = compare_maps(original, smoothed(randomised))
    return {"spearman": rho, "ssim": ssim, "reason": reason}
