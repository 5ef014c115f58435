"""facexai: do saliency methods point at the part of the face that drives a face model's decision?"""

from ._version import __version__  # noqa: F401
from .api import evaluate  # noqa: F401  (the Python entry point: facexai.evaluate)
