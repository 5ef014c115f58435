"""The gallery's content, built from hand-made files (the browser test is in test_workflow.py)."""

import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from facexai.gallery import build_gallery, gallery_data
from facexai.render import heat_of, label_rgb, overlay_rgb
from facexai.labels import CLASS_INDEX
from facexai.attributions.store import make_shard

REGIONS = {"mouth": ["mouth", "u_lip", "l_lip"], "hat": ["hat"]}


def test_heat_of_follows_the_mass_mode_and_refuses_maps_without_mass():
    a = np.array([[2.0, -4.0], [0.0, 1.0]])
    assert np.allclose(heat_of(a, "positive"), [[1, 0], [0, 0.5]])
    assert np.allclose(heat_of(a, "absolute"), [[0.5, 1], [0, 0.25]])
    assert np.allclose(heat_of(a, "negative"), [[0, 1], [0, 0]])
    assert heat_of(np.zeros((2, 2))) is None
    assert heat_of(-np.ones((2, 2)), "positive") is None
    assert heat_of(np.array([[np.nan, 1.0]])) is None


def test_overlay_and_label_pictures():
    image = np.full((8, 8, 3), 200, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = overlay_rgb(image, heat)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[7, 7])  # hot corner differs from the cold one
    grey = overlay_rgb(np.dstack([np.full((4, 4), v, np.uint8) for v in (30, 60, 90)]), None)
    assert (grey == 60).all()
    labels = np.array([[CLASS_INDEX["mouth"], CLASS_INDEX["skin"]]])
    rgb = label_rgb(labels, [CLASS_INDEX["mouth"]])
    assert rgb[0, 1].astype(int).sum() > rgb[0, 0].astype(int).sum()  # outside the region: faded to white


@pytest.fixture()
def small_inputs(tmp_path):
    n = 3
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "data.h5", "w") as h5:
        h5["images"] = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
        labels = np.full((n, 8, 8), CLASS_INDEX["skin"], np.uint8)
        labels[:, 5:, 2:6] = CLASS_INDEX["mouth"]
        labels[:, :2] = CLASS_INDEX["hat"]
        h5["labels"] = labels
    tables, attributions = [], {}
    for method in ("a", "b"):
        maps = rng.normal(size=(n, 8, 8)).astype(np.float16)
        if method == "b":
            maps[1] = 0  # no mass
        path = tmp_path / f"{method}.h5"
        make_shard(path, maps, method=method, model="m", ids=[10, 11, 12], row=[0, 1, 2],
                   attribute=["Smiling", "Smiling", "Wearing_Hat"], score=[0.9, 0.8, 0.7])
        attributions[("m", method)] = [path]
        table = pd.DataFrame({"model": "m", "method": method, "id": [10, 11, 12],
                              "attribute": ["Smiling", "Smiling", "Wearing_Hat"], "region": ["mouth", "mouth", "hat"],
                              "rp": [0.5, np.nan if method == "b" else 0.25, 0.125], "lift": [2.0, 1.0, 0.5],
                              "degenerate": ["", "all-zero map" if method == "b" else "", ""]})
        table.to_csv(tmp_path / f"{method}.csv", index=False)
        tables.append(tmp_path / f"{method}.csv")
    return tables, attributions, {"m": tmp_path / "data.h5"}


def test_gallery_data_keeps_undefined_values_undefined(small_inputs):
    tables, attributions, data = small_inputs
    d = gallery_data(tables, attributions, data, regions=REGIONS)
    assert d["methods"] == ["a", "b"] and d["models"] == ["m"]
    assert [(x["id"], x["attribute"], x["region"]) for x in d["decisions"]] == [
        (10, "Smiling", "mouth"), (11, "Smiling", "mouth"), (12, "Wearing_Hat", "hat")]
    second = d["decisions"][1]["methods"]
    assert second["b"]["metrics"]["rp"] is None  # NaN stays undefined, never 0
    assert second["b"]["degenerate"] == "all-zero map"
    assert second["a"]["metrics"] == {"rp": 0.25, "lift": 1.0}
    # one picture per image and per (image, region) label map, one per map
    keys = d["pictures"].keys()
    assert sum(k.startswith("map:") for k in keys) == 6
    assert sum(k.startswith("img:") for k in keys) == 3
    assert all(v.startswith("data:image/png;base64,") for v in d["pictures"].values())
    assert d["sortable"] == {"rp": 1, "lift": 1}


def test_gallery_html_is_self_contained(small_inputs, tmp_path):
    tables, attributions, data = small_inputs
    out = tmp_path / "g" / "index.html"
    assert build_gallery(tables, attributions, data, out, regions=REGIONS) == 3
    html = out.read_text()
    payload = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1)
    parsed = json.loads(payload.replace("<\\/", "</"), parse_constant=lambda c: pytest.fail(f"{c} in the data"))
    assert len(parsed["decisions"]) == 3
    # nothing fetched from elsewhere: no http(s) sources, stylesheets or scripts by URL
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert list(out.parent.iterdir()) == [out]  # written atomically: no temporary left behind


def test_overlay_figure_draws_the_configured_samples_and_names_unknown_ids(small_inputs, tmp_path):
    from PIL import Image

    from facexai.map_figures import overlay_figure

    tables, attributions, data = small_inputs
    per_method = {method: paths for (_, method), paths in attributions.items()}
    assert overlay_figure(data["m"], per_method, tmp_path / "o.png", ids=[12, 10]) == 2
    assert overlay_figure(data["m"], per_method, tmp_path / "o.png", n_samples=1) == 1
    with Image.open(tmp_path / "o.png") as im:
        assert im.size[0] > im.size[1]  # one row, four columns
    assert (tmp_path / "o.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"figures.overlay_ids: sample id\(s\) \[99\]"):
        overlay_figure(data["m"], per_method, tmp_path / "o.png", ids=[99])


def test_gallery_cap_takes_each_attribute_in_turn(small_inputs):
    tables, attributions, data = small_inputs
    d = gallery_data(tables, attributions, data, regions=REGIONS, max_per_model=2)
    assert [(x["id"], x["attribute"]) for x in d["decisions"]] == [(10, "Smiling"), (12, "Wearing_Hat")]
    assert sum(k.startswith("map:") for k in d["pictures"]) == 4
    full = gallery_data(tables, attributions, data, regions=REGIONS)
    assert full["pictures"]["map:m:b:12:Wearing_Hat"] == d["pictures"]["map:m:b:12:Wearing_Hat"]
