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
from ..layout import META, WEIGHTS
from .adapter import InputAdapter
from .backbones import ARCHITECTURES, build_model, with_contiguous_input

log = logging.getLogger(__name__)

FORMATS = ("state_dict", "torchscript")


EXPECTED_STATE_DICT = "a state dict written by torch.save(model.state_dict(), path): tensors in plain containers"


def sniff_format(path: str | os.PathLike) -> str:
    """What a weights file is, from its zip directory alone (nothing is loaded or run):
    "torchscript" (torch.jit.save: code/ and constants.pkl), "torch_save" (torch.save: data.pkl
    without code), "legacy_pickle" (torch.save before PyTorch 1.6, or any pickle), or "other"."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as fh:
                # torch.save's legacy format (before PyTorch 1.6) is a plain pickle stream
                return "legacy_pickle" if fh.read(1) == b"\x80" else "other"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return "other"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch_save"
    return "other"


def exception_reason(exc: BaseException) -> str:
    """The line of an exception that says what went wrong: the TorchScript interpreter puts its
    traceback first and the error (e.g. "RuntimeError: mat1 and mat2 shapes cannot be
    multiplied") last; other exceptions say it on their first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        # the error is the last "SomethingError: ..." line and whatever follows it (a multi-line message)
        starts = [k for k, ln in enumerate(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)]
        return " ".join(lines[starts[-1]:]) if starts else lines[-1]
    return lines[0]


def state_dict_mismatch(model: nn.Module, state: dict, limit: int = 3) -> str:
    """Which keys of a state dict do not fit a model: missing, unexpected and mis-sized (with their
    shapes), the first `limit` of each."""
    own = model.state_dict()

    def first(items):
        return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")

    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    sized = [f"{k} {tuple(state[k].shape)} where {tuple(own[k].shape)} is expected" for k in own
             if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)]
    not_tensors = [f"{k} ({type(state[k]).__name__})" for k in own
                   if k in state and not isinstance(state[k], torch.Tensor)]
    parts = [f"{label} ({len(keys)}): {first(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("mis-sized keys", sized),
              ("values that are not tensors", not_tensors)) if keys]
    return "; ".join(parts) or "the keys and shapes match; the values cannot be loaded"


def read_state_dict(path: Path, torchscript_hint: str = "format: torchscript"):
    """torch.load(weights_only=True) of a user file; every failure names the file and what was expected.

    An unsafe pickle is refused without running it; the message does not relay torch's advice to
    retry with weights_only=False, which would run the file's code. A TorchScript archive is named
    as such, with the setting that reads it (`torchscript_hint`).
    """
    if sniff_format(path) == "torchscript":
        raise ValueError(f"{path}: this is a TorchScript archive (written by torch.jit.save), not a state dict: "
                         f"give it with {torchscript_hint}")
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


def load_torchscript(path: Path, state_dict_hint: str = "format: state_dict and its arch") -> nn.Module:
    """torch.jit.load of a user file (code and tensors, no pickled objects); a torch.save file is
    named as such, with the setting that reads it (`state_dict_hint`)."""
    found = sniff_format(path)
    if found in ("torch_save", "legacy_pickle"):
        era = " (the pre-1.6 format)" if found == "legacy_pickle" else ""
        raise ValueError(f"{path}: this is a torch.save file{era}, not a TorchScript archive: a state dict goes "
                         f"with {state_dict_hint}; a whole pickled model is refused (save model.state_dict(), "
                         "or torch.jit.save(torch.jit.script(model)))")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # a foreign file fails anywhere inside torch's reader
        raise ValueError(f"{path}: not a TorchScript archive ({exception_reason(exc)}). Expected a file written by "
                         "torch.jit.save(torch.jit.script(model), path) or torch.jit.trace") from exc
    return with_contiguous_input(model)


def load_state(model: nn.Module, state, path: Path, what: str) -> nn.Module:
    """model.load_state_dict(state) with a message naming the file, the model (`what`) and the
    keys that do not fit."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: weights do not fit {what}: {state_dict_mismatch(model, state)}") from exc
    return model


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
        model = load_state(build_model(arch, n_outputs, width=width), read_state_dict(path), path,
                           f"{arch} with {n_outputs} outputs, width {width}")
    elif fmt == "torchscript":
        model = load_torchscript(path)
    else:
        raise ValueError(f"{path}: unknown model format {fmt!r}; use one of {FORMATS}")
    return model.eval()


def input_settings(mean=None, std=None, input_size=None) -> dict | None:
    """model.json's `input` of a user model: the normalisation its network expects, applied to
    pixels in [0, 1] ((pixel - mean) / std, e.g. ImageNet's), and its input size; None when the
    network takes the pipeline's own input ((pixel / 255 - 0.5) / 0.25 at the dataset's size)."""
    if mean is None and std is None and input_size is None:
        return None
    mean = [float(v) for v in (mean if mean is not None else [0.0] * 3)]
    std = [float(v) for v in (std if std is not None else [1.0] * 3)]
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean / std: expected 3 values each (std > 0), got {mean} / {std}")
    return {"mean": mean, "std": std, "input_size": None if input_size is None else int(input_size)}


def with_input(model: nn.Module, settings: dict | None, image_size: int) -> nn.Module:
    """The network behind its own input normalisation (InputAdapter), or as it is."""
    if not settings:
        return model
    return InputAdapter(model, settings.get("input_size") or image_size, settings["mean"], settings["std"]).eval()


def import_user_model(weights, out_dir, *, fmt: str, attributes: list[str], image_size: int,
                      arch: str | None = None, width: int = 32, mean=None, std=None, input_size=None) -> dict:
    """Check a user model (loads, maps (1, 3, S, S) to one output per attribute) and copy it into
    our model folder layout (weights.pt + model.json). `mean` / `std` / `input_size`: the input the
    network expects (`input_settings`); every stage then calls it through that normalisation."""
    weights = Path(weights)
    settings = input_settings(mean, std, input_size)
    model = with_input(load_weights(weights, fmt, arch, len(attributes), width), settings, image_size)
    with torch.no_grad():
        try:
            out = model(torch.zeros(2, 3, image_size, image_size))
        except Exception as exc:  # any failure of a foreign model's forward pass
            raise ValueError(f"{weights}: forward pass on (2, 3, {image_size}, {image_size}) failed "
                             f"({exception_reason(exc)})") from exc
    if tuple(out.shape) != (2, len(attributes)):
        raise ValueError(f"{weights}: the model outputs {tuple(out.shape[1:])} per image, expected "
                         f"({len(attributes)},) (one logit per configured attribute)")
    if not np.isfinite(out.numpy()).all():
        raise ValueError(f"{weights}: the model outputs non-finite values")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "attribute_classifier", "format": fmt, "arch": arch, "width": width,
            "attributes": list(attributes), "image_size": image_size, "input": settings,
            "source": str(weights)}
    with atomic_path(out_dir / WEIGHTS) as tmp:
        shutil.copyfile(weights, tmp)
    with atomic_path(out_dir / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return meta
