"""facexai: do saliency methods point at the part of the face that drives a face model's decision?"""

__version__ = "0.1.0"

from .api import evaluate  # noqa: E402,F401  (the Python entry point: facexai.evaluate)
