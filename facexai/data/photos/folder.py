"""The photo folder: its photo files (the sample ids are their sorted order) and its optional tables,
identities.tsv, attributes.txt (CelebA's format) and groups.tsv, read with errors that name the line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import BadInputError
from ...labels import ATTRIBUTE_NAMES

# every format is decoded by Pillow; any other file in the folder is not a photo (listed by `ignored_files`)
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
IDENTITIES_FILE = "identities.tsv"
ATTRIBUTES_FILE = "attributes.txt"
GROUPS_FILE = "groups.tsv"
# groups.tsv's values: a member, not one, or not known
GROUP_VALUES = {"yes": 1, "1": 1, "no": -1, "-1": -1, "": 0, "0": 0, "unknown": 0}


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
    tables = {IDENTITIES_FILE, ATTRIBUTES_FILE, GROUPS_FILE}
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


def read_photo_groups(root: str | os.PathLike, photos: list[str]) -> dict[str, np.ndarray] | None:
    """Group membership per photo from groups.tsv, or None when the folder has none.

    The first line is `file<TAB>NAME<TAB>...`, each NAME a CelebA attribute column (Male, Young,
    Pale_Skin, ...: the names config `groups` takes); then one line per photo (the file relative to
    the folder, or a bare name when unique): yes / no (or 1 / -1), empty, 0 or `unknown` when not known.
    A photo without a line is unknown for every group. Returns {NAME: int8 per photo (1, -1, 0)}."""
    path = Path(root) / GROUPS_FILE
    if not path.is_file():
        return None
    numbered = [(k + 1, ln.rstrip("\r\n")) for k, ln in enumerate(read_table_text(path).splitlines())
                if ln.strip() and not ln.startswith("#")]
    if not numbered:
        raise BadInputError(path, "empty: the first line must be file<TAB>group names")
    header = [h.strip() for h in numbered[0][1].split("\t")]
    names = header[1:]
    unknown = [n for n in names if n not in ATTRIBUTE_NAMES]
    if header[0] != "file" or not names or unknown or len(set(names)) != len(names):
        raise BadInputError(path, f"line {numbered[0][0]}: expected 'file<TAB>' and distinct CelebA attribute names "
                                  f"(e.g. Male, Young, Pale_Skin){f'; not attributes: {unknown}' if unknown else ''}")
    rows: dict[str, list[int]] = {}
    line_of: dict[str, int] = {}
    for number, line in numbered[1:]:
        fields = [f.strip() for f in line.split("\t")]
        fields += [""] * (len(header) - len(fields))  # trailing empty fields: unknown
        values = [GROUP_VALUES.get(v.lower()) for v in fields[1:]]
        if len(fields) != len(header) or not fields[0] or None in values:
            raise BadInputError(path, f"line {number}: expected a file and {len(names)} value(s) yes, no or empty "
                                      f"(got {line!r})")
        if fields[0] in rows and rows[fields[0]] != values:
            raise BadInputError(path, f"{fields[0]} has two different rows: lines {line_of[fields[0]]} and {number}")
        rows[fields[0]] = values
        line_of.setdefault(fields[0], number)
    bases: dict[str, list[str]] = {}
    for f in photos:
        bases.setdefault(f.rsplit("/", 1)[-1], []).append(f)
    listed = set(photos) | {b for b, fs in bases.items() if len(fs) == 1}
    stray = sorted(set(rows) - listed)
    if stray:
        raise BadInputError(path, f"{len(stray)} listed file(s) not in the folder (or a bare name shared by several "
                                  f"photos), first {stray[:3]}")
    out = np.zeros((len(photos), len(names)), np.int8)
    for i, f in enumerate(photos):
        base = f.rsplit("/", 1)[-1]
        values = rows.get(f, rows.get(base) if len(bases[base]) == 1 else None)
        if values is not None:
            out[i] = values
    return {name: out[:, k] for k, name in enumerate(names)}


def with_groups(attributes: np.ndarray | None, groups: dict[str, np.ndarray] | None, n_photos: int,
                photos: list[str], root) -> np.ndarray | None:
    """attributes.txt's table (or 0 = not annotated) with groups.tsv's columns written in; a photo
    whose value differs between the two files is refused naming both."""
    if not groups:
        return attributes
    out = np.zeros((n_photos, len(ATTRIBUTE_NAMES)), np.int8) if attributes is None else attributes.copy()
    for name, values in groups.items():
        k = ATTRIBUTE_NAMES.index(name)
        clash = np.flatnonzero((values != 0) & (out[:, k] != 0) & (values != out[:, k]))
        if clash.size:
            i = int(clash[0])
            raise BadInputError(Path(root) / GROUPS_FILE, f"{photos[i]}: {name} is {int(values[i])} here and "
                                                          f"{int(out[i, k])} in {ATTRIBUTES_FILE}")
        out[values != 0, k] = values[values != 0]
    return out
