"""How pixels are taken away, for the methods and for the metrics alike: a Gaussian blur of image
batches in torch (no torchvision: separable, reflect padding) and the baseline images that stand
in for removed pixels (black, grey = the normalisation mean, blur), in the model's normalised input
space. Both stages import this module (attributions/ and metrics/); it imports neither.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data.samples import normalise

# what replaces a removed pixel: Integrated Gradients' and Occlusion's baselines, deletion's and the
# region occlusion's fills
BASELINES = ("black", "grey", "blur")


def gaussian_kernel1d(kernel_size: int, sigma: float, device=None) -> torch.Tensor:
    x = torch.arange(kernel_size, dtype=torch.float32, device=device) - (kernel_size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(images: torch.Tensor, kernel_size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Blur (N, C, H, W) per channel with a kernel_size Gaussian of std sigma."""
    if kernel_size % 2 != 1:
        raise ValueError("kernel_size must be odd")
    c = images.shape[1]
    k = gaussian_kernel1d(kernel_size, sigma, images.device).to(images.dtype)
    pad = kernel_size // 2
    # reflect padding needs the image to be larger than the pad; tiny images fall back to replicate
    mode = "reflect" if min(images.shape[-2:]) > pad else "replicate"
    x = F.pad(images, (pad, pad, pad, pad), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def baseline_images(images: torch.Tensor, kind: str) -> torch.Tensor:
    """Baselines in the model's normalised input space."""
    if kind == "black":
        return torch.full_like(images, normalise(0.0))
    if kind == "grey":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images, kernel_size=11, sigma=5.0)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
