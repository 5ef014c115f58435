"""What a map explains: a `Task`, for each row of a batch of model-ready images (N, 3, H, W), one
scalar score. Two kinds:

* `ClassTask`: an output of a classifier (attribute index per row); the score is the logit, or
  the probability sigmoid(logit) for methods that compare scores across perturbations;
* `PairTask`: a verification pair; the score is the similarity between the embedding of the image
  and the (fixed) embedding of its partner image; for a triplet row (a twin embedding given), the
  preference s(x, partner) - s(x, twin).

`Task.forward(x, *extra)` returns scores (N, 1), with `extra` the per-row tensors (targets or
partner embeddings), so captum can call it as `forward_func` with `additional_forward_args`
(it repeats them for expanded batches) and target 0. The methods and the metrics call
`task.score(x, rows)` with `rows` the batch row each image of `x` belongs to. Both stages import
this module (attributions/ and metrics/); it imports neither.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
        from .models.embedders import SIMILARITIES

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
        from .models.embedders import pair_score

        _same_length(x, partners, "partner embeddings")
        emb = self.model(x)
        score = pair_score(emb, partners.to(x.device), self.similarity)
        if twins is not None:
            score = score - weight.to(x.device) * pair_score(emb, twins.to(x.device), self.similarity)
        return score.view(-1, 1)

    def score_matrix(self, x, rows):
        from .models.embedders import score_matrix

        rows = list(rows)
        emb = self.model(x)
        scores = score_matrix(emb, self.extra[0][rows].to(x.device), self.similarity)
        if self.has_twins:
            twins, weight = self.extra[1][rows].to(x.device), self.extra[2][rows].to(x.device)
            scores = scores - weight[None, :] * score_matrix(emb, twins, self.similarity)
        return scores
