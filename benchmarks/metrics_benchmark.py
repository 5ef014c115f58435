"""Metric speed against peers measured in the same run.

    python benchmarks/metrics_benchmark.py [--maps 2000] [--skip-road] [--skip-localisation]

1. Localisation metrics on `--maps` maps of 128x128 against region masks of 512x512 (the real
   dataset's label resolution): our `mask_metrics` (resizes every map to 512, then all ten metrics)
   against Quantus 0.6 (`evaluate_batch` of RelevanceMassAccuracy, RelevanceRankAccuracy,
   PointingGame, TopKIntersection and AUC, given the already resized maps, so Quantus is not
   charged for resizing). Both are timed on the same arrays; the values are compared (recall
   converted to Quantus' |top_k ∩ R| / k). Goal: >= 50x faster with equal values.
2. ROAD imputation per image at 128x128 and 256x256 (percentages 10..90, MoRF): our vectorised
   construction and one factorisation for the 3 channels, against a straightforward reference that
   builds the system pixel by pixel (a Python loop over removed pixels and neighbours) and solves
   each channel separately. Goal: >= 3x faster with equal images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from facexai.metrics.faithfulness import pixel_ranks
from facexai.metrics.localisation import resize_maps
from facexai.metrics.road import NEIGHBOURS, impute, removal_masks
from facexai.metrics.topq import mask_metrics, top_count


def smooth_maps(rng, n, size):
    """Maps with structure (a few Gaussian bumps plus noise), float16 as stored by the pipeline."""
    yy, xx = np.mgrid[:size, :size] / size
    out = rng.normal(0, 0.05, (n, size, size))
    for _ in range(3):
        cy, cx, s = rng.random((3, n, 1, 1))
        out += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.05 + 0.1 * s) ** 2))
    return out.astype(np.float16).astype(np.float32)


def blob_regions(rng, n, size):
    yy, xx = np.mgrid[:size, :size] / size
    cy, cx, r = rng.uniform(0.2, 0.8, (n, 1, 1)), rng.uniform(0.2, 0.8, (n, 1, 1)), rng.uniform(0.05, 0.2, (n, 1, 1))
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2


def localisation(n_maps: int, chunk: int = 100):
    import quantus

    rng = np.random.default_rng(0)
    maps = smooth_maps(rng, n_maps, 128)
    regions = blob_regions(rng, n_maps, 512)

    start = time.perf_counter()
    ours = mask_metrics(maps, regions, q=10, chunk=64, workers=2)
    t_ours = time.perf_counter() - start
    print(f"ours (2 threads): {n_maps} maps, all ten metrics incl. resizing to 512x512: {t_ours:.2f} s "
          f"({t_ours / n_maps * 1e3:.2f} ms/map)")

    k = top_count(10, 512 * 512)
    metrics = {"rp": quantus.RelevanceMassAccuracy(disable_warnings=True),
               "rank_accuracy": quantus.RelevanceRankAccuracy(disable_warnings=True),
               "pointing": quantus.PointingGame(disable_warnings=True),
               "topk": quantus.TopKIntersection(k=k, disable_warnings=True),
               "auc": quantus.AUC(disable_warnings=True)}
    theirs = {name: [] for name in metrics}
    t_theirs = {name: 0.0 for name in metrics}
    for a in range(0, n_maps, chunk):
        big = np.maximum(resize_maps(maps[a:a + chunk], 512), 0).astype(np.float64)  # a+ as ours ranks
        s = regions[a:a + chunk]
        for name, metric in metrics.items():
            start = time.perf_counter()
            theirs[name].append(np.asarray(metric.evaluate_batch(a_batch=big, s_batch=s), np.float64))
            t_theirs[name] += time.perf_counter() - start
    theirs = {name: np.concatenate(v) for name, v in theirs.items()}
    total = sum(t_theirs.values())
    print(f"Quantus 0.6 evaluate_batch, five metrics on pre-resized maps: {total:.2f} s "
          f"({total / n_maps * 1e3:.2f} ms/map)")
    for name, t in t_theirs.items():
        print(f"    {name:14s} {t:8.2f} s")
    ours_topk = ours["recall"] * regions.sum(axis=(1, 2)) / k
    for name, mine in (("rp", ours["rp"]), ("rank_accuracy", ours["rank_accuracy"]),
                       ("pointing", ours["pointing"]), ("topk", ours_topk), ("auc", ours["auc"])):
        diff = np.nanmax(np.abs(mine - theirs[name]))
        print(f"    max |ours - Quantus| {name:14s} {diff:.2e}")
    print(f"speed-up, ours (ten metrics, with resizing) vs Quantus (five metrics): x{total / t_ours:.1f} "
          f"(goal >= 50)")


def reference_impute(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The straightforward way: the system built pixel by pixel, one solve per channel."""
    h, w = removed.shape
    idx = [(y, x) for y in range(h) for x in range(w) if removed[y, x]]
    pos = {p: k for k, p in enumerate(idx)}
    a = sp.lil_matrix((len(idx), len(idx)))
    b = np.zeros((len(idx), image.shape[2]))
    for k, (y, x) in enumerate(idx):
        for dy, dx, weight in NEIGHBOURS:
            ny, nx = y + dy, x + dx
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            a[k, k] += weight
            if removed[ny, nx]:
                a[k, pos[(ny, nx)]] -= weight
            else:
                b[k] += weight * image[ny, nx]
    a = a.tocsc()
    out = image.copy()
    for c in range(image.shape[2]):
        solution = spla.spsolve(a, b[:, c])
        for k, (y, x) in enumerate(idx):
            out[y, x, c] = solution[k]
    return out


def road_speed(sizes=(128, 256), percentages=(10, 20, 30, 40, 50, 60, 70, 80, 90)):
    rng = np.random.default_rng(1)
    for size in sizes:
        image = rng.random((size, size, 3))
        ranks = pixel_ranks(smooth_maps(rng, 1, size))[0]
        masks = [removal_masks(ranks, (size, size), p, "morf") for p in percentages]
        start = time.perf_counter()
        ours = [impute(image, m) for m in masks]
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        ref = [reference_impute(image, m) for m in masks]
        t_ref = time.perf_counter() - start
        diff = max(np.abs(a - b).max() for a, b in zip(ours, ref))
        print(f"ROAD {size}x{size}, {len(percentages)} percentages per image: ours {t_ours:.2f} s/image, "
              f"per-pixel reference {t_ref:.2f} s/image, x{t_ref / t_ours:.1f} (goal >= 3), max diff {diff:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=2000)
    parser.add_argument("--skip-road", action="store_true")
    parser.add_argument("--skip-localisation", action="store_true")
    args = parser.parse_args()
    if not args.skip_localisation:
        localisation(args.maps)
    if not args.skip_road:
        road_speed()


if __name__ == "__main__":
    main()
