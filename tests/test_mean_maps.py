"""Aligned mean maps: the normalisation by hand, the part frequencies by hand, and a method planted in
one region whose mean map peaks there while a random control's does not."""

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from facexai.attributions.store import make_shard
from facexai.labels import ATTRIBUTE_INDEX, CLASS_INDEX, MASS_PARTS
from facexai.mean_maps import (ALL, EXPECTED, mean_map_figure, mean_maps, normalised_mass, part_frequency,
                               write_mean_maps)

from conftest import REPO

LABELS, SIZE = 16, 32


def test_normalised_mass_by_hand():
    maps = np.array([[[1.0, 3.0], [0.0, -2.0]], [[0.0, 0.0], [0.0, -1.0]], [[1.0, np.nan], [0.0, 0.0]]])
    out = normalised_mass(maps, 2)
    np.testing.assert_allclose(out[0], [[0.25, 0.75], [0.0, 0.0]])
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()  # no mass; not finite
    np.testing.assert_allclose(normalised_mass(maps[:1], 2, "absolute")[0], [[1 / 6, 3 / 6], [0, 2 / 6]])


def test_part_frequency_by_hand():
    labels = np.zeros((4, 2, 2), np.uint8)
    labels[:3, 0, 0] = CLASS_INDEX["nose"]       # 3 of 4 images have the nose at (0, 0)
    labels[0, 1, 1] = CLASS_INDEX["hat"]
    regions = {"nose": ["nose"], "hat": ["hat"]}
    frequency = part_frequency(labels, regions, "nose")
    np.testing.assert_allclose(frequency["nose"], [[0.75, 0], [0, 0]])
    np.testing.assert_allclose(frequency["hat"], [[0, 0], [0, 0.25]])
    np.testing.assert_allclose(frequency[EXPECTED], frequency["nose"])
    np.testing.assert_allclose(frequency["background"], [[0.25, 1], [1, 0.75]])
    assert set(MASS_PARTS) < set(frequency) and not part_frequency(labels, regions, None)[EXPECTED].any()


@pytest.fixture
def planted(tmp_path):
    """12 aligned faces (eyes, nose, mouth at slightly jittered places), two methods: one that puts its
    mass on the eyes of each image, one random; one decision of the planted method has an all-zero map."""
    rng = np.random.default_rng(0)
    n = 12
    labels = np.full((n, LABELS, LABELS), CLASS_INDEX["skin"], np.uint8)
    labels[:, :2] = CLASS_INDEX["hair"]
    for i in range(n):
        dy, dx = rng.integers(-1, 2, 2)
        labels[i, 5 + dy:7 + dy, 3 + dx:6 + dx] = CLASS_INDEX["l_eye"]
        labels[i, 5 + dy:7 + dy, 10 + dx:13 + dx] = CLASS_INDEX["r_eye"]
        labels[i, 8:10, 7:9] = CLASS_INDEX["nose"]
        labels[i, 12:13, 5:11] = CLASS_INDEX["mouth"]
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["images"] = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
        h5["labels"], h5["ids"] = labels, np.arange(100, 100 + n)
        attributes = -np.ones((n, 40), np.int8)
        attributes[::2, ATTRIBUTE_INDEX["Pale_Skin"]] = 1   # the even images are the group's members
        h5["attributes"] = attributes
        h5.attrs["mask_size"], h5.attrs["image_size"] = LABELS, SIZE
    eyes = np.isin(labels, [CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"]])
    planted_maps = np.kron(eyes, np.ones((2, 2))).astype(np.float32) * rng.uniform(0.5, 1.5, (n, 1, 1))
    planted_maps[3] = 0.0
    outcome = np.where(np.arange(n) < 8, "TP", "FN")
    csvs = []
    for method, maps in (("planted", planted_maps), ("random", rng.random((n, SIZE, SIZE)))):
        make_shard(tmp_path / f"{method}.h5", maps, method=method, model="m", ids=np.arange(100, 100 + n))
        pd.DataFrame({"model": "m", "method": method, "id": np.arange(100, 100 + n), "attribute": "Eyeglasses",
                      "outcome": outcome}).to_csv(tmp_path / f"{method}.csv", index=False)
        csvs.append(tmp_path / f"{method}.csv")
    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    out, shares = mean_maps(tmp_path / "d.h5", {m: [tmp_path / f"{m}.h5"] for m in ("planted", "random")}, csvs,
                            model="m", regions=config["regions"], attribute_regions=config["attribute_regions"],
                            groups=["Pale_Skin"], n_resamples=200)
    return tmp_path, out, shares, eyes


def test_a_method_planted_in_one_region_peaks_there(planted):
    tmp, out, shares, eyes = planted
    frequency = out["frequency"][("Eyeglasses", ALL, ALL)]
    peak = np.unravel_index(np.nanargmax(out["maps"][("planted", "Eyeglasses", ALL, ALL)]), (LABELS, LABELS))
    assert frequency["eyes"][peak] >= 0.5 and frequency[EXPECTED][peak] >= 0.5
    # the mean map is a distribution: it sums to one; the random control's is flat, not at the eyes
    np.testing.assert_allclose(np.nansum(out["maps"][("planted", "Eyeglasses", ALL, ALL)]), 1.0)
    control = out["maps"][("random", "Eyeglasses", ALL, ALL)]
    assert control.max() < 2 / LABELS ** 2 and control[eyes.mean(axis=0) >= 0.5].sum() < 0.2

    def share(method, part, value=ALL, split=None):
        row = shares[(shares["method"] == method) & (shares["part"] == part) & (shares["value"] == value)
                     & (shares["split"] == (split or ("outcome" if value in ("TP", "FN") else ALL)))]
        assert len(row) == 1
        return row.iloc[0]

    eyes_share = share("planted", "eyes")
    assert eyes_share["expected"] and eyes_share["region"] == "eyes"
    assert eyes_share["share_mean"] == pytest.approx(1.0) and eyes_share["share_ci_low"] > 0.99
    # the all-zero map enters no mean and is counted
    assert (eyes_share["n_images"], eyes_share["n_no_mass"]) == (11, 1)
    random = share("random", "eyes")
    assert random["n_no_mass"] == 0 and random["share_ci_high"] < 0.3
    # each image's shares sum to one over the parts
    total = shares[(shares["method"] == "random") & (shares["value"] == ALL)]["share_mean"].sum()
    assert total == pytest.approx(1.0)
    # by outcome: the 8 TP and 4 FN decisions apart (the zero map is a TP)
    assert share("planted", "eyes", "TP")["n_images"] == 7 and share("planted", "eyes", "FN")["n_images"] == 4
    # by group: the 6 even images and the 6 odd ones (the zero map, image 3, is odd)
    assert share("planted", "eyes", "yes", "Pale_Skin")["n_images"] == 6
    assert share("planted", "eyes", "no", "Pale_Skin")[["n_images", "n_no_mass"]].tolist() == [5, 1]
    assert ("planted", "Eyeglasses", "Pale_Skin", "yes") in out["maps"]


def test_mean_maps_are_written_and_drawn(planted):
    tmp, out, shares, _ = planted
    write_mean_maps(out, tmp / "m.h5")
    with h5py.File(tmp / "m.h5", "r") as h5:
        keys = list(zip(*(h5[c][:].astype(str) for c in ("method", "attribute", "split", "value"))))
        k = keys.index(("planted", "Eyeglasses", ALL, ALL))
        np.testing.assert_allclose(h5["maps"][k], out["maps"][keys[k]], rtol=1e-6)
        assert h5["n_images"][k] == 11 and h5["frequency"].shape[1] == len(MASS_PARTS) + 1
        assert h5["mean_image"].shape[1:] == (SIZE, SIZE, 3)
    assert mean_map_figure(out, shares, tmp / "mean.png", model="m") == 2
    assert (tmp / "mean.png").stat().st_size > 0 and (tmp / "mean.pdf").stat().st_size > 0


def test_a_decision_without_a_metric_row_is_refused_naming_it(planted, tmp_path):
    tmp = planted[0]
    pd.DataFrame({"model": "m", "method": "planted", "id": [100], "attribute": "Eyeglasses",
                  "outcome": "TP"}).to_csv(tmp / "short.csv", index=False)
    with pytest.raises(ValueError, match=r"11 explained decisions have no row in the metric tables \(e.g. planted, "
                                         r"id 101, Eyeglasses\)"):
        mean_maps(tmp / "d.h5", {"planted": [tmp / "planted.h5"]}, [tmp / "short.csv"], model="m", regions={},
                  attribute_regions={})


def test_the_gallery_view_reads_the_written_mean_maps(planted):
    from facexai.mean_maps import gallery_view, outlined, read_mean_maps

    tmp, out, shares, _ = planted
    write_mean_maps(out, tmp / "m.h5")
    back = read_mean_maps(tmp / "m.h5")
    assert set(back["maps"]) == set(out["maps"]) and back["n"] == out["n"]
    np.testing.assert_allclose(back["frequency"][("Eyeglasses", ALL, ALL)]["eyes"],
                               out["frequency"][("Eyeglasses", ALL, ALL)]["eyes"], rtol=1e-6)
    shares.to_csv(tmp / "shares.csv", index=False)
    entries, pictures = gallery_view({"m": tmp / "m.h5"}, {"m": tmp / "shares.csv"})
    # all decisions and the group's two sides, not the outcomes (in the table); each with its picture
    assert {(e["split"], e["value"]) for e in entries} == {(ALL, ALL), ("Pale_Skin", "yes"), ("Pale_Skin", "no")}
    assert all(e["picture"] in pictures and pictures[e["picture"]].startswith("data:image/png") for e in entries)
    planted_all = next(e for e in entries if e["method"] == "planted" and e["split"] == ALL)
    assert planted_all["region"] == "eyes" and planted_all["n"] == 11 and planted_all["share"][0] == pytest.approx(1)
    # the outline: the border of the half-frequency area, in orange, nothing else changed
    frequency = np.zeros((4, 4))
    frequency[1:3, 1:3] = 1
    drawn = outlined(np.zeros((8, 8, 3), np.uint8), frequency)
    assert (drawn.any(axis=2)).sum() == 12 and not drawn[3:5, 3:5].any()   # a 4 x 4 square's 12 border pixels


def test_each_split_averages_its_own_images(planted):
    """Members' maps on the eyes, the others' on the mouth: each side's mean map peaks in its own
    region, and its mean image and part frequencies are those of its own images."""
    tmp = planted[0]
    with h5py.File(tmp / "d.h5", "r") as h5:
        labels, images = h5["labels"][:], h5["images"][:]
    n = len(labels)
    member = np.arange(n) % 2 == 0
    eyes = np.isin(labels, [CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"]])
    mouth = labels == CLASS_INDEX["mouth"]
    maps = np.kron(np.where(member[:, None, None], eyes, mouth), np.ones((2, 2))).astype(np.float32)
    make_shard(tmp / "split.h5", maps, method="split", model="m", ids=np.arange(100, 100 + n))
    pd.DataFrame({"model": "m", "method": "split", "id": np.arange(100, 100 + n), "attribute": "Eyeglasses",
                  "outcome": "TP"}).to_csv(tmp / "split.csv", index=False)
    out, _ = mean_maps(tmp / "d.h5", {"split": [tmp / "split.h5"]}, [tmp / "split.csv"], model="m",
                       regions={"eyes": ["l_eye", "r_eye"]}, attribute_regions={"Eyeglasses": "eyes"},
                       groups=["Pale_Skin"], n_resamples=50)
    for side, region, rows in (("yes", eyes, member), ("no", mouth, ~member)):
        mean = out["maps"][("split", "Eyeglasses", "Pale_Skin", side)]
        assert region[rows].mean(axis=0)[np.unravel_index(np.argmax(mean), mean.shape)] >= 0.5
        np.testing.assert_allclose(mean, (region[rows] / region[rows].sum(axis=(1, 2), keepdims=True)).mean(axis=0))
        group = ("Eyeglasses", "Pale_Skin", side)
        np.testing.assert_allclose(out["frequency"][group]["mouth"], mouth[rows].mean(axis=0))
        np.testing.assert_array_equal(out["mean_image"][group], images[rows].mean(axis=0).round().astype(np.uint8))
