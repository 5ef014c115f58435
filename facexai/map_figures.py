"""Figures of maps on faces: the overlay grid (image, label map, one heat map per method), the
verification pair figure, the contact sheet of a dataset. Viridis for saliency; label maps in a
fixed 19-colour palette (facexai.render)."""

from __future__ import annotations

from pathlib import Path

import h5py
import matplotlib
import matplotlib.patches

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .data.samples import read_rows  # noqa: E402
from .labels import CLASS_NAMES  # noqa: E402
from .layout import Layout  # noqa: E402
from .render import LABEL_CMAP, heat_of, overlay_rgb, save  # noqa: E402

def _load_maps(paths, extra=()) -> dict:
    """Maps and row data of one method's attribution shards, keyed by (id, attribute) or, for pair
    files, (id, partner id)."""
    from .attributions.store import read_shard

    out = {}
    for path in paths:
        shard = read_shard(path)
        for k, key in enumerate(shard.keys()):
            out[key] = {"map": shard.maps[k], **{name: shard[name][k] for name in ("row", "score", *extra)
                                                 if name in shard.columns}}
    return out


def _heat_panel(ax, image, a, mode, title):
    heat = heat_of(a, mode)
    ax.imshow(overlay_rgb(image, heat))
    ax.set_title(title if heat is not None else f"{title}\n(no mass)", fontsize=7)


def _finish_grid(fig, axes, out_png, dpi: int, empty_message: str | None) -> None:
    """Panels without ticks, a message when there was nothing to draw, PNG + PDF."""
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if empty_message:
        axes[0, 0].text(0.5, 0.5, empty_message, ha="center", va="center")
    fig.tight_layout()
    save(fig, out_png, dpi=dpi)


def overlay_figure(dataset_h5, attribution_h5s: dict[str, list], out_png, n_samples: int = 6, ids=None,
                   mode: str = "positive", dpi: int = 100) -> int:
    """Rows: explained decisions (same sample and attribute for every method), the configured sample
    ids or else the first n_samples; columns: image, colour-coded label map, one heat map per method
    over the image (the map's mass as the metrics count it, scaled to its maximum; a map without mass
    is drawn grey and says so). PNG and PDF. Returns rows drawn."""
    methods = list(attribution_h5s)
    loaded = {m: _load_maps(paths) for m, paths in attribution_h5s.items()}
    common = [k for k in loaded[methods[0]] if all(k in loaded[m] for m in methods)]
    if ids:
        wanted = {int(i) for i in ids}
        missing = wanted - {k[0] for k in common}
        if missing:
            raise ValueError(f"figures.overlay_ids: sample id(s) {sorted(missing)} were not explained "
                             f"(not in the test split, or beyond explain.max_samples)")
        common = [k for k in common if k[0] in wanted]
    else:
        common = common[:n_samples]
    n_rows = max(len(common), 1)
    fig, axes = plt.subplots(n_rows, 2 + len(methods), figsize=(2.0 * (2 + len(methods)), 2.1 * n_rows),
                             squeeze=False)
    with h5py.File(dataset_h5, "r") as h5:
        for r, key in enumerate(common):
            first = loaded[methods[0]][key]
            image = read_rows(h5, "images", [first["row"]])[0]
            labels = read_rows(h5, "labels", [first["row"]])[0]
            axes[r, 0].imshow(image)
            axes[r, 0].set_title(f"id {key[0]}: {key[1]}\np={first['score']:.2f}", fontsize=7)
            axes[r, 1].imshow(labels, cmap=LABEL_CMAP, vmin=-0.5, vmax=len(CLASS_NAMES) - 0.5,
                              interpolation="nearest")
            axes[r, 1].set_title("label map", fontsize=7)
            for c, method in enumerate(methods):
                _heat_panel(axes[r, 2 + c], image, loaded[method][key]["map"], mode, method)
    _finish_grid(fig, axes, out_png, dpi, "no explained samples" if not common else None)
    return len(common)


def choose_pairs(pairs: list[tuple], per_kind: int) -> list:
    """Keys of the pairs to draw from (key, kind, region) in order: per kind, first one pair of each
    region not shown yet (so region-swap rows show the eyes, the nose, ... rather than the first
    region's pairs only), then the next pairs in order, `per_kind` in all; grouped by kind in order
    of appearance."""
    chosen, seen, shown = [], {}, set()
    for distinct_regions in (True, False):
        for key, kind, region in pairs:
            if key in chosen or seen.get(kind, 0) >= per_kind or (distinct_regions and (kind, region) in shown):
                continue
            chosen.append(key)
            shown.add((kind, region))
            seen[kind] = seen.get(kind, 0) + 1
    kinds = list(dict.fromkeys(kind for _, kind, _ in pairs))
    position = {key: i for i, (key, _, _) in enumerate(pairs)}
    kind_of = {key: kind for key, kind, _ in pairs}
    return sorted(chosen, key=lambda k: (kinds.index(kind_of[k]), position[k]))


def pair_figure(dataset_h5, attribution_h5s: dict[str, list], out_png, *, regions: dict, per_kind: int = 2,
                dpi: int = 100, pairs_h5=None) -> int:
    """Verification pairs (rows, `per_kind` of each kind): image, partner, and for each method the
    similarity map (positive part of the signed map) and the dissimilarity map (negative part), each
    over the image and scaled to its own maximum. For pairs with an expected region (region and
    region-swap pairs) that region is outlined in every panel. A method that could not run on the
    embedder is drawn as an empty panel saying so. PNG and PDF. Returns rows drawn."""
    from .data.pairs import expected_regions, read_pair_images

    methods = list(attribution_h5s)
    loaded = {m: _load_maps(paths, extra=("partner_row", "kind", "region", "game_row"))
              for m, paths in attribution_h5s.items()}
    common = [k for k in loaded[methods[0]] if all(k in loaded[m] for m in methods)]
    chosen = choose_pairs([(key, loaded[methods[0]][key]["kind"], loaded[methods[0]][key]["region"])
                           for key in common], per_kind)
    n_cols = 2 + 2 * len(methods)
    fig, axes = plt.subplots(max(len(chosen), 1), n_cols, figsize=(1.8 * n_cols, 2.0 * max(len(chosen), 1)),
                             squeeze=False)
    first = [loaded[methods[0]][key] for key in chosen]
    rows = np.array([f["row"] for f in first], np.int64)
    partner_rows = np.array([f["partner_row"] for f in first], np.int64)
    images = read_pair_images(dataset_h5, pairs_h5, rows)
    partners = read_pair_images(dataset_h5, pairs_h5, partner_rows)
    outlines = expected_regions(dataset_h5, pairs_h5, rows, partner_rows, [f["kind"] for f in first],
                                [f["region"] for f in first], regions,
                                probe_swap_rows=[f.get("game_row", 0) for f in first])
    for r, key in enumerate(chosen):
        kind, region, image = first[r]["kind"], first[r]["region"], images[r]
        axes[r, 0].imshow(image)
        where = f" ({region})" if region else ""
        score = f"preference {first[r]['score']:.3f}" if kind == "triplet" else f"score {first[r]['score']:.2f}"
        axes[r, 0].set_title(f"{kind}{where}\nid {key[0]}, {score}", fontsize=7)
        axes[r, 1].imshow(partners[r])
        partner_title = {"swap": "swapped copy", "swap_control": "own part pasted (control)",
                         "triplet": f"mate id {key[1]}\n(twin: its {region} swapped)"}.get(kind, f"partner id {key[1]}")
        axes[r, 1].set_title(partner_title, fontsize=7)
        for c, method in enumerate(methods):
            a = loaded[method][key]["map"]
            if not np.isfinite(a).any():
                for k in (2 + 2 * c, 3 + 2 * c):
                    axes[r, k].imshow(image, alpha=0.3)
                    axes[r, k].set_title(f"{method}\nnot applicable", fontsize=7)
                continue
            _heat_panel(axes[r, 2 + 2 * c], image, a, "positive", f"{method}\nsimilarity")
            _heat_panel(axes[r, 3 + 2 * c], image, a, "negative", f"{method}\ndissimilarity")
        outline = outlines[r].astype(float)
        if outline.any():
            size = image.shape[0]
            for ax in axes[r, [0, 1, *range(2, n_cols)]]:
                ax.contour(np.linspace(0, size - 1, outline.shape[1]), np.linspace(0, size - 1, outline.shape[0]),
                           outline, levels=[0.5], colors="#d55e00", linewidths=0.8)
    _finish_grid(fig, axes, out_png, dpi, "no explained pairs" if not chosen else None)
    return len(chosen)


def contact_sheet(root, sample_ids, out_png, mask_size: int, columns: int = 4, dpi: int = 80) -> None:
    """Images of a CelebAMask-HQ-layout folder beside their fused label maps (for docs and eyeballing)."""
    from .data.celebamask import image_path, read_image, scan_mask_files
    from .data.fusion import fuse_masks

    files, _ = scan_mask_files(root, sample_ids)
    titles = {}
    from .data.photos.layout import PHOTOS_TABLE

    photos_table = Path(root) / PHOTOS_TABLE  # a layout made from a photo folder names each id's photo
    if photos_table.is_file():
        import pandas as pd

        table = pd.read_csv(photos_table, sep="\t", keep_default_na=False)
        titles = {int(i): f"{i}: {f}" for i, f in zip(table["id"], table["file"])}
    rows = -(-len(sample_ids) // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(2 * 2 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, sample_id in enumerate(sample_ids):
        r, c = divmod(k, columns)
        axes[r, 2 * c].imshow(read_image(image_path(root, sample_id), 256))
        axes[r, 2 * c].set_title(titles.get(int(sample_id), f"{sample_id}.jpg"), fontsize=7)
        axes[r, 2 * c + 1].imshow(fuse_masks(files[int(sample_id)], mask_size), cmap=LABEL_CMAP,
                                  vmin=-0.5, vmax=len(CLASS_NAMES) - 0.5, interpolation="nearest")
        axes[r, 2 * c + 1].set_title("fused labels", fontsize=8)
    handles = [matplotlib.patches.Patch(color=LABEL_CMAP(i), label=f"{i} {n}") for i, n in enumerate(CLASS_NAMES)]
    ncol = min(10, 3 * columns)
    legend_rows = -(-len(handles) // ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, min(0.4, 0.2 * legend_rows / (2.1 * rows)), 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def swap_sheet(results_dir, out_png, per_region: int = 2, dpi: int = 90) -> int:
    """Region-swap pairs of a finished run, `per_region` per swapped region: face A, the donor B, the
    swapped copy A' with its expected region outlined, and |A' - A| (where the pair differs).
    Returns rows drawn."""
    import pandas as pd

    from .data.pairs import read_pair_images, store_index

    layout = Layout(results_dir)
    pairs = pd.read_csv(layout("pairs_tsv"), sep="\t", keep_default_na=False)
    swap = pairs[pairs["kind"] == "swap"]
    if swap.empty:
        raise ValueError(f"{layout('pairs_tsv')}: no region-swap pairs "
                         "(set verification.region_swap.regions and pairs_per_region)")
    chosen = pd.concat(g.iloc[:per_region] for _, g in swap.groupby("region", sort=False))
    data, store = layout.path("dataset_h5", dataset="main"), layout.path("pairs_h5")
    with h5py.File(data, "r") as h5:
        row_of = dict(zip(h5["ids"][:].tolist(), range(len(h5["ids"]))))
    faces = read_pair_images(data, store, chosen["row_a"].to_numpy())
    donors = read_pair_images(data, store, [row_of[int(d)] for d in chosen["donor_id"]])
    swapped = read_pair_images(data, store, chosen["row_b"].to_numpy())
    with h5py.File(store, "r") as h5:
        regions = read_rows(h5, "swap_masks", store_index(chosen["row_b"].to_numpy()))
    fig, axes = plt.subplots(len(chosen), 4, figsize=(4 * 1.9, 2.0 * len(chosen)), squeeze=False)
    for r, row in enumerate(chosen.itertuples()):
        size = faces[r].shape[0]
        axes[r, 0].imshow(faces[r])
        axes[r, 0].set_title(f"A: id {row.id_a}", fontsize=7)
        axes[r, 1].imshow(donors[r])
        axes[r, 1].set_title(f"B (donor): id {row.donor_id}", fontsize=7)
        axes[r, 2].imshow(swapped[r])
        axes[r, 2].contour(np.linspace(0, size - 1, regions[r].shape[1]), np.linspace(0, size - 1, regions[r].shape[0]),
                           regions[r].astype(float), levels=[0.5], colors="#d55e00", linewidths=0.8)
        axes[r, 2].set_title(f"A' ({row.region} from B)", fontsize=7)
        difference = np.abs(swapped[r].astype(int) - faces[r].astype(int)).max(axis=2)
        axes[r, 3].imshow(difference, cmap="magma", vmin=0, vmax=max(1, int(difference.max())))
        axes[r, 3].set_title(f"|A' - A| (max {int(difference.max())})", fontsize=7)
    _finish_grid(fig, axes, out_png, dpi, None)
    return len(chosen)


def layout_sheet(root, out_png, ids=None, limit: int = 8, columns: int = 4) -> int:
    """contact_sheet of a layout folder: the ids in its attribute file (or `ids`), the mask size read
    from its first mask file. Returns samples drawn."""
    from PIL import Image

    from .data.celebamask import annotation_files, read_attribute_file, scan_mask_files

    root = Path(root)
    known = [int(i) for i in read_attribute_file(annotation_files(root)["attributes"], unannotated_ok=True)[0]]
    chosen = list(ids) if ids else known[:limit]
    missing = sorted(set(chosen) - set(known))
    if missing:
        raise ValueError(f"{root}: no sample(s) {missing} in its attribute file")
    files, _ = scan_mask_files(root, chosen)
    first = next((p for f in files.values() for p in f.values()), None)
    if first is None:
        raise ValueError(f"{root}: no mask file for samples {chosen}")
    with Image.open(first) as im:
        mask_size = im.size[0]
    contact_sheet(root, chosen, out_png, mask_size, columns=min(columns, len(chosen)))
    return len(chosen)


if __name__ == "__main__":  # `python -m facexai.map_figures ...` is `facexai figures ...` (facexai/cli.py)
    import sys

    from .cli import main

    sys.exit(main(["figures", *sys.argv[1:]]))
