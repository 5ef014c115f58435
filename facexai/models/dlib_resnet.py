"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) as a torch nn.Module.

The weights are read straight from the `.dat` file (CC0, shipped in the PyPI package
`face-recognition-models`) by a reader of dlib's serialization format written here; nothing
compiled is needed at run time.

dlib's format, as far as this network uses it:
  * integers: one control byte (number of following bytes, | 0x80 when negative), then that many
    bytes, little-endian magnitude;
  * strings: length (integer) then the bytes; booleans: the ASCII characters '0' / '1';
  * scalar floats: mantissa (integer) and exponent (integer), value = mantissa * 2**exponent;
  * tensors: version 2, four integers (num_samples, k, nr, nc), then raw little-endian float32;
    alias tensors (views into a layer's parameter tensor): version 1 and four integers;
  * a network: the loss layer, then each layer's version integer from the outside in (every
    layer serialises its sub-network before itself), the input layer, then each computational
    layer's details from the input outwards, each followed by bookkeeping (a few booleans and
    gradient / output caches, empty in a saved model). Tag and skip layers carry no details.

Architecture (the dlib example that trained it, "ResNet-29"): 150x150 RGB input, normalised as
(x - channel mean) / 256; conv 7x7/2 (32) + affine + relu, max-pool 3x3/2; then residual blocks
of two 3x3 convs with affine (frozen batch-norm) layers: 3 x 32, [down] + 3 x 64, [down] + 2 x
128, [down] + 2 x 256, [down] 256; a down block's shortcut is a 2x2/2 average pool of its input.
dlib adds tensors of different sizes by zero-padding the smaller at the bottom/right
(`add_prev`), which happens where an odd size is halved; we reproduce that. Global average pool,
then a 128-d linear map without bias gives the descriptor (not normalised; dlib compares
descriptors by Euclidean distance, threshold 0.6).

Grad-CAM target (`cam_layer`): the last level's single down block works at 2x2 (its conv path at
1x1), too coarse to localise anything, so Grad-CAM targets the output of the 256-channel level
before it (`level1`, 4x4 at 150 px input), the last layer with spatial extent worth the name.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import with_contiguous_input

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_SIZE = 150


class DlibFormatError(ValueError):
    pass


def default_model_path() -> Path:
    """The .dat file in the installed `face-recognition-models` package (without importing it:
    its __init__ needs pkg_resources, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the dlib face-recognition model needs the optional package "
                                "face-recognition-models (pip install 'facexai[dlib]')")
    path = Path(spec.origin).parent / "models" / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the face-recognition-models package")
    return path


class _Stream:
    """Cursor over the bytes of a dlib-serialised object."""

    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str):
        raise DlibFormatError(f"{self.path}: byte {self.pos}: {what}")

    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos:self.pos + n]

    def int(self) -> int:
        if self.pos >= len(self.data):
            self.fail("unexpected end of file")
        control = self.data[self.pos]
        size, negative = control & 0x0F, control & 0x80
        if size > 8 or control & 0x70:
            self.fail(f"bad integer control byte {control:#x}")
        raw = self.data[self.pos + 1:self.pos + 1 + size]
        if len(raw) != size:
            self.fail("unexpected end of file")
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if negative else value

    def string(self) -> str:
        n = self.int()
        if not 0 <= n < 1000:
            self.fail(f"implausible string length {n}")
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self.fail("string is not ASCII")

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(mantissa) * 2.0**exponent

    def bools(self) -> list[bool]:
        out = []
        while self.peek() in (b"0", b"1"):
            out.append(self.peek() == b"1")
            self.pos += 1
        return out

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            self.fail("expected a tensor (version 2)")
        shape = tuple(self.int() for _ in range(4))
        n = int(np.prod(shape))
        end = self.pos + 4 * n
        if end > len(self.data):
            self.fail("tensor runs past the end of the file")
        values = np.frombuffer(self.data, "<f4", count=n, offset=self.pos).reshape(shape)
        self.pos = end
        return values.astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            self.fail("expected an alias tensor (version 1)")
        return tuple(self.int() for _ in range(4))

    def at_tensor(self) -> bool:
        # a tensor starts with its version, the integer 2 (bytes 01 02); no layer name has length 2
        return self.peek(2) == b"\x01\x02"


@dataclasses.dataclass
class Layer:
    kind: str            # con, affine, relu, max_pool, avg_pool, add_prev, fc
    params: dict


def _layer(s: _Stream) -> Layer:
    version = s.string()
    if version in ("con_4", "con_5", "con_6"):
        params = s.tensor().ravel()
        n_filters, nr, nc = s.int(), s.int(), s.int()
        stride, stride_x, pad, pad_x = s.int(), s.int(), s.int(), s.int()
        filters, biases = s.alias(), s.alias()
        for _ in range(4):
            s.float()  # learning-rate / weight-decay multipliers
        use_bias = True
        if version != "con_4":
            use_bias = s.bools()[0]
        if version == "con_6":
            s.bools()
        if stride != stride_x or pad != pad_x or nr != nc:
            s.fail("only square kernels, strides and paddings are supported")
        n_weights = int(np.prod(filters))
        weight = params[:n_weights].reshape(filters)
        bias = params[n_weights:n_weights + int(np.prod(biases))] if use_bias else None
        return Layer("con", {"weight": weight, "bias": bias, "stride": stride, "padding": pad,
                             "out": n_filters, "kernel": nr})
    if version in ("affine_", "affine_2"):
        params = s.tensor().ravel()
        gamma, beta = s.alias(), s.alias()
        mode = s.int()
        if version == "affine_2":
            s.bools()
        n = int(np.prod(gamma))
        if mode != 0 or gamma != beta:  # 0 = CONV_MODE: one scale and shift per channel
            s.fail(f"unsupported affine layer (mode {mode})")
        return Layer("affine", {"gamma": params[:n], "beta": params[n:2 * n]})
    if version in ("relu_", "relu_2"):
        if version == "relu_2":
            s.bools()
        return Layer("relu", {})
    if version in ("max_pool_2", "avg_pool_2"):
        nr, nc, stride, stride_x, pad, pad_x = (s.int() for _ in range(6))
        if nr != nc or stride != stride_x or pad != pad_x:
            s.fail("only square pooling is supported")
        return Layer(version[:-2], {"kernel": nr, "stride": stride, "padding": pad})
    if version == "add_prev_":
        return Layer("add_prev", {})
    if version in ("fc_2", "fc_3"):
        n_out, n_in = s.int(), s.int()
        params = s.tensor().ravel()
        s.alias()  # the weights' shape: (n_in, n_out), as read below
        s.alias()  # the biases' shape
        bias_mode = s.int()
        for _ in range(4):
            s.float()
        if version == "fc_3":
            s.bools()
        weight = params[:n_in * n_out].reshape(n_in, n_out)
        bias = params[n_in * n_out:n_in * n_out + n_out] if bias_mode == 0 else None
        return Layer("fc", {"weight": weight, "bias": bias})
    s.fail(f"unsupported layer {version!r}")


def read_dlib_metric_net(path: str | os.PathLike) -> tuple[dict, list[Layer]]:
    """Parse a dlib loss_metric network file: (input settings, computational layers in order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib model file not found")
    s = _Stream(path.read_bytes(), str(path))
    if s.int() != 1:
        s.fail("expected a dlib loss layer (version 1)")
    loss = s.string()
    if not loss.startswith("loss_metric"):
        s.fail(f"expected a loss_metric network, found {loss!r}")
    margin, threshold = s.float(), s.float()
    while s.peek(2) in (b"\x01\x01", b"\x01\x02", b"\x01\x03"):  # layer versions, outside in
        s.int()
    if s.string() != "input_rgb_image_sized":
        s.fail("expected input_rgb_image_sized")
    mean = [s.float() for _ in range(3)]
    size = (s.int(), s.int())
    layers = []
    while s.pos < len(s.data):
        layers.append(_layer(s))
        s.bools()
        while s.at_tensor():
            cache = s.tensor()
            if cache.size:
                s.fail("non-empty gradient cache: not a cleaned, saved model")
        if s.peek(2) == b"\x01\x01":  # the layer on the input also stores its sample expansion factor
            s.int()
    return {"mean_rgb": mean, "size": size, "margin": margin, "distance_threshold": threshold}, layers


def _pad_to(x: torch.Tensor, h: int, w: int, c: int) -> torch.Tensor:
    """Zero-extend (N, C, H, W) at the end of each axis, as dlib's tensor addition does."""
    return F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2], 0, c - x.shape[1]))


def dlib_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    h, w, c = max(a.shape[2], b.shape[2]), max(a.shape[3], b.shape[3]), max(a.shape[1], b.shape[1])
    return _pad_to(a, h, w, c) + _pad_to(b, h, w, c)


class _ConvAffine(nn.Module):
    def __init__(self, con: Layer, affine: Layer):
        super().__init__()
        w = con.params["weight"]
        self.conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], con.params["stride"], con.params["padding"],
                              bias=con.params["bias"] is not None)
        self.conv.weight.data = torch.from_numpy(w.copy())
        if con.params["bias"] is not None:
            self.conv.bias.data = torch.from_numpy(con.params["bias"].copy())
        self.register_buffer("gamma", torch.from_numpy(affine.params["gamma"].copy()).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(affine.params["beta"].copy()).view(1, -1, 1, 1))

    def forward(self, x):
        return self.conv(x) * self.gamma + self.beta


class ResidualBlock(nn.Module):
    """relu(shortcut(x) + affine(conv(relu(affine(conv(x)))))); shortcut = identity or avg-pool 2x2/2."""

    def __init__(self, first: _ConvAffine, second: _ConvAffine, pool: Layer | None):
        super().__init__()
        self.first, self.second = first, second
        self.pool = None
        if pool is not None:
            self.pool = nn.AvgPool2d(pool.params["kernel"], pool.params["stride"], pool.params["padding"])

    def forward(self, x):
        y = self.second(F.relu(self.first(x)))
        shortcut = x if self.pool is None else self.pool(x)
        return F.relu(dlib_add(y, shortcut))


class DlibFaceResNet(nn.Module):
    """The 128-d face descriptor network; input (N, 3, 150, 150) from `preprocess`."""

    def __init__(self, layers: list[Layer], settings: dict):
        super().__init__()
        self.settings = settings
        self.register_buffer("mean", torch.tensor(settings["mean_rgb"], dtype=torch.float32).view(1, 3, 1, 1))
        kinds = [layer.kind for layer in layers]
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise DlibFormatError(f"unexpected layer sequence: starts {kinds[:4]}, ends {kinds[-2:]}")
        self.stem = _ConvAffine(layers[0], layers[1])
        mp = layers[3].params
        self.stem_pool = nn.MaxPool2d(mp["kernel"], mp["stride"], mp["padding"])
        blocks, body, i = [], layers[4:-2], 0
        while i < len(body):
            kinds_here = [layer.kind for layer in body[i:i + 8]]
            if kinds_here[:5] != ["con", "affine", "relu", "con", "affine"]:
                raise DlibFormatError(f"unexpected layers at block {len(blocks)}: {kinds_here}")
            first, second = _ConvAffine(body[i], body[i + 1]), _ConvAffine(body[i + 3], body[i + 4])
            j, pool = i + 5, None
            if body[j].kind == "avg_pool":
                pool, j = body[j], j + 1
            if [layer.kind for layer in body[j:j + 2]] != ["add_prev", "relu"]:
                raise DlibFormatError(f"block {len(blocks)} does not end in add_prev, relu")
            blocks.append(ResidualBlock(first, second, pool))
            i = j + 2
        # group blocks into levels: a level starts at each down block (after the first level)
        levels, current = [], []
        for block in blocks:
            if block.pool is not None and current:
                levels.append(nn.Sequential(*current))
                current = []
            current.append(block)
        levels.append(nn.Sequential(*current))
        self.levels = nn.ModuleList(levels)
        fc = layers[-1].params
        self.fc = nn.Linear(fc["weight"].shape[0], fc["weight"].shape[1], bias=fc["bias"] is not None)
        self.fc.weight.data = torch.from_numpy(fc["weight"].T.copy())
        if fc["bias"] is not None:
            self.fc.bias.data = torch.from_numpy(fc["bias"].copy())

    @property
    def cam_layer(self) -> nn.Module:
        return self.levels[-2]

    @staticmethod
    def preprocess(images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB (N, 150, 150, 3) -> float (N, 3, 150, 150) in [0, 255] (normalised in forward)."""
        x = torch.as_tensor(np.ascontiguousarray(images))
        return x.permute(0, 3, 1, 2).float().contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 256.0
        x = self.stem_pool(F.relu(self.stem(x)))
        for level in self.levels:
            x = level(x)
        return self.fc(x.mean(dim=(2, 3)))


def load_dlib_face_resnet(path: str | os.PathLike | None = None) -> DlibFaceResNet:
    path = Path(path) if path is not None else default_model_path()
    settings, layers = read_dlib_metric_net(path)
    if settings["size"] != (INPUT_SIZE, INPUT_SIZE):
        raise DlibFormatError(f"{path}: expected a {INPUT_SIZE}x{INPUT_SIZE} input, found {settings['size']}")
    return with_contiguous_input(DlibFaceResNet(layers, settings)).eval()
