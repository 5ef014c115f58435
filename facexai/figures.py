"""Figures. Colour-blind-safe maps (viridis for saliency); label maps with a fixed 19-colour palette."""

from __future__ import annotations

import h5py
import matplotlib
import matplotlib.patches

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .data.samples import read_rows  # noqa: E402
from .labels import CLASS_NAMES  # noqa: E402

LABEL_CMAP = ListedColormap(plt.get_cmap("tab20").colors[:len(CLASS_NAMES)], name="facexai_labels")


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(np.asarray(a, np.float64), nan=0.0)
    a = np.maximum(a, 0)
    top = a.max()
    return a / top if top > 0 else a


def overlay_figure(dataset_h5, attribution_h5s: dict[str, str], out_png, n_samples: int = 6,
                   dpi: int = 100) -> int:
    """Rows: explained decisions (same sample and attribute for every method); columns: image,
    colour-coded label map, one heat map per method over the image. Returns rows drawn."""
    methods = list(attribution_h5s)
    loaded = {}
    for method, path in attribution_h5s.items():
        with h5py.File(path, "r") as f:
            keys = list(zip(f["ids"][:].tolist(), [a.decode() for a in f["attribute"][:]]))
            loaded[method] = (keys, f["maps"][:].astype(np.float32), f["row"][:], f["score"][:])
    common = [k for k in loaded[methods[0]][0] if all(k in loaded[m][0] for m in methods)][:n_samples]
    n_rows = max(len(common), 1)
    fig, axes = plt.subplots(n_rows, 2 + len(methods), figsize=(2.0 * (2 + len(methods)), 2.1 * n_rows),
                             squeeze=False)
    with h5py.File(dataset_h5, "r") as h5:
        for r, key in enumerate(common):
            keys, _, rows, scores = loaded[methods[0]]
            k0 = keys.index(key)
            image = read_rows(h5, "images", [rows[k0]])[0]
            labels = read_rows(h5, "labels", [rows[k0]])[0]
            axes[r, 0].imshow(image)
            axes[r, 0].set_title(f"id {key[0]}: {key[1]}\np={scores[k0]:.2f}", fontsize=7)
            axes[r, 1].imshow(labels, cmap=LABEL_CMAP, vmin=-0.5, vmax=len(CLASS_NAMES) - 0.5,
                              interpolation="nearest")
            axes[r, 1].set_title("label map", fontsize=7)
            for c, method in enumerate(methods):
                keys_m, maps, _, _ = loaded[method]
                heat = _normalise(maps[keys_m.index(key)])
                ax = axes[r, 2 + c]
                ax.imshow(image, extent=(0, 1, 1, 0))
                ax.imshow(heat, cmap="viridis", alpha=0.6, vmin=0, vmax=1, extent=(0, 1, 1, 0))
                ax.set_title(method, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if not common:
        axes[0, 0].text(0.5, 0.5, "no explained samples", ha="center", va="center")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return len(common)


def contact_sheet(root, sample_ids, out_png, mask_size: int, columns: int = 4, dpi: int = 80) -> None:
    """Images of a CelebAMask-HQ-layout folder beside their fused label maps (for docs and eyeballing)."""
    from .data.celebamask import image_path, read_image, scan_mask_files
    from .data.fusion import fuse_masks

    files, _ = scan_mask_files(root, sample_ids)
    rows = -(-len(sample_ids) // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(2 * 2 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, sample_id in enumerate(sample_ids):
        r, c = divmod(k, columns)
        axes[r, 2 * c].imshow(read_image(image_path(root, sample_id), 256))
        axes[r, 2 * c].set_title(f"{sample_id}.jpg", fontsize=8)
        axes[r, 2 * c + 1].imshow(fuse_masks(files[int(sample_id)], mask_size), cmap=LABEL_CMAP,
                                  vmin=-0.5, vmax=len(CLASS_NAMES) - 0.5, interpolation="nearest")
        axes[r, 2 * c + 1].set_title("fused labels", fontsize=8)
    handles = [matplotlib.patches.Patch(color=LABEL_CMAP(i), label=f"{i} {n}") for i, n in enumerate(CLASS_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncol=10, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def training_curves_figure(curves_tsv, out_png, title: str = "", dpi: int = 100) -> None:
    """Train and test loss per epoch."""
    import pandas as pd

    curves = pd.read_csv(curves_tsv, sep="\t")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for column, style in (("train_loss", "-o"), ("test_loss", "--s")):
        if column in curves:
            ax.plot(curves["epoch"], curves[column], style, label=column.replace("_", " "), markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
