"""User models: a TorchScript file, or a state dict plus one of our architecture names.

Loading never unpickles arbitrary objects: state dicts go through torch.load(weights_only=True),
TorchScript archives through torch.jit.load (code and tensors, no pickled Python objects).
Grad-CAM needs a forward hook on a layer, which TorchScript forbids: import a model as a state
dict of one of our architectures to explain it with Grad-CAM; the other methods work on both.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from .backbones import ARCHITECTURES, build_model, with_contiguous_input

log = logging.getLogger(__name__)

FORMATS = ("state_dict", "torchscript")


EXPECTED_STATE_DICT = "a state dict written by torch.save(model.state_dict(), path): tensors in plain containers"


def read_state_dict(path: Path):
    """torch.load(weights_only=True) of a user file; every failure names the file and what was expected.

    An unsafe pickle is refused without running it; the message does not relay torch's advice to
    retry with weights_only=False, which would run the file's code.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes are not the user's problem
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise ValueError(f"{path}: refused to load: it holds a pickled Python object ({found.group(1)}), "
                             "which could run code when unpickled; facexai loads weights only. "
                             f"Expected {EXPECTED_STATE_DICT}") from None
        raise ValueError(f"{path}: not a readable PyTorch state dict (pickle data that a weights-only load "
                         f"cannot read; nothing in it was run). Expected {EXPECTED_STATE_DICT}") from None
    except Exception as exc:  # a foreign file fails anywhere inside torch's reader (IndexError, KeyError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else "file is empty or truncated"
        raise ValueError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {reason}). "
                         f"Expected {EXPECTED_STATE_DICT}") from None


def load_weights(path: str | os.PathLike, fmt: str, arch: str | None, n_outputs: int,
                 width: int = 32) -> nn.Module:
    """A ready model from a weights file; every failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    if fmt == "state_dict":
        if arch not in ARCHITECTURES:
            raise ValueError(f"{path}: a state dict needs an architecture name, one of {sorted(ARCHITECTURES)}; "
                             f"got {arch!r}")
        model = build_model(arch, n_outputs, width=width)
        state = read_state_dict(path)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path}: weights do not fit {arch} with {n_outputs} outputs, width {width} "
                             f"({str(exc).splitlines()[0]} ...)") from exc
    elif fmt == "torchscript":
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # a foreign file fails anywhere inside torch's reader
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path}: not a TorchScript archive ({reason}). Expected a file written by "
                             "torch.jit.save(torch.jit.script(model), path) or torch.jit.trace") from None
        model = with_contiguous_input(model)
    else:
        raise ValueError(f"{path}: unknown model format {fmt!r}; use one of {FORMATS}")
    return model.eval()


def import_user_model(weights, out_dir, *, fmt: str, attributes: list[str], image_size: int,
                      arch: str | None = None, width: int = 32) -> dict:
    """Check a user model (loads, maps (1, 3, S, S) to one output per attribute) and copy it into
    our model folder layout (weights.pt + model.json)."""
    weights = Path(weights)
    model = load_weights(weights, fmt, arch, len(attributes), width)
    with torch.no_grad():
        try:
            out = model(torch.zeros(2, 3, image_size, image_size))
        except Exception as exc:  # any failure of a foreign model's forward pass
            raise ValueError(f"{weights}: forward pass on (2, 3, {image_size}, {image_size}) failed ({exc})") from exc
    if tuple(out.shape) != (2, len(attributes)):
        raise ValueError(f"{weights}: the model outputs {tuple(out.shape[1:])} per image, expected "
                         f"({len(attributes)},) (one logit per configured attribute)")
    if not np.isfinite(out.numpy()).all():
        raise ValueError(f"{weights}: the model outputs non-finite values")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "attribute_classifier", "format": fmt, "arch": arch, "width": width,
            "attributes": list(attributes), "image_size": image_size,
            "source": str(weights)}
    with atomic_path(out_dir / "weights.pt") as tmp:
        shutil.copyfile(weights, tmp)
    with atomic_path(out_dir / "model.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return meta
