"""Metrics stage: per-sample scores of attribution maps against part masks and against the model.

The reference one-metric functions (each takes maps (N, H, W) and boolean regions (N, H, W) at the
label resolution and returns one value per sample, NaN where undefined) are importable from here:

    regional_precision, chance_level, lift, regional_recall, relevance_rank_accuracy, topq_iou,
    pointing_game, spatial_coherence, region_auc, energy_pointing, energy_pointing_lift,
    degenerate_reason

and the metrics that call the model (each takes a `Task` from `facexai.attributions.base`, the
model input x (N, 3, S, S) as `facexai.data.samples.to_model_input` makes it, and maps (N, S, S)):

    deletion_insertion, confidence_change (faithfulness), road, falsification,
    cascading_randomisation, smoothed_randomisation (sanity)

Each docstring states the formula, the inputs and the degenerate cases; `facexai.evaluate` runs
them all on maps made anywhere.

The pipeline computes them all at once with `topq.mask_metrics` (one sort per map), which the tests
check against these functions. Every metric's column, label and good direction: `registry`.
Definitions: docs/definitions.md.
"""

from .faithfulness import confidence_change, deletion_insertion  # noqa: F401
from .falsification import falsification  # noqa: F401
from .localisation import (  # noqa: F401
    chance_level,
    degenerate_reason,
    energy_pointing,
    energy_pointing_lift,
    lift,
    positive_part,
    region_box,
    regional_precision,
    resize_maps,
)
from .road import road  # noqa: F401
from .sanity import cascading_randomisation, smoothed_randomisation  # noqa: F401
from .topq import (  # noqa: F401
    mask_metrics,
    pointing_game,
    region_auc,
    regional_recall,
    relevance_rank_accuracy,
    spatial_coherence,
    topq_iou,
)
