"""Every per-sample metric once: its column, label, good direction, and where it is used.

Every consumer reads this table: the per-sample tables (which columns exist), aggregation (which are
summarised, for attribute decisions and for verification pairs), the statistics (which are tested,
in which direction), the gallery (which are shown on a card and can sort a view) and the tests.
Definitions are in docs/definitions.md.

Adding a metric: write its function (its own module, with its tests) and `register` a `Metric` with
`compute` set; the per-sample tables, the aggregate tables, the statistics and the gallery pick it
up. Most built-in metrics have `compute=None`: they come from the fast all-metrics paths
(`topq.mask_metrics` against the masks, `run.model_metrics` against the model); the energy-based
pointing game brings its own.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .localisation import energy_pointing_lift_metric, energy_pointing_metric

HIGHER, LOWER, NONE = 1, -1, 0


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str                    # column of the per-sample tables
    label: str                   # short label for figures and gallery cards
    direction: int = NONE        # HIGHER / LOWER is better; NONE: described, never tested
    kind: str = "mask"           # "mask": against the region mask; "model": calls the model
    classes: bool = True         # summarised for attribute decisions
    pairs: bool = False          # summarised for verification pairs
    shown: bool = False          # on the gallery's cards
    sortable: bool = False       # a gallery view can be sorted by it
    optional: bool = False       # computed only when a config switch asks for it
    # the value depends on the map only through the order of its pixels: a strictly increasing
    # transform f of a non-negative map with f(0) = 0 leaves it unchanged (False: it reads the
    # mass, or the scale)
    rank_based: bool = False
    # (maps (N, h, w) float32 at model resolution, regions (N, M, M) bool at label resolution,
    # settings = config `metrics`) -> (N,) values, NaN where undefined; None for the built-ins
    compute: Callable[[np.ndarray, np.ndarray, dict], np.ndarray] | None = None


_BUILT_IN = (
    Metric("rp", "RP", HIGHER, pairs=True, shown=True, sortable=True),
    Metric("chance", "chance", classes=False, rank_based=True),
    Metric("lift", "lift", HIGHER, pairs=True, shown=True, sortable=True),
    Metric("rp_dissimilarity", "RP (dissimilarity)", HIGHER, classes=False, pairs=True),
    Metric("lift_dissimilarity", "lift (dissimilarity)", HIGHER, classes=False, pairs=True),
    # region-swap pairs: the lift in the donor's part and in the rest of the pasted area (the border)
    Metric("lift_part", "lift (donor's part)", HIGHER, classes=False, pairs=True),
    Metric("lift_seam", "lift (pasted border)", classes=False, pairs=True),
    Metric("recall", "recall@q", HIGHER, pairs=True, shown=True, rank_based=True),
    Metric("iou", "IoU@q", HIGHER, rank_based=True),
    Metric("rank_accuracy", "rank accuracy", HIGHER, rank_based=True),
    Metric("pointing", "pointing", HIGHER, pairs=True, shown=True, rank_based=True),
    # the share of the mass in the region's bounding box: described; its chance-normalised value
    # (over the box's share of the image, so that a uniform map scores 1 on every region) is tested
    Metric("energy_pointing", "energy pointing", pairs=True, compute=energy_pointing_metric),
    Metric("energy_pointing_lift", "energy pointing lift", HIGHER, pairs=True, shown=True,
           compute=energy_pointing_lift_metric),
    Metric("components", "components@q", rank_based=True),
    Metric("largest_share", "largest component share", rank_based=True),
    Metric("auc", "AUC", HIGHER, pairs=True, shown=True, sortable=True, rank_based=True),
    Metric("deletion_auc", "deletion", LOWER, "model", pairs=True, shown=True, sortable=True, rank_based=True),
    Metric("insertion_auc", "insertion", HIGHER, "model", pairs=True, shown=True, sortable=True, rank_based=True),
    Metric("deletion_accuracy_auc", "deletion (accuracy)", LOWER, "model", classes=False, pairs=True,
           rank_based=True),
    Metric("insertion_accuracy_auc", "insertion (accuracy)", HIGHER, "model", classes=False, pairs=True,
           rank_based=True),
    Metric("road_morf", "ROAD MoRF", kind="model", rank_based=True),
    Metric("road_lerf", "ROAD LeRF", kind="model", rank_based=True),
    Metric("road_gap", "ROAD gap", HIGHER, "model", pairs=True, shown=True, sortable=True, rank_based=True),
    # occlusion of the region or of its complement: the map is not read at all
    Metric("drop_subject", "drop (region occluded)", kind="model", pairs=True, rank_based=True),
    Metric("increase_subject", "increase (region occluded)", kind="model", rank_based=True),
    Metric("drop_background", "drop (background occluded)", kind="model", pairs=True, rank_based=True),
    Metric("increase_background", "increase (background occluded)", kind="model", rank_based=True),
    # the threshold variant's sets (a > 0.7, a < 0.3 of the normalised mass) depend on the scale of
    # the map's values, not only on their order (a, a^3 and sqrt(a) give different verdicts): it is
    # described beside the size-controlled variant and never tested, compared or ranked
    Metric("falsified", "falsified (threshold)", kind="model", pairs=True, shown=True),
    Metric("falsified_sized", "falsified (size-controlled)", LOWER, "model", pairs=True, shown=True,
           rank_based=True),
    # only with metrics.falsification.magnitude: true (|Y - O| instead of the signed logit drop)
    Metric("falsified_magnitude", "falsified (threshold, magnitude)", kind="model", optional=True),
    Metric("falsified_sized_magnitude", "falsified (size-controlled, magnitude)", LOWER, "model", optional=True,
           rank_based=True),
    # the inpainting game on triplets (game.py): the switched fraction when the probe's hybrid first
    # prefers the twin, and the share of those pixels in the region (over the region's share)
    Metric("game_flip_fraction", "game: flip fraction", LOWER, "model", classes=False, pairs=True, shown=True,
           sortable=True, rank_based=True),
    Metric("game_region_share", "game: region share", kind="model", classes=False, pairs=True, rank_based=True),
    Metric("game_region_lift", "game: region lift", HIGHER, "model", classes=False, pairs=True, shown=True,
           rank_based=True),
    Metric("sanity_spearman", "sanity ρ", LOWER, "model", pairs=True, shown=True),
    Metric("sanity_ssim", "sanity SSIM", LOWER, "model", pairs=True),
    # smoothed randomisation check (sMPRT): maps averaged over noisy inputs, original vs all layers random
    Metric("smprt_spearman", "sMPRT ρ", LOWER, "model", pairs=True, shown=True),
    # a map's own quality, reported by its method (Integrated Gradients only)
    Metric("completeness_error", "IG completeness error", kind="map", pairs=True, shown=True, optional=True),
)
_REGISTRY: list[Metric] = list(_BUILT_IN)


def register(metric: Metric) -> Metric:
    """Add a metric (it must bring its `compute`); its name must be new."""
    if any(m.name == metric.name for m in _REGISTRY):
        raise ValueError(f"metric {metric.name!r} is already registered")
    if metric.compute is None:
        raise ValueError(f"metric {metric.name!r}: a registered metric needs its compute function")
    _REGISTRY.append(metric)
    return metric


def unregister(name: str) -> None:
    """Remove an added metric (tests); built-ins stay."""
    if any(m.name == name for m in _BUILT_IN):
        raise ValueError(f"metric {name!r} is built in")
    _REGISTRY[:] = [m for m in _REGISTRY if m.name != name]


def metrics() -> tuple[Metric, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Metric:
    for m in _REGISTRY:
        if m.name == name:
            return m
    raise KeyError(f"unknown metric {name!r}; known: {[m.name for m in _REGISTRY]}")


def summarised(pairs: bool = False) -> tuple[str, ...]:
    """Columns the aggregate tables summarise (mean, median, CI), in table order."""
    return tuple(m.name for m in _REGISTRY if (m.pairs if pairs else m.classes))


def tested(pairs: bool = False) -> tuple[str, ...]:
    """Summarised columns with a good direction: compared between methods and against random."""
    return tuple(name for name in summarised(pairs) if get(name).direction != NONE)


def rank_based() -> tuple[str, ...]:
    """Metrics that depend on a map only through the order of its pixels (docs/definitions.md)."""
    return tuple(m.name for m in _REGISTRY if m.rank_based)


def direction(name: str) -> int:
    return get(name).direction


def shown() -> tuple[tuple[str, str], ...]:
    """(column, label) of the metrics on a gallery card, in order."""
    return tuple((m.name, m.label) for m in _REGISTRY if m.shown)


def sortable() -> dict[str, int]:
    """Metrics a gallery view can be sorted by, with their good direction."""
    return {m.name: m.direction for m in _REGISTRY if m.sortable}


def mask_columns() -> tuple[str, ...]:
    """The built-in per-sample columns against the masks (from `topq.mask_metrics`), in order."""
    return tuple(m.name for m in _BUILT_IN if m.kind == "mask" and m.compute is None
                 and (m.classes or m.name == "chance"))


def added() -> tuple[Metric, ...]:
    """Registered metrics that bring their own `compute`."""
    return tuple(m for m in _REGISTRY if m.compute is not None)
