"""Localisation metrics: how much of a map's mass lies in the expected region.

All functions are batched: maps (N, H, W) float, regions (N, H, W) bool, at the label resolution.
Undefined cases return NaN, never a silent 0 or 1; `degenerate_reason` says why.

    a+    = max(a, 0)            ("positive", default) or |a| ("absolute")
    RP    = sum_R a+ / sum_Omega a+           undefined when sum_Omega a+ = 0
    chance= |R| / |Omega|                     the RP of a uniform map
    lift  = RP / chance                       undefined when R is empty; 1 = no better than uniform
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MASS_MODES = ("positive", "absolute", "negative")


def positive_part(maps: np.ndarray, mode: str = "positive") -> np.ndarray:
    """The mass that counts: max(a, 0), |a|, or max(-a, 0) (a pair's dissimilarity map: the pixels
    whose presence lowers the similarity). float64 stays float64; other inputs become float32."""
    maps = np.asarray(maps)
    maps = maps.astype(np.float64 if maps.dtype == np.float64 else np.float32, copy=False)
    if mode == "positive":
        return np.maximum(maps, 0.0)
    if mode == "absolute":
        return np.abs(maps)
    if mode == "negative":
        return np.maximum(-maps, 0.0)
    raise ValueError(f"metrics.mass: expected one of {MASS_MODES}, got {mode!r}")


def resize_maps(maps: np.ndarray, size) -> np.ndarray:
    """Bilinear resize (N, h, w) -> (N, H, W) (half-pixel centres, as image resizing does); `size`
    is (H, W), or one int for a square."""
    maps = np.asarray(maps, np.float32)
    shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(v) for v in size)
    if maps.shape[-2:] == shape:
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps))[:, None]
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=False)[:, 0].numpy()


def _check(maps, regions):
    maps, regions = np.asarray(maps), np.asarray(regions, bool)
    if maps.ndim != 3 or maps.shape != regions.shape:
        raise ValueError(f"maps {maps.shape} and regions {regions.shape} must both be (N, H, W)")
    return maps, regions


def regional_precision(maps: np.ndarray, regions: np.ndarray, mode: str = "positive") -> np.ndarray:
    """RP per sample (N,), NaN where the map has no mass (or is not finite) or the region is empty."""
    maps, regions = _check(maps, regions)
    mass = positive_part(maps, mode)
    total = mass.sum(axis=(1, 2), dtype=np.float64)
    inside = np.where(regions, mass, 0.0).sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = inside / total
    rp[~(total > 0) | ~np.isfinite(total) | ~regions.any(axis=(1, 2))] = np.nan
    return rp


def chance_level(regions: np.ndarray) -> np.ndarray:
    """|R| / |Omega| per sample (N,)."""
    regions = np.asarray(regions, bool)
    return regions.reshape(len(regions), -1).mean(axis=1)


def lift(rp: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """RP / chance, NaN where the region is empty or RP is undefined."""
    rp, chance = np.asarray(rp, np.float64), np.asarray(chance, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = rp / chance
    out[~(chance > 0)] = np.nan
    return out


def degenerate_reason(maps: np.ndarray, regions: np.ndarray, mode: str = "positive") -> np.ndarray:
    """Per sample: '' when the metrics are defined, else 'empty_region', 'nonfinite_map' or 'zero_map'."""
    maps, regions = _check(maps, regions)
    out = np.full(len(maps), "", dtype=object)
    mass = positive_part(maps, mode)
    finite = np.isfinite(mass).all(axis=(1, 2))
    out[finite & ~(mass.sum(axis=(1, 2)) > 0)] = "zero_map"
    out[~finite] = "nonfinite_map"
    out[~regions.any(axis=(1, 2))] = "empty_region"
    return out


def mass_shares(maps: np.ndarray, labels: np.ndarray, mode: str = "positive") -> np.ndarray:
    """(N, len(MASS_PARTS)): the share of each map's mass in each part of the label map (rows with no
    mass are NaN). The map is resized to the label resolution first."""
    from ..labels import CLASS_INDEX, MASS_PARTS

    mass = positive_part(resize_maps(np.asarray(maps, np.float32), labels.shape[-2:]), mode).astype(np.float64)
    total = mass.sum(axis=(1, 2))
    out = np.empty((len(maps), len(MASS_PARTS)))
    for j, classes in enumerate(MASS_PARTS.values()):
        inside = np.isin(labels, [CLASS_INDEX[c] for c in classes])
        out[:, j] = np.where(inside, mass, 0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / total[:, None]
    out[~(total > 0)] = np.nan
    return out


def region_box(regions: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: each region's bounding box (the smallest axis-aligned rectangle holding every
    pixel of the region, all its parts together); empty where the region is."""
    regions = np.asarray(regions, bool)
    out = np.zeros(regions.shape, bool)
    rows_any, cols_any = regions.any(axis=2), regions.any(axis=1)
    for i in np.flatnonzero(rows_any.any(axis=1)):
        r, c = np.flatnonzero(rows_any[i]), np.flatnonzero(cols_any[i])
        out[i, r[0]:r[-1] + 1, c[0]:c[-1] + 1] = True
    return out


def energy_pointing(maps: np.ndarray, regions: np.ndarray, mode: str = "positive") -> np.ndarray:
    """Energy-based pointing game (Wang et al., Score-CAM 2020): the share of the map's mass inside
    the region's bounding box (N,); NaN where RP is. A uniform map scores the box's share of the
    image; for a region of several parts (two eyes) the box also holds what lies between them."""
    maps, regions = _check(maps, regions)
    return regional_precision(maps, region_box(regions), mode)


def energy_pointing_metric(maps: np.ndarray, regions: np.ndarray, settings: dict) -> np.ndarray:
    """The registry's entry: maps at model resolution resized to the regions' (label) resolution."""
    return energy_pointing(resize_maps(maps, regions.shape[-2:]), regions, settings.get("mass", "positive"))


def energy_pointing_lift(maps: np.ndarray, regions: np.ndarray, mode: str = "positive") -> np.ndarray:
    """Energy pointing over its chance level: EP / (|box| / |Omega|), box = the region's bounding
    box (N,). A uniform map scores 1 on every region, as lift does; the raw EP of a uniform map is
    the box's share, which differs between regions (a small nose box, a wide box over two earrings)
    and so cannot be compared across regions or read as better than chance. NaN where EP is."""
    maps, regions = _check(maps, regions)
    box = region_box(regions)
    with np.errstate(invalid="ignore", divide="ignore"):
        return energy_pointing(maps, regions, mode) / box.mean(axis=(1, 2))


def energy_pointing_lift_metric(maps: np.ndarray, regions: np.ndarray, settings: dict) -> np.ndarray:
    """The registry's entry (maps resized to the label resolution, as energy_pointing_metric)."""
    return energy_pointing_lift(resize_maps(maps, regions.shape[-2:]), regions, settings.get("mass", "positive"))
