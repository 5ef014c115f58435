"""Fuse CelebAMask-HQ part masks into label maps and store samples in HDF5, shard by shard.

Fusion paints the class masks in the official order (CLASS_NAMES), a later class overwriting an
earlier one. Workers decode and compress each sample; the parent only writes ready-compressed
chunks (one sample per chunk, HDF5's deflate filter), so writing does not serialise the work.

Datasets of a fused file (docs/definitions.md, Files):
    images       uint8 (N, S, S, 3)  at the model resolution S (antialiased resize)
    labels       uint8 (N, M, M)     at the mask resolution M
    attributes   int8 (N, 40)        1 / -1
    pose         float32 (N, 3)      yaw, pitch, roll
    ids          int64 (N,)          CelebA-HQ ids
    celeba_index int64 (N,)          original CelebA index (-1 if unmapped)
    identity     int64 (N,)          only when an identity file was given
Attributes: class_names, attribute_names, image_size, mask_size, source_root, config_digest,
facexai_version.
"""

from __future__ import annotations

import csv
import logging
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..atomic import atomic_path
from ..errors import BadInputError
from ..labels import ATTRIBUTE_NAMES, CLASS_INDEX, CLASS_NAMES, MASK_CLASSES
from .celebamask import Annotations, image_path, read_image, read_mask, scan_mask_files

log = logging.getLogger(__name__)

COMPRESSION_LEVEL = 4
BAD_SAMPLE_COLUMNS = ("id", "file", "problem")
# dataset.on_bad_sample: stop at the first bad sample naming its file, or list it and go on
ON_BAD_SAMPLE = ("error", "skip")


def fuse_masks(class_files: dict[str, str | os.PathLike], mask_size: int) -> np.ndarray:
    """Label map (mask_size, mask_size) uint8 from {class name: PNG path}; absent classes are skipped.

    Painting in the official order with later classes overwriting earlier ones is the same as
    taking, at each pixel, the largest index among the classes present there, because the
    painting order IS increasing index. A running maximum does this without a masked scatter
    per class (which costs as much as decoding the PNG).
    """
    labels = np.zeros((mask_size, mask_size), np.uint8)
    for name in MASK_CLASSES:
        path = class_files.get(name)
        if path is not None:
            mask = read_mask(path, mask_size)
            np.maximum(labels, mask.view(np.uint8) * np.uint8(CLASS_INDEX[name]), out=labels)
    return labels


def _fuse_one(task):
    """Worker: read and fuse one sample; return compressed chunks, or the problem."""
    root, sample_id, class_files, image_size, mask_size, level = task
    try:
        image = read_image(image_path(root, sample_id), image_size)
        labels = fuse_masks(class_files, mask_size)
    except BadInputError as exc:
        return sample_id, None, None, (exc.path, exc.problem)
    return sample_id, zlib.compress(image.tobytes(), level), zlib.compress(labels.tobytes(), level), None


def _create_sample_datasets(h5: h5py.File, n: int, image_size: int, mask_size: int,
                            with_identity: bool) -> None:
    opts = {"compression": "gzip", "compression_opts": COMPRESSION_LEVEL}
    h5.create_dataset("images", (n, image_size, image_size, 3), np.uint8,
                      chunks=(1, image_size, image_size, 3), maxshape=(None, image_size, image_size, 3), **opts)
    h5.create_dataset("labels", (n, mask_size, mask_size), np.uint8,
                      chunks=(1, mask_size, mask_size), maxshape=(None, mask_size, mask_size), **opts)
    h5.create_dataset("attributes", (n, len(ATTRIBUTE_NAMES)), np.int8, maxshape=(None, len(ATTRIBUTE_NAMES)))
    h5.create_dataset("pose", (n, 3), np.float32, maxshape=(None, 3))
    h5.create_dataset("ids", (n,), np.int64, maxshape=(None,))
    h5.create_dataset("celeba_index", (n,), np.int64, maxshape=(None,))
    if with_identity:
        h5.create_dataset("identity", (n,), np.int64, maxshape=(None,))


PER_SAMPLE = ("attributes", "pose", "ids", "celeba_index", "identity")


def _write_attrs(h5: h5py.File, image_size: int, mask_size: int, source_root: str, config_digest: str) -> None:
    h5.attrs["class_names"] = list(CLASS_NAMES)
    h5.attrs["attribute_names"] = list(ATTRIBUTE_NAMES)
    h5.attrs["image_size"] = image_size
    h5.attrs["mask_size"] = mask_size
    h5.attrs["source_root"] = str(source_root)
    h5.attrs["config_digest"] = config_digest
    h5.attrs["facexai_version"] = __version__


def fuse_shard(root: str | os.PathLike, annotations: Annotations, positions, out_h5: str | os.PathLike,
               bad_tsv: str | os.PathLike, image_size: int, mask_size: int, on_bad_sample: str = "error",
               workers: int = 1, config_digest: str = "", progress: bool = True) -> int:
    """Fuse the samples at `positions` (rows of `annotations`) into `out_h5`. Returns samples written.

    on_bad_sample: "error" raises BadInputError naming the first bad file; "skip" leaves the sample
    out and lists it in `bad_tsv` (written in both modes, header only when nothing was bad).
    """
    from tqdm import tqdm

    if on_bad_sample not in ON_BAD_SAMPLE:
        raise ValueError(f"dataset.on_bad_sample must be one of {ON_BAD_SAMPLE}, got {on_bad_sample!r}")
    positions = np.asarray(positions, np.int64)
    ids = annotations.ids[positions]
    files, problems = scan_mask_files(root, ids)
    bad: dict[int, tuple[str, str]] = {}
    for sample_id, path, problem in problems:
        bad.setdefault(sample_id, (str(path), problem))
    if bad and on_bad_sample == "error":
        sample_id, (path, problem) = next(iter(sorted(bad.items())))
        raise BadInputError(path, problem, sample_id)

    tasks = [(str(root), int(i), files[int(i)], image_size, mask_size, COMPRESSION_LEVEL)
             for i in ids if int(i) not in bad]
    written = 0
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        _create_sample_datasets(h5, len(tasks), image_size, mask_size, annotations.identity is not None)
        images, labels = h5["images"], h5["labels"]
        row_of = {int(i): int(p) for i, p in zip(ids, positions)}
        kept_rows = []
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        try:
            results = pool.map(_fuse_one, tasks, chunksize=8) if pool else map(_fuse_one, tasks)
            for sample_id, image_chunk, label_chunk, problem in tqdm(
                    results, total=len(tasks), disable=not progress, desc="fuse", mininterval=2):
                if problem is not None:
                    if on_bad_sample == "error":
                        raise BadInputError(problem[0], problem[1], sample_id)
                    bad[sample_id] = problem
                    continue
                images.id.write_direct_chunk((written, 0, 0, 0), image_chunk)
                labels.id.write_direct_chunk((written, 0, 0), label_chunk)
                kept_rows.append(row_of[sample_id])
                written += 1
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        for name in ("images", "labels"):
            h5[name].resize(written, axis=0)
        rows = np.array(kept_rows, np.int64)
        columns = {"attributes": annotations.attributes, "pose": annotations.pose, "ids": annotations.ids,
                   "celeba_index": annotations.celeba_index, "identity": annotations.identity}
        for name in PER_SAMPLE:
            if name in h5:
                h5[name].resize(written, axis=0)
                if written:
                    h5[name][:] = columns[name][rows]
        _write_attrs(h5, image_size, mask_size, str(root), config_digest)
    write_bad_samples(bad_tsv, sorted((i, p, m) for i, (p, m) in bad.items()))
    if bad:
        log.warning("skipped %d bad sample(s); listed in %s", len(bad), bad_tsv)
    return written


def write_bad_samples(path: str | os.PathLike, rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(BAD_SAMPLE_COLUMNS)
        writer.writerows(rows)


def read_bad_samples(path: str | os.PathLike) -> list[tuple[int, str, str]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        return [(int(r[0]), r[1], r[2]) for r in reader]


def merge_shards(shards, out_h5: str | os.PathLike, bad_tsvs, out_bad_tsv: str | os.PathLike,
                 config_digest: str = "") -> int:
    """Concatenate fused shards into one file, copying compressed chunks without decoding them."""
    shards = [Path(s) for s in shards]
    sizes = []
    for path in shards:
        with h5py.File(path, "r") as h5:
            sizes.append(h5["ids"].shape[0])
            image_size, mask_size = int(h5.attrs["image_size"]), int(h5.attrs["mask_size"])
            with_identity = "identity" in h5
            source_root = h5.attrs["source_root"]
    total = int(sum(sizes))
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as out:
        _create_sample_datasets(out, total, image_size, mask_size, with_identity)
        start = 0
        for path, n in zip(shards, sizes):
            with h5py.File(path, "r") as h5:
                if int(h5.attrs["image_size"]) != image_size or int(h5.attrs["mask_size"]) != mask_size:
                    raise BadInputError(path, "shard sizes differ from the first shard's")
                for name in ("images", "labels"):
                    src, dst = h5[name].id, out[name].id
                    tail = (0,) * (len(h5[name].shape) - 1)
                    for k in range(n):
                        mask, chunk = src.read_direct_chunk((k,) + tail)
                        dst.write_direct_chunk((start + k,) + tail, chunk, filter_mask=mask)
                for name in PER_SAMPLE:
                    if name in out and n:
                        out[name][start:start + n] = h5[name][:]
            start += n
        ids = out["ids"][:]
        if len(np.unique(ids)) != ids.size:
            raise ValueError("merge_shards: a sample id occurs in two shards")
        _write_attrs(out, image_size, mask_size, source_root, config_digest)
    rows = [row for tsv in bad_tsvs for row in read_bad_samples(tsv)]
    write_bad_samples(out_bad_tsv, sorted(rows))
    return total
