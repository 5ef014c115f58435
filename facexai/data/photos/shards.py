"""A shard of photos aligned into a directory: CelebA-HQ-img/{id}.jpg, the part masks drawn from
the landmarks, and shard.tsv (one row per photo: id, file, status, problem, score, box, roll),
in a process pool whose workers end with their parent."""

from __future__ import annotations

import csv
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from ...atomic import atomic_path
from ...errors import BadInputError
from ..celebamask import IMAGE_DIR, MASK_DIR, mask_path
from ..landmark_masks import LANDMARK_CLASSES, landmark_masks
from .align import AlignedFace, AlignSettings, FaceAligner, PhotoProblem
from .decode import decode_photo

log = logging.getLogger(__name__)

MANIFEST = "shard.tsv"
MANIFEST_COLUMNS = ("id", "file", "status", "problem", "score", "left", "top", "right", "bottom", "roll",
                    "face_size")

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
