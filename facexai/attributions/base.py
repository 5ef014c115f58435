"""One interface for every attribution method.

A method is built from its config parameters and called on a model, a batch of model-ready
images (N, 3, H, W) and integer targets (N,) (the output index explained); it returns maps
(N, H, W) float32 at the model resolution. `sample_ids` lets methods that draw random numbers
seed them per sample, so a map does not depend on how samples were batched or sharded.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import nn

METHODS: dict[str, type["AttributionMethod"]] = {}


class AttributionMethod(abc.ABC):
    name: str = ""
    defaults: dict = {}

    def __init__(self, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"methods.{self.name}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            METHODS[cls.name] = cls

    @abc.abstractmethod
    def attribute(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                  sample_ids: np.ndarray, seed: int) -> np.ndarray:
        """Maps (N, H, W) float32 for the given targets."""


def get_method(name: str, params: dict | None = None) -> AttributionMethod:
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name](**(params or {}))
