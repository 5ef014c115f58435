"""Per-sample metric table for one (model, method, shard) attribution file."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data.samples import read_rows
from ..labels import region_class_indices
from .localisation import chance_level, degenerate_reason, lift, regional_precision, resize_maps

log = logging.getLogger(__name__)

COLUMNS = ("model", "method", "id", "attribute", "region", "score", "rp", "chance", "lift", "degenerate")


def region_masks(labels: np.ndarray, regions_of_rows: list[str], regions: dict) -> np.ndarray:
    """Boolean (N, M, M): for each row, the pixels whose fused class belongs to that row's region."""
    out = np.zeros(labels.shape, bool)
    for region in set(regions_of_rows):
        sel = np.array([r == region for r in regions_of_rows])
        out[sel] = np.isin(labels[sel], region_class_indices(region, regions))
    return out


def localisation_table(attribution_h5, dataset_h5, out_csv, *, regions: dict, attribute_regions: dict,
                       mass: str = "positive") -> pd.DataFrame:
    with h5py.File(attribution_h5, "r") as f:
        maps = f["maps"][:].astype(np.float32)
        rows, ids, score = f["row"][:], f["ids"][:], f["score"][:]
        attributes = [a.decode() for a in f["attribute"][:]]
        method, model = f.attrs["method"], f.attrs["model"]
    missing = sorted({a for a in attributes if a not in attribute_regions})
    if missing:
        raise ValueError(f"attribute_regions: no expected region for explained attribute(s) {missing}")
    with h5py.File(dataset_h5, "r") as h5:
        labels = read_rows(h5, "labels", rows)
        size = int(h5.attrs["mask_size"])
    region_names = [attribute_regions[a] for a in attributes]
    masks = region_masks(labels, region_names, regions)
    maps = resize_maps(maps, size) if len(maps) else np.zeros((0, size, size), np.float32)
    rp = regional_precision(maps, masks, mass)
    chance = chance_level(masks)
    table = pd.DataFrame({"model": model, "method": method, "id": ids, "attribute": attributes,
                          "region": region_names, "score": score, "rp": rp, "chance": chance,
                          "lift": lift(rp, chance), "degenerate": degenerate_reason(maps, masks, mass)},
                         columns=list(COLUMNS))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    n_bad = int((table["degenerate"] != "").sum())
    log.info("%s/%s: %d rows, %d degenerate", model, method, len(table), n_bad)
    return table
