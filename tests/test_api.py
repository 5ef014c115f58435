"""facexai.evaluate: maps made anywhere, scored with the pipeline's metrics (facexai/api.py)."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

import facexai
from facexai.api import DEFAULT_SETTINGS
from facexai.labels import CLASS_INDEX
from facexai.metrics import (energy_pointing_lift, regional_precision, regional_recall, registry,
                             resize_maps)

from conftest import REPO


def test_default_settings_equal_the_pipelines():
    with open(f"{REPO}/config/config.yaml") as fh:
        assert yaml.safe_load(fh)["metrics"] == DEFAULT_SETTINGS


def _labels(n=4, shape=(48, 36)):
    labels = np.zeros((n,) + shape, np.uint8)
    labels[:, 5:40, 4:32] = CLASS_INDEX["skin"]
    labels[:, 12:16, 8:14] = CLASS_INDEX["r_eye"]
    labels[:, 12:16, 22:28] = CLASS_INDEX["l_eye"]
    labels[:, 30:34, 12:24] = CLASS_INDEX["u_lip"]
    return labels


def test_mask_metrics_of_non_square_maps_and_labels_equal_the_reference_functions():
    rng = np.random.default_rng(0)
    labels = _labels()
    maps = rng.normal(size=(4, 24, 18)).astype(np.float32)
    maps[3] = 0.0  # no positive mass: degenerate, named
    table = facexai.evaluate(maps, labels, region=["eyes", "eyes", "mouth", "eyes"])
    assert list(table["region"]) == ["eyes", "eyes", "mouth", "eyes"]
    regions = np.isin(labels, [CLASS_INDEX[c] for c in ("l_eye", "r_eye")])
    regions[2] = np.isin(labels[2], [CLASS_INDEX[c] for c in ("mouth", "u_lip", "l_lip")])
    big = resize_maps(maps, labels.shape[1:])
    assert big.shape == labels.shape
    np.testing.assert_allclose(table["rp"], regional_precision(big, regions), rtol=1e-5)
    np.testing.assert_allclose(table["recall"], regional_recall(big, regions), rtol=1e-5)
    np.testing.assert_allclose(table["energy_pointing_lift"], energy_pointing_lift(big, regions), rtol=1e-5)
    assert table.loc[3, "degenerate"] == "zero_map" and np.isnan(table.loc[3, "rp"])
    # every mask metric of the registry is a column
    assert {m.name for m in registry.metrics() if m.kind == "mask" and m.classes} <= set(table.columns)


def test_a_map_equal_to_the_region_scores_rp_one_and_a_uniform_map_scores_chance():
    labels = _labels(2)
    region = np.isin(labels, [CLASS_INDEX["u_lip"]])
    maps = np.stack([region[0].astype(np.float32), np.ones(labels.shape[1:], np.float32)])
    table = facexai.evaluate(maps, labels, region="mouth")
    assert table.loc[0, "rp"] == pytest.approx(1.0) and table.loc[1, "lift"] == pytest.approx(1.0)
    assert table.loc[1, "rp"] == pytest.approx(region[0].mean())


def test_bad_input_is_named():
    labels, maps = _labels(2), np.ones((2, 8, 8))
    with pytest.raises(ValueError, match=r"region: \['teeth'\] not defined"):
        facexai.evaluate(maps, labels, region="teeth")
    with pytest.raises(ValueError, match="region: 3 names for 2 maps"):
        facexai.evaluate(maps, labels, region=["eyes"] * 3)
    with pytest.raises(ValueError, match="labels: expected integer class indices 0..18"):
        facexai.evaluate(maps, labels.astype(np.float32) / 18, region="eyes")
    with pytest.raises(ValueError, match="maps: expected 3 dimensions"):
        facexai.evaluate(np.ones((8, 8)), labels, region="eyes")
    with pytest.raises(ValueError, match="model metrics need `images`"):
        facexai.evaluate(maps, labels, region="eyes", model=nn.Identity())
    with pytest.raises(ValueError, match=r"metrics: \['nope'\] unknown"):
        facexai.evaluate(maps, labels, region="eyes", metrics=["nope"])
    # a region table of the user's own
    table = facexai.evaluate(maps, labels, region="lips", regions={"lips": ["u_lip"]}, metrics=["rp"])
    assert set(table.columns) == {"id", "region", "degenerate", "auc_degenerate", "rp"}


class _ImageNetNet(nn.Module):
    """A small classifier that expects ImageNet-normalised input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(24, 3))

    def forward(self, x):
        return self.body(x)


IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class _OurScaling(nn.Module):
    """The same network behind a hand-written conversion from facexai's input scaling."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        pixels = x * 0.25 + 0.5
        mean, std = (torch.tensor(IMAGENET[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
        return self.net((pixels - mean) / std)


def test_model_metrics_use_the_models_own_normalisation():
    rng = np.random.default_rng(1)
    n, size = 3, 16
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = _labels(n, (32, 32))
    maps = rng.random((n, 8, 8)).astype(np.float32)
    settings = {"deletion": {"steps": 4}, "road": {"percentages": [50]}, "falsification": {"k": 2}}
    net = _ImageNetNet().eval()
    ours = facexai.evaluate(maps, labels, "eyes", model=net, images=images, target=[0, 1, 2],
                            preprocess=IMAGENET, settings=settings)
    wrapped = facexai.evaluate(maps, labels, "eyes", model=_OurScaling(net), images=images, target=[0, 1, 2],
                               settings=settings)
    model_columns = ["deletion_auc", "insertion_auc", "road_gap", "drop_subject", "falsified_sized"]
    assert set(model_columns) <= set(ours.columns)
    pd.testing.assert_frame_equal(ours[model_columns], wrapped[model_columns], rtol=1e-4)
    # without its normalisation, the network sees other input: the scores change (the check can fail)
    naive = facexai.evaluate(maps, labels, "eyes", model=net, images=images, target=[0, 1, 2], settings=settings)
    assert not np.allclose(naive["deletion_auc"], ours["deletion_auc"])
    assert (ours["sanity_reason"] == "needs_the_method").all() and ours["sanity_spearman"].isna().all()


def test_the_readme_example_runs():
    text = open(f"{REPO}/README.md").read()
    block = re.search(r"## Use from Python.*?```python\n(.*?)```", text, re.S)
    assert block, "README has no 'Use from Python' example"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    table = namespace["table"]
    assert isinstance(table, pd.DataFrame) and len(table) == 4 and table["rp"].notna().all()


def test_model_input_problems_are_named_and_the_callers_model_is_left_as_it_was():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    labels, maps = _labels(2, (16, 16)), rng.random((2, 16, 16))
    net = _ImageNetNet().train()
    for preprocess, message in (({"means": [0.5] * 3, "stds": [0.5] * 3}, "expected exactly 'mean' and 'std'"),
                                ({"mean": 0.5, "std": [0.5] * 3}, "mean and std must be 3 numbers"),
                                ({"mean": [124, 116, 104], "std": [58, 57, 57]}, "looks like 0-255 units")):
        with pytest.raises(ValueError, match=message):
            facexai.evaluate(maps, labels, "eyes", model=net, images=images, target=0, preprocess=preprocess)
    with pytest.raises(ValueError, match=r"target: output indices \[5\] outside the model's \(3,\) outputs"):
        facexai.evaluate(maps, labels, "eyes", model=net, images=images, target=5)
    with pytest.raises(ValueError, match="target: expected one integer output index"):
        facexai.evaluate(maps, labels, "eyes", model=net, images=images, target=1.7)
    with pytest.raises(ValueError, match="a softmax"):
        facexai.evaluate(maps, labels, "eyes", model=nn.Sequential(net, nn.Softmax(dim=1)), images=images, target=0)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))  # takes 2x2 images only
    with pytest.raises(ValueError, match="model: forward pass on images of 16x16 failed"):
        facexai.evaluate(maps, labels, "eyes", model=flat, images=images, target=0)
    assert net.training  # evaluate switches to eval mode for its own calls only
    with pytest.raises(ValueError, match=r"maps: no maps to score \(N = 0\)"):
        facexai.evaluate(np.zeros((0, 8, 8)), np.zeros((0, 8, 8), np.uint8), "eyes")
