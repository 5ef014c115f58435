"""One interface for every attribution method.

What is explained is a `Task`: for each row of a batch of model-ready images (N, 3, H, W), one
scalar score. Two kinds:

* `ClassTask`: an output of a classifier (attribute index per row); the score is the logit, or
  the probability sigmoid(logit) for methods that compare scores across perturbations;
* `PairTask`: a verification pair; the score is the cosine similarity between the embedding of
  the image and the (fixed) embedding of its partner image; for a triplet row (a twin embedding
  given), the preference s(x, partner) - s(x, twin).

`Task.forward(x, *extra)` returns scores (N, 1), with `extra` the per-row tensors (targets or
partner embeddings), so captum can call it as `forward_func` with `additional_forward_args`
(it repeats them for expanded batches) and target 0. Our own methods call `task.score(x, rows)`
with `rows` the batch row each image of `x` belongs to.

A method is built from its config parameters and returns maps (N, H, W) float32 at the input
resolution; `sample_ids` lets methods that draw random numbers seed them per sample, so a map
does not depend on how samples were batched or sharded.
"""

from __future__ import annotations

import abc
import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

METHODS: dict[str, type["AttributionMethod"]] = {}
# classes chosen by a parameter under any configured name instead of by their own name (maps made
# elsewhere: `{precomputed: PATH}`, attributions/precomputed.py); filled at import, as METHODS is
BY_PARAMETER: dict[str, type["AttributionMethod"]] = {}


@dataclasses.dataclass
class Task:
    model: nn.Module
    extra: tuple[torch.Tensor, ...]
    probability: bool = False
    # probabilities from float64 logits: a float32 sigmoid is exactly 1 above logit ~17, float64
    # only above ~37 (the metrics score this way; the methods keep float32)
    float64: bool = False
    # the explained images' label maps (N, M, M) for a method that reads them (`needs_labels`: the
    # `parts` baseline); set by the runners, never by a method that explains the model
    part_labels = None

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, x: torch.Tensor, rows) -> torch.Tensor:
        """Scores (len(x),) of images x, image k belonging to batch row rows[k]."""
        rows = torch.as_tensor(rows, device=x.device, dtype=torch.long)
        return self.forward(x, *(e[rows] for e in self.extra))[:, 0]

    def score_matrix(self, x: torch.Tensor, rows) -> torch.Tensor:
        """Scores (len(x), len(rows)): every image of x against every listed row's target, with one
        forward pass (rows of one sample share their masked copies)."""
        return torch.stack([self.score(x, [r] * len(x)) for r in rows], dim=1)

    def with_probability(self, flag: bool = True) -> "Task":
        other = copy.copy(self)
        other.probability = flag
        return other

    def __len__(self) -> int:
        return len(self.extra[0])


def _same_length(x: torch.Tensor, per_row: torch.Tensor, what: str) -> None:
    if len(per_row) != len(x):
        raise ValueError(f"task: {len(x)} images but {len(per_row)} {what} (one per image is needed)")


class ClassTask(Task):
    """Explain output `targets[i]` of a (multi-label) classifier for row i."""

    def __init__(self, model: nn.Module, targets: torch.Tensor, probability: bool = False):
        super().__init__(model, (torch.as_tensor(targets, dtype=torch.long),), probability)

    def forward(self, x, targets):
        _same_length(x, targets, "targets")
        logits = self.model(x).gather(1, targets.to(x.device).view(-1, 1))
        return self._squash(logits)

    def score_matrix(self, x, rows):
        logits = self.model(x)[:, self.extra[0][list(rows)].to(x.device)]
        return self._squash(logits)

    def _squash(self, logits):
        if not self.probability:
            return logits
        return torch.sigmoid(logits.double() if self.float64 else logits)


class PairTask(Task):
    """Explain the score of each image against its partner: the cosine similarity of their
    embeddings, or minus their Euclidean distance (`similarity`, the embedder's own rule; higher
    always means more alike).

    Triplets: with `twin_embeddings` (N, D) and `has_twin` (N,) bool, a row with a twin scores the
    preference s(x, partner) - s(x, twin) (the mate over the twin that differs from it in one
    region); rows without one keep the plain similarity.

    `partner_ids` (one per row, required) name the partners independently of any model: methods that
    seed per row (the random baseline) use them, so their maps never depend on the model's weights.
    """

    def __init__(self, model: nn.Module, partner_embeddings: torch.Tensor, partner_ids, probability: bool = False,
                 partner_images: torch.Tensor | None = None, similarity: str = "cosine",
                 twin_embeddings: torch.Tensor | None = None, has_twin=None):
        from ..models.embedders import SIMILARITIES

        if similarity not in SIMILARITIES:
            raise ValueError(f"PairTask: unknown similarity {similarity!r}; known: {SIMILARITIES}")
        partners = self._space(partner_embeddings.detach(), similarity)
        extra = (partners,)
        if twin_embeddings is not None:
            twins = self._space(twin_embeddings.detach().to(partners.device), similarity)
            weight = torch.ones(len(twins)) if has_twin is None else torch.as_tensor(np.asarray(has_twin, bool))
            if twins.shape != partners.shape or len(weight) != len(partners):
                raise ValueError(f"PairTask: {len(partners)} partner embeddings {tuple(partners.shape)} but twins "
                                 f"{tuple(twins.shape)} and {len(weight)} has_twin flags")
            extra = (partners, twins, weight.to(dtype=partners.dtype, device=partners.device))
        super().__init__(model, extra, probability)
        self.similarity = similarity
        self.partner_ids = np.asarray(partner_ids, np.int64).reshape(-1)
        # the partner photos (model input), for methods that fill masked pixels from the partner
        self.partner_images = partner_images
        # (a, b) model input whose difference is the answer of a ground-truth kind (the oracle reads it)
        self.oracle_images: tuple[torch.Tensor, torch.Tensor] | None = None
        if len(self.partner_ids) != len(partner_embeddings):
            raise ValueError(f"PairTask: {len(partner_embeddings)} partner embeddings but {len(self.partner_ids)} "
                             "partner ids (one per pair)")

    @staticmethod
    def _space(embeddings: torch.Tensor, similarity: str) -> torch.Tensor:
        return F.normalize(embeddings, dim=1) if similarity == "cosine" else embeddings

    @property
    def has_twins(self) -> bool:
        return len(self.extra) == 3

    def forward(self, x, partners, twins=None, weight=None):
        from ..models.embedders import pair_score

        _same_length(x, partners, "partner embeddings")
        emb = self.model(x)
        score = pair_score(emb, partners.to(x.device), self.similarity)
        if twins is not None:
            score = score - weight.to(x.device) * pair_score(emb, twins.to(x.device), self.similarity)
        return score.view(-1, 1)

    def score_matrix(self, x, rows):
        from ..models.embedders import score_matrix

        rows = list(rows)
        emb = self.model(x)
        scores = score_matrix(emb, self.extra[0][rows].to(x.device), self.similarity)
        if self.has_twins:
            twins, weight = self.extra[1][rows].to(x.device), self.extra[2][rows].to(x.device)
            scores = scores - weight[None, :] * score_matrix(emb, twins, self.similarity)
        return scores


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
