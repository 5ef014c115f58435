import h5py
import numpy as np
from PIL import Image

import pandas as pd
import pytest

from facexai.attributions.store import make_shard
from facexai.labels import CLASS_INDEX, MASS_PARTS
from facexai.metric_figures import twin_figure
from facexai.metrics.localisation import mass_shares
from facexai.twins import twin_shift, write_twin_shift


def _labels():
    labels = np.zeros((8, 8), np.uint8)          # background
    labels[2:6, 2:6] = CLASS_INDEX["skin"]
    labels[4, 3:5] = CLASS_INDEX["u_lip"]
    labels[0, :] = CLASS_INDEX["hair"]
    return labels


def test_mass_shares_partition_the_map():
    labels = np.stack([_labels()] * 3)
    maps = np.stack([np.ones((8, 8)), (labels[1] == CLASS_INDEX["u_lip"]).astype(float), np.zeros((8, 8))])
    shares = mass_shares(maps, labels)
    parts = list(MASS_PARTS)
    np.testing.assert_allclose(shares[0].sum(), 1.0)
    # a uniform map: each part's share is its area share
    assert shares[0, parts.index("hair")] == 8 / 64 and shares[0, parts.index("mouth")] == 2 / 64
    assert shares[1, parts.index("mouth")] == 1.0
    assert np.isnan(shares[2]).all()               # no mass: undefined, not 0
    # every class belongs to exactly one part
    classes = [c for cs in MASS_PARTS.values() for c in cs]
    assert sorted(classes) == sorted(CLASS_INDEX) and len(classes) == len(set(classes))


def _twin_inputs(tmp_path, n=6):
    """Fair maps on the lips, biased maps on the background, for 5 Smiling decisions and 1 Bangs."""
    labels = np.stack([_labels()] * n)
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["labels"] = labels
    paths = {}
    for model, region in (("fair", "u_lip"), ("biased", "background")):
        maps = np.stack([(lab == CLASS_INDEX[region]).astype(np.float16) for lab in labels])
        maps[0] = 0.0 if model == "biased" else maps[0]      # one biased map without mass
        path = tmp_path / f"{model}.h5"
        make_shard(path, maps, method="gradcam", model=model, attribute=["Smiling"] * (n - 1) + ["Bangs"])
        paths[(model, "gradcam")] = [path]
    return {"fair": tmp_path / "d.h5", "biased": tmp_path / "d.h5"}, paths


def test_twin_shift_table_by_hand(tmp_path):
    data, paths = _twin_inputs(tmp_path)
    table = twin_shift(data, paths, [("fair", "biased")], "Smiling", n_resamples=200).set_index("part")
    assert list(table.index) == list(MASS_PARTS) and (table["unit"] == "image").all()
    assert table.loc["mouth", "fair_mean"] == 1.0 and table.loc["background", "biased_mean"] == 1.0
    assert table.loc["background", "difference_mean"] == pytest.approx(1.0)
    assert table.loc["mouth", "difference_mean"] == pytest.approx(-1.0)
    # 5 Smiling decisions each; the biased map without mass is counted and left out of the pairs
    assert table.loc["mouth", "fair_n_images"] == 5 and table.loc["mouth", "biased_n_no_mass"] == 1
    assert table.loc["mouth", "n_paired"] == 4


def test_twin_shift_per_group_by_hand(tmp_path):
    """Within each group's members and the rest: the same table on those images only."""
    from facexai.labels import ATTRIBUTE_INDEX
    from facexai.twins import twin_shift_by_group

    data, paths = _twin_inputs(tmp_path)
    attributes = -np.ones((6, 40), np.int8)
    attributes[[0, 1, 2], ATTRIBUTE_INDEX["Male"]] = 1    # ids 0-2 members (0: the biased map without mass)
    with h5py.File(tmp_path / "d.h5", "a") as h5:
        h5["ids"], h5["attributes"] = np.arange(6), attributes
    table = twin_shift_by_group(data, paths, [("fair", "biased")], "Smiling", ["Male"], n_resamples=100)
    assert list(table.columns[4:6]) == ["group", "member"] and len(table) == 2 * len(MASS_PARTS)
    mouth = table[table["part"] == "mouth"].set_index("member")
    assert mouth.loc["yes", "fair_n_images"] == 3 and mouth.loc["no", "fair_n_images"] == 2   # id 5 is Bangs
    assert mouth.loc["yes", "biased_n_no_mass"] == 1 and mouth.loc["yes", "n_paired"] == 2
    assert mouth.loc["no", "n_paired"] == 2 and mouth.loc["no", "difference_mean"] == pytest.approx(-1.0)
    overall = twin_shift(data, paths, [("fair", "biased")], "Smiling", n_resamples=100)
    assert overall["fair_n_images"].iloc[0] == 5   # the two sides partition the decisions


def test_twin_figure_draws_both_models(tmp_path):
    data, paths = _twin_inputs(tmp_path)
    write_twin_shift(data, paths, [("fair", "biased")], "Smiling", tmp_path / "twin.csv", n_resamples=100)
    assert len(pd.read_csv(tmp_path / "twin.csv")) == len(MASS_PARTS)
    out = tmp_path / "twin.png"
    twin_figure(tmp_path / "twin.csv", out)
    with Image.open(out) as image:
        assert image.size[0] > 200 and len(image.convert("RGB").getcolors(1 << 20)) > 20
    assert (tmp_path / "twin.pdf").read_bytes().startswith(b"%PDF")


def test_pair_figure_shows_each_swapped_region_before_a_second_pair_of_one():
    from facexai.map_figures import choose_pairs

    pairs = [(0, "genuine", ""), (1, "genuine", ""), (2, "genuine", ""),
             (3, "swap", "eyes"), (4, "swap", "eyes"), (5, "swap", "eyes"), (6, "swap", "nose"), (7, "swap", "mouth"),
             (8, "impostor", "")]
    assert choose_pairs(pairs, 3) == [0, 1, 2, 3, 6, 7, 8]
    assert choose_pairs(pairs, 4) == [0, 1, 2, 3, 4, 6, 7, 8]  # then the next pairs in order
    assert choose_pairs(pairs, 1) == [0, 3, 8]
