"""Metrics stage: per-sample scores of attribution maps against part masks and against the model.

The reference one-metric functions (each takes maps (N, H, W) and boolean regions (N, H, W) at the
label resolution and returns one value per sample, NaN where undefined) are importable from here:

    regional_precision, chance_level, lift, regional_recall, relevance_rank_accuracy, topq_iou,
    pointing_game, spatial_coherence, region_auc, degenerate_reason

The pipeline computes them all at once with `topq.mask_metrics` (one sort per map), which the tests
check against these functions. Every metric's column, label and good direction: `registry`.
Definitions: docs/definitions.md.
"""

from .localisation import (  # noqa: F401
    chance_level,
    degenerate_reason,
    lift,
    positive_part,
    regional_precision,
    resize_maps,
)
from .topq import (  # noqa: F401
    mask_metrics,
    pointing_game,
    region_auc,
    regional_recall,
    relevance_rank_accuracy,
    spatial_coherence,
    topq_iou,
)
