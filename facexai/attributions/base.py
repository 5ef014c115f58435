"""One interface for every attribution method.

What is explained is a `Task` (facexai/tasks.py): per row of a batch of model-ready images, one
scalar score, of a classifier's output (`ClassTask`) or of a verification pair or triplet
(`PairTask`).

A method is built from its config parameters and returns maps (N, H, W) float32 at the input
resolution; `sample_ids` lets methods that draw random numbers seed them per sample, so a map
does not depend on how samples were batched or sharded.
"""

from __future__ import annotations

import abc

import numpy as np
import torch

from ..tasks import ClassTask, PairTask, Task  # noqa: F401  (the methods' callers import them from here too)

METHODS: dict[str, type["AttributionMethod"]] = {}
# classes chosen by a parameter under any configured name instead of by their own name (maps made
# elsewhere: `{precomputed: PATH}`, attributions/precomputed.py); filled at import, as METHODS is
BY_PARAMETER: dict[str, type["AttributionMethod"]] = {}


class AttributionMethod(abc.ABC):
    name: str = ""
    defaults: dict = {}
    # perturbation methods compare scores across masked copies: probabilities, not logits
    uses_probability: bool = False
    # a baseline that never calls the model (random, edge, centre): methods are tested against it
    model_free: bool = False
    # the method can explain another model (the randomisation sanity checks re-run it)
    recomputable: bool = True
    # it reads the answer (where a pair's photos differ): a ceiling beside the methods, never a baseline
    oracle: bool = False
    # it reads the explained images' label maps (`Task.part_labels`): the runners load them for it
    needs_labels: bool = False
    # it reads a layer of the network through hooks (the Grad-CAM family): not applicable where the
    # network forbids them (a TorchScript file; models/embedders.cam_unavailable says why)
    needs_layer_hooks: bool = False
    # the parameter that chooses this class under any method name (see BY_PARAMETER); "" for a method
    # chosen by its own name
    chosen_by: str = ""

    def __init__(self, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"methods.{self.name}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("chosen_by"):
            BY_PARAMETER[cls.chosen_by] = cls
        elif cls.name:
            METHODS[cls.name] = cls

    # per-row quality figures of the last call that a method can report (e.g. Integrated Gradients'
    # completeness error); stored beside the maps
    diagnostics: dict

    def __call__(self, task: Task, images: torch.Tensor, sample_ids: np.ndarray, seed: int) -> np.ndarray:
        task = task.with_probability(self.uses_probability) if isinstance(task, ClassTask) else task
        self.diagnostics = {}
        maps = self.attribute(task, images, np.asarray(sample_ids), seed)
        if maps.shape != (images.shape[0],) + tuple(images.shape[-2:]):
            raise RuntimeError(f"{self.name}: returned maps of shape {maps.shape} for images {tuple(images.shape)}")
        return maps.astype(np.float32)

    def budget(self) -> str:
        """What one map costs, in the method's own units (steps, masks, samples): shown beside the
        method in every table and figure legend, so results are never compared at hidden budgets."""
        return "model-free" if self.model_free else "1 pass"

    @abc.abstractmethod
    def attribute(self, task: Task, images: torch.Tensor, sample_ids: np.ndarray, seed: int) -> np.ndarray:
        """Maps (N, H, W) for the task's scores."""


def row_seed(seed: int, sample_id: int) -> int:
    """The seed of one sample's random draws: a map depends on (seed, sample id), not on batching."""
    return int(np.random.default_rng([seed, int(sample_id)]).integers(2**31))


def channel_sum(attributions: torch.Tensor) -> np.ndarray:
    """Pixel map from per-channel input attributions (N, C, H, W): the sum over channels (signed)."""
    return attributions.detach().sum(dim=1).float().cpu().numpy()


def method_budget(name: str, params: dict | None = None) -> str:
    """The budget string of a configured method (see `AttributionMethod.budget`)."""
    return get_method(name, params).budget()


def get_method(name: str, params: dict | None = None) -> AttributionMethod:
    """The configured method `name` with its parameters; a name whose parameters are
    `{precomputed: PATH}` is a set of maps made elsewhere (attributions/precomputed.py)."""
    if name not in METHODS and isinstance(params, dict):
        for key, cls in BY_PARAMETER.items():
            if key in params:
                return cls(**params)
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name](**(params or {}))
