import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from facexai.data import synthetic as syn
from facexai.data.celebamask import read_annotations, scan_mask_files
from facexai.labels import (ATTRIBUTE_INDEX, ATTRIBUTE_NAMES, CLASS_INDEX, DEFAULT_ATTRIBUTE_REGIONS,
                            DEFAULT_REGIONS, MASK_CLASSES)

from conftest import small_config

ACCESSORIES = {"Eyeglasses", "Wearing_Hat", "Wearing_Earrings", "Wearing_Necklace", "Bangs"}


def tree_digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_layout_matches_celebamask_hq(synthetic_root):
    cfg = small_config()
    assert sorted(p.name for p in synthetic_root.iterdir()) == sorted([
        "CelebA-HQ-img", "CelebAMask-HQ-mask-anno", "CelebAMask-HQ-attribute-anno.txt",
        "CelebAMask-HQ-pose-anno.txt", "CelebA-HQ-to-CelebA-mapping.txt", "identity_CelebA.txt",
        "synthetic-meta.json", "synthetic-pairs.txt"])
    lines = (synthetic_root / "CelebAMask-HQ-attribute-anno.txt").read_text().splitlines()
    assert lines[0] == str(cfg.n_images)
    assert lines[1].split() == list(ATTRIBUTE_NAMES)
    assert lines[2].startswith("0.jpg ")
    ann = read_annotations(synthetic_root, synthetic_root / "identity_CelebA.txt")
    assert list(ann.ids) == list(range(cfg.n_images))
    assert set(np.unique(ann.attributes)) == {-1, 1}
    assert len(np.unique(ann.identity)) == cfg.n_identities
    for i in range(cfg.n_images):
        with Image.open(synthetic_root / "CelebA-HQ-img" / f"{i}.jpg") as im:
            assert im.format == "JPEG" and im.size == (cfg.image_size, cfg.image_size)
    files, problems = scan_mask_files(synthetic_root, ann.ids)
    assert problems == []
    for i, classes in files.items():
        assert {"skin", "nose", "neck", "cloth"} <= set(classes)
        assert {"u_lip", "l_lip"} & set(classes)
        hat = ann.attributes[i, ATTRIBUTE_INDEX["Wearing_Hat"]] > 0
        assert ("hat" in classes) == hat  # absent accessory -> no file, as in the real dataset
        for path in classes.values():
            with Image.open(path) as im:
                assert im.size == (cfg.mask_size, cfg.mask_size)


def test_odd_mask_files_exist(synthetic_root):
    modes = set()
    values = set()
    for path in (synthetic_root / "CelebAMask-HQ-mask-anno" / "0").iterdir():
        with Image.open(path) as im:
            modes.add(im.mode)
            values.update(np.unique(np.asarray(im)).tolist())
    assert "RGB" in modes and "L" in modes
    assert values - {0, 255}, "some masks should use values other than 255 (the reader thresholds > 0)"


def test_generation_is_deterministic(tmp_path):
    cfg = small_config(n_images=8, n_identities=3)
    a = syn.generate(cfg, tmp_path / "a", progress=False)
    b = syn.generate(syn.SyntheticConfig(**{**cfg.__dict__, "workers": 2}), tmp_path / "b", progress=False)
    c = syn.generate(syn.SyntheticConfig(**{**cfg.__dict__, "seed": cfg.seed + 1}), tmp_path / "c",
                     progress=False)
    assert tree_digest(a) == tree_digest(b)  # independent of the number of workers
    assert tree_digest(a) != tree_digest(c)


def test_identities_recur_with_pose_changes(synthetic_root):
    ann = read_annotations(synthetic_root, synthetic_root / "identity_CelebA.txt")
    counts = np.bincount(np.unique(ann.identity, return_inverse=True)[1])
    assert counts.min() >= 1 and counts.max() >= 2
    ident = ann.identity[np.argmax(np.bincount(np.unique(ann.identity, return_inverse=True)[1])[
        np.unique(ann.identity, return_inverse=True)[1]])]
    poses = ann.pose[ann.identity == ident]
    assert np.ptp(poses[:, 0]) > 1.0  # same person, different yaw


def _region_of(labels, attribute):
    classes = DEFAULT_REGIONS[DEFAULT_ATTRIBUTE_REGIONS[attribute]]
    return np.isin(labels, [CLASS_INDEX[c] for c in classes])


@pytest.mark.parametrize("attribute", sorted(syn.SIGNAL_ATTRIBUTES))
def test_each_attribute_changes_pixels_only_inside_its_region(attribute):
    k = ATTRIBUTE_INDEX[attribute]
    changed_somewhere = 0
    for i in range(12):
        rng = np.random.default_rng([99, i])
        identity, scene = syn.draw_identity(rng), syn.draw_scene(rng, 96)
        attrs = syn.draw_attributes(rng)
        on, off = attrs.copy(), attrs.copy()
        on[k], off[k] = 1, -1
        img_on, lab_on = syn.render_face(identity, scene, on, 96)
        img_off, lab_off = syn.render_face(identity, scene, off, 96)
        diff = np.abs(img_on - img_off).max(axis=2) > 0
        changed_somewhere += diff.sum()
        assert not (diff & ~_region_of(lab_on, attribute)).any(), f"{attribute} changed pixels outside its region"
        if attribute not in ACCESSORIES:
            assert not (diff & ~_region_of(lab_off, attribute)).any()
            assert (_region_of(lab_on, attribute) == _region_of(lab_off, attribute)).all()
    assert changed_somewhere > 0, f"{attribute} carries no signal"


def test_non_signal_attributes_change_nothing():
    rng = np.random.default_rng(5)
    identity, scene, attrs = syn.draw_identity(rng), syn.draw_scene(rng, 64), syn.draw_attributes(rng)
    flipped = attrs.copy()
    for name in ATTRIBUTE_NAMES:
        if name not in syn.SIGNAL_ATTRIBUTES:
            flipped[ATTRIBUTE_INDEX[name]] *= -1
    a, _ = syn.render_face(identity, scene, attrs, 64)
    b, _ = syn.render_face(identity, scene, flipped, 64)
    assert np.array_equal(a, b)


def test_image_agrees_with_fused_masks():
    """The label map the renderer paints by equals official-order fusion of its class masks."""
    rng = np.random.default_rng(7)
    identity, scene, attrs = syn.draw_identity(rng), syn.draw_scene(rng, 64), syn.draw_attributes(rng)
    _, labels = syn.render_face(identity, scene, attrs, 64)
    u, v = syn.face_coordinates(scene, 64)
    masks = syn.FaceShapes(identity, scene, attrs).class_masks(u, v)
    expected = np.zeros((64, 64), np.uint8)
    for index, name in enumerate(MASK_CLASSES, start=1):
        expected[masks[name]] = index
    assert np.array_equal(labels, expected)
    overlap = sum(m.astype(int) for m in masks.values())
    assert (overlap > 1).any(), "class masks should overlap somewhere, as real annotations do"


def test_shortcut_tint_correlates_in_train_split_only(tmp_path):
    cfg = small_config(n_images=300, n_identities=40, image_size=32, mask_size=16, seed=1,
                       shortcut_attribute="Smiling", shortcut_strength=0.95, workers=2)
    root = syn.generate(cfg, tmp_path / "s", progress=False)
    meta = json.loads((root / "synthetic-meta.json").read_text())
    tint = np.array(meta["shortcut_tint"], bool)
    test = np.array(meta["test_split"], bool)
    ann = read_annotations(root)
    smiling = ann.attributes[:, ATTRIBUTE_INDEX["Smiling"]] > 0
    train_agree = (tint[~test] == smiling[~test]).mean()
    test_agree = (tint[test] == smiling[test]).mean()
    assert train_agree > 0.9
    assert 0.3 < test_agree < 0.7
    # the tint only touches background pixels
    rng = np.random.default_rng(0)
    identity, scene, attrs = syn.draw_identity(rng), syn.draw_scene(rng, 64), syn.draw_attributes(rng)
    a, labels = syn.render_face(identity, scene, attrs, 64, shortcut_tint=True)
    b, _ = syn.render_face(identity, scene, attrs, 64, shortcut_tint=False)
    diff = np.abs(a - b).max(axis=2) > 0
    assert diff.any() and not (diff & (labels != 0)).any()


def test_masks_of_ids_from_2000_go_to_folder_1(tmp_path):
    cfg = small_config(n_images=2003, n_identities=50, image_size=32, mask_size=16, workers=2,
                       odd_mask_fraction=0.0)
    root = syn.generate(cfg, tmp_path / "big", progress=False)
    folder0 = root / "CelebAMask-HQ-mask-anno" / "0"
    folder1 = root / "CelebAMask-HQ-mask-anno" / "1"
    ids0 = {int(p.name[:5]) for p in folder0.iterdir()}
    ids1 = {int(p.name[:5]) for p in folder1.iterdir()}
    assert max(ids0) == 1999 and ids1 == {2000, 2001, 2002}
    assert (folder1 / "02001_skin.png").is_file()


def test_region_pairs_differ_only_in_their_region(tmp_path):
    cfg = small_config(n_images=30, n_identities=6, region_pairs=10, image_size=64, mask_size=32)
    root = syn.generate(cfg, tmp_path / "p", progress=False)
    lines = (root / syn.PAIRS_FILE).read_text().splitlines()
    assert lines[0] == "id_a id_b region attribute" and len(lines) == 11
    ann = read_annotations(root, root / "identity_CelebA.txt")
    assert len(ann.ids) == 40 and len(list((root / "CelebA-HQ-img").iterdir())) == 40
    meta = json.loads((root / "synthetic-meta.json").read_text())
    plan = syn._plan(cfg)
    for line in lines[1:]:
        a, b, region, attribute = line.split()
        a, b = int(a), int(b)
        assert b >= 30 and ann.identity[a] == ann.identity[b] and meta["test_split"][a] == meta["test_split"][b] == 1
        k = ATTRIBUTE_INDEX[attribute]
        assert ann.attributes[a, k] == -ann.attributes[b, k]
        assert (np.delete(ann.attributes[a], k) == np.delete(ann.attributes[b], k)).all()
        assert np.allclose(ann.pose[a], ann.pose[b])
        renders = []
        for i in (a, b):
            identity, scene, attrs, tint = syn._sample(cfg, plan, i)
            renders.append(syn.render_face(identity, scene, attrs, 64, shortcut_tint=tint))
        diff = np.abs(renders[0][0] - renders[1][0]).max(axis=2) > 0
        on = renders[0][1] if ann.attributes[a, k] > 0 else renders[1][1]
        classes = [CLASS_INDEX[c] for c in DEFAULT_REGIONS[region]]
        assert diff.any() and not (diff & ~np.isin(on, classes)).any()
