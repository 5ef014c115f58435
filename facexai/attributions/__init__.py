"""Attribution stage: methods behind one interface, a registry by name, and the shard runner."""

from . import captum_methods, gradcam, lime_shap, model_free, precomputed, random_baseline, rise  # noqa: F401
from .base import METHODS, AttributionMethod, ClassTask, PairTask, get_method  # noqa: F401

# the baseline every verdict is first taken against (a map of noise: attributions/random_baseline.py)
RANDOM = "random"
# the other model-free baselines (methods whose `model_free` is set, oracles aside): every method is
# also tested against each of them present in a table
MODEL_FREE_BASELINES = tuple(name for name, cls in METHODS.items()
                             if cls.model_free and not cls.oracle and name != RANDOM)
# methods that read the answer of a pair kind (`oracle` set): a reference, never ranked or a baseline
ORACLES = tuple(name for name, cls in METHODS.items() if cls.oracle)
