"""Model-free baselines beside the random one: maps that never look at the model.

A method that cannot beat them on a metric has not shown, on that metric, that it explains the model
rather than the image (edges) or the dataset's layout (faces are centred and aligned):

* `edge`: the gradient magnitude of the grey image, sqrt(Gx^2 + Gy^2) with Sobel's 3x3 kernels
  (scipy.ndimage.sobel, borders reflected), after an optional Gaussian blur of `sigma` pixels. The
  grey image is the luminance 0.299 R + 0.587 G + 0.114 B of the pixels in [0, 1].
* `centre`: a Gaussian on the image centre, exp(-d^2 / (2 s^2)) with d the distance of a pixel
  centre from the image centre and s = `sigma` x the image side: the same map for every image.
* `parts`: the image's own face parts, all of them (the label classes in `classes`: brows, eyes,
  nose, mouth and lips by default), each model pixel's share of part pixels, Gaussian-blurred by
  `sigma` pixels: it knows where every part of this face is, not which one the model uses. On
  pairs and triplets whose answer is one swapped part, a map that puts the parts first already
  wins much of the game; a method has shown that it explains the model only where it beats this.

All are constant under model randomisation, so the sanity checks must fail them.

For verification pairs and triplets, `difference` is the oracle: it reads where the two photos
differ, the answer of the ground-truth kinds (a ceiling, not a baseline).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..data.samples import denormalise
from .base import AttributionMethod

LUMA = (0.299, 0.587, 0.114)


def grey(images) -> np.ndarray:
    """Model input (N, 3, H, W) -> luminance (N, H, W) float64 of the pixels in [0, 1]."""
    pixels = denormalise(images.detach().double().cpu().numpy())
    return np.tensordot(np.asarray(LUMA), pixels, axes=([0], [1]))


def sobel_magnitude(image: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """|grad| of one grey image (H, W) by Sobel's kernels, after a Gaussian blur when sigma > 0."""
    image = np.asarray(image, np.float64)
    if sigma < 0:
        raise ValueError(f"methods.edge.sigma must be >= 0 pixels, got {sigma}")
    if sigma > 0:
        image = ndimage.gaussian_filter(image, sigma, mode="reflect")
    gy = ndimage.sobel(image, axis=0, mode="reflect")
    gx = ndimage.sobel(image, axis=1, mode="reflect")
    return np.hypot(gx, gy)


def centre_prior(height: int, width: int, sigma: float) -> np.ndarray:
    """exp(-d^2 / (2 (sigma * side)^2)), d from each pixel centre to the image centre (H, W)."""
    if not sigma > 0:
        raise ValueError(f"methods.centre.sigma must be > 0 (a fraction of the image side), got {sigma}")
    yy = np.arange(height) + 0.5 - height / 2
    xx = np.arange(width) + 0.5 - width / 2
    d2 = yy[:, None] ** 2 + xx[None, :] ** 2
    s = sigma * max(height, width)
    return np.exp(-d2 / (2 * s * s))


class EdgeBaseline(AttributionMethod):
    name = "edge"
    defaults = {"sigma": 0.0}
    model_free = True

    def attribute(self, task, images, sample_ids, seed):
        sigma = float(self.params["sigma"])
        return np.stack([sobel_magnitude(g, sigma) for g in grey(images)]).astype(np.float32) if len(images) \
            else np.zeros((0, *images.shape[-2:]), np.float32)


class CentreBaseline(AttributionMethod):
    name = "centre"
    defaults = {"sigma": 0.25}
    model_free = True

    def attribute(self, task, images, sample_ids, seed):
        prior = centre_prior(images.shape[-2], images.shape[-1], float(self.params["sigma"])).astype(np.float32)
        return np.broadcast_to(prior, (len(images), *prior.shape)).copy()


# the inner face parts: what `parts` marks by default
INNER_PARTS = ("l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip")


def part_share(labels: np.ndarray, classes, size: int) -> np.ndarray:
    """(N, M, M) label maps -> (N, size, size) float64: each pixel's share of label pixels whose class
    is in `classes` (area average when the labels are finer, nearest when coarser)."""
    from ..labels import CLASS_INDEX

    unknown = [c for c in classes if c not in CLASS_INDEX]
    if unknown:
        raise ValueError(f"methods.parts.classes: unknown class(es) {unknown}; known: {list(CLASS_INDEX)}")
    inside = np.isin(np.asarray(labels), [CLASS_INDEX[c] for c in classes]).astype(np.float64)
    m = inside.shape[-1]
    if m == size:
        return inside
    if m > size:  # the share of each model pixel's area (torch's area average: any ratio)
        import torch
        import torch.nn.functional as F

        return F.adaptive_avg_pool2d(torch.from_numpy(inside)[:, None], size)[:, 0].numpy()
    index = np.minimum(((np.arange(size) + 0.5) * m / size).astype(int), m - 1)
    return inside[:, index][:, :, index]


class PartsBaseline(AttributionMethod):
    name = "parts"
    defaults = {"classes": list(INNER_PARTS), "sigma": 1.0}
    model_free = True
    needs_labels = True

    def attribute(self, task, images, sample_ids, seed):
        labels = getattr(task, "part_labels", None)
        if labels is None or len(labels) != len(images):
            raise ValueError("methods.parts: needs the label maps of the explained images (the runners load them; "
                             f"got {None if labels is None else len(labels)} for {len(images)} images)")
        sigma = float(self.params["sigma"])
        if sigma < 0:
            raise ValueError(f"methods.parts.sigma must be >= 0 pixels, got {sigma}")
        share = part_share(labels, self.params["classes"], images.shape[-1])
        if sigma > 0 and len(share):
            share = np.stack([ndimage.gaussian_filter(s, sigma, mode="constant") for s in share])
        return share.astype(np.float32)


class DifferenceOracle(AttributionMethod):
    """`difference`: the pair-aware oracle, |a - b| summed over the colour channels of the pixels in
    [0, 1], smoothed by a Gaussian of `sigma` pixels: for a pair, a = the explained image and b =
    its partner (region and swap pairs: where the swap changed the photo); for a triplet, a = the
    mate M and b = the twin M', on P's grid (the faces are aligned). It reads pixels no method may
    read (the answer of the ground-truth kinds), never the model: it is the ceiling of
    localisation on those kinds, not a baseline a method should beat. Pairs only."""

    name = "difference"
    defaults = {"sigma": 1.0}
    model_free = True
    oracle = True

    def budget(self):
        return "oracle"

    def attribute(self, task, images, sample_ids, seed):
        pair = getattr(task, "oracle_images", None)
        if pair is None:
            raise ValueError("methods.difference: an oracle for verification pairs and triplets (it reads where "
                             "the two photos differ); it cannot explain attribute decisions")
        sigma = float(self.params["sigma"])
        if sigma < 0:
            raise ValueError(f"methods.difference.sigma must be >= 0 pixels, got {sigma}")
        a, b = (denormalise(t.detach().double().cpu().numpy()) for t in pair)
        diff = np.abs(a - b).sum(axis=1)
        if sigma > 0:
            diff = np.stack([ndimage.gaussian_filter(d, sigma, mode="reflect") for d in diff]) if len(diff) else diff
        return diff.astype(np.float32)
