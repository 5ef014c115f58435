import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from facexai.models.verification import build_pairs, equal_error_rate, evaluate_pairs, train_embedder


def test_eer_hand_computed():
    # accept when score >= t. t = 0.75: genuine 0.7 rejected (FRR 1/3), impostor 0.75 accepted (FAR 1/3)
    eer, t = equal_error_rate(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.75]))
    assert eer == pytest.approx(1 / 3) and t == pytest.approx(0.75)
    eer, t = equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2]))
    assert eer == 0.0 and 0.2 < t <= 0.8


def test_eer_of_identical_distributions_is_about_half():
    rng = np.random.default_rng(0)
    eer, _ = equal_error_rate(rng.normal(size=4000), rng.normal(size=4000))
    assert 0.45 < eer < 0.55


@pytest.fixture
def split(tmp_path):
    identity = np.repeat(np.arange(10), 4)
    table = pd.DataFrame({"row": np.arange(40), "id": np.arange(40) + 100, "identity": identity,
                          "split": np.where(identity < 6, "train", "test")})
    path = tmp_path / "split.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path, table


def test_pairs_are_right_and_seeded(split, tmp_path):
    path, table = split
    region = tmp_path / "pairs.txt"
    region.write_text("id_a id_b region attribute\n124 125 eyes Eyeglasses\n")
    pairs = build_pairs(path, tmp_path / "p.tsv", n_genuine=15, n_impostor=30, seed=1, region_pairs_file=region)
    again = build_pairs(path, tmp_path / "q.tsv", n_genuine=15, n_impostor=30, seed=1, region_pairs_file=region)
    pd.testing.assert_frame_equal(pairs, again)
    identity = dict(zip(table["id"], table["identity"]))
    test_ids = set(table.loc[table.split == "test", "id"])
    assert (pairs["kind"] == "genuine").sum() == 15 and (pairs["kind"] == "impostor").sum() == 30
    for row in pairs.itertuples():
        assert row.id_a in test_ids and row.id_b in test_ids and row.id_a != row.id_b
        assert (identity[row.id_a] == identity[row.id_b]) == (row.kind in ("genuine", "region"))
    assert not pairs.duplicated(["kind", "id_a", "id_b"]).any()
    assert pairs[pairs.kind == "region"][["id_a", "id_b", "region"]].values.tolist() == [[124, 125, "eyes"]]


def test_embedder_learns_identities(tmp_path, split):
    path, table = split
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (10, 3))
    images = np.clip(colours[table["identity"]][:, None, None, :] + rng.normal(0, 10, (40, 16, 16, 3)), 0, 255)
    data = tmp_path / "d.h5"
    with h5py.File(data, "w") as h5:
        h5["images"] = images.astype(np.uint8)
    train_embedder(data, path, tmp_path / "emb", arch="resnet_small", width=4, dim=8, epochs=30, batch_size=8,
                   lr=0.01, margin=0.1, scale=8.0, seed=0, progress=False)
    build_pairs(path, tmp_path / "p.tsv", n_genuine=20, n_impostor=40, seed=0)
    summary = evaluate_pairs(tmp_path / "emb", data, tmp_path / "p.tsv", tmp_path / "s.tsv", tmp_path / "e.json")
    assert summary["eer"] < 0.25  # unseen identities told apart by colour
    assert json.loads((tmp_path / "e.json").read_text())["n_genuine"] == 20
    w1 = torch.load(tmp_path / "emb" / "weights.pt", weights_only=True)
    train_embedder(data, path, tmp_path / "emb2", arch="resnet_small", width=4, dim=8, epochs=30, batch_size=8,
                   lr=0.01, margin=0.1, scale=8.0, seed=0, progress=False)
    w2 = torch.load(tmp_path / "emb2" / "weights.pt", weights_only=True)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_test_fraction_one_puts_every_identity_in_test():
    from facexai.data.splits import identity_test_mask

    identities = np.array([3, 3, 1, 7, 7, 7])
    assert identity_test_mask(identities, 1.0, seed=0).all()
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        identity_test_mask(identities, 1.5, seed=0)
