"""Pick the torch device: `auto` means CUDA when present, else CPU."""

from __future__ import annotations

import torch


# config `device`: CUDA when present (auto), or the one named
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for in config, but CUDA is not available here")
    return torch.device(name)
