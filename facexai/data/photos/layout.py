"""The aligned shards joined into one CelebAMask-HQ layout with the annotation files its reader
needs, plus photos.tsv and bad_photos.tsv."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ...atomic import atomic_path
from ...errors import BadInputError
from ...labels import ATTRIBUTE_NAMES
from ..celebamask import ATTRIBUTE_FILE, IDENTITY_FILE, IMAGE_DIR, MAPPING_FILE, MASK_DIR, POSE_FILE
from .folder import (ignored_files, list_photos, read_identities, read_photo_attributes, read_photo_groups,
                     with_groups)
from .shards import MANIFEST, read_manifest

log = logging.getLogger(__name__)

PHOTOS_TABLE = "photos.tsv"
BAD_PHOTOS = "bad_photos.tsv"


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (copy where links are refused) every file of src into dst."""
    for dirpath, _, filenames in os.walk(src):
        target = dst / Path(dirpath).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            try:
                os.link(Path(dirpath, name), target / name)
            except OSError:
                shutil.copyfile(Path(dirpath, name), target / name)


def assemble_layout(root: str | os.PathLike, shard_dirs, out_root: str | os.PathLike,
                    min_face_size: int = 64) -> dict:
    """Join the aligned shards into one CelebAMask-HQ layout at `out_root` with the annotation files
    the reader needs: attributes (the folder's table, or 0 = not annotated for every attribute),
    pose (roll from the alignment; yaw and pitch unknown: NaN), the id mapping, identities
    (numbered in sorted name order; a photo of unknown identity is its own), plus photos.tsv
    (id, file, identity, score, box, roll) and bad_photos.tsv (id, file, problem)."""
    from ..fusion import write_bad_samples

    root = Path(root)
    photos = list_photos(root)
    identities = read_identities(root, photos)
    given = read_photo_attributes(root, photos)
    groups = read_photo_groups(root, photos)
    # groups.tsv's columns written into the attributes (0 = not annotated elsewhere)
    attributes = with_groups(given, groups, len(photos), photos, root)
    rows = sorted((r for d in shard_dirs for r in read_manifest(Path(d) / MANIFEST)), key=lambda r: int(r["id"]))
    if [r["file"] for r in rows] != photos[:len(rows)] or len(rows) != len(photos):
        raise BadInputError(root, "the photo folder changed since its photos were aligned; run again")
    names = identities if identities is not None else photos
    number = {n: k for k, n in enumerate(sorted(set(names)))}
    good = [r for r in rows if r["status"] == "ok"]
    if not good:
        problems = sorted({r["problem"] for r in rows})
        raise BadInputError(root, f"every photo was skipped as bad ({len(rows)} of {len(rows)}; problems: "
                                  f"{'; '.join(problems[:3])}); nothing is left to study")
    with atomic_path(out_root) as tmp:
        tmp.mkdir(parents=True)
        (tmp / IMAGE_DIR).mkdir()
        (tmp / MASK_DIR).mkdir()
        for d in shard_dirs:
            _link_tree(Path(d) / IMAGE_DIR, tmp / IMAGE_DIR)
            _link_tree(Path(d) / MASK_DIR, tmp / MASK_DIR)
        with open(tmp / ATTRIBUTE_FILE, "w") as fh:
            fh.write(f"{len(good)}\n{' '.join(ATTRIBUTE_NAMES)}\n")
            for r in good:
                values = attributes[int(r["id"])] if attributes is not None else np.zeros(len(ATTRIBUTE_NAMES), int)
                fh.write(f"{r['id']}.jpg {' '.join(str(int(v)) for v in values)}\n")
        with open(tmp / POSE_FILE, "w") as fh:
            fh.write(f"{len(good)}\nYaw Pitch Roll\n")
            for r in good:
                fh.write(f"{r['id']}.jpg nan nan {r['roll']}\n")
        with open(tmp / MAPPING_FILE, "w") as fh:
            fh.write("idx orig_idx orig_file\n")
            for r in good:
                fh.write(f"{r['id']} {r['id']} {r['id']}.jpg\n")
        with open(tmp / IDENTITY_FILE, "w") as fh:
            for r in good:
                fh.write(f"{r['id']}.jpg {number[names[int(r['id'])]]}\n")
        with open(tmp / PHOTOS_TABLE, "w", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t")
            writer.writerow(("id", "file", "identity", "identity_name", "score", "left", "top", "right", "bottom",
                             "roll", "face_size"))
            for r in good:
                name = names[int(r["id"])]
                writer.writerow((r["id"], r["file"], number[name], name, r["score"], r["left"], r["top"],
                                 r["right"], r["bottom"], r["roll"], r.get("face_size", "")))
        write_bad_samples(tmp / BAD_PHOTOS, [(int(r["id"]), str(root / r["file"]), r["problem"])
                                             for r in rows if r["status"] == "bad"])
    small = [r["file"] for r in good if r.get("face_size") and int(r["face_size"]) < min_face_size]
    if small:
        log.warning("%d photo(s) with a face under photos.min_face_size = %d px, upsampled into the chip "
                    "(face_size in %s), first %s", len(small), min_face_size, PHOTOS_TABLE, small[:3])
    summary = {"photos": len(rows), "aligned": len(good), "bad": len(rows) - len(good),
               "small_faces": len(small),
               "min_face_size": min_face_size, "ignored_files": ignored_files(root),
               "identities": len({names[int(r['id'])] for r in good}),
               "identities_given": identities is not None, "attributes_given": given is not None,
               "groups_given": sorted(groups) if groups else []}
    log.info("photo layout: %s", summary)
    return summary
