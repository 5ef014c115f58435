"""The subject seam: a kind of explained subject is one module and one registry entry. A toy kind
(a face image's quadrant, scored by a fixed network that reads only that quadrant) goes through
every consumer: the explain runner, the metric-table runner, the aggregate tables, the paired
tests and the gallery; the shipped kinds answer the same interface."""

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from facexai import subjects
from facexai.aggregate import summarise
from facexai.attributions.run import explain_shard
from facexai.attributions.store import read_shard
from facexai.data.samples import read_rows, to_model_input
from facexai.metrics.run import metric_table
from facexai.stats import beats_random, method_comparisons
from facexai.subjects.base import Explained, Scored, SubjectKind, outcomes
from facexai.tasks import ClassTask

SIZE, LABELS = 16, 8
SETTINGS = {"mass": "positive", "q": 10, "pointing_tolerance": 0, "batch_size": 64,
            "deletion": {"steps": 2, "baseline": "black"}, "road": {"percentages": [50], "noise": 0.0},
            "occlusion": {"fill": "blur"},
            "falsification": {"k": 2, "high": 0.7, "low": 0.3, "fraction": 0.5, "q": 10},
            "sanity": {"stages": 1, "max_samples": 2}}


def quadrant_network() -> nn.Module:
    """Output k (0..3): the mean brightness of quadrant k (row-major) of the image. Its weights are
    fixed, not drawn: the sanity check's randomised copy differs from it."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1 / 3)
        conv.bias.zero_()
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()


def quadrant_masks(quadrants, size: int) -> np.ndarray:
    masks = np.zeros((len(quadrants), size, size), bool)
    half = size // 2
    for i, q in enumerate(quadrants):
        r, c = divmod(int(q), 2)
        masks[i, r * half:(r + 1) * half, c * half:(c + 1) * half] = True
    return masks


class Quadrants(SubjectKind):
    """The toy kind: each image of the shard x each configured quadrant; the expected region is the
    quadrant; truth: the quadrant is brighter than the image's mean."""

    name = "toy_quadrants"
    key_columns = ("id", "quadrant")

    def explained(self, inputs, *, name, selection, shard, n_shards, dev):
        with h5py.File(inputs["data"], "r") as h5:
            rows = np.array_split(np.arange(len(h5["ids"])), n_shards)[shard]
            ids = read_rows(h5, "ids", rows)
        table = pd.DataFrame([(int(r), int(i), q) for r, i in zip(rows, ids) for q in selection["quadrants"]],
                             columns=["row", "id", "quadrant"])
        with h5py.File(inputs["data"], "r") as h5:
            images = read_rows(h5, "images", table["row"].to_numpy())
        net, targets = quadrant_network(), torch.from_numpy(table["quadrant"].to_numpy())
        return Explained(images=images, seeds=table["id"].to_numpy(), label_rows=table["row"].to_numpy(),
                         task=lambda a, b: ClassTask(net, targets[a:b], probability=True),
                         columns={"row": table["row"].to_numpy(np.int64), "ids": table["id"].to_numpy(np.int64),
                                  "quadrant": table["quadrant"].to_numpy(np.int64)},
                         attrs={"model": name}, desc=f"quadrants shard {shard}")

    def scored(self, shard, inputs, *, regions, settings, attribute_regions=None):
        quadrants = shard["quadrant"]
        with h5py.File(inputs["data"], "r") as h5:
            images = read_rows(h5, "images", shard["row"])
        mean = images.mean(axis=(1, 2, 3))
        brighter = quadrant_masks(quadrants, SIZE)[..., None] * images
        truth = brighter.sum(axis=(1, 2, 3)) / (SIZE * SIZE * 3 / 4) > mean
        net = quadrant_network()

        def load(dev):
            return net, images, lambda network, sel: ClassTask(network, torch.from_numpy(quadrants[sel]))

        # no named region of the label maps: the quadrant is the expected region
        return Scored(columns={"id": shard["ids"], "quadrant": quadrants, "region": "",
                               "score": shard["score"], "outcome": outcomes(truth, shard["score"] > 0.5)},
                      masks=quadrant_masks(quadrants, LABELS), load=load)


@pytest.fixture
def toy_kind():
    kind = subjects.register(Quadrants())
    yield kind
    subjects.unregister(kind.name)


def make_data(path, n: int = 8):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        h5["images"] = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
        h5["ids"] = np.arange(100, 100 + n)
        h5["labels"] = np.zeros((n, LABELS, LABELS), np.uint8)
        h5.attrs["image_size"], h5.attrs["mask_size"] = SIZE, LABELS


def test_a_toy_subject_kind_goes_through_every_consumer(toy_kind, tmp_path):
    from facexai.gallery import gallery_data
    from facexai.map_figures import overlay_figure

    make_data(tmp_path / "d.h5")
    selection = {"quadrants": [0, 3]}
    tables, files = [], {}
    for method, params in (("integrated_gradients", {"n_steps": 4}), ("random", {})):
        for shard in (0, 1):
            out = tmp_path / f"{method}_{shard}.h5"
            n = explain_shard(toy_kind.name, {"data": tmp_path / "d.h5"}, out, name="toy", method=method,
                              params=params, shard=shard, n_shards=2, selection=selection, batch_size=3,
                              progress=False)
            assert n == 8  # 4 images x 2 quadrants
            files.setdefault(("toy", method), []).append(out)
            tables.append(metric_table(toy_kind.name, {"attributions": out, "data": tmp_path / "d.h5"},
                                       tmp_path / f"{method}_{shard}.csv", regions={}, settings=SETTINGS))
    # the attribution file: the kind's own columns, the score of the task it built
    shard = read_shard(files[("toy", "integrated_gradients")][1])
    assert list(shard["quadrant"]) == [0, 3] * 4 and list(shard["ids"]) == [104, 104, 105, 105, 106, 106, 107, 107]
    assert shard.model == "toy" and shard.attrs["not_applicable"] == ""
    with h5py.File(tmp_path / "d.h5", "r") as h5:
        x = to_model_input(h5["images"][4:])
    with torch.no_grad():
        brightness = quadrant_network()(x).numpy()  # (4 images, 4 quadrants)
    np.testing.assert_allclose(shard["score"], 1 / (1 + np.exp(-brightness[np.repeat(np.arange(4), 2), [0, 3] * 4])),
                               rtol=1e-5)
    # the network reads only the quadrant: integrated gradients from black puts all its mass there,
    # RP = 1; the random baseline spreads it, RP near the quadrant's share 1/4
    table = pd.concat(tables, ignore_index=True)
    assert {"id", "quadrant", "rp", "lift", "deletion_auc", "sanity_spearman", "outcome"} <= set(table.columns)
    ours, random = table[table["method"] == "integrated_gradients"], table[table["method"] == "random"]
    np.testing.assert_allclose(ours["rp"], 1.0)
    assert abs(random["rp"].mean() - 0.25) < 0.1 and (random["rp"] < 0.6).all()
    assert ours["sanity_checked"].sum() == 2 * 2  # two per shard
    # occluding anything but the quadrant (the kind's expected region) leaves the score as it is
    np.testing.assert_allclose(table["drop_background"], 0.0, atol=1e-6)
    # maps are seeded by the kind's seeds (sample ids), not by position: one shard gives the same maps
    explain_shard(toy_kind.name, {"data": tmp_path / "d.h5"}, tmp_path / "one.h5", name="toy", method="random",
                  params={}, shard=0, n_shards=1, selection=selection, batch_size=5, progress=False)
    np.testing.assert_array_equal(read_shard(tmp_path / "one.h5").maps,
                                  np.concatenate([read_shard(f).maps for f in files[("toy", "random")]]))
    # aggregate tables and the paired tests by image, rows matched by the kind's key (id, quadrant)
    assert subjects.row_key(table) == ["model", "id", "quadrant"]
    summary = summarise(table, ["model", "method", "quadrant"], n_resamples=50)
    assert len(summary) == 4 and set(summary["n_images"]) == {8}
    verdicts = beats_random(table, ["rp"])
    row = verdicts[verdicts["method"] == "integrated_gradients"].iloc[0]
    assert row["n_images"] == 8 and row["n_rows"] == 16 and bool(row["beats_random"])
    assert method_comparisons(table, ["rp"]).iloc[0]["n_images"] == 8
    # the gallery: one card per (id, quadrant), each with both methods' maps
    data = gallery_data([tmp_path / f"{m}_{s}.csv" for m in ("integrated_gradients", "random") for s in (0, 1)],
                        files, {"toy": tmp_path / "d.h5"}, regions={})
    assert len(data["decisions"]) == 16 and data["methods"] == ["integrated_gradients", "random"]
    assert all(set(d["methods"]) == {"integrated_gradients", "random"} for d in data["decisions"])
    assert data["attributes"] == [0, 3] and data["names"] == {"attribute": "quadrant"}
    card = next(d for d in data["decisions"] if (d["id"], d["attribute"]) == (105, 3))
    assert card["methods"]["integrated_gradients"]["metrics"]["rp"] == pytest.approx(1.0)
    # the overlay figure: rows named by the kind's key, the same decision for every method
    assert read_shard(files[("toy", "random")][0]).keys()[:2] == [(100, 0), (100, 3)]
    drawn = overlay_figure(tmp_path / "d.h5", {m: files[("toy", m)] for m in ("integrated_gradients", "random")},
                           tmp_path / "overlay.png", n_samples=3)
    assert drawn == 3 and (tmp_path / "overlay.png").stat().st_size > 0


def test_the_kinds_are_registered_once_and_named():
    assert set(subjects.KINDS) == {"attributes", "pairs"}
    with pytest.raises(KeyError, match="no subject kind 'nope'"):
        subjects.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        subjects.register(subjects.get("pairs"))


def test_row_keys_of_the_shipped_kinds():
    attributes = pd.DataFrame(columns=["model", "method", "id", "attribute", "region", "rp"])
    pairs = pd.DataFrame(columns=["model", "method", "id", "partner_id", "kind", "region", "rp"])
    assert subjects.row_key(attributes) == ["model", "id", "attribute"]
    assert subjects.row_key(pairs) == ["model", "id", "partner_id", "region"]
    assert subjects.row_key(pairs.drop(columns="region")) == ["model", "id", "partner_id"]
    assert subjects.row_key(pd.DataFrame(columns=["method", "id", "rp"])) == ["id"]
