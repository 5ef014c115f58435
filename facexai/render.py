"""Rendering shared by the figures and the gallery: colours, heat maps over images, label maps,
PNG + PDF writing. Imports nothing else of facexai's figures (no import circle)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from PIL import Image  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .labels import CLASS_NAMES  # noqa: E402

LABEL_CMAP = ListedColormap(plt.get_cmap("tab20").colors[:len(CLASS_NAMES)], name="facexai_labels")
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")


def method_colours(methods) -> dict[str, str]:
    return {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(sorted(methods))}


def method_label(method: str, budgets: dict | None = None, sep: str = " ") -> str:
    """A method's name with its budget (steps, masks, samples) for legends and tick labels."""
    budget = (budgets or {}).get(str(method), "")
    return f"{method}{sep}({budget})" if budget else str(method)


def save(fig, png_path, dpi: int = 120) -> None:
    """Write PNG and the PDF beside it, each atomically."""
    png_path = Path(png_path)
    for path, kwargs in ((png_path, {"dpi": dpi}), (png_path.with_suffix(".pdf"), {})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], bbox_inches="tight", **kwargs)
    plt.close(fig)


def _palette() -> np.ndarray:
    return (np.array([LABEL_CMAP(i)[:3] for i in range(len(CLASS_NAMES))]) * 255).astype(np.float32)


def _viridis() -> np.ndarray:
    return (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def heat_of(a: np.ndarray, mode: str = "positive") -> np.ndarray | None:
    """The map as displayed, in [0, 1] (positive part, |a| or negative part per mass mode, scaled by
    its maximum); None when it has no mass or is not finite (shown as such, never as a blank map)."""
    a = np.asarray(a, np.float64)
    if not np.isfinite(a).all():
        return None
    a = {"positive": np.maximum(a, 0), "absolute": np.abs(a), "negative": np.maximum(-a, 0)}[mode]
    top = a.max()
    return a / top if top > 0 else None


def overlay_rgb(image: np.ndarray, heat: np.ndarray | None, alpha: float = 0.6) -> np.ndarray:
    """The heat map (bilinearly resized to the image) in viridis over the image; a degenerate map
    gives the image in grey."""
    img = image.astype(np.float32)
    if heat is None:
        return np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    h, w = img.shape[:2]
    if heat.shape != (h, w):
        heat = np.asarray(Image.fromarray(heat.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    colours = _viridis()[np.clip(np.rint(heat * 255), 0, 255).astype(np.int64)]
    return np.clip((1 - alpha) * img + alpha * colours, 0, 255).astype(np.uint8)


def label_rgb(labels: np.ndarray, region_classes) -> np.ndarray:
    """The label map in its 19-colour palette, pixels outside the region faded towards white."""
    rgb = _palette()[labels.astype(np.int64)]
    inside = np.isin(labels, list(region_classes))[..., None]
    return np.where(inside, rgb, 0.3 * rgb + 0.7 * 255).astype(np.uint8)


def data_uri(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
