"""Reading fused samples back: rows of the HDF5 file, as arrays or model-ready tensors."""

from __future__ import annotations

import h5py
import numpy as np
import torch

# Images enter every model as (x / 255 - MEAN) / STD per channel.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


def read_rows(h5: h5py.File, name: str, rows) -> np.ndarray:
    """Rows of dataset `name` in the order given (h5py needs increasing indices; we sort and undo)."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return np.zeros((0,) + h5[name].shape[1:], h5[name].dtype)
    order = np.argsort(rows, kind="stable")
    unique, inverse = np.unique(rows[order], return_inverse=True)
    data = h5[name][unique]
    out = np.empty((rows.size,) + data.shape[1:], data.dtype)
    out[order] = data[inverse]
    return out


def normalise(x):
    """Pixel values in [0, 1] (array, tensor or number) -> model input units."""
    return (x - PIXEL_MEAN) / PIXEL_STD


def denormalise(x):
    """Model input units -> pixel values (in [0, 1] for real images)."""
    return x * PIXEL_STD + PIXEL_MEAN


def to_model_input(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float32 (N, 3, H, W), contiguous in that (channels-first) order.

    The permuted view of the HWC array must not reach a model as is: with 2+ threads, the CPU build of
    torch 2.13 aborts in the backward pass of a convolution on such channels-last strides for some batch
    sizes (seen: every odd batch from 3 to 33), so the result is made contiguous here.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return normalise(x).contiguous()
