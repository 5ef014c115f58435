"""Attribution stage: methods behind one interface, a registry by name, and the shard runner."""

from .base import METHODS, AttributionMethod, get_method  # noqa: F401
from . import gradcam, random_baseline  # noqa: F401  (register the methods)
