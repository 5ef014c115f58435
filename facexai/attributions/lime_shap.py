"""LIME (Ribeiro et al. 2016, the `lime` package) and SHAP (Lundberg & Lee 2017, the `shap` package).

LIME: superpixels from SLIC on the image itself (scikit-image; never from the part masks),
`num_samples` random on/off superpixel patterns (off = black), a weighted linear fit; each pixel
gets its superpixel's weight.

SHAP: expected gradients as in shap.GradientExplainer, with a per-image background (black, grey,
and a blurred copy of the image: nothing from other samples, so a map does not depend on the
batch); the pixel map is the sum over colour channels.

Both have two engines, chosen by the `engine` parameter:

* `package`: the packages' own loops, one image at a time (LimeImageExplainer.explain_instance with
  its per-pattern numpy masking; one GradientExplainer per image). This is the reference.
* `batched` (default): the same random draws from the same seeded generators as the package
  (lime: the explainer's RandomState; shap: numpy's legacy generator seeded with `rseed`), so the
  maps are the package's maps up to float rounding, but the perturbed or interpolated inputs of
  all images of the batch are built on the model's device with tensor indexing and sent through
  the model `batch_size` at a time, across images. LIME's weighted fit is still the package's
  (`LimeBase.explain_instance_with_data`). The equality with the package engine is tested.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.samples import denormalise, normalise
from ..perturbation import baseline_images
from .base import AttributionMethod, Task, row_seed


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Normalised (N, 3, H, W) -> float pixels (N, H, W, 3) in [0, 1]."""
    return denormalise(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)


def from_pixels(pixels: np.ndarray, device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(device).permute(0, 3, 1, 2)
    return normalise(x)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(start + size, total)


def _runs(rows: np.ndarray, index: np.ndarray):
    """(row, first, end) of each run of equal rows (with consecutive indices) in a chunk of the queue."""
    cuts = np.flatnonzero(np.diff(rows)) + 1
    for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(rows)]):
        yield int(rows[start]), int(index[start]), int(index[end - 1]) + 1


def _paint(local_exp, segments: np.ndarray) -> np.ndarray:
    """Pixel map from lime's [(superpixel, weight), ...]: each pixel gets its superpixel's weight."""
    weights = np.zeros(int(segments.max()) + 1, np.float32)
    for feature, weight in local_exp:
        weights[feature] = weight
    return weights[segments]


ENGINES = ("batched", "package")


class _TwoEngines(AttributionMethod):
    """`engine`: `batched` (ours, the default) or `package` (the package's own loop, the reference)."""

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["engine"] not in ENGINES:
            raise ValueError(f"methods.{self.name}.engine: {self.params['engine']!r}, expected one of {ENGINES}")


class LIME(_TwoEngines):
    name = "lime"
    defaults = {"num_samples": 300, "n_segments": 40, "compactness": 10.0, "batch_size": 32, "engine": "batched"}
    uses_probability = True

    def budget(self):
        return f"{int(self.params['num_samples'])} samples, {int(self.params['n_segments'])} segments"

    def segments(self, image: np.ndarray) -> np.ndarray:
        """SLIC superpixels of one image (H, W, 3), labelled 0..n-1 without gaps (lime indexes its
        on/off patterns by label)."""
        from skimage.segmentation import slic

        seg = slic(image, n_segments=int(self.params["n_segments"]), compactness=float(self.params["compactness"]),
                   start_label=0, channel_axis=-1)
        return np.unique(seg, return_inverse=True)[1].reshape(seg.shape)

    def attribute(self, task, images, sample_ids, seed):
        pixels = to_pixels(images)
        segments = [self.segments(image) for image in pixels]
        if self.params["engine"] == "package":
            return self._package(task, images.device, pixels, segments, sample_ids, seed)
        return self._batched(task, pixels, images.device, segments, sample_ids, seed)

    def _package(self, task, device, pixels, segments, sample_ids, seed):
        from lime import lime_image

        out = np.zeros(pixels.shape[:3], np.float32)
        for i, (image, sample_id) in enumerate(zip(pixels, sample_ids)):
            def classifier_fn(batch, i=i):
                with torch.no_grad():
                    return task.score(from_pixels(np.asarray(batch), device), [i] * len(batch)) \
                        .cpu().numpy()[:, None].astype(np.float64)

            random_seed = row_seed(seed, sample_id)
            explainer = lime_image.LimeImageExplainer(random_state=random_seed)
            explanation = explainer.explain_instance(
                image, classifier_fn, labels=(0,), top_labels=None, hide_color=0,
                num_samples=int(self.params["num_samples"]), batch_size=int(self.params["batch_size"]),
                segmentation_fn=lambda _, seg=segments[i]: seg, random_seed=random_seed)
            out[i] = _paint(explanation.local_exp[0], segments[i])
        return out

    def _batched(self, task, pixels, device, segments, sample_ids, seed):
        from lime import lime_image
        from sklearn.metrics import pairwise_distances

        n_samples = int(self.params["num_samples"])
        x = from_pixels(pixels, device)  # the package sees the clamped pixels: so do we
        hidden = from_pixels(np.zeros((1, 1, 1, 3)), device)  # hide_color 0, normalised (1, 3, 1, 1)
        explainers, patterns = [], []
        for i, sample_id in enumerate(sample_ids):
            explainer = lime_image.LimeImageExplainer(random_state=row_seed(seed, sample_id))
            n_features = int(segments[i].max()) + 1
            # the package's draw, in its order: one call on the explainer's RandomState
            data = explainer.random_state.randint(0, 2, n_samples * n_features).reshape(n_samples, n_features)
            data[0, :] = 1
            explainers.append(explainer)
            patterns.append(data)
        # every (row, pattern) pair in one queue, through the model batch_size at a time
        rows = np.repeat(np.arange(len(x)), n_samples)
        index = np.tile(np.arange(n_samples), len(x))
        seg_t = [torch.from_numpy(seg).to(device) for seg in segments]
        pat_t = [torch.from_numpy(data.astype(bool)).to(device) for data in patterns]
        scores = np.empty(len(rows), np.float64)
        with torch.no_grad():
            for a, b in _chunks(len(rows), int(self.params["batch_size"])):
                keep = torch.cat([pat_t[r][k0:k1][:, seg_t[r]] for r, k0, k1 in _runs(rows[a:b], index[a:b])])
                batch = torch.where(keep[:, None], x[rows[a:b]], hidden)
                scores[a:b] = task.score(batch, rows[a:b]).double().cpu().numpy()
        out = np.zeros(pixels.shape[:3], np.float32)
        for i, (explainer, data) in enumerate(zip(explainers, patterns)):
            labels = scores[i * n_samples:(i + 1) * n_samples, None]
            distances = pairwise_distances(data, data[:1], metric="cosine").ravel()
            _, local_exp, _, _ = explainer.base.explain_instance_with_data(
                data, labels, distances, 0, 100000, feature_selection=explainer.feature_selection)
            out[i] = _paint(local_exp, segments[i])
        return out


class _RowScore(nn.Module):
    """One row of a task as a module with one output (what shap's GradientExplainer calls)."""

    def __init__(self, task: Task, row: int):
        super().__init__()
        self.task, self.row = task, row

    def forward(self, x):
        return self.task.score(x, [self.row] * len(x))[:, None]


class SHAP(_TwoEngines):
    name = "shap"
    # batch_size: interpolated inputs per model call (package engine: per image; batched: across
    # images); 0 means nsamples
    defaults = {"nsamples": 32, "batch_size": 32, "engine": "batched"}

    def budget(self):
        return f"{int(self.params['nsamples'])} samples"

    def attribute(self, task, images, sample_ids, seed):
        # per image: black, grey and a blurred copy of itself (N, 3 backgrounds, C, H, W)
        backgrounds = torch.stack([baseline_images(images, kind) for kind in ("black", "grey", "blur")], dim=1)
        rseeds = [row_seed(seed, sample_id) for sample_id in sample_ids]
        run = self._package if self.params["engine"] == "package" else self._batched
        return run(task, images, backgrounds, rseeds).sum(axis=1).astype(np.float32)

    def _batch(self) -> int:
        return int(self.params["batch_size"]) or int(self.params["nsamples"])

    def _package(self, task, images, backgrounds, rseeds):
        import shap

        out = []
        for i, rseed in enumerate(rseeds):
            x = images[i:i + 1]
            explainer = shap.GradientExplainer(_RowScore(task, i), backgrounds[i], batch_size=self._batch())
            with torch.enable_grad():
                values = explainer.shap_values(x, nsamples=int(self.params["nsamples"]), rseed=rseed)
            values = np.asarray(values[0] if isinstance(values, list) else values)
            out.append(values.reshape(1, *x.shape[1:], -1)[..., 0] if values.ndim == 5 else values.reshape(x.shape))
        return np.concatenate(out)

    def _batched(self, task, images, backgrounds, rseeds):
        n_samples = int(self.params["nsamples"])
        # the package's draws, in its order: per sample a background index then an interpolation
        # point, from numpy's legacy generator seeded with rseed
        pick = np.empty((len(rseeds), n_samples), np.int64)
        alpha = np.empty((len(rseeds), n_samples), np.float64)
        for i, rseed in enumerate(rseeds):
            state = np.random.RandomState(rseed)
            for k in range(n_samples):
                pick[i, k] = state.choice(backgrounds.shape[1])
                alpha[i, k] = state.uniform()
        rows = np.repeat(np.arange(len(images)), n_samples)
        pick, alpha = pick.ravel(), alpha.ravel()
        device = images.device
        phi = torch.zeros(images.shape, dtype=torch.float64, device=device)
        for a, b in _chunks(len(rows), self._batch()):
            r = torch.from_numpy(rows[a:b]).to(device)
            x, base = images[r], backgrounds[r, torch.from_numpy(pick[a:b]).to(device)]
            t = torch.from_numpy(alpha[a:b]).to(device=device, dtype=torch.float32).view(-1, 1, 1, 1)
            point = (t * x + (1 - t) * base).detach().requires_grad_(True)
            with torch.enable_grad():
                grad, = torch.autograd.grad(task.score(point, rows[a:b]).sum(), point)
            phi.index_add_(0, r, grad.double() * (x - base).double())
        return (phi / n_samples).cpu().numpy()
