"""Attribution stage: methods behind one interface, a registry by name, and the shard runner."""

from . import captum_methods, gradcam, lime_shap, random_baseline, rise  # noqa: F401  (register the methods)
from .base import METHODS, AttributionMethod, ClassTask, PairTask, get_method  # noqa: F401
