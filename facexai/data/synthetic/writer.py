"""Synthetic faces, writing: every image, its part masks and the annotation files, in the exact
CelebAMask-HQ layout that the real reader (facexai.data.celebamask) reads: its file and folder
names are used here, so writer and reader cannot drift apart."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ...atomic import atomic_path
from ...labels import ATTRIBUTE_NAMES, DEFAULT_ATTRIBUTE_REGIONS, MASK_CLASSES
from ..celebamask import (ATTRIBUTE_FILE, IDENTITY_FILE, IDS_PER_MASK_FOLDER, IMAGE_DIR, MAPPING_FILE, MASK_DIR,
                          POSE_FILE, image_path, mask_path)
from .geometry import FaceShapes, face_coordinates
from .rendering import render_face
from .sampling import SIGNAL_ATTRIBUTES, SyntheticConfig, _plan, _sample

log = logging.getLogger(__name__)

PAIRS_FILE = "synthetic-pairs.txt"
META_FILE = "synthetic-meta.json"  # the generator's settings and what it drew



def _mask_image(mask: np.ndarray, rng: np.random.Generator, odd_fraction: float) -> Image.Image:
    """A mask as CelebAMask-HQ stores it: mostly grey 0/255, some RGB or other non-zero values."""
    if rng.random() < odd_fraction:
        if rng.random() < 0.5:
            return Image.fromarray(np.repeat(mask[..., None] * np.uint8(255), 3, axis=2), "RGB")
        return Image.fromarray(mask.astype(np.uint8) * np.uint8(rng.integers(1, 255)), "L")
    return Image.fromarray(mask.astype(np.uint8) * np.uint8(255), "L")


def _write_sample(args) -> tuple[int, np.ndarray, bool, np.ndarray]:
    cfg, plan, i, root = args
    identity, scene, attributes, tint = _sample(cfg, plan, i)
    image, _ = render_face(identity, scene, attributes, cfg.image_size, shortcut_tint=tint)
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(image_path(root, i), quality=cfg.jpeg_quality)
    u, v = face_coordinates(scene, cfg.mask_size)
    masks = FaceShapes(identity, scene, attributes).class_masks(u, v)
    rng = np.random.default_rng([cfg.seed, 3, i])
    for name in MASK_CLASSES:
        mask = masks[name]
        if mask.any():  # an absent part has no file, as in the real dataset
            _mask_image(mask, rng, cfg.odd_mask_fraction).save(mask_path(root, i, name))
    pose = np.array([scene["yaw"], scene["pitch"], scene["roll"]])
    return i, attributes, tint, pose


def generate(cfg: SyntheticConfig, root: str | os.PathLike, progress: bool = True) -> Path:
    """Write a synthetic set in the CelebAMask-HQ layout under `root` (atomically, as a whole)."""
    from tqdm import tqdm

    root = Path(root)
    plan = _plan(cfg)
    with atomic_path(root) as tmp:
        (tmp / IMAGE_DIR).mkdir(parents=True)
        for folder in range((cfg.total - 1) // IDS_PER_MASK_FOLDER + 1):
            (tmp / MASK_DIR / str(folder)).mkdir(parents=True)
        attributes = np.zeros((cfg.total, len(ATTRIBUTE_NAMES)), np.int8)
        pose = np.zeros((cfg.total, 3))
        tints = np.zeros(cfg.total, bool)
        jobs = [(cfg, plan, i, tmp) for i in range(cfg.total)]
        if cfg.workers > 1:
            with ProcessPoolExecutor(cfg.workers) as pool:
                results = pool.map(_write_sample, jobs, chunksize=16)
                for i, attr, tint, p in tqdm(results, total=cfg.total, disable=not progress,
                                             desc="synthetic faces", mininterval=2):
                    attributes[i], tints[i], pose[i] = attr, tint, p
        else:
            for job in tqdm(jobs, disable=not progress, desc="synthetic faces", mininterval=2):
                i, attr, tint, p = _write_sample(job)
                attributes[i], tints[i], pose[i] = attr, tint, p
        _write_annotations(tmp, cfg, plan, attributes, pose)
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"}  # no effect on output
        meta = {"generator": "facexai.data.synthetic", "config": settings,
                "signal_attributes": SIGNAL_ATTRIBUTES,
                "shortcut_tint": tints.astype(int).tolist(),
                "test_split": plan["test"].astype(int).tolist()}
        (tmp / META_FILE).write_text(json.dumps(meta))
    return root


def _write_annotations(root: Path, cfg: SyntheticConfig, plan: dict, attributes: np.ndarray,
                       pose: np.ndarray) -> None:
    n = cfg.total
    lines = [str(n), " ".join(ATTRIBUTE_NAMES)]
    lines += [f"{i}.jpg  " + " ".join(str(int(x)) for x in attributes[i]) for i in range(n)]
    (root / ATTRIBUTE_FILE).write_text("\n".join(lines) + "\n")
    lines = [str(n), "Yaw Pitch Roll"]
    lines += [f"{i}.jpg {pose[i, 0]:.4f} {pose[i, 1]:.4f} {pose[i, 2]:.4f}" for i in range(n)]
    (root / POSE_FILE).write_text("\n".join(lines) + "\n")
    lines = ["idx orig_idx orig_file"]
    lines += [f"{i} {plan['orig_idx'][i]} {plan['orig_idx'][i] + 1:06d}.jpg" for i in range(n)]
    (root / MAPPING_FILE).write_text("\n".join(lines) + "\n")
    lines = ["id_a id_b region attribute"]
    lines += [f"{plan['pair_base'][k]} {cfg.n_images + k} {DEFAULT_ATTRIBUTE_REGIONS[a]} {a}"
              for k, a in enumerate(plan["pair_attribute"])]
    (root / PAIRS_FILE).write_text("\n".join(lines) + "\n")
    identity = plan["celeba_identity"][plan["owner"]]
    order = np.argsort(plan["orig_idx"])  # CelebA's identity file is sorted by file name
    lines = [f"{plan['orig_idx'][i] + 1:06d}.jpg {identity[i]}" for i in order]
    (root / IDENTITY_FILE).write_text("\n".join(lines) + "\n")
