"""A photo file of any format Pillow reads, 8 or 16 bits, as RGB uint8 with its EXIF orientation."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from ...errors import BadInputError


def decode_photo(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 (H, W, 3), EXIF orientation applied; BadInputError naming the file if undecodable.
    16-bit and 32-bit grey images (PNG, TIFF) are scaled to 8 bits, never clipped."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return to_rgb8(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInputError(path, f"cannot decode the photo ({exc})") from exc


def to_rgb8(im: Image.Image) -> np.ndarray:
    """An image of any Pillow mode as RGB uint8. Pillow's convert("RGB") clips the integer modes
    (I;16, I) at 255, which turns most of a 16-bit photo white: those are scaled by the smallest
    common bit depth (8, 10, 12, 14, 16 or 32 bits) that holds their largest value, so 12-bit data
    in a 16-bit file is not darkened 16-fold; a float image by its own range. Non-finite values are
    bad input (ValueError, named by the caller)."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        grey = np.asarray(im, dtype=np.float64)
        if not np.isfinite(grey).all():
            raise ValueError(f"the image holds {int((~np.isfinite(grey)).sum())} non-finite pixel value(s)")
        if im.mode == "F":
            low, high = float(grey.min()), float(grey.max())
            grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
        else:
            top = max(float(grey.max()), 0.0)
            depth = next((2.0 ** bits - 1 for bits in (8, 10, 12, 14, 16, 32) if top <= 2.0 ** bits - 1),
                         2.0 ** 32 - 1)
            grey = np.clip(grey, 0, depth) / depth
        grey8 = np.round(grey * 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[..., None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
