"""Finding damaged outputs before a run, so that Snakemake redoes them instead of reading them.

Every output is written under a temporary name and renamed, so a killed job never leaves a
half-written file behind. A file can still be damaged afterwards (a full disk on a copy, a truncated
transfer, an edit by hand). `quarantine` checks the shard files a run would read: HDF5 files must
open, hold their datasets with one row per sample, and (attribution maps, written with Fletcher-32
checksums) have checksums that match; CSV tables must have a header and the same number of fields
on every line, ending with a newline. A damaged file is renamed to `<name>.corrupt` (kept for
inspection), so the job that makes it is scheduled again.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import h5py

log = logging.getLogger(__name__)

# datasets each kind of HDF5 output must hold, all with the same first dimension
H5_DATASETS = {
    "attributions": ("maps", "ids", "row", "score"),
    "fused": ("images", "labels", "attributes", "ids"),
}


def h5_problem(path, kind: str, verify_checksums: bool = True) -> str | None:
    """Why an HDF5 output cannot be used, or None."""
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in H5_DATASETS[kind] if name not in f]
            if missing:
                return f"missing dataset(s) {missing}"
            lengths = {name: f[name].shape[0] for name in H5_DATASETS[kind]}
            if len(set(lengths.values())) > 1:
                return f"datasets of different lengths {lengths}"
            maps = f.get("maps")
            if verify_checksums and maps is not None and maps.fletcher32 and maps.shape[0]:
                for start in range(0, maps.shape[0], 1024):  # every chunk is read, its checksum checked
                    maps[start:start + 1024]
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return f"unreadable HDF5 ({str(exc).splitlines()[0]})"
    return None


def csv_problem(path) -> str | None:
    """Why a CSV table cannot be used, or None."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({exc})"
    if not text.endswith("\n"):
        return "does not end with a newline (truncated)"
    rows = list(csv.reader(text.splitlines()))
    if not rows or not rows[0]:
        return "no header"
    width = len(rows[0])
    bad = next((k + 1 for k, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        return f"line {bad} has {len(rows[bad - 1])} fields, the header {width}"
    return None


def problem(path, kind: str) -> str | None:
    return csv_problem(path) if kind == "csv" else h5_problem(path, kind)


def quarantine(paths_by_kind: dict[str, list]) -> list[tuple[str, str]]:
    """Check the existing files; rename damaged ones to <name>.corrupt. Returns (path, problem)."""
    moved = []
    for kind, paths in paths_by_kind.items():
        for path in map(Path, paths):
            if not path.is_file():
                continue
            why = problem(path, kind)
            if why is None:
                continue
            target = path.with_name(path.name + ".corrupt")
            os.replace(path, target)
            log.warning("%s: %s; moved to %s, it will be made again", path, why, target.name)
            moved.append((str(path), why))
    return moved
