"""LIME (Ribeiro et al. 2016, the `lime` package) and SHAP (Lundberg & Lee 2017, the `shap` package).

LIME: superpixels from SLIC on the image itself (scikit-image; never from the part masks),
`num_samples` random on/off superpixel patterns (off = black), a weighted linear fit; each pixel
gets its superpixel's weight. The model is called in batches of `batch_size` patterns (the
package's default is 10, which dominates its run time).

SHAP: expected gradients through shap.GradientExplainer, with a per-image background (black,
grey, and a blurred copy of the image: nothing from other samples, so a map does not depend on
the batch); the pixel map is the sum over colour channels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.samples import PIXEL_MEAN, PIXEL_STD
from .base import AttributionMethod, Task
from .captum_methods import baseline_images


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Normalised (N, 3, H, W) -> float pixels (N, H, W, 3) in [0, 1]."""
    return (images * PIXEL_STD + PIXEL_MEAN).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)


def from_pixels(pixels: np.ndarray, device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(device).permute(0, 3, 1, 2)
    return (x - PIXEL_MEAN) / PIXEL_STD


class LIME(AttributionMethod):
    name = "lime"
    defaults = {"num_samples": 500, "n_segments": 40, "compactness": 10.0, "batch_size": 50}
    uses_probability = True

    def attribute(self, task, images, sample_ids, seed):
        from lime import lime_image
        from skimage.segmentation import slic

        pixels = to_pixels(images)
        out = np.zeros(pixels.shape[:3], np.float32)
        for i, (image, sample_id) in enumerate(zip(pixels, sample_ids)):
            def classifier_fn(batch, i=i):
                with torch.no_grad():
                    x = from_pixels(np.asarray(batch), images.device)
                    return task.score(x, [i] * len(x)).cpu().numpy()[:, None].astype(np.float64)

            def segment(img):
                return slic(img, n_segments=int(self.params["n_segments"]),
                            compactness=float(self.params["compactness"]), start_label=0, channel_axis=-1)

            random_seed = int(np.random.default_rng([seed, int(sample_id)]).integers(2**31))
            explainer = lime_image.LimeImageExplainer(random_state=random_seed)
            explanation = explainer.explain_instance(
                image, classifier_fn, labels=(0,), top_labels=None, hide_color=0,
                num_samples=int(self.params["num_samples"]), batch_size=int(self.params["batch_size"]),
                segmentation_fn=segment, random_seed=random_seed)
            weights = dict(explanation.local_exp[0])
            segments = explanation.segments
            out[i] = np.vectorize(lambda s: weights.get(s, 0.0), otypes=[np.float32])(segments)
        return out


class _RowScore(nn.Module):
    """One row of a task as a module with one output (what shap's GradientExplainer calls)."""

    def __init__(self, task: Task, row: int):
        super().__init__()
        self.task, self.row = task, row

    def forward(self, x):
        return self.task.score(x, [self.row] * len(x))[:, None]


class SHAP(AttributionMethod):
    name = "shap"
    defaults = {"nsamples": 64, "batch_size": 0}  # batch_size 0: all of an image's samples in one call

    def attribute(self, task, images, sample_ids, seed):
        import shap

        out = []
        for i, sample_id in enumerate(sample_ids):
            x = images[i:i + 1]
            background = torch.cat([baseline_images(x, "black"), baseline_images(x, "grey"),
                                    baseline_images(x, "blur")])
            batch = int(self.params["batch_size"]) or int(self.params["nsamples"])
            explainer = shap.GradientExplainer(_RowScore(task, i), background, batch_size=batch)
            rseed = int(np.random.default_rng([seed, int(sample_id)]).integers(2**31))
            with torch.enable_grad():
                values = explainer.shap_values(x, nsamples=int(self.params["nsamples"]), rseed=rseed)
            values = np.asarray(values[0] if isinstance(values, list) else values)
            values = values.reshape(1, *x.shape[1:], -1)[..., 0] if values.ndim == 5 else values.reshape(x.shape)
            out.append(values.sum(axis=1)[0])
        return np.stack(out).astype(np.float32)
