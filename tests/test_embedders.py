"""Embedders of every kind (facexai/models/embedders.py): import checks, the input adapter, similarities."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexai.attributions.base import PairTask, get_method
from facexai.data.samples import to_model_input
from facexai.errors import ConfigError
from facexai.models import embedders as E
from facexai.models.backbones import build_model

from conftest import has_dlib_extra, write_scripted_embedder


def spec(tmp_path, **over):
    path = write_scripted_embedder(tmp_path / "net.pt")
    return {"name": "mine", "kind": "torchscript", "weights": str(path), "input_size": 48,
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], **over}


def test_torchscript_embedder_is_imported_and_fed_its_own_input(tmp_path):
    s = spec(tmp_path)
    meta = E.import_embedder(s, tmp_path / "out", image_size=32)
    assert meta["dim"] == 12 and meta["kind"] == "torchscript" and meta["similarity"] == "cosine"
    assert (tmp_path / "out/weights.pt").read_bytes() == (tmp_path / "net.pt").read_bytes()
    model, loaded = E.load_embedder(tmp_path / "out")
    assert isinstance(model, E.EmbedderInput) and loaded["sha256"] == E.file_digest(tmp_path / "net.pt")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    # by hand: pixels in [0, 1], bilinear to 48 px, (p - mean) / std, then the network
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    resized = F.interpolate(pixels, size=(48, 48), mode="bilinear", align_corners=False)
    mean, std = torch.tensor(s["mean"]).view(1, 3, 1, 1), torch.tensor(s["std"]).view(1, 3, 1, 1)
    net = torch.jit.load(s["weights"])
    with torch.no_grad():
        expected = net((resized - mean) / std)
        got = model(to_model_input(images))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # TorchScript forbids hooks: the Grad-CAM family is not applicable, and says why
    assert "TorchScript" in E.cam_unavailable(model)
    with pytest.raises(ValueError, match="no hookable cam_layer"):
        get_method("gradcam")(PairTask(model, torch.ones(1, 12), [0]), to_model_input(images[:1]), [0], 0)


def test_crop_keeps_the_centre(tmp_path):
    s = spec(tmp_path, crop=0.5, input_size=16)
    E.import_embedder(s, tmp_path / "out", image_size=32)
    model, _ = E.load_embedder(tmp_path / "out")
    images = np.zeros((1, 32, 32, 3), np.uint8)
    changed = images.copy()
    changed[0, :4] = 255  # outside the kept centre (rows 8..23)
    with torch.no_grad():
        assert torch.equal(model(to_model_input(images)), model(to_model_input(changed)))
        changed[0, 12] = 255
        assert not torch.equal(model(to_model_input(images)), model(to_model_input(changed)))


class _Shape(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x).mean(dim=(2, 3))
        if self.kind == "3d":
            return y[:, :, None]
        if self.kind == "nan":
            return y * float("nan")
        return y


@pytest.mark.parametrize("kind, message", [("3d", r"outputs \(2, 4, 1\) for 2 images; expected \(2, D\)"),
                                           ("nan", "non-finite values")])
def test_bad_outputs_are_named(tmp_path, kind, message):
    path = tmp_path / f"{kind}.pt"
    torch.jit.save(torch.jit.trace(_Shape(kind), torch.zeros(1, 3, 8, 8)), str(path))
    with pytest.raises(ValueError, match=f"{kind}.pt: the embedder {message}|{kind}.pt: .*{message}"):
        E.import_embedder({**spec(tmp_path), "weights": str(path), "input_size": 8}, tmp_path / "out", image_size=8)
    assert not (tmp_path / "out/model.json").exists()  # nothing half-written


def test_foreign_files_fail_with_the_file_named(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="junk.pt: not a TorchScript archive"):
        E.import_embedder({**spec(tmp_path), "weights": str(junk)}, tmp_path / "out", image_size=32)
    # a network that cannot take 3-channel input fails its forward check, naming the file
    grey = tmp_path / "grey.pt"
    torch.jit.save(torch.jit.trace(nn.Conv2d(1, 2, 3), torch.zeros(1, 1, 8, 8)), str(grey))
    with pytest.raises(ValueError, match="grey.pt: forward pass on 2 images of 48x48 failed"):
        E.import_embedder({**spec(tmp_path), "weights": str(grey)}, tmp_path / "out", image_size=32)
    # a state dict holding a pickled object is refused unread
    evil = tmp_path / "evil.pt"
    torch.save({"weights": copy.copy}, evil)
    with pytest.raises(ValueError, match="evil.pt: refused to load"):
        E.import_embedder({**spec(tmp_path), "kind": "state_dict", "weights": str(evil), "arch": "resnet_small",
                           "width": 4, "dim": 8}, tmp_path / "out", image_size=32)
    with pytest.raises(FileNotFoundError, match="missing.pt: embedder file not found"):
        E.import_embedder({**spec(tmp_path), "weights": str(tmp_path / "missing.pt")}, tmp_path / "o", image_size=32)


def test_state_dict_embedder_keeps_grad_cam(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet_small", 8, width=4)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    s = {"name": "sd", "kind": "state_dict", "weights": str(tmp_path / "sd.pt"), "arch": "resnet_small",
         "width": 4, "dim": 8, "input_size": 24, "mean": [0.5] * 3, "std": [0.5] * 3}
    E.import_embedder(s, tmp_path / "out", image_size=32)
    model, _ = E.load_embedder(tmp_path / "out")
    assert E.cam_unavailable(model) is None and model.cam_layer is model.net.cam_layer
    x = to_model_input(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    with torch.no_grad():
        partner = model(x.flip(0))
    maps = get_method("gradcam")(PairTask(model, partner, [1, 2]), x, [0, 1], 0)
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all() and maps.max() > 0
    bad = {**s, "dim": 16}
    with pytest.raises(ValueError, match="sd.pt: weights do not fit resnet_small"):
        E.import_embedder(bad, tmp_path / "out2", image_size=32)


def test_euclidean_score_is_minus_the_distance():
    model = nn.Flatten()  # the "embedding" is the input itself
    x = torch.zeros(2, 1, 1, 2)
    partners = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    task = PairTask(model, partners, [7, 8], similarity="euclidean")
    assert task.score(x, [0, 1]).tolist() == [-5.0, -1.0]
    assert task.score_matrix(x[:1], [0, 1]).tolist() == [[-5.0, -1.0]]
    cosine = PairTask(model, partners, [7, 8])
    y = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 2.0]]]])
    assert cosine.score(y, [0, 1]).tolist() == pytest.approx([0.6, 1.0])
    with pytest.raises(ValueError, match="unknown similarity 'dot'"):
        PairTask(model, partners, [7, 8], similarity="dot")


@pytest.mark.skipif(not has_dlib_extra(), reason="pip install 'facexai[dlib]'")
def test_dlib_embedder_equals_the_port_at_its_own_size(tmp_path):
    from facexai.models.dlib_resnet import load_dlib_face_resnet

    meta = E.import_embedder({"name": "dlib", "kind": "dlib"}, tmp_path / "dlib", image_size=150)
    assert meta["dim"] == 128 and meta["similarity"] == "euclidean" and meta["input_size"] == 150
    model, _ = E.load_embedder(tmp_path / "dlib")
    chips = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    port = load_dlib_face_resnet()
    with torch.no_grad():
        expected = port(port.preprocess(chips))
        got = model(to_model_input(chips))
    # dlib's own input is the uint8 chip; ours passes through (x / 255 - 0.5) / 0.25 and back
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # Grad-CAM hooks dlib's documented layer (the 256-channel level at 4x4) through the adapter
    assert E.cam_unavailable(model) is None and model.cam_layer is model.net.levels[3]
    x = to_model_input(chips[:1])
    with torch.no_grad():
        partner = model(to_model_input(chips[1:]))
    maps = get_method("gradcam")(PairTask(model, partner, [1], similarity="euclidean"), x, [0], 0)
    assert maps.shape == (1, 150, 150) and np.isfinite(maps).all()


def test_config_check_names_the_embedder_key(monkeypatch, tmp_path):
    import importlib.util

    from facexai.config import check_embedders

    base = {"embedders": [{"name": "trained", "kind": "trained"}], "explain": {"kinds": ["genuine"]},
            "region_swap": {"regions": [], "pairs_per_region": 0}}
    dlib = copy.deepcopy(base)
    dlib["embedders"].append({"name": "dlib", "kind": "dlib"})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(ConfigError, match=r"verification.embedders.dlib: .*pip install 'facexai\[dlib\]'"):
        check_embedders(dlib)
    missing = copy.deepcopy(base)
    missing["embedders"].append({"name": "mine", "kind": "torchscript", "weights": str(tmp_path / "no.pt")})
    with pytest.raises(ConfigError, match="verification.embedders.mine.weights: .*no.pt is not a file"):
        check_embedders(missing)
    twice = copy.deepcopy(base)
    twice["embedders"].append({"name": "trained", "kind": "trained"})
    with pytest.raises(ConfigError, match="names must be unique"):
        check_embedders(twice)
    swap = copy.deepcopy(base)
    swap["explain"]["kinds"] = ["swap"]
    with pytest.raises(ConfigError, match="'swap' needs region-swap pairs"):
        check_embedders(swap)
    misplaced = copy.deepcopy(base)
    misplaced["embedders"][0]["weights"] = "x.pt"
    with pytest.raises(ConfigError, match="apply to imported embedders"):
        check_embedders(misplaced)


def test_old_single_embedder_key_is_refused_by_name(tmp_path):
    import yaml

    from facexai.config import check_schema

    from conftest import REPO

    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    config["verification"]["embedder"] = config["verification"].pop("embedders")[0]
    with pytest.raises(ConfigError, match="verification.embedder: unknown key"):
        check_schema(config, f"{REPO}/config/schema/config.schema.yaml")
    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    config["verification"]["embedders"].append({"name": "mine", "kind": "torchscript"})
    with pytest.raises(ConfigError, match=r"verification.embedders\[1\]: 'weights' is a required property"):
        check_schema(config, f"{REPO}/config/schema/config.schema.yaml")


def test_sanity_check_randomises_the_layers_of_a_torchscript_file(tmp_path):
    """The cascading randomisation finds Conv2d / Linear layers inside a TorchScript file (traced
    from nn modules, they keep their original names), re-draws them from the output back, and leaves
    the loaded model untouched."""
    from facexai.metrics.sanity import randomised_copies, weight_layers
    from facexai.models.user import load_weights

    model = load_weights(write_scripted_embedder(tmp_path / "net.pt"), "torchscript", None, 0)
    names = weight_layers(model)
    assert names == ["inner.6", "inner.2", "inner.0"]  # Linear, Conv2d, Conv2d: output first
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        before = model(x).clone()
        outputs = [(count, copy_(x).clone()) for count, _, copy_ in randomised_copies(model, 3, seed=0)]
        assert torch.equal(model(x), before)
    assert [count for count, _ in outputs] == [1, 2, 3]
    assert all(not torch.allclose(out, before) for _, out in outputs)
    weight = dict(model.named_modules())["inner.6"].weight
    fan_in = weight.shape[1]
    # the re-drawn top layer follows PyTorch's default bound (Kaiming-uniform, a = sqrt(5)): 1/sqrt(fan_in)
    randomised = dict(next(iter(randomised_copies(model, 3, seed=0)))[2].named_modules())["inner.6"].weight
    assert randomised.abs().max() <= 1 / np.sqrt(fan_in) + 1e-6 and not torch.equal(randomised, weight)
