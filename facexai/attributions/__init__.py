"""Attribution stage: methods behind one interface, a registry by name, and the shard runner."""

from . import captum_methods, gradcam, lime_shap, model_free, precomputed, random_baseline, rise  # noqa: F401
from .base import METHODS, AttributionMethod, ClassTask, PairTask, get_method  # noqa: F401
