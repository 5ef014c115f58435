import pytest
import torch

from facexai.models.backbones import build_model
from facexai.models.train import load_model
from facexai.models.user import import_user_model, load_weights

ATTRS = ["Eyeglasses", "Smiling", "Bangs"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("vgg_small", len(ATTRS), width=4).eval()


def test_state_dict_round_trip(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "w.pt")
    import_user_model(tmp_path / "w.pt", tmp_path / "m", fmt="state_dict", attributes=ATTRS, image_size=32,
                      arch="vgg_small", width=4)
    loaded, meta = load_model(tmp_path / "m")
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(loaded(x), model(x)) and meta["attributes"] == ATTRS
    assert loaded.cam_layer is not None


def test_torchscript_round_trip_and_gradcam_refusal(model, tmp_path):
    import numpy as np

    from facexai.attributions import ClassTask, get_method

    scripted = torch.jit.trace(model, torch.zeros(1, 3, 32, 32))
    scripted.save(str(tmp_path / "m.ts"))
    import_user_model(tmp_path / "m.ts", tmp_path / "m", fmt="torchscript", attributes=ATTRS, image_size=32)
    loaded, _ = load_model(tmp_path / "m")
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="gradcam: the model has no hookable cam_layer"):
        get_method("gradcam")(ClassTask(loaded, torch.tensor([0, 1])), x, np.arange(2), seed=0)


def test_errors_name_the_file(model, tmp_path):
    (tmp_path / "text.pt").write_text("this is a text file, not a model\n" * 20)  # torch: bare IndexError
    with pytest.raises(ValueError, match="text.pt: not a readable PyTorch state dict"):
        load_weights(tmp_path / "text.pt", "state_dict", "vgg_small", 3)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pt: not a readable PyTorch state dict"):
        load_weights(tmp_path / "empty.pt", "state_dict", "vgg_small", 3)
    with pytest.raises(FileNotFoundError, match="nope.pt: model file not found"):
        load_weights(tmp_path / "nope.pt", "state_dict", "vgg_small", 3)
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="junk.pt: not a readable PyTorch state dict"):
        load_weights(tmp_path / "junk.pt", "state_dict", "vgg_small", 3)
    with pytest.raises(ValueError, match="junk.pt: not a TorchScript archive"):
        load_weights(tmp_path / "junk.pt", "torchscript", None, 3)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"w.pt: weights do not fit vgg_small with 3 outputs, width 8"):
        load_weights(tmp_path / "w.pt", "state_dict", "vgg_small", 3, width=8)
    scripted = torch.jit.trace(model, torch.zeros(1, 3, 32, 32))
    scripted.save(str(tmp_path / "s.ts"))
    with pytest.raises(ValueError, match=r"s.ts: the model outputs \(3,\) per image, expected \(2,\)"):
        import_user_model(tmp_path / "s.ts", tmp_path / "m", fmt="torchscript", attributes=ATTRS[:2], image_size=32)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickles_are_refused(tmp_path, capsys):
    torch.save({"layer": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil.pt: refused to load: it holds a pickled Python object "
                                         r"\(\S*print\)") as info:
        load_weights(tmp_path / "evil.pt", "state_dict", "vgg_small", 3)
    assert "weights_only" not in str(info.value)  # never relays torch's advice to load unsafely
    assert "this must never run" not in capsys.readouterr().out


IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class _OurInput(torch.nn.Module):
    """The ImageNet-normalised network behind a hand-written conversion from the pipeline's input."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    @property
    def cam_layer(self):
        return self.net.cam_layer

    def forward(self, x):
        pixels = x * 0.25 + 0.5   # data.samples: x = (pixel - 0.5) / 0.25
        mean, std = (torch.tensor(IMAGENET[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
        return self.net((pixels - mean) / std)


def test_a_user_model_is_called_through_its_own_normalisation(model, tmp_path):
    """An ImageNet-normalised state dict imported with its mean / std gives the same outputs, maps and
    model metrics as the same network wrapped by hand to take the pipeline's input; imported without
    them, it sees other input (the check can fail)."""
    import numpy as np

    from facexai.attributions import ClassTask, get_method
    from facexai.data.samples import to_model_input
    from facexai.metrics import deletion_insertion

    with torch.no_grad():
        model.head.weight.mul_(1000)  # an untrained network barely moves its logits: make them input-sensitive
    torch.save(model.state_dict(), tmp_path / "w.pt")
    import_user_model(tmp_path / "w.pt", tmp_path / "own", fmt="state_dict", attributes=ATTRS, image_size=32,
                      arch="vgg_small", width=4, **IMAGENET)
    import_user_model(tmp_path / "w.pt", tmp_path / "plain", fmt="state_dict", attributes=ATTRS, image_size=32,
                      arch="vgg_small", width=4)
    own, meta = load_model(tmp_path / "own")
    plain, _ = load_model(tmp_path / "plain")
    assert meta["input"] == {**IMAGENET, "input_size": None}
    reference = _OurInput(model).eval()
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = to_model_input(images)
    with torch.no_grad():
        torch.testing.assert_close(own(x), reference(x), rtol=1e-5, atol=1e-5)
        assert (plain(x) - reference(x)).abs().max() > 0.05
    targets = torch.tensor([0, 1, 2])
    maps = get_method("gradcam")(ClassTask(own, targets), x, np.arange(3), seed=0)  # the hook still reaches it
    np.testing.assert_allclose(maps, get_method("gradcam")(ClassTask(reference, targets), x, np.arange(3), seed=0),
                               rtol=1e-4, atol=1e-6)
    scores = [deletion_insertion(ClassTask(m, targets, probability=True), x, maps, steps=4, seeds=np.arange(3))
              ["deletion_auc"] for m in (own, reference)]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5)
