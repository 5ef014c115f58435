"""Fusion throughput at 512x512 masks against bare PNG decoding of the same files, in the same run.

    python benchmarks/fusion_benchmark.py [--samples 200] [--workers N] [--root DIR]

Prints masks per second for: bare decode (PIL open + load into numpy, nothing else), fusion of
the masks into label maps (decode + threshold + paint in class order), and a whole fusion shard
(image decode + antialiased resize + masks + compression + HDF5 write), with 1 worker and with
N workers; the ratios fusion / bare decode per worker; and peak resident memory.
Goal: fusion >= 0.8x bare-decode throughput per worker, scaling with workers.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from facexai.data.celebamask import read_annotations, scan_mask_files
from facexai.data.fusion import fuse_masks, fuse_shard
from facexai.data.synthetic import SyntheticConfig, generate


def bare_decode(paths):
    for path in paths:
        with Image.open(path) as im:
            np.asarray(im)
    return len(paths)


def fuse_only(samples):
    n = 0
    for files in samples:
        fuse_masks(files, 512)
        n += len(files)
    return n


def run_parallel(fn, chunks, workers):
    if workers == 1:
        return sum(fn(c) for c in chunks)
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(fn, chunks))


def timed(fn, *args, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return out, best


def peak_mb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--root", type=Path, default=None, help="existing CelebAMask-HQ-layout folder")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="facexai-bench-"))
    root = args.root
    if root is None:
        root = tmp / "CelebAMask-HQ"
        print(f"generating {args.samples} synthetic samples (512x512 masks) ...", file=sys.stderr)
        generate(SyntheticConfig(n_images=args.samples, n_identities=max(2, args.samples // 8), image_size=512,
                                 mask_size=512, odd_mask_fraction=0.02, workers=args.workers), root, progress=False)
    ann = read_annotations(root)
    ids = ann.ids[: args.samples]
    files, _ = scan_mask_files(root, ids)
    samples = [files[int(i)] for i in ids]
    paths = [p for s in samples for p in s.values()]
    n_masks = len(paths)
    print(f"{len(samples)} samples, {n_masks} mask PNGs of 512x512; workers: 1 and {args.workers}")
    bare_decode(paths)  # warm the page cache
    rows = []
    for workers in sorted({1, args.workers}):
        k = workers * 4
        path_chunks = [paths[i::k] for i in range(k)]
        sample_chunks = [samples[i::k] for i in range(k)]
        _, t_bare = timed(run_parallel, bare_decode, path_chunks, workers)
        _, t_fuse = timed(run_parallel, fuse_only, sample_chunks, workers)
        _, t_shard = timed(lambda: fuse_shard(root, ann, range(len(ids)), tmp / "shard.h5", tmp / "bad.tsv",
                                              image_size=256, mask_size=512, workers=workers, progress=False),
                           repeat=2)
        rows.append((workers, n_masks / t_bare, n_masks / t_fuse, n_masks / t_shard, len(ids) / t_shard))
    print(f"{'workers':>7} {'bare decode':>14} {'fuse masks':>14} {'ratio':>6} {'whole shard':>14} {'ratio':>6} "
          f"{'samples/s':>10}")
    for workers, bare, fuse, shard, sps in rows:
        print(f"{workers:>7} {bare:>10.0f} m/s {fuse:>10.0f} m/s {fuse / bare:>6.2f} {shard:>10.0f} m/s "
              f"{shard / bare:>6.2f} {sps:>10.1f}")
    if len(rows) == 2:
        print(f"scaling 1 -> {rows[1][0]} workers: bare decode x{rows[1][1] / rows[0][1]:.2f}, "
              f"fuse masks x{rows[1][2] / rows[0][2]:.2f}, whole shard x{rows[1][3] / rows[0][3]:.2f}")
    own, children = peak_mb()
    print(f"peak RSS: this process {own:.0f} MB, largest worker {children:.0f} MB")


if __name__ == "__main__":
    main()
