import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from facexai.models.train import auroc, load_model, train_attribute_classifier


def test_auroc_hand_computed():
    # positives 0.9, 0.4; negatives 0.5, 0.1 -> pairs won: (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert auroc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)  # ties count half
    assert np.isnan(auroc(np.array([0.1, 0.2]), np.array([1, 1])))


@pytest.fixture
def tiny_dataset(tmp_path):
    rng = np.random.default_rng(0)
    n = 48
    images = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
    attributes = -np.ones((n, 40), np.int8)
    bright = images[:, :, :8].mean(axis=(1, 2, 3)) > images[:, :, 8:].mean(axis=(1, 2, 3))
    attributes[bright, 15] = 1  # Eyeglasses = left half brighter: learnable
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as h5:
        h5["images"], h5["attributes"], h5["ids"] = images, attributes, np.arange(n)
        h5.attrs["image_size"] = 16
    split = pd.DataFrame({"row": np.arange(n), "id": np.arange(n), "identity": np.arange(n) // 4,
                          "split": np.where(np.arange(n) < 36, "train", "test")})
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    return path, tmp_path / "split.tsv"


def _train(tiny_dataset, out):
    return train_attribute_classifier(*tiny_dataset, out, arch="resnet_small", attributes=["Eyeglasses", "Male"],
                                      epochs=2, batch_size=8, lr=1e-3, weight_decay=0.0, seed=1, width=4,
                                      progress=False)


def test_training_is_deterministic_and_writes_its_outputs(tiny_dataset, tmp_path):
    m1 = _train(tiny_dataset, tmp_path / "a")
    m2 = _train(tiny_dataset, tmp_path / "b")
    w1 = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    w2 = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    pd.testing.assert_frame_equal(m1, m2)
    assert list(m1["attribute"]) == ["Eyeglasses", "Male"]
    assert m1.loc[1, "flagged"]  # Male is constant -1 here: AUROC undefined -> flagged, not hidden
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    assert meta["attributes"] == ["Eyeglasses", "Male"] and meta["image_size"] == 16
    model, _ = load_model(tmp_path / "a")
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 2)


def test_load_model_errors_name_the_file(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "a")
    (tmp_path / "a" / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights.pt: not a readable PyTorch state dict"):
        load_model(tmp_path / "a")
    (tmp_path / "a" / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match="weights.pt: model file not found"):
        load_model(tmp_path / "a")


def test_seed_everything_asks_for_deterministic_kernels():
    from facexai.models.train import seed_everything

    torch.use_deterministic_algorithms(False)
    try:
        seed_everything(3)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        a = torch.rand(3)
        seed_everything(3)
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.use_deterministic_algorithms(False)
