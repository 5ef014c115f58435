"""Metrics stage: per-sample scores of attribution maps against part masks and against the model."""

from .localisation import (  # noqa: F401
    chance_level,
    lift,
    positive_part,
    regional_precision,
    resize_maps,
)
