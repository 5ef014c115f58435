import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facexai.attributions import get_method
from facexai.models.backbones import build_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("resnet_small", 3, width=4).eval()


def manual_gradcam(model, x, targets):
    """Grad-CAM written out: weights = spatial mean of d y_c / d A, map = ReLU(sum_k w_k A_k), bilinear up."""
    feats = {}
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: feats.__setitem__("A", o))
    out = model(x)
    handle.remove()
    A = feats["A"]
    score = out.gather(1, targets[:, None]).sum()
    (grad,) = torch.autograd.grad(score, A)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * A).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach().numpy()


def test_gradcam_equals_the_written_out_formula(model):
    x = torch.randn(4, 3, 32, 32)
    targets = torch.tensor([0, 1, 2, 1])
    maps = get_method("gradcam").attribute(model, x, targets, np.arange(4), seed=0)
    assert maps.shape == (4, 32, 32) and np.isfinite(maps).all()
    assert np.allclose(maps, manual_gradcam(model, x, targets), atol=1e-6)
    assert (maps >= 0).all()


def test_random_baseline_is_seeded_per_sample_not_per_batch(model):
    x = torch.randn(4, 3, 16, 16)
    t = torch.zeros(4, dtype=torch.long)
    ids = np.array([10, 11, 12, 13])
    method = get_method("random")
    whole = method.attribute(model, x, t, ids, seed=5)
    halves = np.concatenate([method.attribute(model, x[:2], t[:2], ids[:2], seed=5),
                             method.attribute(model, x[2:], t[2:], ids[2:], seed=5)])
    assert np.array_equal(whole, halves)
    assert not np.array_equal(whole, method.attribute(model, x, t, ids, seed=6))
    assert not np.array_equal(whole[0], whole[1])
    coarse = get_method("random", {"cells": 4}).attribute(model, x, t, ids, seed=5)
    assert coarse.shape == (4, 16, 16) and np.isfinite(coarse).all()


def test_unknown_method_or_parameter_is_named():
    with pytest.raises(ValueError, match="unknown attribution method 'gradcm'"):
        get_method("gradcm")
    with pytest.raises(ValueError, match=r"methods.gradcam: unknown parameter\(s\) \['layer_name'\]"):
        get_method("gradcam", {"layer_name": "x"})
