"""Face embedders for verification, of four kinds, behind one loader.

An embedder's folder (results/verification/<name>/) holds `model.json` (its kind, input size, pixel
normalisation, similarity, source) and `weights.pt`:

* `trained`     the small embedder the pipeline trains (`verification.train_embedder`); weights.pt
                is its state dict;
* `dlib`        dlib's face-recognition ResNet (`dlib_resnet`, 128-d, 150x150 input, dlib's own
                normalisation, compared by Euclidean distance); weights.pt is dlib's .dat file from
                the `face-recognition-models` package, byte for byte;
* `torchscript` a user's TorchScript file (torch.jit.load: code and tensors, no pickled objects);
* `state_dict`  a user's state dict of one of our architectures (torch.load(weights_only=True)).

Every embedder is called on the pipeline's model input (pixels at the dataset's resolution,
normalised as `data.samples.normalise`), so that every attribution method and metric treats them
alike and maps stay at the dataset's resolution. `EmbedderInput` turns that input into the
network's own: back to pixels in [0, 1], an optional centred crop, a differentiable bilinear resize
to the network's input size (antialiased when shrinking), then the network's normalisation
(pixel * pixel_scale - mean) / std. Gradients flow through all of it.

The pair score is the cosine similarity of the two embeddings (`similarity: cosine`) or minus
their Euclidean distance (`similarity: euclidean`, dlib's rule: same person when the distance is
below 0.6, i.e. score >= -0.6), so that a higher score always means "more alike".

Grad-CAM needs a forward hook on the network's `cam_layer`: our architectures' last block with
spatial extent (trained, state_dict) and, for dlib, the 256-channel level at 4x4 (`dlib_resnet`).
TorchScript forbids hooks: there the Grad-CAM family is not applicable (`cam_unavailable`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_path
from ..layout import META, WEIGHTS
from ..data.samples import PIXEL_MEAN, PIXEL_STD
from .backbones import ARCHITECTURES, build_model, for_inference, with_contiguous_input
from .adapter import InputAdapter
from .user import exception_reason

log = logging.getLogger(__name__)

KINDS = ("trained", "dlib", "torchscript", "state_dict")
SIMILARITIES = ("cosine", "euclidean")

# dlib's own preprocessing: 150x150 RGB chips in [0, 255]; the network subtracts its channel means
# and divides by 256 itself (dlib_resnet.DlibFaceResNet.forward)
DLIB_INPUT = {"input_size": 150, "pixel_scale": 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
              "similarity": "euclidean"}


# the input adapter, shared with user attribute models (models/adapter.py)
EmbedderInput = InputAdapter


def cam_unavailable(model: nn.Module) -> str | None:
    """Why the Grad-CAM family cannot run on this embedder (None when it can)."""
    if getattr(model, "cam_layer", None) is None:
        return ("Grad-CAM needs a forward hook on a layer; this embedder is a TorchScript file, which forbids "
                "hooks (give it as kind: state_dict with its architecture to use Grad-CAM)")
    return None


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dlib_model_path() -> Path:
    from .dlib_resnet import default_model_path

    return default_model_path()


def _network(meta: dict, weights: Path) -> nn.Module:
    """The bare network of an embedder folder (or of a user file being imported)."""
    kind = meta["kind"]
    if kind in ("trained", "state_dict"):
        from .user import load_state, read_state_dict

        if meta.get("arch") not in ARCHITECTURES:
            raise ValueError(f"{weights}: a state dict needs an architecture name, one of {sorted(ARCHITECTURES)}; "
                             f"got {meta.get('arch')!r}")
        model = build_model(meta["arch"], meta["dim"], width=meta["width"])
        state = read_state_dict(weights, torchscript_hint="kind: torchscript")
        return load_state(model, state, weights, f"{meta['arch']} (dim {meta['dim']}, width {meta['width']})")
    if kind == "torchscript":
        from .user import load_torchscript

        return load_torchscript(weights, state_dict_hint="kind: state_dict with its arch, dim and width").eval()
    if kind == "dlib":
        from .dlib_resnet import load_dlib_face_resnet

        return load_dlib_face_resnet(weights)
    raise ValueError(f"{weights}: unknown embedder kind {kind!r}; known: {KINDS}")


def wrap(net: nn.Module, meta: dict, image_size: int) -> nn.Module:
    """The network behind its input adapter; none for a network that takes the pipeline's input as
    it is (our trained embedder at the dataset's resolution)."""
    same = (meta["input_size"] == image_size and meta.get("crop") in (None, 1, 1.0)
            and meta["pixel_scale"] == 1.0 and meta["mean"] == [PIXEL_MEAN] * 3 and meta["std"] == [PIXEL_STD] * 3)
    if same:
        return net
    return EmbedderInput(net, meta["input_size"], meta["mean"], meta["std"], meta["pixel_scale"], meta.get("crop"))


def load_embedder(model_dir, device="cpu") -> tuple[nn.Module, dict]:
    """(model on the pipeline's input, model.json) of an embedder folder; every failure names the file."""
    model_dir = Path(model_dir)
    for name in (META, WEIGHTS):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name}: model file not found")
    meta = json.loads((model_dir / META).read_text())
    meta = {"kind": "trained", "similarity": "cosine", **meta}
    if meta["kind"] == "embedder":  # written before embedder kinds existed
        meta["kind"] = "trained"
    net = for_inference(_network(meta, model_dir / WEIGHTS))
    # the embedder trained here takes the pipeline's input as it is
    model = net if meta["kind"] == "trained" else wrap(net, meta, meta["image_size"])
    return model.to(device).eval(), meta


def trained_input(image_size: int) -> dict:
    """The input settings of an embedder trained here: the dataset's size and our normalisation."""
    return {"input_size": int(image_size), "pixel_scale": 1.0, "mean": [PIXEL_MEAN] * 3, "std": [PIXEL_STD] * 3}


def input_settings(spec: dict) -> dict:
    """model.json's input keys for a configured user or dlib embedder."""
    if spec["kind"] == "dlib":
        settings = dict(DLIB_INPUT)
    else:
        settings = {"input_size": int(spec["input_size"]), "pixel_scale": 1.0,
                    "mean": [float(v) for v in spec.get("mean", [0.0] * 3)],
                    "std": [float(v) for v in spec.get("std", [1.0] * 3)],
                    "similarity": "cosine"}
    settings["crop"] = spec.get("crop")
    if spec.get("similarity"):
        settings["similarity"] = spec["similarity"]
    return settings


def import_embedder(spec: dict, out_dir, *, image_size: int) -> dict:
    """Check a dlib / TorchScript / state-dict embedder and copy it into its folder.

    The check: it loads without unpickling objects, and a forward pass of two dummy images through
    its input adapter gives finite (2, D) embeddings; any failure names the file."""
    kind, name = spec["kind"], spec["name"]
    if kind not in KINDS or kind == "trained":
        raise ValueError(f"verification.embedders.{name}.kind: {kind!r} is not imported; use one of "
                         f"{[k for k in KINDS if k != 'trained']}")
    source = dlib_model_path() if kind == "dlib" else Path(spec["weights"])
    if not source.is_file():
        raise FileNotFoundError(f"{source}: embedder file not found (verification.embedders.{name}.weights)")
    meta = {"kind": kind, "name": name, "image_size": int(image_size), **input_settings(spec),
            "source": str(source), "sha256": file_digest(source)}
    if kind == "state_dict":
        meta.update(arch=spec.get("arch"), width=int(spec.get("width", 32)), dim=int(spec.get("dim", 0)))
        if not meta["dim"]:
            raise ValueError(f"verification.embedders.{name}.dim: a state dict needs its embedding size")
    net = _network(meta, source)
    model = wrap(net, meta, image_size).eval()
    with torch.no_grad():
        try:
            out = model(torch.zeros(2, 3, image_size, image_size))
        except Exception as exc:  # any failure of a foreign network's forward pass
            raise ValueError(f"{source}: forward pass on 2 images of {meta['input_size']}x{meta['input_size']} "
                             f"failed ({exception_reason(exc)}); check verification.embedders.{name}.input_size, "
                             "crop, mean and std") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{source}: the embedder outputs {shape} for 2 images; expected (2, D): one "
                         "embedding vector per image")
    if not np.isfinite(out.numpy()).all():
        raise ValueError(f"{source}: the embedder outputs non-finite values")
    meta["dim"] = int(out.shape[1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS) as tmp:
        shutil.copyfile(source, tmp)
    with atomic_path(out_dir / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    log.info("embedder %s (%s): %s, %d-d, input %dx%d, %s similarity", name, kind, source, meta["dim"],
             meta["input_size"], meta["input_size"], meta["similarity"])
    return meta


def embeddings(model: nn.Module, x: torch.Tensor, similarity: str) -> torch.Tensor:
    """Embeddings in the space the pair score compares: unit vectors for cosine, raw for euclidean."""
    out = model(x)
    return F.normalize(out, dim=1) if similarity == "cosine" else out


def pair_score(a: torch.Tensor, b: torch.Tensor, similarity: str) -> torch.Tensor:
    """Score of pairs (rows of a with rows of b): cosine similarity, or minus the Euclidean distance."""
    if similarity == "cosine":
        return F.cosine_similarity(a, b, dim=1)
    if similarity == "euclidean":
        return -(a - b).norm(dim=1)
    raise ValueError(f"unknown similarity {similarity!r}; known: {SIMILARITIES}")


def score_matrix(a: torch.Tensor, b: torch.Tensor, similarity: str) -> torch.Tensor:
    """Scores of every row of a against every row of b."""
    if similarity == "cosine":
        return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    return -torch.cdist(a, b)


__all__ = ["KINDS", "EmbedderInput", "cam_unavailable", "load_embedder", "import_embedder",
           "embeddings", "pair_score", "score_matrix", "with_contiguous_input"]
