"""Integrated Gradients, Occlusion and SmoothGrad through captum.

Integrated Gradients (Sundararajan et al. 2017): a_i = (x_i - b_i) * int_0^1 dS(b + t (x - b))/dx_i dt,
Gauss-Legendre quadrature with `n_steps`; the pixel map is the sum over colour channels (signed).
Baselines: black (all pixels 0), grey (the normalisation mean) or a blurred copy of the image.
Completeness: sum_i a_i = S(x) - S(b) exactly; the quadrature misses it by captum's convergence
delta. Each map's relative error |delta| / |S(x) - S(b)| is reported (`completeness_error`, in the
attribution file and the metric tables; maps beyond `completeness_tolerance` are flagged).

Occlusion (Zeiler & Fergus 2014): slide a `window` x `window` patch of the baseline over the
image with `stride`; each pixel gets the mean drop of the score over the windows covering it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.samples import PIXEL_STD
from ..perturbation import baseline_images
from .base import AttributionMethod, channel_sum, row_seed

class IntegratedGradientsMethod(AttributionMethod):
    name = "integrated_gradients"
    defaults = {"n_steps": 32, "baseline": "black", "internal_batch_size": 32, "completeness_tolerance": 0.05}

    def budget(self):
        return f"{int(self.params['n_steps'])} steps"

    def attribute(self, task, images, sample_ids, seed):
        from captum.attr import IntegratedGradients  # captum takes ~1 s to import: only where it is used

        ig = IntegratedGradients(task.forward)
        baselines = baseline_images(images, self.params["baseline"])
        with torch.enable_grad():
            attributions, delta = ig.attribute(images, baselines=baselines, target=0,
                                               additional_forward_args=task.extra,
                                               n_steps=int(self.params["n_steps"]), method="gausslegendre",
                                               internal_batch_size=int(self.params["internal_batch_size"]),
                                               return_convergence_delta=True)
        with torch.no_grad():
            span = (task.forward(images, *task.extra) - task.forward(baselines, *task.extra))[:, 0]
        delta, span = delta.detach().double().cpu().numpy(), span.double().cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            error = np.where(np.abs(span) > 0, np.abs(delta) / np.abs(span), np.nan)
        self.diagnostics = {"completeness_delta": delta, "completeness_error": error,
                            "completeness_flagged": error > float(self.params["completeness_tolerance"])}
        return channel_sum(attributions)


class OcclusionMethod(AttributionMethod):
    name = "occlusion"
    defaults = {"window": 8, "stride": 4, "baseline": "black", "perturbations_per_eval": 8}
    uses_probability = True

    def budget(self):
        return f"window {int(self.params['window'])} px, stride {int(self.params['stride'])}"

    def attribute(self, task, images, sample_ids, seed):
        from captum.attr import Occlusion

        w, s = int(self.params["window"]), int(self.params["stride"])
        baseline = baseline_images(images, self.params["baseline"])
        attributions = Occlusion(task.forward).attribute(
            images, sliding_window_shapes=(images.shape[1], w, w), strides=(images.shape[1], s, s),
            baselines=baseline, target=0, additional_forward_args=task.extra,
            perturbations_per_eval=int(self.params["perturbations_per_eval"]))
        return channel_sum(attributions) / images.shape[1]


class SmoothGrad(AttributionMethod):
    """SmoothGrad (Smilkov et al. 2017) through captum's NoiseTunnel over plain gradients:
    map = sum over channels of mean_n dS/dx (x + eps_n), eps_n ~ N(0, sigma^2). `stdev` is in pixel
    units (the image in [0, 1]; Smilkov et al. suggest 10-20 % of the range); in the model's
    normalised input it is stdev / PIXEL_STD. Noise is drawn per sample from (seed, sample id), so
    maps do not depend on batching."""

    name = "smoothgrad"
    defaults = {"nt_samples": 16, "stdev": 0.0375, "nt_samples_batch_size": 16}

    def budget(self):
        return f"{int(self.params['nt_samples'])} samples"

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
                                         stdevs=float(self.params["stdev"]) / PIXEL_STD, target=0, abs=False,
                                         additional_forward_args=tuple(e[i:i + 1] for e in task.extra))
            out.append(channel_sum(grads)[0])
        return np.stack(out)
