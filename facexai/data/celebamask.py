"""Reader for the CelebAMask-HQ on-disk layout (the real dataset and the synthetic one alike).

    CelebA-HQ-img/{id}.jpg
    CelebAMask-HQ-mask-anno/{id // 2000}/{id:05d}_{class}.png
    CelebAMask-HQ-attribute-anno.txt     count / 40 names / "{id}.jpg v1 .. v40" (v in {1, -1}; 0 =
                                         not annotated, accepted only in the layout written
                                         from a photo folder without an attribute table)
    CelebAMask-HQ-pose-anno.txt          count / "Yaw Pitch Roll" / "{id}.jpg y p r"
    CelebA-HQ-to-CelebA-mapping.txt      "idx orig_idx orig_file" / rows
    identity_CelebA.txt (optional)       "{orig_file} {identity}"

Every problem raises BadInputError naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadInputError
from ..labels import ATTRIBUTE_NAMES, CLASS_INDEX

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno.txt"
POSE_FILE = "CelebAMask-HQ-pose-anno.txt"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
IDENTITY_FILE = "identity_CelebA.txt"
IDS_PER_MASK_FOLDER = 2000

_MASK_NAME = re.compile(r"^(\d+)_(.+)\.png$")


def annotation_files(root: str | os.PathLike) -> dict[str, Path]:
    root = Path(root)
    return {"attributes": root / ATTRIBUTE_FILE, "pose": root / POSE_FILE,
            "mapping": root / MAPPING_FILE}


def image_path(root: str | os.PathLike, sample_id: int) -> Path:
    return Path(root) / IMAGE_DIR / f"{sample_id}.jpg"


def mask_folder(root: str | os.PathLike, sample_id: int) -> Path:
    return Path(root) / MASK_DIR / str(sample_id // IDS_PER_MASK_FOLDER)


def mask_path(root: str | os.PathLike, sample_id: int, class_name: str) -> Path:
    return mask_folder(root, sample_id) / f"{sample_id:05d}_{class_name}.png"


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise BadInputError(path, "file not found")
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(path, f"cannot read: {exc}") from exc


def _sample_id(token: str, path: Path, line_no: int) -> int:
    stem, dot, ext = token.partition(".")
    if not stem.isdigit() or ext != "jpg":
        raise BadInputError(path, f"line {line_no}: expected '{{id}}.jpg', got {token!r}")
    return int(stem)


@dataclasses.dataclass
class Annotations:
    ids: np.ndarray            # int64 (N,) in file order
    attribute_names: list[str]
    attributes: np.ndarray     # int8 (N, 40), 1 / -1
    pose: np.ndarray           # float32 (N, 3) yaw pitch roll
    celeba_index: np.ndarray   # int64 (N,) original CelebA index, -1 if unmapped
    identity: np.ndarray | None  # int64 (N,) or None when no identity file


def read_sample_count(path: str | os.PathLike) -> int:
    """Line 1 of the attribute file (the sample count), without reading the rest."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "file not found")
    try:
        with open(path) as fh:
            first = fh.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(path, f"cannot read: {exc}") from exc
    if not first.isdigit():
        raise BadInputError(path, "line 1 must be the sample count")
    return int(first)


def read_attribute_file(path: str | os.PathLike, unannotated_ok: bool = False
                        ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """ids, attribute names, values (N, 40). Values are 1 / -1; 0 (not annotated) only with
    `unannotated_ok`, for the layout the photo stage writes from a folder without attributes."""
    path = Path(path)
    allowed = (1, -1, 0) if unannotated_ok else (1, -1)
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise BadInputError(path, "line 1 must be the sample count")
    count = int(lines[0])
    names = lines[1].split()
    if len(names) != len(ATTRIBUTE_NAMES):
        raise BadInputError(path, f"line 2 must name {len(ATTRIBUTE_NAMES)} attributes, found {len(names)}")
    if list(names) != list(ATTRIBUTE_NAMES):
        unknown = [n for n in names if n not in ATTRIBUTE_NAMES]
        raise BadInputError(path, "line 2: attribute names differ from CelebA's"
                                  + (f" (unknown: {unknown})" if unknown else " (order)"))
    rows = lines[2:]
    if len(rows) != count:
        raise BadInputError(path, f"line 1 says {count} samples but {len(rows)} rows follow")
    ids = np.zeros(count, np.int64)
    values = np.zeros((count, len(names)), np.int8)
    for k, row in enumerate(rows):
        fields = row.split()
        line_no = k + 3
        if len(fields) != len(names) + 1:
            raise BadInputError(path, f"line {line_no}: expected {len(names) + 1} fields, got {len(fields)}")
        ids[k] = _sample_id(fields[0], path, line_no)
        try:
            vals = [int(x) for x in fields[1:]]
        except ValueError:
            raise BadInputError(path, f"line {line_no}: attribute values must be 1 or -1") from None
        if any(x not in allowed for x in vals):
            raise BadInputError(path, f"line {line_no}: attribute values must be 1 or -1")
        values[k] = vals
    if len(np.unique(ids)) != count:
        raise BadInputError(path, "duplicate sample ids")
    return ids, names, values


def read_pose_file(path: str | os.PathLike) -> dict[int, tuple[float, float, float]]:
    path = Path(path)
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise BadInputError(path, "line 1 must be the sample count")
    if lines[1].split() != ["Yaw", "Pitch", "Roll"]:
        raise BadInputError(path, "line 2 must be 'Yaw Pitch Roll'")
    out = {}
    for k, row in enumerate(lines[2:]):
        fields = row.split()
        if len(fields) != 4:
            raise BadInputError(path, f"line {k + 3}: expected '{{id}}.jpg yaw pitch roll'")
        try:
            out[_sample_id(fields[0], path, k + 3)] = tuple(float(x) for x in fields[1:])
        except ValueError:
            raise BadInputError(path, f"line {k + 3}: pose values must be numbers") from None
    if len(out) != int(lines[0]):
        raise BadInputError(path, f"line 1 says {lines[0]} samples but {len(out)} rows follow")
    return out


def read_mapping_file(path: str | os.PathLike) -> dict[int, tuple[int, str]]:
    """CelebA-HQ id -> (original CelebA index, original CelebA file name)."""
    path = Path(path)
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    if not lines or lines[0].split() != ["idx", "orig_idx", "orig_file"]:
        raise BadInputError(path, "header must be 'idx orig_idx orig_file'")
    out = {}
    for k, row in enumerate(lines[1:]):
        fields = row.split()
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise BadInputError(path, f"line {k + 2}: expected 'idx orig_idx orig_file'")
        out[int(fields[0])] = (int(fields[1]), fields[2])
    return out


def read_identity_file(path: str | os.PathLike) -> dict[str, int]:
    """CelebA file name -> identity number."""
    path = Path(path)
    out = {}
    for k, row in enumerate(_read_lines(path)):
        fields = row.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise BadInputError(path, f"line {k + 1}: expected '{{orig_file}} {{identity}}'")
        out[fields[0]] = int(fields[1])
    return out


def read_annotations(root: str | os.PathLike, identity_file: str | os.PathLike | None = None,
                     unannotated_ok: bool = False) -> Annotations:
    """Read the text annotations; the sample list is the attribute file's (see read_attribute_file
    for `unannotated_ok`)."""
    files = annotation_files(root)
    ids, names, attributes = read_attribute_file(files["attributes"], unannotated_ok)
    pose_by_id = read_pose_file(files["pose"])
    missing = [i for i in ids if i not in pose_by_id]
    if missing:
        raise BadInputError(files["pose"], f"no pose for {len(missing)} sample(s), first {missing[:5]}")
    pose = np.array([pose_by_id[i] for i in ids], np.float32)
    mapping = read_mapping_file(files["mapping"])
    celeba_index = np.array([mapping.get(int(i), (-1, ""))[0] for i in ids], np.int64)
    identity = None
    if identity_file is not None:
        by_file = read_identity_file(identity_file)
        identity = np.full(len(ids), -1, np.int64)
        for k, i in enumerate(ids):
            orig = mapping.get(int(i))
            if orig is None or orig[1] not in by_file:
                raise BadInputError(identity_file, f"no identity for sample {i} "
                                                   f"({orig[1] if orig else 'not in ' + MAPPING_FILE})")
            identity[k] = by_file[orig[1]]
    return Annotations(ids, names, attributes, pose, celeba_index, identity)


def scan_mask_files(root: str | os.PathLike, ids) -> tuple[dict[int, dict[str, Path]], list[tuple[int, Path, str]]]:
    """Find the mask files of `ids`: {id: {class: path}} and a list of (id, path, problem).

    Problems: an unknown class name in a file name, a file in the wrong 2000-id folder.
    Folders are listed once each (not one stat per class per sample).
    """
    root = Path(root)
    wanted = {int(i) for i in ids}
    found: dict[int, dict[str, Path]] = {i: {} for i in wanted}
    problems: list[tuple[int, Path, str]] = []
    base = root / MASK_DIR
    if not base.is_dir():
        raise BadInputError(base, "mask folder not found")
    folders = sorted({i // IDS_PER_MASK_FOLDER for i in wanted})
    # files for a wanted id may sit in a wrong folder: look in every numeric folder present
    present = sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())
    for folder in sorted(set(present) | set(folders)):
        path = base / str(folder)
        if not path.is_dir():
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                match = _MASK_NAME.match(entry.name)
                if not match:
                    continue
                sample_id = int(match.group(1))
                if sample_id not in wanted:
                    continue
                file = Path(entry.path)
                class_name = match.group(2)
                if sample_id // IDS_PER_MASK_FOLDER != folder:
                    problems.append((sample_id, file, f"mask of sample {sample_id} belongs in folder "
                                                      f"{sample_id // IDS_PER_MASK_FOLDER}, found in {folder}"))
                elif class_name not in CLASS_INDEX or class_name == "background":
                    problems.append((sample_id, file, f"unknown class {class_name!r} in file name"))
                else:
                    found[sample_id][class_name] = file
    return found, problems


def read_mask(path: str | os.PathLike, size: int) -> np.ndarray:
    """A binary mask (size, size) bool: any non-zero value is 'in' (some files are RGB or grey != 255)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.size != (size, size):
                raise BadInputError(path, f"mask is {im.size[0]}x{im.size[1]}, expected {size}x{size}")
            if im.mode in ("L", "1", "P", "I", "I;16"):
                arr = np.asarray(im)
                return arr > 0 if im.mode != "P" else np.asarray(im.convert("L")) > 0
            arr = np.asarray(im.convert("RGB"))
            return arr.max(axis=2) > 0
    except BadInputError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(path, f"unreadable or truncated PNG ({exc})") from exc


def read_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """An RGB image resized with antialiasing to (size, size, 3) uint8.

    Large JPEGs are first decoded at a reduced DCT scale (PIL's draft mode, still >= size), which
    is itself a low-pass reduction, then resized with a Lanczos filter.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "image file not found")
    try:
        with Image.open(path) as im:
            if im.size[0] != im.size[1]:
                raise BadInputError(path, f"image is {im.size[0]}x{im.size[1]}, expected a square")
            if im.format == "JPEG":
                im.draft("RGB", (size, size))
            im.load()
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
    except BadInputError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(path, f"unreadable or truncated image ({exc})") from exc
