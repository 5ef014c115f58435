"""Fingerprints of the image and mask files of each fusion shard, for reruns on real data.

The annotation files are the fusion jobs' declared inputs (Snakemake checksums them, so a mere
`touch` reruns nothing). Listing 30,000 images and ~600,000 mask PNGs as inputs is not reasonable,
so each fuse_shard job carries instead, as a parameter, a digest of the names and sizes of its
samples' files: adding, removing or rewriting a file (to a different size) reruns that shard's
fusion and everything downstream; a `touch` does not. An edit that keeps a file's size exactly is
not seen (reading every byte at each DAG build would cost minutes).
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path

from .celebamask import IMAGE_DIR, MASK_DIR, annotation_files, read_attribute_file


def _sizes(folder: Path):
    """(name, size) of the files in a folder, one directory listing."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file():
                    yield entry.name, entry.stat().st_size
    except FileNotFoundError:
        return


def _id_of(name: str) -> int | None:
    head = name.split(".", 1)[0].split("_", 1)[0]
    return int(head) if head.isdigit() else None


def shard_fingerprints(root, shard_size: int) -> list[str]:
    """One digest per fusion shard (shards of `shard_size` samples in the attribute file's order).
    An unreadable attribute file gives no fingerprints: fusion itself then reports the problem."""
    root = Path(root)
    try:
        ids = read_attribute_file(annotation_files(root)["attributes"], unannotated_ok=True)[0]
    except Exception:  # noqa: BLE001 - the fusion job names the file and the problem
        return []
    shard_of = {int(i): k // shard_size for k, i in enumerate(ids)}
    per_shard: dict[int, list] = defaultdict(list)
    folders = [root / IMAGE_DIR]
    mask_root = root / MASK_DIR
    if mask_root.is_dir():
        folders += sorted(p for p in mask_root.iterdir() if p.is_dir())
    for folder in folders:
        for name, size in _sizes(folder):
            sample = _id_of(name)
            if sample in shard_of:
                per_shard[shard_of[sample]].append(f"{folder.name}/{name}:{size}")
    n_shards = -(-len(ids) // shard_size)
    return [hashlib.sha256("\n".join(sorted(per_shard[k])).encode()).hexdigest()[:16] for k in range(n_shards)]
