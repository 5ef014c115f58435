"""The one writer and reader of attribution shards (HDF5).

One file per (model or embedder, method, shard) (which rows: facexai/subjects):

    maps        float16 (R, H, W)  at the model resolution, chunked per row, gzip, Fletcher-32
    row         int64 (R,)         row of the sample in the fused dataset
    ids         int64 (R,)         sample ids
    score       float32 (R,)       the explained score (attribute probability, or pair cosine similarity)
    (optional)  per-row diagnostics of the method, e.g. completeness_error float64 (R,) (Integrated
                Gradients: |sum(map) - (S(x) - S(b))| / |S(x) - S(b)|), completeness_flagged bool (R,);
                masks_used int64 (R,) (CorrRISE: the masks each map was estimated from)
    attribute decisions:  target int64 (R,) (model output index), attribute bytes (R,)
    verification pairs:   partner_row, partner_id int64 (R,), kind, region bytes (R,); twin_row,
                          twin_id, game_row int64 (R,): a triplet's twin M' and P' (other kinds:
                          the partner's row and id, never read)
Attributes: method, params (JSON), model (for pairs: the embedder's name), seed, `not_applicable`
(why the method could not run on this network, maps then NaN; empty when it ran), facexai_version;
pairs also `target`, a description of the score, and `similarity`.

Every module that needs maps or their rows reads them here (`read_shard`, `read_maps`,
`group_shards`); `make_shard` writes a valid file for tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict

import h5py
import numpy as np

from ..atomic import atomic_path

TEXT_COLUMNS = ("attribute", "kind", "region")


@dataclasses.dataclass
class Shard:
    """The rows of one attribution file; `maps` float32 (or None when not read)."""

    path: str
    method: str
    model: str
    params: dict
    columns: dict[str, np.ndarray]
    maps: np.ndarray | None = None
    attrs: dict = dataclasses.field(default_factory=dict)  # every file attribute, as stored

    @property
    def is_pairs(self) -> bool:
        return "partner_id" in self.columns

    def __len__(self) -> int:
        return len(self.columns["ids"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def keys(self) -> list[tuple]:
        """Per row: (sample id, partner id, kind, region) for pairs (a probe and its mate may form a
        genuine pair and a triplet per region); for another subject kind its key columns
        (facexai.subjects.row_key): (sample id, attribute) for attribute decisions."""
        if self.is_pairs:
            kinds = self.columns.get("kind", np.full(len(self), "", dtype=object))
            regions = self.columns.get("region", np.full(len(self), "", dtype=object))
            return list(zip(self.columns["ids"].tolist(), self.columns["partner_id"].tolist(), list(kinds),
                            list(regions)))
        from ..subjects import key_of_columns

        names = [c for c in key_of_columns(["id", *self.columns]) if c != "model"]
        return list(zip(*(self.columns["ids" if c == "id" else c].tolist() for c in names)))


def write_shard(out_h5, maps: np.ndarray, columns: dict, attrs: dict) -> None:
    """Write one attribution file under a temporary name and rename it. `columns` as in the module
    docstring (text columns as str or bytes); `attrs["params"]` may be a dict (stored as JSON)."""
    maps = np.asarray(maps)
    n, size = maps.shape[0], maps.shape[-1]
    attrs = dict(attrs)
    if not isinstance(attrs.get("params", ""), str):
        attrs["params"] = json.dumps(attrs["params"], sort_keys=True)
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as out:
        # Fletcher-32 checksums per chunk: a damaged file fails on read (facexai.integrity)
        out.create_dataset("maps", data=maps.astype(np.float16), chunks=(1, size, size) if n else None,
                           compression="gzip" if n else None, fletcher32=bool(n))
        for name, values in columns.items():
            values = np.asarray(values)
            out[name] = values.astype("S") if name in TEXT_COLUMNS else values
        out.attrs.update(attrs)


def read_shard(path, maps: bool = True) -> Shard:
    """One attribution file: its columns (text decoded to str), its attributes and, unless
    `maps=False`, its maps as float32."""
    with h5py.File(path, "r") as f:
        columns = {}
        for name, dataset in f.items():
            if name == "maps":
                continue
            values = dataset[:]
            columns[name] = np.array([v.decode() for v in values], dtype=object) if name in TEXT_COLUMNS \
                else values
        return Shard(path=os.fspath(path), method=str(f.attrs["method"]), model=str(f.attrs["model"]),
                     params=json.loads(f.attrs["params"]), columns=columns,
                     maps=f["maps"][:].astype(np.float32) if maps else None,
                     attrs={k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()})


def read_maps(path, indices) -> np.ndarray:
    """Maps of some rows (any order) of one file, float32."""
    indices = np.asarray(indices, np.int64)
    if indices.size == 0:
        with h5py.File(path, "r") as f:
            return np.zeros((0,) + f["maps"].shape[1:], np.float32)
    order = np.argsort(indices, kind="stable")
    unique, inverse = np.unique(indices[order], return_inverse=True)
    with h5py.File(path, "r") as f:
        data = f["maps"][unique].astype(np.float32)
    out = np.empty((indices.size,) + data.shape[1:], np.float32)
    out[order] = data[inverse]
    return out


def group_shards(paths, by: tuple[str, ...] = ("model", "method")) -> dict:
    """Shard files grouped by what their attributes say (model, method), in the given order: a
    script never regroups its input list by position."""
    groups: dict = defaultdict(list)
    for path in paths:
        with h5py.File(path, "r") as f:
            key = tuple(str(f.attrs[name]) for name in by)
        groups[key if len(by) > 1 else key[0]].append(os.fspath(path))
    return dict(groups)


def make_shard(out_h5, maps: np.ndarray, *, method: str = "toy", model: str = "toy", params: dict | None = None,
               seed: int = 0, **columns) -> None:
    """A valid shard for tests: given columns as they are, the others filled (row = 0..n-1, ids = row,
    score 0.9; for attribute decisions target 0 and attribute Eyeglasses; a pair shard is one given
    `partner_id`, with `partner_row`, `kind` and `region`)."""
    from .._version import __version__

    n = len(maps)
    filled = {"row": np.arange(n)}
    filled["ids"] = columns.get("ids", columns.get("row", filled["row"]))
    if "partner_id" not in columns:
        filled.update(target=np.zeros(n, np.int64), attribute=["Eyeglasses"] * n)
    filled["score"] = np.full(n, 0.9, np.float32)
    filled.update(columns)
    dtypes = {"row": np.int64, "ids": np.int64, "target": np.int64, "partner_row": np.int64,
              "partner_id": np.int64, "score": np.float32}
    filled = {k: np.asarray(v, dtypes[k]) if k in dtypes else np.asarray(v) for k, v in filled.items()}
    write_shard(out_h5, maps, filled, {"method": method, "params": params or {}, "model": model, "seed": seed,
                                       "facexai_version": __version__})
