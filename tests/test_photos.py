"""Photo folders as datasets: dlib alignment, landmark part masks, the layout the reader reads, and a
whole config/photos.yaml run on real public-domain photos (facexai/data/photos/)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO, has_dlib_extra

dlib = pytest.importorskip("dlib")
if not has_dlib_extra():  # find_spec: the package's __init__ needs pkg_resources, which may be absent
    pytest.skip("needs the dlib extra (face-recognition-models)", allow_module_level=True)

from facexai.data import landmark_masks as lm  # noqa: E402
from facexai.data.demo_photos import write_demo_folder  # noqa: E402
from facexai.data.photos.align import AlignSettings, FaceAligner, apply_affine, chip_affine  # noqa: E402
from facexai.data.photos.decode import decode_photo  # noqa: E402
from facexai.data.photos.folder import (list_photos, read_identities, read_photo_attributes,  # noqa: E402
                                        shard_photos)
from facexai.data.photos.layout import assemble_layout  # noqa: E402
from facexai.data.photos.shards import align_shard  # noqa: E402
from facexai.errors import BadInputError  # noqa: E402

SETTINGS = AlignSettings(chip_size=256, padding=0.5, detect_size=512, min_score=0.3, mask_size=128)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    write_demo_folder(folder)
    return folder


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner(SETTINGS)


@pytest.fixture(scope="module")
def faces(demo, aligner):
    return {f: aligner(decode_photo(demo / f)) for f in list_photos(demo)}


def test_demo_folder_is_two_people_twice(demo):
    photos = list_photos(demo)
    assert len(photos) == 4
    assert read_identities(demo, photos) == ["astronaut", "astronaut", "grace_hopper", "grace_hopper"]
    first, second = (np.asarray(Image.open(demo / f), float) for f in photos[:2])
    # the second photo is the mirror image, darker towards its right
    assert np.corrcoef(first[:, ::-1].ravel(), second.ravel())[0, 1] > 0.9
    assert second[:, -50:].mean() < first[:, ::-1][:, -50:].mean()


def test_chip_is_dlibs_get_face_chip(demo, aligner):
    for f in list_photos(demo):
        image = decode_photo(demo / f)
        detections = aligner.detect(image)
        assert len(detections) == 1, f
        face = aligner.align(image, detections[0])
        reference = dlib.get_face_chip(image, aligner.five(image, detections[0][0]), size=SETTINGS.chip_size,
                                       padding=SETTINGS.padding)
        assert face.chip.shape == (SETTINGS.chip_size, SETTINGS.chip_size, 3)
        np.testing.assert_array_equal(face.chip, reference)


def test_chip_affine_maps_a_marked_pixel_to_where_dlib_puts_it(demo, aligner):
    """A bright 3x3 dot at a known photo position lands in dlib's chip where our affine map says."""
    image = decode_photo(demo / "astronaut.jpg")
    box, score = aligner.detect(image)[0]
    details = dlib.get_face_chip_details(aligner.five(image, box), SETTINGS.chip_size, SETTINGS.padding)
    m = chip_affine(details)
    for x, y in [(200, 120), (250, 150), (215, 160)]:
        marked = np.zeros_like(image)
        marked[y - 1:y + 2, x - 1:x + 2] = 255
        chip = np.asarray(dlib.extract_image_chip(marked, details)).astype(float).sum(axis=2)
        rows, cols = np.nonzero(chip > 0.2 * chip.max())
        weights = chip[rows, cols]
        found = np.array([np.average(cols, weights=weights), np.average(rows, weights=weights)])
        np.testing.assert_allclose(apply_affine(m, [(x, y)])[0], found, atol=0.75)


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return cols.mean(), rows.mean()


@pytest.mark.parametrize("photo", ["astronaut.jpg", "astronaut_mirrored_relit.jpg", "grace_hopper.jpg",
                                   "grace_hopper_mirrored_relit.jpg"])
def test_masks_are_anatomically_sane(faces, photo):
    masks = lm.landmark_masks(faces[photo].landmarks, SETTINGS.chip_size, SETTINGS.mask_size)
    assert set(masks) == set(lm.LANDMARK_CLASSES)
    for name, mask in masks.items():
        assert mask.any(), f"{photo}: {name} is empty"
    c = {name: _centroid(mask) for name, mask in masks.items()}
    eyes_y = (c["l_eye"][1] + c["r_eye"][1]) / 2
    assert c["l_brow"][1] < c["l_eye"][1] and c["r_brow"][1] < c["r_eye"][1]
    assert eyes_y < c["nose"][1] < c["u_lip"][1] < c["mouth"][1] < c["l_lip"][1]
    # l_ = the subject's left = the image's right, as CelebAMask-HQ has it (CELEBAMASK_SIDES)
    assert c["r_eye"][0] < c["nose"][0] < c["l_eye"][0]
    assert c["r_brow"][0] < c["l_brow"][0]
    rows, cols = np.nonzero(masks["skin"])
    for name, mask in masks.items():
        r, k = np.nonzero(mask)
        assert rows.min() <= r.min() and r.max() <= rows.max() and cols.min() <= k.min() and k.max() <= cols.max(), name
    # skin holds none of the other parts; the eye holes are inside the face
    others = np.any([m for n, m in masks.items() if n != "skin"], axis=0)
    assert not (masks["skin"] & others).any()
    # the aligned face is upright and centred (dlib's template): eyes level, nose near the middle
    assert abs(c["l_eye"][1] - c["r_eye"][1]) < 0.04 * SETTINGS.mask_size
    assert abs(c["nose"][0] - SETTINGS.mask_size / 2) < 0.08 * SETTINGS.mask_size


# iBUG 68-point left/right mirror permutation
MIRROR = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
          + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
          + [64, 63, 62, 61, 60, 67, 66, 65])


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_mirrored_landmarks_give_mirrored_masks_with_sides_swapped(faces):
    assert sorted(MIRROR) == list(range(68))
    size = SETTINGS.mask_size
    points = faces["grace_hopper.jpg"].landmarks
    mirrored = points[MIRROR].copy()
    mirrored[:, 0] = (SETTINGS.chip_size - 1) - mirrored[:, 0]
    a = lm.landmark_masks(points, SETTINGS.chip_size, size)
    b = lm.landmark_masks(mirrored, SETTINGS.chip_size, size)
    swap = {"l_eye": "r_eye", "r_eye": "l_eye", "l_brow": "r_brow", "r_brow": "l_brow"}
    for name in lm.LANDMARK_CLASSES:
        assert _iou(b[name], a[swap.get(name, name)][:, ::-1]) > 0.85, name


def test_mask_area_is_the_polygon_area():
    """Hand-computable: a square mouth of side 20 px (chip) drawn at half scale covers ~10 x 10 px."""
    points = np.zeros((68, 2))
    points[lm.JAW] = np.c_[np.linspace(10, 90, 17), 60 + 25 * np.sin(np.linspace(0, np.pi, 17))]
    points[lm.L_BROW] = np.c_[np.linspace(20, 40, 5), np.full(5, 25)]
    points[lm.R_BROW] = np.c_[np.linspace(60, 80, 5), np.full(5, 25)]
    points[lm.L_EYE] = [(22, 35), (26, 32), (34, 32), (38, 35), (34, 38), (26, 38)]
    points[lm.R_EYE] = [(62, 35), (66, 32), (74, 32), (78, 35), (74, 38), (66, 38)]
    points[lm.BRIDGE] = np.c_[np.full(4, 50), np.linspace(35, 55, 4)]
    points[lm.NOSTRILS] = np.c_[np.linspace(44, 56, 5), np.full(5, 58)]
    points[48:60] = np.c_[np.linspace(35, 65, 12), np.full(12, 68)]
    points[lm.MOUTH] = [(40, 70), (45, 70), (50, 70), (55, 70), (60, 70), (60, 90), (50, 90), (40, 90)]
    masks = lm.landmark_masks(points, chip_size=100, mask_size=50)
    # the opening spans x 40..60, y 70..90 chip pixels; pixel centres map as (x + 0.5) / 2 - 0.5, so
    # x 19.75..29.75 and y 34.75..44.75 in the mask: the centres of columns 20..29 and rows 35..44
    assert masks["mouth"].sum() == 100
    rows, cols = np.nonzero(masks["mouth"])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (35, 44, 20, 29)
    # eyes: hexagons 16 wide, 6 high: 16 * 6 - 4 * (4 * 3 / 2) = 72 chip px, i.e. about 18 mask px; the
    # right eye is the left one moved by 40 chip = 20 mask px, so its mask has the same pixel count
    assert 12 <= masks["l_eye"].sum() <= 30 and masks["l_eye"].sum() == masks["r_eye"].sum()


def test_scanline_fill_matches_skimage_and_a_hand_count():
    """fill_polygon against skimage.draw.polygon (a peer rasteriser: same even-odd rule on pixel
    centres) on random, self-intersecting polygons partly off the canvas, and on a square."""
    from skimage.draw import polygon

    rng = np.random.default_rng(0)
    for _ in range(200):
        size = int(rng.integers(10, 120))
        xy = rng.uniform(-10, size + 10, (int(rng.integers(3, 15)), 2))
        reference = np.zeros((size, size), bool)
        rows, cols = polygon(xy[:, 1], xy[:, 0], shape=reference.shape)
        reference[rows, cols] = True
        np.testing.assert_array_equal(lm.fill_polygon(xy, size), reference)
    square = lm.fill_polygon(np.array([[2.5, 3.5], [6.5, 3.5], [6.5, 5.5], [2.5, 5.5]]), 10)
    assert square.sum() == 8 and square[4:6, 3:7].all()  # centres x 3..6, y 4..5
    assert not lm.fill_polygon(np.array([[1.0, 1.0], [8.0, 1.0], [8.0, 1.0]]), 10).any()  # no area


def test_no_face_several_faces_and_undecodable_are_bad_input(tmp_path, demo):
    folder = tmp_path / "bad"
    folder.mkdir()
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(folder / "grey.png")
    a = np.asarray(Image.open(demo / "astronaut.jpg"))
    g = np.asarray(Image.open(demo / "grace_hopper.jpg").resize((512, 512)))
    Image.fromarray(np.concatenate([a, g], axis=1)).save(folder / "two.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.open(demo / "astronaut.jpg").save(folder / "zz_ok.jpg")
    photos = shard_photos(list_photos(folder), 0, 10)
    # the detector sees faces from about 80 px: on the 1024-px side-by-side photo, detect at full size
    settings = AlignSettings(chip_size=256, padding=0.5, detect_size=1024, min_score=0.3, mask_size=128)
    with pytest.raises(BadInputError, match="broken.jpg: cannot decode"):
        align_shard(folder, photos, tmp_path / "shard_error", settings, on_bad_sample="error", progress=False)
    assert not (tmp_path / "shard_error").exists()  # nothing half-written
    rows = align_shard(folder, photos, tmp_path / "shard", settings, on_bad_sample="skip", progress=False)
    status = {r["file"]: (r["status"], r["problem"]) for r in rows}
    assert status["grey.png"][0] == "bad" and "no face" in status["grey.png"][1]
    assert status["two.jpg"][0] == "bad" and status["two.jpg"][1].startswith("2 faces found")
    assert status["broken.jpg"][0] == "bad"
    assert status["zz_ok.jpg"] == ("ok", "")
    assert sorted(p.name for p in (tmp_path / "shard" / "CelebA-HQ-img").iterdir()) == ["3.jpg"]
    with pytest.raises(BadInputError, match="two.jpg: 2 faces found"):
        align_shard(folder, [p for p in photos if p[1] == "two.jpg"], tmp_path / "e2", settings, progress=False)


def test_identities_from_table_bare_names_or_subfolders(tmp_path):
    for f in ["a/x.jpg", "a/y.jpg", "b/z.jpg"]:
        (tmp_path / f).parent.mkdir(exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    photos = list_photos(tmp_path)
    assert photos == ["a/x.jpg", "a/y.jpg", "b/z.jpg"]
    assert read_identities(tmp_path, photos) == ["a", "a", "b"]  # LFW layout: the folder is the person
    (tmp_path / "identities.tsv").write_text("a/x.jpg\tp1\ny.jpg\tp1\nz.jpg\tp2\n")
    assert read_identities(tmp_path, photos) == ["p1", "p1", "p2"]
    (tmp_path / "identities.tsv").write_text("a/x.jpg\tp1\ny.jpg\tp1\n")
    with pytest.raises(BadInputError, match="identities.tsv: no identity for photo b/z.jpg"):
        read_identities(tmp_path, photos)
    (tmp_path / "identities.tsv").write_text("a/x.jpg p1\n")
    with pytest.raises(BadInputError, match="line 1: expected 'file<TAB>identity'"):
        read_identities(tmp_path, photos)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "one.jpg").write_bytes(b"")
    assert read_identities(flat, ["one.jpg"]) is None


def test_attribute_table_in_celebas_format(tmp_path):
    from facexai.labels import ATTRIBUTE_NAMES

    (tmp_path / "attributes.txt").write_text(
        f"2\n{' '.join(ATTRIBUTE_NAMES)}\nx.jpg {' '.join(['1'] * 40)}\ny.jpg {' '.join(['-1'] * 39)} 1\n")
    values = read_photo_attributes(tmp_path, ["x.jpg", "y.jpg"])
    assert values.shape == (2, 40) and values[0].min() == 1 and values[1, -1] == 1 and values[1, 0] == -1
    with pytest.raises(BadInputError, match="no attributes for photo z.jpg"):
        read_photo_attributes(tmp_path, ["x.jpg", "z.jpg"])
    assert read_photo_attributes(tmp_path / "nowhere", ["x.jpg"]) is None


def test_group_table_fills_the_attribute_columns(tmp_path):
    from facexai.data.photos.folder import read_photo_groups, with_groups
    from facexai.labels import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES

    photos = ["a/x.jpg", "b/x.jpg", "y.jpg", "z.jpg"]
    (tmp_path / "groups.tsv").write_text("file\tYoung\tMale\na/x.jpg\tyes\tno\nb/x.jpg\t-1\t\ny.jpg\tunknown\t1\n")
    groups = read_photo_groups(tmp_path, photos)
    assert groups["Young"].tolist() == [1, -1, 0, 0] and groups["Male"].tolist() == [-1, 0, 1, 0]   # z.jpg: unknown
    filled = with_groups(None, groups, len(photos), photos, tmp_path)
    assert filled[:, ATTRIBUTE_INDEX["Young"]].tolist() == [1, -1, 0, 0] and filled.sum() == 1 - 1 - 1 + 1
    # beside attributes.txt: the same value is fine, another one is refused naming both files
    given = np.zeros((4, 40), np.int8)
    given[0, ATTRIBUTE_INDEX["Young"]] = 1
    assert with_groups(given, groups, 4, photos, tmp_path)[0, ATTRIBUTE_INDEX["Young"]] == 1
    given[2, ATTRIBUTE_INDEX["Male"]] = -1
    with pytest.raises(BadInputError, match=r"groups.tsv: y.jpg: Male is 1 here and -1 in attributes.txt"):
        with_groups(given, groups, 4, photos, tmp_path)
    for text, message in (("file\tTall\nx.jpg\tyes\n", r"not attributes: \['Tall'\]"),
                          ("file\tYoung\ny.jpg\tmaybe\n", r"line 2: expected a file and 1 value"),
                          ("file\tYoung\nq.jpg\tyes\n", r"1 listed file\(s\) not in the folder"),
                          ("file\tYoung\nx.jpg\tyes\n", r"not in the folder \(or a bare name shared"),
                          ("file\tYoung\ny.jpg\tyes\ny.jpg\tno\n", r"y.jpg has two different rows: lines 2 and 3")):
        (tmp_path / "groups.tsv").write_text(text)
        with pytest.raises(BadInputError, match=message):
            read_photo_groups(tmp_path, photos)
    assert read_photo_groups(tmp_path / "nowhere", photos) is None
    assert len(ATTRIBUTE_NAMES) == 40


def test_a_pool_of_workers_aligns_as_one_process(tmp_path, demo):
    """align_shard with two worker processes: the same manifest rows, in photo order, and the same
    files, byte for byte, as one process (a bad photo among them, skipped in both)."""
    folder = tmp_path / "photos"
    shutil.copytree(demo, folder)
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(folder / "empty_wall.png")
    photos = shard_photos(list_photos(folder), 0, 10)
    rows = {w: align_shard(folder, photos, tmp_path / f"w{w}", SETTINGS, on_bad_sample="skip", workers=w,
                           progress=False) for w in (1, 2)}
    assert rows[1] == rows[2] and [r["id"] for r in rows[2]] == list(range(len(photos)))
    assert sum(r["status"] == "bad" for r in rows[2]) == 1

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    one, two = files(tmp_path / "w1"), files(tmp_path / "w2")
    assert len(one) > 5 and one == two


def test_layout_is_read_by_the_celebamask_reader(tmp_path, demo):
    from facexai.data.celebamask import read_annotations
    from facexai.data.fusion import fuse_shard, read_bad_samples

    folder = tmp_path / "photos"
    write_demo_folder(folder)
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(folder / "empty_wall.png")
    with open(folder / "identities.tsv", "a") as fh:
        fh.write("empty_wall.png\tnobody\n")
    photos = list_photos(folder)
    shards = [tmp_path / f"shard{k}" for k in range(3)]
    for k, shard in enumerate(shards):
        align_shard(folder, shard_photos(photos, k, 2), shard, SETTINGS, on_bad_sample="skip", progress=False)
    root = tmp_path / "CelebAMask-HQ"
    summary = assemble_layout(folder, shards, root)
    assert summary == {"photos": 5, "aligned": 4, "bad": 1, "identities": 2, "identities_given": True,
                       "attributes_given": False, "groups_given": [], "small_faces": 0, "min_face_size": 64,
                       "ignored_files": []}
    with pytest.raises(BadInputError, match="attribute values must be 1 or -1"):
        read_annotations(root)  # 0 = not annotated is refused in a CelebAMask-HQ folder ...
    ann = read_annotations(root, root / "identity_CelebA.txt", unannotated_ok=True)  # ... read from photos
    wall = photos.index("empty_wall.png")
    assert wall not in ann.ids.tolist() and len(ann.ids) == 4
    assert (ann.attributes == 0).all()  # not annotated, not guessed
    assert np.isnan(ann.pose[:, :2]).all() and np.isfinite(ann.pose[:, 2]).all()
    by_file = dict(zip(ann.ids.tolist(), ann.identity.tolist()))
    names = {f: i for i, f in enumerate(photos)}
    assert by_file[names["astronaut.jpg"]] == by_file[names["astronaut_mirrored_relit.jpg"]]
    assert by_file[names["astronaut.jpg"]] != by_file[names["grace_hopper.jpg"]]
    bad = read_bad_samples(root / "bad_photos.tsv")
    assert [(i, os.path.basename(f)) for i, f, _ in bad] == [(wall, "empty_wall.png")]
    written = fuse_shard(root, ann, range(4), tmp_path / "fused.h5", tmp_path / "bad.tsv", image_size=64,
                         mask_size=SETTINGS.mask_size, progress=False)
    assert written == 4
    import h5py

    from facexai.labels import CLASS_INDEX

    with h5py.File(tmp_path / "fused.h5", "r") as h5:
        labels = h5["labels"][:]
    present = set(np.unique(labels).tolist())
    assert {CLASS_INDEX[n] for n in lm.LANDMARK_CLASSES} <= present
    assert CLASS_INDEX["hair"] not in present and CLASS_INDEX["neck"] not in present


def test_pipeline_input_matches_dlibs_own_descriptor(demo, aligner, faces):
    """config/photos.yaml's dlib embedder (crop 0.75 of a padding-0.5 chip, resized to 150) sees the
    face as dlib's own recogniser does (its 150-px chip at padding 0.25): the descriptors agree far
    below dlib's same-person distance 0.6."""
    import torch

    from facexai.data.samples import to_model_input
    from facexai.models.dlib_resnet import default_model_path, load_dlib_face_resnet
    from facexai.models.embedders import DLIB_INPUT, EmbedderInput

    rec = dlib.face_recognition_model_v1(str(default_model_path()))
    net = EmbedderInput(load_dlib_face_resnet().eval(), DLIB_INPUT["input_size"], DLIB_INPUT["mean"],
                        DLIB_INPUT["std"], DLIB_INPUT["pixel_scale"], 0.75)
    for photo in ("astronaut.jpg", "grace_hopper.jpg"):
        small = np.array(Image.fromarray(faces[photo].chip).resize((192, 192), Image.Resampling.LANCZOS))
        with torch.no_grad():
            ours = net(to_model_input(small[None]))[0].numpy()
        image = decode_photo(demo / photo)
        box = aligner.detect(image)[0][0]
        own_chip = dlib.get_face_chip(image, aligner.five(image, box), size=150, padding=0.25)
        theirs = np.array(rec.compute_face_descriptor(own_chip))
        assert np.linalg.norm(ours - theirs) < 0.1, photo


FAST = """\
threads: 1
methods:
  corrrise: {n_masks: 200, cells: 6, p: 0.5, batch_size: 50}
metrics:
  deletion: {steps: 4, baseline: black}
  road: {percentages: [30, 70], noise: 0.01}
  falsification: {k: 3, high: 0.7, low: 0.3, fraction: 0.5}
  sanity: {stages: 2, max_samples: 2, smooth: {samples: 2, noise: 0.05, max_samples: 2}}
aggregate:
  bootstrap_resamples: 200
verification:
  explain:
    methods: [gradcam, corrrise, random, parts, difference]
    kinds: [swap, swap_control, triplet, genuine, impostor]
    max_pairs: 2
    shards: 1
    batch_size: 16
"""


@pytest.mark.slow
def test_photos_config_runs_end_to_end_on_real_photos(tmp_path):
    """config/photos.yaml on the demo folder plus a photo with no face: the dlib embedder accepts each
    mirrored, re-lit copy as its person and rejects the other person; swaps, their controls and triplets
    are made on the real photos; the faceless photo is listed as bad input."""
    folder = tmp_path / "photos"
    write_demo_folder(folder)
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(folder / "empty_wall.png")
    with open(folder / "identities.tsv", "a") as fh:
        fh.write("empty_wall.png\tnobody\n")
    # a group from groups.tsv (photos have no attributes.txt): the astronaut's two photos are members,
    # one of Grace Hopper's is not, her other one is of unknown membership
    names = sorted(p.name for p in folder.glob("*.jpg"))
    hopper = [n for n in names if not n.startswith("astronaut")]
    (folder / "groups.tsv").write_text("file\tYoung\n" + "".join(f"{n}\tyes\n" for n in names
                                                                  if n.startswith("astronaut"))
                                       + f"{hopper[0]}\tno\n{hopper[1]}\t\n")
    (tmp_path / "fast.yaml").write_text(FAST + "groups: [Young]\n")
    work = tmp_path / "run"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-s", f"{REPO}/Snakefile", "-d", str(work),
           "--config", f"dataset_root={folder}", "--configfile", f"{REPO}/config/photos.yaml",
           str(tmp_path / "fast.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = work / "results-photos"
    summary = json.loads((results / "photos/main/summary.json").read_text())
    assert (summary["photos"], summary["aligned"], summary["bad"]) == (5, 4, 1)
    bad = pd.read_csv(results / "data/main/bad_samples.tsv", sep="\t")
    assert len(bad) == 1 and bad["file"].iloc[0].endswith("empty_wall.png") and "no face" in bad["problem"].iloc[0]

    scores = pd.read_csv(results / "verification/dlib/scores.tsv", sep="\t", keep_default_na=False)
    distance = -scores["similarity"]
    genuine, impostor = distance[scores["kind"] == "genuine"], distance[scores["kind"] == "impostor"]
    assert len(genuine) == 2 and len(impostor) == 4
    assert genuine.max() < 0.6 < impostor.min()  # dlib's own same-person distance
    assert json.loads((results / "verification/dlib/eer.json").read_text())["eer"] == 0.0

    table = pd.read_csv(results / "tables/verification/dlib/localisation.csv")
    swap = table[(table["kind"] == "swap") & (table["unit"] == "image")]
    assert sorted(set(swap["region"])) == ["eyes", "mouth", "nose"]
    # the expected region is where the photos differ: the oracle that reads the difference has its mass
    # there (a check of the pairs' construction, not of any method)
    lift = swap.set_index(["method", "region"])["lift_mean"].astype(float)
    for region in ("eyes", "mouth", "nose"):
        assert lift[("difference", region)] > 3 * lift[("random", region)], region
        # the parts baseline reads each photo's own landmark masks (the runners pass them): its mass is
        # on the face parts, the swapped one among them
        assert lift[("parts", region)] > 1.5 * lift[("random", region)], region
    # controls and triplets on real photos: each person's mirrored copy is the other photo and the mate
    assert "swap_control" in set(table["kind"])
    counts = json.loads((results / "verification/dlib/eer.json").read_text())["triplets"]
    assert sorted(counts) == ["eyes", "mouth", "nose"] and all(c["made"] == 4 for c in counts.values())
    kept = sum(c["kept"] for c in counts.values())
    assert (table["kind"] == "triplet").any() == (kept > 0)
    print("dlib triplets kept per region:", {r: c["kept"] for r, c in counts.items()})
    for out in ("figures/verification_pairs_dlib.png", "gallery/verification_dlib.html"):
        assert (results / out).stat().st_size > 10_000, out
    assert not (results / "summary.json").exists()  # no attribute models, no attribute tables
    # per-group rows of the pairs, by the explained photo's membership from groups.tsv
    assert summary["groups_given"] == ["Young"]
    by_group = pd.read_csv(results / "tables/verification/dlib/localisation_by_group.csv")
    assert set(by_group["group"]) == {"Young"} and set(by_group["member"]) == {"yes", "no"}
    differences = pd.read_csv(results / "tables/verification/dlib/group_differences.csv")
    assert len(differences) and (differences["n_unknown"] > 0).any()
    from facexai.headlines import headlines

    text = headlines(results)
    assert "Photo folder: 5 photos, 4 aligned, 1 skipped as bad input" in text and "| dlib |" in text
    # and on the console at the end of the run, not only in a job's log
    assert "photos, 4 aligned, 1 skipped as bad input (listed in data/main/bad_samples.tsv)" in result.stderr


# CelebAMask-HQ's sides, from the dataset authors' own label maps (the four MaskGAN demo samples in
# their repository, switchablenorms/CelebAMask-HQ, encoded as their g_mask.py does: 4 l_eye,
# 5 r_eye, 6 l_brow, 7 r_brow, 8 l_ear, 9 r_ear): class centroid x in pixels of 512, over the four
# samples. l_ is the subject's left, i.e. the image's right. (The files are not redistributed here.)
CELEBAMASK_SIDES = {"l_eye": (317, 321), "r_eye": (192, 195), "l_brow": (310, 333), "r_brow": (182, 194),
                    "l_ear": (392, 412), "r_ear": (79, 117)}


def test_the_recorded_celebamask_sides_put_l_on_the_images_right():
    for left, right in (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")):
        assert min(CELEBAMASK_SIDES[left]) > 256 > max(CELEBAMASK_SIDES[right])


def test_l_is_the_subjects_left_in_the_synthetic_set_as_in_celebamask_hq(synthetic_root):
    """The synthetic set's mask files follow CELEBAMASK_SIDES: each l_ part lies to the image's right of
    its r_ twin, and on average on the image's right half (poses turn single faces a little)."""
    from facexai.data.celebamask import read_mask, scan_mask_files

    files, _ = scan_mask_files(synthetic_root, range(24))
    centroids = {"eye": [], "brow": [], "ear": []}
    for sample_id, classes in files.items():
        for part, found in centroids.items():
            if {f"l_{part}", f"r_{part}"} <= set(classes):
                left, right = (read_mask(classes[f"{s}_{part}"], 32) for s in ("l", "r"))
                if left.any() and right.any():
                    assert _centroid(right)[0] < _centroid(left)[0], (sample_id, part)
                    found.append((_centroid(left)[0], _centroid(right)[0]))
    for part, found in centroids.items():
        assert len(found) >= 5, (part, len(found))
        left_x, right_x = np.mean(found, axis=0)
        assert right_x < 16 < left_x, (part, left_x, right_x)


@pytest.mark.slow
def test_a_faceless_photo_stops_the_run_naming_it(tmp_path):
    """on_bad_sample: error (the default): the alignment job fails and its log names the photo and why;
    nothing downstream runs and no shard directory is left."""
    folder = tmp_path / "photos"
    write_demo_folder(folder)
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(folder / "wall.png")
    with open(folder / "identities.tsv", "a") as fh:
        fh.write("wall.png\tnobody\n")
    work = tmp_path / "run"
    work.mkdir()
    (tmp_path / "error.yaml").write_text("dataset: {on_bad_sample: error}\n")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-s", f"{REPO}/Snakefile", "-d", str(work),
           "--until", "assemble_photos", "--config", f"dataset_root={folder}",
           "--configfile", f"{REPO}/config/photos.yaml", str(tmp_path / "error.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    log = (work / "results-photos/logs/align_photos/main/0.log").read_text()
    assert f"{folder / 'wall.png'}: no face found" in log
    assert "align_photos" in result.stderr + result.stdout
    assert not (work / "results-photos/photos/main/shards/0").exists()
    assert not (work / "results-photos/data/main/dataset.h5").exists()
