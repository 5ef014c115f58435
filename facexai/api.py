"""facexai from Python: score attribution maps made anywhere (captum, Quantus, pytorch-grad-cam, your
own method) against face-part label maps, and, given the model, against the model.

    import facexai
    table = facexai.evaluate(maps, labels, region="eyes")            # mask metrics
    table = facexai.evaluate(maps, labels, region="eyes", model=net, images=images, target=15,
                             preprocess={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})

One row per map, with the column names of the pipeline's per-sample tables (`rp`, `lift`, `recall`,
..., `deletion_auc`, `road_gap`, `falsified_sized`, ...; docs/definitions.md defines each) and NaN
with the reason (`degenerate`, `perturbation_degenerate`, `falsification_degenerate`, ...) where a
value is undefined. The metric functions themselves are exported from `facexai.metrics`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .labels import CLASS_NAMES, DEFAULT_REGIONS, region_class_indices

# the pipeline's defaults (config/config.yaml `metrics`; a test keeps the two equal)
DEFAULT_SETTINGS: dict = {
    "mass": "positive",
    "q": 10,
    "pointing_tolerance": 0,
    "batch_size": 32,
    "deletion": {"steps": 12, "baseline": "black"},
    "road": {"percentages": [10, 30, 50, 70, 90], "noise": 0.01},
    "occlusion": {"fill": "blur"},
    "falsification": {"k": 8, "high": 0.7, "low": 0.3, "fraction": 0.5, "q": 10, "magnitude": False},
    "sanity": {"stages": 3, "max_samples": 8, "smooth": {"samples": 4, "noise": 0.05, "max_samples": 2}},
    "game": {"steps": 32},
}



def _settings(overrides: Mapping | None) -> dict:
    out = copy.deepcopy(DEFAULT_SETTINGS)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise ValueError(f"settings: unknown key {key!r} (known: {sorted(out)})")
        out[key] = {**out[key], **value} if isinstance(out[key], dict) and isinstance(value, Mapping) else value
    return out


def _array(value, name: str, ndim: int) -> np.ndarray:
    try:
        out = np.asarray(value)
    except Exception as exc:  # a ragged list, an object that is not array-like
        raise ValueError(f"{name}: not an array ({exc})") from None
    if out.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {out.shape}")
    return out


def region_masks_of(labels: np.ndarray, region, regions: Mapping[str, Sequence[str]]) -> tuple[np.ndarray, list]:
    """(N, H, W) bool: each map's expected region in its label map; and the region name per map."""
    n = len(labels)
    names = [region] * n if isinstance(region, str) else list(region)
    if len(names) != n:
        raise ValueError(f"region: {len(names)} names for {n} maps (give one name, or one per map)")
    unknown = sorted({r for r in names if r not in regions})
    if unknown:
        raise ValueError(f"region: {unknown} not defined (known: {sorted(regions)})")
    masks = np.zeros(labels.shape, bool)
    for name in set(names):
        rows = np.array([r == name for r in names])
        masks[rows] = np.isin(labels[rows], region_class_indices(name, regions))
    return masks, names


def evaluate(maps, labels, region, *, regions: Mapping[str, Sequence[str]] | None = None, metrics=None,
             model=None, images=None, target=None, preprocess: Mapping | None = None,
             settings: Mapping | None = None, ids=None, seed: int = 0, device: str = "cpu") -> pd.DataFrame:
    """Every metric of the registry for each map, as a DataFrame (one row per map).

    maps        (N, h, w) float, any resolution, square or not; resized (bilinear) to the labels'
                resolution for the mask metrics and to the images' for the model metrics.
    labels      (N, H, W) integer label maps in CelebAMask-HQ's class order (0 background ... 18
                cloth: `facexai.labels.CLASS_NAMES`; the fused HDF5's `labels`), square or not.
    region      the expected region's name, one for all maps or one per map, looked up in
                `regions` (name -> class names; default the shipped table `labels.DEFAULT_REGIONS`).
    metrics     column names to keep (default: all; the reason columns always stay).
    model       optional torch module mapping (B, 3, S, S) to per-class logits; with `images`
                (N, S, S, 3) uint8 and `target` (the logit's index, one or one per map) it adds
                the metrics that call the model: deletion / insertion (sigmoid of the logit),
                ROAD, confidence change under occlusion, falsification (signed logit drop).
    preprocess  the model's input normalisation, {"mean": [r, g, b], "std": [r, g, b]} applied to
                pixels in [0, 1] (ImageNet: mean 0.485 0.456 0.406, std 0.229 0.224 0.225). None:
                the model takes facexai's own scaling, (pixel / 255 - 0.5) / 0.25, as the models the
                pipeline trains do. A wrong normalisation gives wrong scores without an error: say it.
    settings    overrides of the metric settings (`DEFAULT_SETTINGS`, as config `metrics`).
    ids         a sample id per map (seeds the random tie-breaks and fills; default 0..N-1).

    The randomisation sanity checks re-run the attribution method, which a map made elsewhere does
    not bring: their columns are NaN with `sanity_reason = needs_the_method`.
    """
    from .metrics import registry
    from .metrics.topq import mask_metrics

    maps = _array(maps, "maps", 3).astype(np.float32)
    labels = _array(labels, "labels", 3)
    if not len(maps):
        raise ValueError("maps: no maps to score (N = 0)")
    if len(maps) != len(labels):
        raise ValueError(f"maps and labels: {len(maps)} maps but {len(labels)} label maps")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 0 or
                                                                        labels.max() >= len(CLASS_NAMES))):
        raise ValueError(f"labels: expected integer class indices 0..{len(CLASS_NAMES) - 1} (CelebAMask-HQ's "
                         f"order), got {labels.dtype} in [{labels.min() if labels.size else '-'}, "
                         f"{labels.max() if labels.size else '-'}]")
    config = _settings(settings)
    regions = {k: tuple(v) for k, v in (regions or DEFAULT_REGIONS).items()}
    masks, names = region_masks_of(labels, region, regions)
    n = len(maps)
    ids = np.arange(n) if ids is None else _array(ids, "ids", 1).astype(np.int64)
    if len(ids) != n:
        raise ValueError(f"ids: {len(ids)} ids for {n} maps")
    table = pd.DataFrame({"id": ids, "region": names})
    mm = mask_metrics(maps, masks, q=float(config["q"]), tolerance=float(config["pointing_tolerance"]),
                      mode=config["mass"])
    for name, values in mm.items():
        table[name] = values
    for metric in registry.added():
        table[metric.name] = np.asarray(metric.compute(maps, masks, config), np.float64)
    if model is not None:
        table = pd.concat([table, pd.DataFrame(_model_columns(model, images, target, preprocess, maps, masks, ids,
                                                              config, seed, device))], axis=1)
    if metrics is not None:
        known = {m.name for m in registry.metrics()}
        unknown = sorted(set(metrics) - known)
        if unknown:
            raise ValueError(f"metrics: {unknown} unknown (known: {sorted(known)})")
        keep = ["id", "region", *[c for c in table.columns if c.endswith(("degenerate", "_reason"))], *metrics]
        table = table[[c for c in table.columns if c in keep]]
    return table


def _model_columns(model, images, target, preprocess, maps, masks, ids, config, seed, device) -> dict:
    import torch

    from .data.samples import to_model_input
    from .models.embedders import EmbedderInput
    from .models.user import exception_reason

    if images is None or target is None:
        raise ValueError("model metrics need `images` (N, S, S, 3) uint8 and `target` (the logit's index)")
    images = _array(images, "images", 4)
    if images.dtype != np.uint8 or images.shape[-1] != 3 or len(images) != len(maps):
        raise ValueError(f"images: expected ({len(maps)}, S, S, 3) uint8, got {images.shape} {images.dtype}")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images: the model metrics take square images, got {images.shape[1]}x{images.shape[2]}")
    size = images.shape[1]
    targets = np.atleast_1d(np.asarray(target))
    if targets.dtype.kind not in "iu" or len(targets) not in (1, len(maps)):
        raise ValueError(f"target: expected one integer output index, or one per map ({len(maps)}); got "
                         f"{targets.dtype} x {len(targets)}")
    targets = np.broadcast_to(targets.astype(np.int64), (len(maps),)).copy()
    net = model
    if preprocess is not None:
        unknown = sorted(set(preprocess) - {"mean", "std"})
        if unknown or not {"mean", "std"} <= set(preprocess):
            raise ValueError(f"preprocess: expected exactly 'mean' and 'std' (3 values each, of pixels in [0, 1]); "
                             f"got keys {sorted(preprocess)}")
        try:
            mean, std = [float(v) for v in preprocess["mean"]], [float(v) for v in preprocess["std"]]
        except (TypeError, ValueError):
            raise ValueError(f"preprocess: mean and std must be 3 numbers each, got {dict(preprocess)}") from None
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"preprocess: expected mean and std of 3 values each (std > 0), got {dict(preprocess)}")
        if max(abs(v) for v in mean + std) > 2:
            raise ValueError(f"preprocess: mean / std apply to pixels in [0, 1]; {dict(preprocess)} looks like "
                             "0-255 units (divide by 255)")
        net = EmbedderInput(model, size, mean, std)  # our input -> pixels in [0, 1] -> (p - mean) / std
    dev = torch.device(device)
    was_training = model.training
    net = net.to(dev).eval()
    try:
        with torch.no_grad():
            try:
                out = net(to_model_input(images[:2], dev))
            except Exception as exc:  # a foreign model's forward pass
                raise ValueError(f"model: forward pass on images of {size}x{size} failed ({exception_reason(exc)}); "
                                 "check the images' size and `preprocess`") from exc
        if out.ndim != 2 or targets.min() < 0 or targets.max() >= out.shape[1]:
            raise ValueError(f"target: output indices {sorted(set(targets.tolist()))[:5]} outside the model's "
                             f"{tuple(out.shape[1:])} outputs")
        if (out >= 0).all() and torch.allclose(out.sum(dim=1), torch.ones(len(out)), atol=1e-4):
            raise ValueError("model: its outputs are probabilities that sum to 1 (a softmax); give the network "
                             "without its softmax: the metrics read the target's logit (deletion / insertion its "
                             "sigmoid, falsification its drop)")
        return _model_metric_columns(net, targets, images, maps, masks, ids, config, seed, dev, size)
    finally:
        model.train(was_training)


def _model_metric_columns(net, targets, images, maps, masks, ids, config, seed, dev, size) -> dict:
    import torch

    from .attributions.base import ClassTask
    from .metrics.localisation import resize_maps
    from .metrics.run import model_metrics, model_resolution_masks

    task = ClassTask(net, torch.from_numpy(targets))
    # no method to re-run: every row is named as unchecked for that reason (metrics/run.py)
    sanity = {**config["sanity"], "max_samples": len(maps)}
    return model_metrics(task, images, resize_maps(maps, size), ids, model_resolution_masks(masks, size),
                         {**config, "sanity": sanity}, dev, seed=seed)
