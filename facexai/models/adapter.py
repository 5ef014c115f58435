"""A network's own input from the pipeline's: every model and embedder is called on the pipeline's
model input (pixels normalised as `data.samples.normalise`), so that every attribution method and
metric treats them alike; `InputAdapter` turns that input into the network's own: back to pixels
in [0, 1], an optional centred crop, a differentiable bilinear resize to the network's input size
(antialiased when shrinking), then the network's normalisation (pixel * pixel_scale - mean) / std.
Gradients flow through all of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.samples import denormalise


class InputAdapter(nn.Module):
    """The pipeline's model input -> a network's own input (see the module docstring)."""

    def __init__(self, net: nn.Module, input_size: int, mean, std, pixel_scale: float = 1.0,
                 crop: float | None = None):
        super().__init__()
        self.net = net
        self.input_size = int(input_size)
        self.pixel_scale = float(pixel_scale)
        self.crop = None if crop in (None, 1, 1.0) else float(crop)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def cam_layer(self):
        return getattr(self.net, "cam_layer", None)  # none on TorchScript (wrapped in ContiguousInput)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = denormalise(x)
        if self.crop is not None:
            side = x.shape[-1]
            keep = max(1, int(round(self.crop * side)))
            start = (side - keep) // 2
            pixels = pixels[..., start:start + keep, start:start + keep]
        if pixels.shape[-1] != self.input_size or pixels.shape[-2] != self.input_size:
            shrink = pixels.shape[-1] > self.input_size
            pixels = F.interpolate(pixels, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False, antialias=shrink)
        return self.net(((pixels * self.pixel_scale - self.mean) / self.std).contiguous())
