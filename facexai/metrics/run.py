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


PAIR_COLUMNS = ("method", "id", "partner_id", "region", "score", "chance", "rp_similarity", "lift_similarity",
                "rp_dissimilarity", "lift_dissimilarity", "degenerate")


def pair_localisation_table(attribution_h5, dataset_h5, out_csv, *, regions: dict) -> pd.DataFrame:
    """For region pairs (a photo and its copy with one region changed): how much of the similarity
    map (positive part) and of the dissimilarity map (negative part) lies where the pair differs.
    The region is taken from both photos' labels (union): an added hat exists in only one of them."""
    with h5py.File(attribution_h5, "r") as f:
        kinds = np.array([k.decode() for k in f["kind"][:]])
        keep = np.flatnonzero(kinds == "region")
        maps = f["maps"][:].astype(np.float32)[keep]
        rows, partner_rows = f["row"][:][keep], f["partner_row"][:][keep]
        ids, partner_ids, score = f["ids"][:][keep], f["partner_id"][:][keep], f["score"][:][keep]
        region_names = [r.decode() for r in f["region"][:][keep]]
        method = f.attrs["method"]
    with h5py.File(dataset_h5, "r") as h5:
        size = int(h5.attrs["mask_size"])
        masks = (region_masks(read_rows(h5, "labels", rows), region_names, regions)
                 | region_masks(read_rows(h5, "labels", partner_rows), region_names, regions))
    maps = resize_maps(maps, size) if len(maps) else np.zeros((0, size, size), np.float32)
    chance = chance_level(masks)
    rp_sim, rp_dis = regional_precision(maps, masks, "positive"), regional_precision(maps, masks, "negative")
    reasons = [";".join(sorted({a, b} - {""})) for a, b in zip(degenerate_reason(maps, masks, "positive"),
                                                              degenerate_reason(maps, masks, "negative"))]
    table = pd.DataFrame({"method": method, "id": ids, "partner_id": partner_ids, "region": region_names,
                          "score": score, "chance": chance, "rp_similarity": rp_sim,
                          "lift_similarity": lift(rp_sim, chance), "rp_dissimilarity": rp_dis,
                          "lift_dissimilarity": lift(rp_dis, chance), "degenerate": reasons},
                         columns=list(PAIR_COLUMNS))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


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
