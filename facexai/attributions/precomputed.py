"""Maps made elsewhere (captum, Quantus, pytorch-grad-cam, your own method) as a named method.

Config: any method name under `methods:` whose parameters are `{precomputed: PATH}`; `{model}` in
PATH is replaced by the explained model's name (one file per model):

    methods:
      my_gradcam: {precomputed: "/data/maps/{model}.npz"}   # quoted: {model} is YAML syntax
    explain:
      methods: [gradcam, my_gradcam, random]

The file (or folder) holds one map per sample, or per (sample, attribute):

* `.npz` or `.h5` / `.hdf5`: `maps` (N, h, w) float, `ids` (N,) int, optional `attributes` (N,)
  attribute names (CelebA's, e.g. "Eyeglasses"; without them a sample's map serves every attribute
  explained on it);
* a folder of `.npy` files (h, w), named `{id}.npy` or `{id}_{attribute}.npy`.

Maps may have any resolution: they are resized (bilinear) to the model's, as the pipeline's own maps
are. Bad files are refused naming the file and the sample: a missing sample, a map that is not 2-D,
a NaN or infinite value, a dtype that is not a real number, a sample listed twice. The model
metrics need only the model; the randomisation sanity checks re-run the method, which these maps
do not bring: they are NaN with the reason `needs_the_method`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from ..labels import ATTRIBUTE_NAMES
from .base import AttributionMethod

KEY = "precomputed"
FILE_SUFFIXES = (".npz", ".h5", ".hdf5")


def is_precomputed(params: dict | None) -> bool:
    return isinstance(params, dict) and KEY in params


def source_path(params: dict, model: str) -> Path:
    """The maps file (or folder) of one model."""
    return Path(str(params[KEY]).replace("{model}", model))


def source_files(path: Path) -> list[Path]:
    """The files a maps source consists of (the job's inputs: replacing one reruns its jobs)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".npy" and not p.name.startswith("."))
    return [path]


_NPY_NAME = re.compile(r"^(\d+)(?:_([A-Za-z0-9_]+))?\.npy$")


def _check_maps(path, maps: np.ndarray, ids) -> np.ndarray:
    if maps.dtype.kind not in "fiu" or maps.dtype == bool:
        raise BadInputError(path, f"maps must be real numbers, not {maps.dtype}")
    maps = maps.astype(np.float32)
    bad = ~np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    if bad.any():
        raise BadInputError(path, f"maps of sample id(s) {[int(i) for i in np.asarray(ids)[bad][:5]]} hold NaN or "
                                  "infinite values")
    return maps


def read_source(path: str | os.PathLike) -> dict[tuple[int, str | None], np.ndarray]:
    """{(sample id, attribute or None): map (h, w) float32} of a maps file or folder; BadInputError
    naming the file and the sample for every problem."""
    path = Path(path)
    if path.is_dir():
        out: dict = {}
        for file in source_files(path):
            m = _NPY_NAME.match(file.name)
            if not m:
                raise BadInputError(file, "expected a name {id}.npy or {id}_{attribute}.npy")
            attribute = m.group(2)
            if attribute is not None and attribute not in ATTRIBUTE_NAMES:
                raise BadInputError(file, f"{attribute!r} is not a CelebA attribute")
            try:
                one = np.load(file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise BadInputError(file, f"not a .npy array ({exc})") from None
            if one.ndim != 2:
                raise BadInputError(file, f"a map must be 2-D (h, w), got shape {one.shape}")
            key = (int(m.group(1)), attribute)
            if key in out:
                raise BadInputError(file, f"sample id {key[0]} is listed twice (another file of the folder names "
                                          "the same id, e.g. with leading zeros)")
            out[key] = _check_maps(file, one[None], [int(m.group(1))])[0]
        if not out:
            raise BadInputError(path, "the folder holds no .npy map")
        return out
    if not path.is_file():
        raise BadInputError(path, "precomputed maps not found")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise BadInputError(path, f"not a readable .npz file ({exc})") from None
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                arrays = {k: h5[k][()] for k in ("maps", "ids", "attributes") if k in h5}
        except OSError as exc:
            raise BadInputError(path, f"not a readable HDF5 file ({exc})") from None
    else:
        raise BadInputError(path, f"expected a .npz or .h5 file, or a folder of .npy maps (got {path.suffix!r})")
    for key in ("maps", "ids"):
        if key not in arrays:
            raise BadInputError(path, f"no array named {key!r} (it needs 'maps' (N, h, w), 'ids' (N,) and may "
                                      "have 'attributes' (N,))")
    maps, ids = np.asarray(arrays["maps"]), np.asarray(arrays["ids"])
    if maps.ndim != 3:
        raise BadInputError(path, f"maps must be (N, h, w), got shape {maps.shape}")
    if ids.ndim != 1 or len(ids) != len(maps) or ids.dtype.kind not in "iu":
        raise BadInputError(path, f"ids must be {len(maps)} integers, one per map; got {ids.dtype} {ids.shape}")
    attributes = [None] * len(ids)
    if "attributes" in arrays:
        attributes = [a.decode() if isinstance(a, bytes) else str(a) for a in np.asarray(arrays["attributes"])]
        if len(attributes) != len(ids):
            raise BadInputError(path, f"attributes must be {len(ids)} names, one per map")
        unknown = sorted(set(attributes) - set(ATTRIBUTE_NAMES))
        if unknown:
            raise BadInputError(path, f"attributes {unknown[:3]} are not CelebA attributes")
    maps = _check_maps(path, maps, ids)
    out = {}
    for k, key in enumerate(zip(ids.tolist(), attributes)):
        if key in out:
            raise BadInputError(path, f"sample id {key[0]}{'' if key[1] is None else f' ({key[1]})'} is listed twice")
        out[key] = maps[k]
    return out


class PrecomputedMaps(AttributionMethod):
    """Looks up maps made elsewhere by sample id (and attribute); see the module docstring."""

    name = "precomputed"
    chosen_by = KEY  # not a method of its own: the parameters of any configured name (get_method)
    defaults = {KEY: None}
    # the maps do not come from this model: a randomised model cannot re-explain them
    recomputable = False

    def budget(self) -> str:
        return "precomputed"

    def bind(self, model: str, model_attributes: list[str]) -> "PrecomputedMaps":
        """Read the model's maps file; `model_attributes` name the model's outputs (task targets)."""
        self.path = source_path(self.params, model)
        self.maps = read_source(self.path)
        self.model_attributes = list(model_attributes)
        return self

    def attribute(self, task, images, sample_ids, seed):
        from ..metrics.localisation import resize_maps

        if not hasattr(self, "maps"):
            raise RuntimeError("precomputed maps: bind(model, attributes) before explaining")
        targets = task.extra[0].cpu().numpy() if task.extra else [None] * len(sample_ids)
        out = []
        for sample_id, target in zip(sample_ids, targets):
            attribute = None if target is None else self.model_attributes[int(target)]
            found = self.maps.get((int(sample_id), attribute), self.maps.get((int(sample_id), None)))
            if found is None:
                raise BadInputError(self.path, f"no map for sample id {int(sample_id)}"
                                               f"{'' if attribute is None else f' (attribute {attribute})'}")
            out.append(resize_maps(found[None], tuple(images.shape[-2:]))[0])
        return np.stack(out) if out else np.zeros((0,) + tuple(images.shape[-2:]), np.float32)
