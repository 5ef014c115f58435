import h5py
import numpy as np
from PIL import Image

from facexai.labels import CLASS_INDEX
from facexai.labels import MASS_PARTS
from facexai.metric_figures import mass_shares, twin_figure
from facexai.attributions.store import make_shard


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


def test_twin_figure_draws_both_models(tmp_path):
    labels = np.stack([_labels()] * 4)
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["labels"] = labels
    paths = {}
    for model, region in (("fair", "u_lip"), ("biased", "background")):
        maps = np.stack([(lab == CLASS_INDEX[region]).astype(np.float16) for lab in labels])
        path = tmp_path / f"{model}.h5"
        make_shard(path, maps, method="gradcam", model=model, attribute=["Smiling", "Smiling", "Smiling", "Bangs"])
        paths[(model, "gradcam")] = [path]
    out = tmp_path / "twin.png"
    twin_figure({"fair": tmp_path / "d.h5", "biased": tmp_path / "d.h5"}, paths, [("fair", "biased")], "Smiling", out)
    with Image.open(out) as image:
        assert image.size[0] > 200 and len(image.convert("RGB").getcolors(1 << 20)) > 20
    assert (tmp_path / "twin.pdf").read_bytes().startswith(b"%PDF")
