"""Any folder of face photos as a CelebAMask-HQ layout: dlib finds and aligns the face, its 68
landmarks give the part masks (facexai/data/landmark_masks.py).

Folder (`dataset_root`):
    any/sub/folders/*.jpg, *.png, ...    the photos (PHOTO_EXTENSIONS; any size, 8 or 16 bits; EXIF
                                         orientation applied)
    identities.tsv (optional)            "file<TAB>identity" (file relative to the root, or a bare
                                         file name when unique); without it, a photo in a
                                         sub-folder belongs to the identity named by that folder
                                         (the LFW layout), and a photo at the top level is its own
    attributes.txt (optional)            CelebA's attribute table (list_attr_celeba.txt format:
                                         count / 40 names / "file v1 .. v40", v in {1, -1})

Per photo: the frontal detector runs on a grey-level copy whose long side is `detect_size` (it sees
faces from about 80 px there, i.e. 80 x long side / detect_size px in the photo; faces scoring below
`min_score` are ignored: dlib's raw threshold 0 finds false faces in textures, scoring 0.1-0.2 on
scikit-image's astronaut photo, where the real face scores 1.5); exactly one face must remain.
The 5-point shape predictor on the full-resolution photo gives
`dlib.get_face_chip_details(shape, chip_size, padding)` and the chip is cut with
`dlib.extract_image_chip`, i.e. exactly `dlib.get_face_chip`. The 68-point predictor, also run
on the full-resolution photo, gives landmarks that are mapped into the chip with the chip's own
affine transform, then drawn as masks.

Written per shard (a directory): CelebA-HQ-img/{id}.jpg, CelebAMask-HQ-mask-anno/{id//2000}/
{id:05d}_{class}.png and shard.tsv (one row per photo: id, file, status, problem, score, box,
roll). `assemble_layout` then writes the annotation files the CelebAMask-HQ reader reads.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..atomic import atomic_path
from ..errors import BadInputError
from ..labels import ATTRIBUTE_NAMES
from .celebamask import (ATTRIBUTE_FILE, IDENTITY_FILE, IMAGE_DIR, MAPPING_FILE, MASK_DIR, POSE_FILE,
                         mask_path)
from .landmark_masks import LANDMARK_CLASSES, landmark_masks

log = logging.getLogger(__name__)

# every format is decoded by Pillow; any other file in the folder is not a photo (listed by `ignored_files`)
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
IDENTITIES_FILE = "identities.tsv"
ATTRIBUTES_FILE = "attributes.txt"
MANIFEST = "shard.tsv"
PHOTOS_TABLE = "photos.tsv"
BAD_PHOTOS = "bad_photos.tsv"
MANIFEST_COLUMNS = ("id", "file", "status", "problem", "score", "left", "top", "right", "bottom", "roll",
                    "face_size")
# the frontal detector's smallest face, in pixels of the image it runs on (its 80x80 HOG window)
DETECTOR_MIN_FACE = 80


@dataclass(frozen=True)
class AlignSettings:
    chip_size: int = 512
    padding: float = 0.5
    detect_size: int = 512
    min_score: float = 0.3
    mask_size: int = 512
    jpeg_quality: int = 95

    @classmethod
    def from_config(cls, photos: dict, mask_size: int) -> "AlignSettings":
        return cls(chip_size=int(photos["chip_size"]), padding=float(photos["padding"]),
                   detect_size=int(photos["detect_size"]), min_score=float(photos["min_score"]),
                   mask_size=int(mask_size), jpeg_quality=int(photos.get("jpeg_quality", 95)))


class PhotoProblem(Exception):
    """A photo that cannot become a sample (no face, several faces, undecodable)."""


# ------------------------------------------------------------------------------------------ folder

def list_photos(root: str | os.PathLike) -> list[str]:
    """Photo files under `root` (recursive), as sorted POSIX paths relative to it; the sample id of
    a photo is its position in this list. The pipeline's own output folders are never inside it."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(root, "photo folder not found")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(PHOTO_EXTENSIONS) and not name.startswith("."):
                found.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


def ignored_files(root: str | os.PathLike) -> list[str]:
    """Files under `root` that are neither photos nor the folder's tables (relative paths): what a
    run leaves out, said on the console and in the log so that no photo is dropped unnoticed."""
    root = Path(root)
    tables = {IDENTITIES_FILE, ATTRIBUTES_FILE}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if not name.startswith(".") and not name.lower().endswith(PHOTO_EXTENSIONS) and rel not in tables:
                out.append(rel)
    return sorted(out)


def shard_photos(photos: list[str], shard: int, shard_size: int) -> list[tuple[int, str]]:
    start = shard * shard_size
    return [(start + k, f) for k, f in enumerate(photos[start:start + shard_size])]


def read_identities(root: str | os.PathLike, photos: list[str]) -> list[str] | None:
    """The identity name of every photo, or None when the folder gives no identities at all
    (no identities.tsv and no photo in a sub-folder)."""
    root = Path(root)
    table = root / IDENTITIES_FILE
    if table.is_file():
        by_name: dict[str, str] = {}
        line_of: dict[str, int] = {}
        for k, line in enumerate(read_table_text(table).splitlines()):
            line = line.rstrip()  # trailing tabs and spaces (and a CR) are not a third field
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise BadInputError(table, f"line {k + 1}: expected 'file<TAB>identity'")
            file, name = fields[0].strip(), fields[1].strip()
            if file in by_name and by_name[file] != name:
                raise BadInputError(table, f"{file} has two identities: {by_name[file]!r} on line "
                                           f"{line_of[file]} and {name!r} on line {k + 1}")
            by_name[file] = name
            line_of.setdefault(file, k + 1)
        bare: dict[str, list[str]] = {}
        for f in photos:
            bare.setdefault(f.rsplit("/", 1)[-1], []).append(f)
        for base, files in bare.items():
            if base in by_name and "/" not in base and len(files) > 1 and not all(f in by_name for f in files):
                raise BadInputError(table, f"line {line_of[base]}: the bare name {base} matches {len(files)} photos "
                                           f"({', '.join(files[:3])}); give each its path relative to the folder")
        out = []
        for f in photos:
            base = f.rsplit("/", 1)[-1]
            name = by_name.get(f)
            by_base = by_name.get(base) if base != f and len(bare[base]) == 1 else None
            if name is not None and by_base is not None and by_base != name:
                raise BadInputError(table, f"{f} has two identities: {name!r} on line {line_of[f]} and {by_base!r} "
                                           f"on line {line_of[base]} (as {base})")
            name = name if name is not None else by_base
            if name is None:
                raise BadInputError(table, f"no identity for photo {f}")
            out.append(name)
        unknown = sorted(set(by_name) - set(photos) - {f.rsplit('/', 1)[-1] for f in photos})
        if unknown:
            raise BadInputError(table, f"{len(unknown)} listed file(s) not in the folder, first {unknown[:3]}")
        return out
    if not any("/" in f for f in photos):
        return None
    return [f.rsplit("/", 1)[0] if "/" in f else f for f in photos]


def read_table_text(path: Path) -> str:
    """A folder table as text: UTF-8, with or without a byte-order mark; anything else is bad input
    naming the file (not a UnicodeDecodeError)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None


def read_photo_attributes(root: str | os.PathLike, photos: list[str]) -> np.ndarray | None:
    """(N, 40) int8 from attributes.txt (CelebA's format, keyed by file as in identities.tsv), or
    None when the folder has no attribute table."""
    path = Path(root) / ATTRIBUTES_FILE
    if not path.is_file():
        return None
    numbered = [(k + 1, ln) for k, ln in enumerate(read_table_text(path).splitlines()) if ln.strip()]
    lines = [ln for _, ln in numbered]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise BadInputError(path, "line 1 must be the row count")
    names = lines[1].split()
    if names != list(ATTRIBUTE_NAMES):
        raise BadInputError(path, f"line 2 must name CelebA's {len(ATTRIBUTE_NAMES)} attributes in CelebA's order")
    if len(lines) - 2 != int(lines[0]):
        raise BadInputError(path, f"line 1 says {lines[0]} rows but {len(lines) - 2} follow")
    rows, line_of = {}, {}
    for number, line in numbered[2:]:
        fields = line.split()
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            values = []
        if len(values) != len(names) or any(v not in (1, -1) for v in values):
            raise BadInputError(path, f"line {number}: expected a file name and {len(names)} values 1 or -1")
        if fields[0] in rows and rows[fields[0]] != values:
            raise BadInputError(path, f"{fields[0]} has two different rows: lines {line_of[fields[0]]} and {number}")
        rows[fields[0]] = values
        line_of.setdefault(fields[0], number)
    out = np.zeros((len(photos), len(names)), np.int8)
    for i, f in enumerate(photos):
        values = rows.get(f, rows.get(f.rsplit("/", 1)[-1]))
        if values is None:
            raise BadInputError(path, f"no attributes for photo {f}")
        out[i] = values
    return out


# --------------------------------------------------------------------------------------- alignment

def decode_photo(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 (H, W, 3), EXIF orientation applied; BadInputError naming the file if undecodable.
    16-bit and 32-bit grey images (PNG, TIFF) are scaled to 8 bits, never clipped."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return to_rgb8(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInputError(path, f"cannot decode the photo ({exc})") from exc


def to_rgb8(im: Image.Image) -> np.ndarray:
    """An image of any Pillow mode as RGB uint8. Pillow's convert("RGB") clips the integer modes
    (I;16, I) at 255, which turns most of a 16-bit photo white: those are scaled by the smallest
    common bit depth (8, 10, 12, 14, 16 or 32 bits) that holds their largest value, so 12-bit data
    in a 16-bit file is not darkened 16-fold; a float image by its own range. Non-finite values are
    bad input (ValueError, named by the caller)."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        grey = np.asarray(im, dtype=np.float64)
        if not np.isfinite(grey).all():
            raise ValueError(f"the image holds {int((~np.isfinite(grey)).sum())} non-finite pixel value(s)")
        if im.mode == "F":
            low, high = float(grey.min()), float(grey.max())
            grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
        else:
            top = max(float(grey.max()), 0.0)
            depth = next((2.0 ** bits - 1 for bits in (8, 10, 12, 14, 16, 32) if top <= 2.0 ** bits - 1),
                         2.0 ** 32 - 1)
            grey = np.clip(grey, 0, depth) / depth
        grey8 = np.round(grey * 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[..., None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def chip_affine(details) -> np.ndarray:
    """The 2x3 affine map from photo pixels (x, y) to chip pixels of a dlib chip_details, the map
    dlib's extract_image_chip samples with (its get_mapping_to_chip): the rectangle's corners,
    rotated by `angle` about its centre, go to the chip's corners."""
    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    c, s = math.cos(details.angle), math.sin(details.angle)

    def rotated(x, y):
        dx, dy = x - cx, y - cy
        return cx + c * dx - s * dy, cy + s * dx + c * dy

    src = np.array([rotated(rect.left(), rect.top()), rotated(rect.right(), rect.top()),
                    rotated(rect.right(), rect.bottom())])
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], np.float64)
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T  # rows: x' = m[0] . (x, y, 1), y' = m[1] . (x, y, 1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ m[:, :2].T + m[:, 2]


@dataclass
class AlignedFace:
    chip: np.ndarray        # uint8 (chip_size, chip_size, 3)
    landmarks: np.ndarray   # float64 (68, 2): x, y in chip pixels
    score: float
    box: tuple[int, int, int, int]   # left, top, right, bottom in photo pixels
    roll: float             # degrees: the in-plane rotation the alignment removed

    @property
    def face_size(self) -> int:
        """The detected face's side in photo pixels (the chip upsamples a face smaller than it)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceAligner:
    """dlib's detector and shape predictors, loaded once per process."""

    def __init__(self, settings: AlignSettings):
        import dlib

        from ..models.dlib_resnet import default_model_path

        folder = default_model_path().parent
        self.dlib = dlib
        self.settings = settings
        self.detector = dlib.get_frontal_face_detector()
        self.five = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.sixty_eight = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))

    def detect(self, image: np.ndarray) -> list[tuple[object, float]]:
        """Faces scoring at least min_score: (rectangle in photo pixels, score), best first."""
        dlib, s = self.dlib, self.settings
        h, w = image.shape[:2]
        scale = s.detect_size / max(h, w)
        # on grey levels: half the time of RGB (HOG takes the strongest channel's gradient), the same faces
        grey = Image.fromarray(image).convert("L")
        if scale != 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        rects, scores, _ = self.detector.run(np.asarray(grey), 0, min(0.0, s.min_score))
        found = []
        for r, score in zip(rects, scores):
            if score >= s.min_score:
                box = dlib.rectangle(int(round(r.left() / scale)), int(round(r.top() / scale)),
                                     int(round(r.right() / scale)), int(round(r.bottom() / scale)))
                found.append((box, float(score)))
        return sorted(found, key=lambda f: -f[1])

    def align(self, image: np.ndarray, face) -> AlignedFace:
        dlib, s = self.dlib, self.settings
        box, score = face
        details = dlib.get_face_chip_details(self.five(image, box), s.chip_size, s.padding)
        chip = np.asarray(dlib.extract_image_chip(image, details))
        shape = self.sixty_eight(image, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        landmarks = apply_affine(chip_affine(details), points)
        return AlignedFace(chip, landmarks, score, (box.left(), box.top(), box.right(), box.bottom()),
                           math.degrees(details.angle))

    def __call__(self, image: np.ndarray) -> AlignedFace:
        faces = self.detect(image)
        if not faces:
            s = self.settings
            smallest = DETECTOR_MIN_FACE * max(image.shape[:2]) / s.detect_size
            raise PhotoProblem(
                f"no face found (detector score >= {s.min_score}; the detector sees the photo at "
                f"{s.detect_size} px on its long side, where it finds faces from about {DETECTOR_MIN_FACE} px, "
                f"i.e. faces from about {smallest:.0f} px in this {image.shape[1]}x{image.shape[0]} photo: "
                "raise photos.detect_size for smaller faces, and give one face per photo)")
        if len(faces) > 1:
            raise PhotoProblem(f"{len(faces)} faces found (scores {', '.join(f'{f[1]:.2f}' for f in faces)}); "
                               "one face per photo")
        return self.align(image, faces[0])


# ------------------------------------------------------------------------------------------ shards

_ALIGNER: FaceAligner | None = None


def _worker_init(settings: AlignSettings, watch_parent: bool = False) -> None:
    global _ALIGNER
    if watch_parent:
        exit_with_parent()
    _ALIGNER = FaceAligner(settings)


def exit_with_parent(interval: float = 0.5) -> None:
    """In a pool worker: end this process as soon as its parent is gone. A parent killed by
    SIGKILL (as the out-of-memory killer does) cannot shut its pool down, and the workers would
    otherwise live on, each holding dlib's models."""
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def write_sample(out_dir: str | os.PathLike, sample_id: int, face: AlignedFace, settings: AlignSettings) -> None:
    out_dir = Path(out_dir)
    Image.fromarray(face.chip).save(out_dir / IMAGE_DIR / f"{sample_id}.jpg", quality=settings.jpeg_quality)
    masks = landmark_masks(face.landmarks, settings.chip_size, settings.mask_size)
    path = mask_path(out_dir, sample_id, "skin")
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in LANDMARK_CLASSES:
        if masks[name].any():  # an absent part has no file, as in CelebAMask-HQ
            Image.fromarray(masks[name]).save(mask_path(out_dir, sample_id, name), compress_level=3)  # 1-bit PNG


def _align_one(task):
    root, out_dir, sample_id, file = task
    row = {"id": sample_id, "file": file, "status": "ok", "problem": "", "score": "", "left": "", "top": "",
           "right": "", "bottom": "", "roll": "", "face_size": ""}
    try:
        image = decode_photo(Path(root) / file)
        face = _ALIGNER(image)
    except (BadInputError, PhotoProblem) as exc:
        row.update(status="bad", problem=exc.problem if isinstance(exc, BadInputError) else str(exc))
        return row
    write_sample(out_dir, sample_id, face, _ALIGNER.settings)
    row.update(score=f"{face.score:.4f}", roll=f"{face.roll:.3f}", face_size=face.face_size,
               **dict(zip(("left", "top", "right", "bottom"), face.box)))
    return row


def align_shard(root: str | os.PathLike, photos: list[tuple[int, str]], out_dir: str | os.PathLike,
                settings: AlignSettings, on_bad_sample: str = "error", workers: int = 1,
                progress: bool = True) -> list[dict]:
    """Align `photos` ((id, relative file) pairs) into the shard directory `out_dir`.

    on_bad_sample "error": the first photo with no face, several faces or no decodable image
    raises BadInputError naming it (nothing is left at `out_dir`); "skip": it is listed as bad in
    the shard's manifest.
    """
    from tqdm import tqdm

    if on_bad_sample not in ("error", "skip"):
        raise ValueError(f"dataset.on_bad_sample must be 'error' or 'skip', got {on_bad_sample!r}")
    rows = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / IMAGE_DIR).mkdir()
        (tmp / MASK_DIR).mkdir()
        tasks = [(str(root), str(tmp), i, f) for i, f in photos]
        if workers > 1:
            # fork: each worker's parent is this process, which exit_with_parent watches (under
            # forkserver, Python 3.14's default on Linux, the parent would be the server)
            import multiprocessing

            context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() \
                else None
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                       initargs=(settings, True))
            results = pool.map(_align_one, tasks, chunksize=4)
        else:
            pool = None
            _worker_init(settings)
            results = map(_align_one, tasks)
        try:
            for row in tqdm(results, total=len(tasks), disable=not progress, desc="align", mininterval=2):
                if row["status"] == "bad" and on_bad_sample == "error":
                    raise BadInputError(Path(root) / row["file"], row["problem"])
                rows.append(row)
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        write_manifest(tmp / MANIFEST, rows)
    bad = sum(r["status"] == "bad" for r in rows)
    if bad:
        log.warning("%d of %d photo(s) skipped as bad (listed in %s)", bad, len(rows), Path(out_dir) / MANIFEST)
    return rows


def write_manifest(path: str | os.PathLike, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, MANIFEST_COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# ------------------------------------------------------------------------------------------ layout

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
    from .fusion import write_bad_samples

    root = Path(root)
    photos = list_photos(root)
    identities = read_identities(root, photos)
    attributes = read_photo_attributes(root, photos)
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
               "identities_given": identities is not None, "attributes_given": attributes is not None}
    log.info("photo layout: %s", summary)
    return summary
