"""Integrated Gradients, Occlusion and SmoothGrad through captum.

Integrated Gradients (Sundararajan et al. 2017): a_i = (x_i - b_i) * int_0^1 dS(b + t (x - b))/dx_i dt,
Gauss-Legendre quadrature with `n_steps`; the pixel map is the sum over colour channels (signed).
Baselines: black (all pixels 0), grey (the normalisation mean) or a blurred copy of the image.

Occlusion (Zeiler & Fergus 2014): slide a `window` x `window` patch of the baseline over the
image with `stride`; each pixel gets the mean drop of the score over the windows covering it.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients, Occlusion

from ..data.samples import normalise
from .base import AttributionMethod, channel_sum, row_seed
from .blur import gaussian_blur

BASELINES = ("black", "grey", "blur")


def baseline_images(images: torch.Tensor, kind: str) -> torch.Tensor:
    """Baselines in the model's normalised input space."""
    if kind == "black":
        return torch.full_like(images, normalise(0.0))
    if kind == "grey":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images, kernel_size=11, sigma=5.0)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


class IntegratedGradientsMethod(AttributionMethod):
    name = "integrated_gradients"
    defaults = {"n_steps": 16, "baseline": "black", "internal_batch_size": 32}

    def attribute(self, task, images, sample_ids, seed):
        ig = IntegratedGradients(task.forward)
        with torch.enable_grad():
            attributions = ig.attribute(images, baselines=baseline_images(images, self.params["baseline"]),
                                        target=0, additional_forward_args=task.extra,
                                        n_steps=int(self.params["n_steps"]), method="gausslegendre",
                                        internal_batch_size=int(self.params["internal_batch_size"]))
        return channel_sum(attributions)


class OcclusionMethod(AttributionMethod):
    name = "occlusion"
    defaults = {"window": 8, "stride": 4, "baseline": "black", "perturbations_per_eval": 8}
    uses_probability = True

    def attribute(self, task, images, sample_ids, seed):
        w, s = int(self.params["window"]), int(self.params["stride"])
        baseline = baseline_images(images, self.params["baseline"])
        attributions = Occlusion(task.forward).attribute(
            images, sliding_window_shapes=(images.shape[1], w, w), strides=(images.shape[1], s, s),
            baselines=baseline, target=0, additional_forward_args=task.extra,
            perturbations_per_eval=int(self.params["perturbations_per_eval"]))
        return channel_sum(attributions) / images.shape[1]


class SmoothGrad(AttributionMethod):
    """SmoothGrad (Smilkov et al. 2017) through captum's NoiseTunnel over plain gradients:
    map = sum over channels of mean_n dS/dx (x + eps_n), eps_n ~ N(0, stdev^2) in the normalised
    input space. Noise is drawn per sample from (seed, sample id), so maps do not depend on batching."""

    name = "smoothgrad"
    defaults = {"nt_samples": 16, "stdev": 0.15, "nt_samples_batch_size": 16}

    def attribute(self, task, images, sample_ids, seed):
        from captum.attr import NoiseTunnel, Saliency

        tunnel = NoiseTunnel(Saliency(task.forward))
        out = []
        for i, sample_id in enumerate(sample_ids):
            torch.manual_seed(row_seed(seed, sample_id))
            with torch.enable_grad():
                grads = tunnel.attribute(images[i:i + 1], nt_type="smoothgrad",
                                         nt_samples=int(self.params["nt_samples"]),
                                         nt_samples_batch_size=int(self.params["nt_samples_batch_size"]),
                                         stdevs=float(self.params["stdev"]), target=0, abs=False,
                                         additional_forward_args=tuple(e[i:i + 1] for e in task.extra))
            out.append(channel_sum(grads)[0])
        return np.stack(out)
