"""Gaussian blur of image batches in torch (no torchvision): separable, reflect padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
