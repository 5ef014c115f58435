"""Aligned mean maps: where a method's mass goes on average, per model, method and attribute, over
all explained images, per decision outcome and per group (config `groups`, facexai/groups.py).

The faces are aligned (CelebA-HQ, dlib chips, the synthetic set), so a pixel is about the same
place of the face in every image, and maps can be averaged. Each map's mass (the configured mass
mode, as the metrics count it), resized to the label resolution, is divided by its total: a
distribution over the image; the mean map is the mean of these distributions over the group's
images (each image once: with one decision per image and attribute). Beside it:

* the mean image and, per part of the label partition (`labels.MASS_PARTS`) and for the attribute's
  expected region, its frequency: the share of the images whose label map has it at the pixel
  (the figure outlines it at one half), over the images any method explained for the attribute
  (and split), each once;
* the share strip: per part, the mean over images of the share of the map's mass in that part of
  the image's own label map, with a bootstrap CI by image.

A map without mass or with a non-finite value enters no mean: counted (`n_no_mass`), never dropped
silently. The mean map of a group is NaN when none of its maps has mass.
"""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pandas as pd

from .aggregate import bootstrap_mean_ci
from .atomic import atomic_path
from .attributions.store import read_shard
from .data.samples import read_rows
from .labels import CLASS_INDEX, MASS_PARTS, region_masks
from .metrics.localisation import mass_shares, positive_part, resize_maps

log = logging.getLogger(__name__)

ALL = "all"
# how the decisions of one (model, method, attribute) are split besides all of them: by outcome, and
# by each configured group (membership yes / no; unknown left out)
SPLITS = ("outcome",)
SHARE_COLUMNS = ["model", "method", "attribute", "region", "split", "value", "part", "expected", "unit", "n_images",
                 "n_no_mass", "share_mean", "share_ci_low", "share_ci_high"]


def normalised_mass(maps: np.ndarray, size: int, mode: str = "positive") -> np.ndarray:
    """(N, size, size) float64: each map's mass at the label resolution divided by its total; rows
    without mass (or with a non-finite value) NaN."""
    maps = np.asarray(maps, np.float32)
    finite = np.isfinite(maps).all(axis=(1, 2))
    mass = positive_part(resize_maps(np.where(finite[:, None, None], maps, 0), size), mode).astype(np.float64)
    total = mass.sum(axis=(1, 2))
    ok = finite & (total > 0)
    out = np.full(mass.shape, np.nan)
    out[ok] = mass[ok] / total[ok, None, None]
    return out


EXPECTED = "expected"
PARTS = (*MASS_PARTS, EXPECTED)


def part_frequency(labels: np.ndarray, regions: dict, region: str | None) -> dict[str, np.ndarray]:
    """Per part of MASS_PARTS and, as `expected`, the config region `region` (zero without one): the
    share of the label maps (N, M, M) that have it at each pixel."""
    out = {part: np.isin(labels, [CLASS_INDEX[c] for c in classes]).mean(axis=0)
           for part, classes in MASS_PARTS.items()}
    out[EXPECTED] = region_masks(labels, [region] * len(labels), regions).mean(axis=0) if region else \
        np.zeros(labels.shape[1:])
    return out


def _decisions(shard_paths: dict[str, list], metric_csvs) -> pd.DataFrame:
    """Every explained decision of one model: method, attribute, id, dataset row, file and index in
    it, with its outcome from the per-sample metric tables."""
    frames = []
    for method, paths in shard_paths.items():
        for path in paths:
            shard = read_shard(path, maps=False)
            frames.append(pd.DataFrame({"method": method, "attribute": list(shard["attribute"]), "id": shard["ids"],
                                        "row": shard["row"], "file": str(path), "index": np.arange(len(shard))}))
    decisions = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=["method", "attribute", "id", "row", "file", "index"])
    outcomes = pd.concat([pd.read_csv(p, usecols=["method", "id", "attribute", "outcome"]) for p in metric_csvs],
                         ignore_index=True).drop_duplicates(["method", "id", "attribute"])
    merged = decisions.merge(outcomes, on=["method", "id", "attribute"], how="left", validate="one_to_one")
    missing = merged["outcome"].isna()
    if missing.any():
        first = merged[missing].iloc[0]
        raise ValueError(f"mean maps: {int(missing.sum())} explained decisions have no row in the metric tables "
                         f"(e.g. {first['method']}, id {first['id']}, {first['attribute']})")
    return merged


def mean_maps(dataset_h5, shard_paths: dict[str, list], metric_csvs, *, model: str, regions: dict,
              attribute_regions: dict, mode: str = "positive", groups=(), n_resamples: int = 1000, seed: int = 0
              ) -> tuple[dict, pd.DataFrame]:
    """The mean maps of one model: ({"maps": {(method, attribute, split, value): (M, M)}, "n":
    {same key: images with mass}, "frequency": {(attribute, split, value): {part: (M, M)}},
    "mean_image": {(attribute, split, value): (S, S, 3) uint8}}, the share table). Splits: all
    decisions (split and value `all`), by outcome, and per group (split: the group's attribute,
    value yes / no). shard_paths: {method: [attribution files]}."""
    from .groups import UNKNOWN, membership

    decisions = _decisions(shard_paths, metric_csvs)
    groups = list(groups)
    if groups:
        found = membership(dataset_h5, decisions["id"].to_numpy(), groups)
        decisions = decisions.assign(**{g: found[g].to_numpy() for g in groups})
    rows = np.unique(decisions["row"].to_numpy(np.int64))
    with h5py.File(dataset_h5, "r") as h5:
        size = int(h5.attrs["mask_size"])
        labels_of = dict(zip(rows.tolist(), read_rows(h5, "labels", rows)))
        images_of = dict(zip(rows.tolist(), read_rows(h5, "images", rows)))
    masses, shares = np.zeros((len(decisions), size, size)), np.zeros((len(decisions), len(MASS_PARTS)))
    for path, group in decisions.groupby("file", sort=False):
        shard = read_shard(path)
        index = group["index"].to_numpy()
        labels = np.stack([labels_of[r] for r in group["row"]])
        masses[group.index] = normalised_mass(shard.maps[index], size, mode)
        shares[group.index] = mass_shares(shard.maps[index], labels, mode)
    out = {"maps": {}, "n": {}, "frequency": {}, "mean_image": {}}
    records = []
    for (method, attribute), group in decisions.groupby(["method", "attribute"], sort=True):
        region = attribute_regions.get(attribute, "")
        splits = [(ALL, ALL, group.index)] + [(split, str(value), g.index) for split in (*SPLITS, *groups)
                                              for value, g in group.groupby(split, sort=True) if value != UNKNOWN]
        for split, value, index in splits:
            key = (method, attribute, split, value)
            valid = index[np.isfinite(masses[index]).all(axis=(1, 2))]
            out["maps"][key] = masses[valid].mean(axis=0) if len(valid) else np.full((size, size), np.nan)
            out["n"][key] = len(valid)
            images = (attribute, split, value)
            if images not in out["frequency"]:
                # the images any method explained for this attribute (and split), each once
                same = decisions["attribute"] == attribute
                if split != ALL:
                    same &= decisions[split].astype(str) == value
                group_rows = sorted(set(decisions.loc[same, "row"].tolist()))
                out["frequency"][images] = part_frequency(np.stack([labels_of[r] for r in group_rows]), regions,
                                                          region)
                out["mean_image"][images] = np.mean([images_of[r] for r in group_rows], axis=0).round() \
                    .astype(np.uint8)
            for j, part in enumerate(MASS_PARTS):
                values = shares[valid, j]
                low, high = bootstrap_mean_ci(values, n_resamples, seed)
                records.append({"model": model, "method": method, "attribute": attribute, "region": region,
                                "split": split, "value": value, "part": part, "expected": part == region,
                                "unit": "image", "n_images": len(valid), "n_no_mass": len(index) - len(valid),
                                "share_mean": float(values.mean()) if len(values) else np.nan,
                                "share_ci_low": low, "share_ci_high": high})
    return out, pd.DataFrame.from_records(records, columns=SHARE_COLUMNS)


def write_mean_maps(out: dict, out_h5) -> None:
    """The mean maps, part frequencies and mean images of one model in one HDF5 file: `maps`
    (K, M, M) float32 with per row `method`, `attribute`, `split`, `value`, `n_images`; per group
    of images (an attribute's decisions, all or of one outcome) `frequency` (G, P, M, M) float32
    (parts: attribute `parts`) and `mean_image` (G, S, S, 3) uint8, with `g_attribute`, `g_split`,
    `g_value`."""
    keys, groups = list(out["maps"]), list(out["frequency"])
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        h5["maps"] = np.array([out["maps"][k] for k in keys], np.float32)
        for j, name in enumerate(("method", "attribute", "split", "value")):
            h5[name] = np.array([k[j] for k in keys], dtype="S")
        h5["n_images"] = np.array([out["n"][k] for k in keys], np.int64)
        h5["frequency"] = np.array([[out["frequency"][g][p] for p in PARTS] for g in groups], np.float32)
        h5["mean_image"] = np.array([out["mean_image"][g] for g in groups], np.uint8)
        for j, name in enumerate(("g_attribute", "g_split", "g_value")):
            h5[name] = np.array([g[j] for g in groups], dtype="S")
        h5.attrs["parts"] = [p.encode() for p in PARTS]


# parts outlined on the mean image (at half frequency); the expected region gets its own outline
OUTLINED = ("eyes", "nose", "mouth", "ears", "hair", "hat")


def part_colours() -> dict[str, tuple]:
    """A colour per part of MASS_PARTS: its first class's colour in the label palette."""
    from .render import LABEL_CMAP

    return {part: LABEL_CMAP(CLASS_INDEX[classes[0]])[:3] for part, classes in MASS_PARTS.items()}


def mean_map_figure(out: dict, shares: pd.DataFrame, out_png, *, model: str, methods=None, budgets: dict | None = None,
                    split: str = ALL, value: str = ALL, dpi: int = 110) -> int:
    """Rows: explained attributes; columns: methods. Each panel: the mean map (viridis, scaled to its
    maximum) over the group's mean image, the parts outlined where at least half the images have
    them (white; the attribute's expected region dashed orange), and under it the share strip (the
    mean share of each map's mass per part, the expected part framed in black, its mean and CI written).
    PNG and PDF. Returns the panels drawn."""
    import matplotlib.pyplot as plt

    from .render import heat_of, method_label, overlay_rgb, save

    keys = [k for k in out["maps"] if k[2] == split and k[3] == value]
    methods = [m for m in (methods or dict.fromkeys(k[0] for k in keys)) if any(k[0] == m for k in keys)]
    attributes = sorted({k[1] for k in keys})
    colours = part_colours()
    n_rows, n_cols = max(len(attributes), 1), max(len(methods), 1)
    height = 3.0 * n_rows + 0.6
    fig = plt.figure(figsize=(2.1 * n_cols + 0.6, height))
    grid = fig.add_gridspec(2 * n_rows, n_cols, height_ratios=[5, 1.4] * n_rows, hspace=0.5, wspace=0.08,
                            top=1 - 0.55 / height, bottom=0.3 / height)
    drawn = 0
    for r, attribute in enumerate(attributes):
        group = (attribute, split, value)
        image, frequency = out["mean_image"][group], out["frequency"][group]
        size = image.shape[0]
        for c, method in enumerate(methods):
            key = (method, attribute, split, value)
            ax, strip = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
            mean = out["maps"][key]
            heat = heat_of(mean) if np.isfinite(mean).all() else None
            ax.imshow(overlay_rgb(image, heat))
            m = frequency[EXPECTED].shape[0]
            extent = (-0.5, size - 0.5, size - 0.5, -0.5)
            grid_xy = (np.arange(m) + 0.5) * size / m - 0.5
            for part in OUTLINED:
                if frequency[part].max() >= 0.5:
                    ax.contour(grid_xy, grid_xy, frequency[part], levels=[0.5], colors="white", linewidths=0.6)
            if frequency[EXPECTED].max() >= 0.5:
                ax.contour(grid_xy, grid_xy, frequency[EXPECTED], levels=[0.5], colors="#E69F00", linewidths=1.4,
                           linestyles="dashed")
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
            ax.set_xticks([])
            ax.set_yticks([])
            title = method_label(method, budgets)
            ax.set_title(f"{title}\nn={out['n'][key]}" + ("" if heat is not None else " (no mass)"), fontsize=7)
            if c == 0:
                ax.set_ylabel(attribute, fontsize=8)
            rows = shares[(shares["method"] == method) & (shares["attribute"] == attribute)
                          & (shares["split"] == split) & (shares["value"] == value)]
            left = 0.0
            for _, row in rows.iterrows():
                width = row["share_mean"] if np.isfinite(row["share_mean"]) else 0.0
                strip.barh(0, width, left=left, color=colours[row["part"]],
                           edgecolor="black" if row["expected"] else "none", linewidth=1.5 if row["expected"] else 0)
                left += width
            strip.set_xlim(0, 1)
            strip.set_yticks([])
            strip.set_xticks([])
            expected = rows[rows["expected"]]
            if not out["n"][key]:
                no_mass = int(rows["n_no_mass"].iloc[0]) if len(rows) else 0
                strip.text(0.5, 0, f"no map with mass ({no_mass})", ha="center", va="center", fontsize=6)
            elif len(expected) and np.isfinite(expected["share_mean"].iloc[0]):
                e = expected.iloc[0]
                strip.set_xlabel(f"in {e['part']}: {e['share_mean']:.2f} [{e['share_ci_low']:.2f}, "
                                 f"{e['share_ci_high']:.2f}]", fontsize=6, labelpad=1)
            drawn += 1
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in MASS_PARTS]
    legend = ("share of each map's mass per part (mean over images; black frame: the attribute's expected region, "
              "outlined dashed orange on the face; white: the parts, where half the images have them)")
    fig.legend(handles, list(MASS_PARTS), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(MASS_PARTS), 9), fontsize=6, frameon=False, title=legend, title_fontsize=6)
    label = "all explained decisions" if split == ALL else f"{split} = {value}"
    fig.suptitle(f"Mean maps of model {model} over the aligned test images ({label})", fontsize=9,
                 y=1 - 0.1 / height)
    if not keys:
        fig.text(0.5, 0.5, "no explained decisions", ha="center")
    save(fig, out_png, dpi=dpi)
    return drawn


def write_model_mean_maps(dataset_h5, shard_paths: dict[str, list], metric_csvs, outputs: dict, *, model: str,
                          regions: dict, attribute_regions: dict, mode: str = "positive", groups=(),
                          n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One model's mean maps (outputs["h5"]), share table (outputs["table"], with each method's
    budget) and figure (outputs["png"], and the PDF beside it); methods in the order given."""
    from .aggregate import method_budgets, with_budget

    out, shares = mean_maps(dataset_h5, shard_paths, metric_csvs, model=model, regions=regions,
                            attribute_regions=attribute_regions, mode=mode, groups=groups, n_resamples=n_resamples,
                            seed=seed)
    budgets = method_budgets(pd.concat([pd.read_csv(p, usecols=lambda c: c in ("method", "budget"))
                                        for p in metric_csvs], ignore_index=True))
    write_mean_maps(out, outputs["h5"])
    with atomic_path(outputs["table"]) as tmp:
        with_budget(shares, budgets).to_csv(tmp, index=False)
    mean_map_figure(out, shares, outputs["png"], model=model, methods=list(shard_paths), budgets=budgets)
    no_mass = shares[(shares["split"] == ALL) & (shares["part"] == next(iter(MASS_PARTS)))]
    log.info("mean maps of %s: %d (method, attribute) groups; maps without mass: %s", model, len(no_mass),
             {f"{r.method}/{r.attribute}": int(r.n_no_mass) for r in no_mass.itertuples() if r.n_no_mass})
    return shares


def read_mean_maps(path) -> dict:
    """A file of `write_mean_maps`, back in `mean_maps`' form (maps, n, frequency, mean_image)."""
    with h5py.File(path, "r") as h5:
        keys = list(zip(*(h5[c][:].astype(str).tolist() for c in ("method", "attribute", "split", "value"))))
        groups = list(zip(*(h5[c][:].astype(str).tolist() for c in ("g_attribute", "g_split", "g_value"))))
        parts = [p.decode() if isinstance(p, bytes) else str(p) for p in h5.attrs["parts"]]
        maps, n, frequency, images = h5["maps"][:], h5["n_images"][:], h5["frequency"][:], h5["mean_image"][:]
    return {"maps": dict(zip(keys, maps)), "n": dict(zip(keys, n.tolist())),
            "frequency": {g: dict(zip(parts, f)) for g, f in zip(groups, frequency)},
            "mean_image": dict(zip(groups, images))}


def outlined(rgb: np.ndarray, frequency: np.ndarray, colour=(230, 159, 0)) -> np.ndarray:
    """`rgb` with the border of {frequency >= 0.5} (resized to the image, nearest) drawn in `colour`."""
    from scipy import ndimage

    size = rgb.shape[0]
    inside = frequency[(np.arange(size) * frequency.shape[0] // size)[:, None],
                       (np.arange(size) * frequency.shape[1] // size)[None, :]] >= 0.5
    border = inside & ~ndimage.binary_erosion(inside)
    out = rgb.copy()
    out[border] = colour
    return out


def gallery_view(mean_h5s: dict, share_csvs: dict) -> tuple[list, dict]:
    """The gallery's mean-map view: (entries, pictures). One entry per model, method, attribute and
    split (all decisions and each group's members / the rest): the mean map over the mean image with
    the expected region outlined (orange), its n, and the expected region's share with its CI. The
    mean maps are mass distributions already (the configured mass): drawn as they are."""
    from .render import data_uri, heat_of, overlay_rgb

    entries, pictures = [], {}
    for model, path in mean_h5s.items():
        out = read_mean_maps(path)
        shares = pd.read_csv(share_csvs[model], keep_default_na=False, na_values=[""])
        expected = shares[shares["expected"].astype(str) == "True"].set_index(["method", "attribute", "split",
                                                                               "value"])
        for key, mean in out["maps"].items():
            method, attribute, split, value = key
            if split == "outcome":
                continue  # per outcome: in the table
            group = (attribute, split, value)
            heat = heat_of(mean, mode="positive") if np.isfinite(mean).all() else None
            picture = f"mean:{model}:{':'.join(key)}"
            pictures[picture] = data_uri(outlined(overlay_rgb(out["mean_image"][group], heat),
                                                  out["frequency"][group][EXPECTED]))
            row = expected.loc[key] if key in expected.index else None
            entries.append({"model": model, "method": method, "attribute": attribute, "split": split, "value": value,
                            "n": int(out["n"][key]), "picture": picture, "no_mass": heat is None,
                            "share": None if row is None or not np.isfinite(row["share_mean"]) else
                            [round(float(row[c]), 4) for c in ("share_mean", "share_ci_low", "share_ci_high")],
                            "region": "" if row is None else str(row["part"])})
    return entries, pictures
