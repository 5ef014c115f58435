"""Reader and fusion: precedence, absent classes, bad input of every kind, shards and merge."""

import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

from facexai.data.celebamask import read_annotations
from facexai.data.fusion import fuse_masks, fuse_shard, merge_shards, read_bad_samples
from facexai.errors import BadInputError
from facexai.labels import CLASS_INDEX, CLASS_NAMES

from conftest import independent_refusion, small_config


@pytest.fixture
def root(synthetic_root, tmp_path):
    copy = tmp_path / "CelebAMask-HQ"
    shutil.copytree(synthetic_root, copy)
    return copy


def fuse(root, tmp_path, positions=None, on_bad="error", workers=1, name="out"):
    ann = read_annotations(root, root / "identity_CelebA.txt")
    positions = range(len(ann.ids)) if positions is None else positions
    out, bad = tmp_path / f"{name}.h5", tmp_path / f"{name}.bad.tsv"
    n = fuse_shard(root, ann, positions, out, bad, image_size=16, mask_size=small_config().mask_size,
                   on_bad_sample=on_bad, workers=workers, progress=False)
    return n, out, bad


def _save_mask(path, array):
    Image.fromarray(array.astype(np.uint8), "L").save(path)


def test_precedence_on_a_hand_made_overlap(tmp_path):
    """skin everywhere, nose over a square, hair over the nose's right half: later classes win."""
    skin = np.full((4, 4), 255)
    nose = np.zeros((4, 4))
    nose[1:3, 1:3] = 255
    hair = np.zeros((4, 4))
    hair[:, 2:] = 255
    files = {}
    for name, array in {"skin": skin, "nose": nose, "hair": hair}.items():
        files[name] = tmp_path / f"00000_{name}.png"
        _save_mask(files[name], array)
    labels = fuse_masks(files, 4)
    s, n, h = CLASS_INDEX["skin"], CLASS_INDEX["nose"], CLASS_INDEX["hair"]
    expected = np.array([[s, s, h, h],
                         [s, n, h, h],
                         [s, n, h, h],
                         [s, s, h, h]])
    assert np.array_equal(labels, expected)
    # the order of the dict does not matter: the class order does
    assert np.array_equal(fuse_masks(dict(reversed(list(files.items()))), 4), expected)


def test_rgb_and_grey_masks_are_thresholded_above_zero(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (0, 0, 7)
    Image.fromarray(rgb, "RGB").save(tmp_path / "00000_nose.png")
    grey = np.zeros((4, 4), np.uint8)
    grey[3, 3] = 1
    _save_mask(tmp_path / "00000_hat.png", grey)
    labels = fuse_masks({"nose": tmp_path / "00000_nose.png", "hat": tmp_path / "00000_hat.png"}, 4)
    assert labels[0, 0] == CLASS_INDEX["nose"] and labels[3, 3] == CLASS_INDEX["hat"]
    assert (labels != 0).sum() == 2


def test_fused_labels_equal_an_independent_refusion(root, tmp_path):
    n, out, bad = fuse(root, tmp_path, workers=2)
    ann = read_annotations(root)
    assert n == len(ann.ids)
    with h5py.File(out) as h5:
        assert list(h5["ids"][:]) == list(ann.ids)
        labels = h5["labels"][:]
        for k, sample_id in enumerate(ann.ids):
            assert np.array_equal(labels[k], independent_refusion(root, sample_id, labels.shape[1]))
        assert np.array_equal(h5["attributes"][:], ann.attributes)
        assert h5["images"].shape == (n, 16, 16, 3) and h5["images"].dtype == np.uint8
        assert h5["images"].chunks == (1, 16, 16, 3) and h5["images"].compression == "gzip"
        assert list(h5.attrs["class_names"]) == list(CLASS_NAMES)
        assert "identity" in h5 and h5.attrs["source_root"] == str(root)
    assert read_bad_samples(bad) == []


def test_absent_classes_are_not_errors(root, tmp_path):
    for path in (root / "CelebAMask-HQ-mask-anno" / "0").glob("00002_*.png"):
        if not path.name.endswith("_skin.png"):
            path.unlink()
    n, out, _ = fuse(root, tmp_path)
    with h5py.File(out) as h5:
        assert set(np.unique(h5["labels"][2])) <= {0, CLASS_INDEX["skin"]}


def test_shards_merge_to_the_single_shard_result(root, tmp_path):
    _, whole, _ = fuse(root, tmp_path, name="whole")
    parts = [fuse(root, tmp_path, positions=range(a, b), name=f"p{a}") for a, b in ((0, 10), (10, 24))]
    merged = tmp_path / "merged.h5"
    merge_shards([p[1] for p in parts], merged, [p[2] for p in parts], tmp_path / "merged.tsv")
    with h5py.File(whole) as a, h5py.File(merged) as b:
        for name in ("images", "labels", "attributes", "pose", "ids", "identity", "celeba_index"):
            assert np.array_equal(a[name][:], b[name][:]), name


def test_images_are_resized_with_antialiasing(root, tmp_path):
    _, out, _ = fuse(root, tmp_path)
    with h5py.File(out) as h5:
        small = h5["images"][0].astype(float)
    with Image.open(root / "CelebA-HQ-img" / "0.jpg") as im:
        full = np.asarray(im, dtype=float)
    block_means = full.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))
    naive = full[::4, ::4]
    # an antialiased reduction is close to the block means; point sampling is not
    assert np.abs(small - block_means).mean() < 0.5 * np.abs(naive - block_means).mean()


# --------------------------------------------------------------------------- bad input


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


BAD_CASES = {
    "missing image": lambda r: ((r / "CelebA-HQ-img" / "5.jpg").unlink(), r / "CelebA-HQ-img" / "5.jpg")[1],
    "truncated jpg": lambda r: (_truncate(r / "CelebA-HQ-img" / "5.jpg"), r / "CelebA-HQ-img" / "5.jpg")[1],
    "truncated png": lambda r: (_truncate(r / "CelebAMask-HQ-mask-anno/0/00005_skin.png"),
                                r / "CelebAMask-HQ-mask-anno/0/00005_skin.png")[1],
    "wrong mask size": lambda r: (_save_mask(r / "CelebAMask-HQ-mask-anno/0/00005_nose.png", np.zeros((7, 7))),
                                  r / "CelebAMask-HQ-mask-anno/0/00005_nose.png")[1],
    "unknown class": lambda r: (shutil.copy(r / "CelebAMask-HQ-mask-anno/0/00005_skin.png",
                                            r / "CelebAMask-HQ-mask-anno/0/00005_beard.png"),
                                r / "CelebAMask-HQ-mask-anno/0/00005_beard.png")[1],
    "wrong folder": lambda r: ((r / "CelebAMask-HQ-mask-anno/1").mkdir(),
                               shutil.move(r / "CelebAMask-HQ-mask-anno/0/00005_skin.png",
                                           r / "CelebAMask-HQ-mask-anno/1/00005_skin.png"),
                               r / "CelebAMask-HQ-mask-anno/1/00005_skin.png")[2],
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sample_stops_the_run_naming_the_file(root, tmp_path, case):
    bad_file = BAD_CASES[case](root)
    with pytest.raises(BadInputError) as info:
        fuse(root, tmp_path, workers=2)
    assert str(bad_file) in str(info.value)
    assert "sample 5" in str(info.value)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]
    assert leftovers == [], "nothing half-written may be left behind"


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sample_is_skipped_and_listed(root, tmp_path, case):
    bad_file = BAD_CASES[case](root)
    n, out, bad = fuse(root, tmp_path, on_bad="skip", workers=2)
    rows = read_bad_samples(bad)
    assert [(r[0], r[1]) for r in rows] == [(5, str(bad_file))]
    assert rows[0][2]  # a problem description
    with h5py.File(out) as h5:
        assert n == 23 and 5 not in h5["ids"][:]
        assert h5["labels"].shape[0] == h5["attributes"].shape[0] == 23


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("\n1.jpg ", "\n1.png ", 1), "expected '{id}.jpg'"),
    (lambda t: t.replace(" -1", " 0", 1), "must be 1 or -1"),
    (lambda t: "25" + t[2:], "line 1 says 25"),
    (lambda t: t.replace("Smiling", "Smilng"), "unknown: ['Smilng']"),
])
def test_bad_attribute_file_names_file_and_line(root, edit, message):
    path = root / "CelebAMask-HQ-attribute-anno.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(BadInputError) as info:
        read_annotations(root)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_annotation_file(root):
    (root / "CelebAMask-HQ-pose-anno.txt").unlink()
    with pytest.raises(BadInputError, match="CelebAMask-HQ-pose-anno.txt: file not found"):
        read_annotations(root)
