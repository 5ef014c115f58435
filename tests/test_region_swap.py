"""Region-swap pairs and the pair store (facexai/data/pairs.py)."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from facexai.data.pairs import (SWAP_ID_OFFSET, build_swap_pairs, expected_regions, read_pair_images, swap_region,
                                to_label_size)
from facexai.labels import CLASS_INDEX
from facexai.models.verification import build_pairs


def test_swap_by_hand_feather_and_identity_outside():
    a = np.full((7, 7, 3), 10, np.uint8)
    b = np.full((7, 7, 3), 250, np.uint8)
    region = np.zeros((7, 7), bool)
    region[2:5, 2:5] = True  # a 3x3 square in A only; B has it at the same place
    swapped, union = swap_region(a, region, b, region, dilation=0, feather=1, blend="feather")
    assert np.array_equal(union, region)
    # distance to the outside: 1 on the square's ring, 2 at its centre; weight min(1, d / 2)
    assert swapped[3, 3, 0] == 250
    assert swapped[2, 2, 0] == round(0.5 * 250 + 0.5 * 10) == 130
    assert np.array_equal(swapped[~union], a[~union])
    # feather 0: B pasted as it is
    hard, _ = swap_region(a, region, b, region, dilation=0, feather=0, blend="feather")
    assert (hard[union] == 250).all() and (hard[~union] == 10).all()


def test_swap_changes_nothing_outside_the_dilated_union_of_both_regions():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    region_a = np.zeros((32, 32), bool)
    region_b = np.zeros((32, 32), bool)
    region_a[10:14, 5:12] = True
    region_b[11:16, 9:20] = True   # overlapping, not equal: the union is pasted
    swapped, union = swap_region(a, region_a, b, region_b, dilation=2, feather=2, blend="feather")
    expected = ndimage.binary_dilation(region_a | region_b, ndimage.generate_binary_structure(2, 1), iterations=2)
    assert np.array_equal(union, expected)
    assert np.array_equal(swapped[~union], a[~union])          # bit for bit outside U
    changed = (swapped != a).any(axis=2)
    assert changed[region_a | region_b].mean() > 0.9 and not changed[~union].any()
    # 3 px or more inside U (distance to the outside >= feather + 1) the pixels are B's
    core = ndimage.distance_transform_edt(union) >= 3
    assert np.array_equal(swapped[core], b[core])


def test_label_size_keeps_every_covered_pixel():
    mask = np.zeros((8, 8), bool)
    mask[3, 5] = True
    small = to_label_size(mask, 4)
    assert small.sum() == 1 and small[1, 2]
    assert to_label_size(mask, 16).sum() == 4


@pytest.mark.parametrize("labels, image", [(128, 96), (512, 112), (128, 160), (128, 64), (100, 64), (48, 48)])
def test_a_region_taken_to_the_image_and_back_loses_no_label_pixel(labels, image):
    """At any ratio of label to image size (the schema allows non-divisible ones), every label pixel
    of R lies inside the area pasted for it, even undilated (here: a single pixel, a one-pixel row)."""
    from facexai.data.pairs import resize_any

    rng = np.random.default_rng(labels * 1000 + image)
    for _ in range(20):
        region = np.zeros((labels, labels), bool)
        region[rng.integers(0, labels), rng.integers(0, labels)] = True
        row, start = rng.integers(0, labels, 2)
        region[row, start:start + rng.integers(1, 6)] = True
        at_image = resize_any(region, image)
        assert at_image.sum() <= region.sum() or image > labels
        assert to_label_size(at_image, labels)[region].all()


@pytest.fixture
def dataset(tmp_path):
    """6 test faces of 3 identities, 16 px images, 8 px labels; the mouth is absent from faces 4 and 5."""
    rng = np.random.default_rng(1)
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[:, 1:3, 1:3] = CLASS_INDEX["l_eye"]
    labels[:4, 5:7, 3:5] = CLASS_INDEX["mouth"]
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as h5:
        h5["images"], h5["labels"] = images, labels
        h5.attrs["mask_size"] = 8
    split = pd.DataFrame({"row": np.arange(6), "id": np.arange(6) + 100, "identity": [0, 0, 1, 1, 2, 2],
                          "split": "test"})
    split_path = tmp_path / "split.tsv"
    split.to_csv(split_path, sep="\t", index=False)
    return path, split_path, split, images, labels


REGIONS = {"eyes": ["l_eye", "r_eye"], "mouth": ["mouth"]}


def test_pairs_of_different_identities_absent_regions_skipped_and_counted(dataset):
    path, _, split, images, labels = dataset
    records, swapped, masks, parts, counts = build_swap_pairs(split, path, regions=REGIONS, names=["eyes", "mouth"],
                                                       per_region=6, dilation=0, feather=0, seed=3, blend="feather")
    identity = dict(zip(split["id"], split["identity"]))
    # eyes are everywhere: 6 pairs, one per face as A; the mouth only in faces 0-3: each draw with
    # A or B among faces 4, 5 is skipped and counted, never pasted empty
    assert counts["eyes"] == {"made": 6, "skipped_region_absent": 0, "requested": 6}
    mouth = counts["mouth"]
    assert mouth["made"] + mouth["skipped_region_absent"] == 6 and mouth["skipped_region_absent"] >= 2
    assert len(records) == len(swapped) == len(masks) == 6 + mouth["made"]
    for k, (kind, row_a, row_b, id_a, id_b, region, donor) in enumerate(records):
        assert kind == "swap" and row_b == -1 - k and id_b == SWAP_ID_OFFSET + k
        assert identity[id_a] != identity[donor]
        if region == "mouth":
            assert row_a < 4 and donor - 100 < 4
        # the expected region is the union of the region in A and in the donor (no dilation here)
        union = np.isin(labels[row_a], [CLASS_INDEX[c] for c in REGIONS[region] if c in CLASS_INDEX]) | \
            np.isin(labels[donor - 100], [CLASS_INDEX[c] for c in REGIONS[region] if c in CLASS_INDEX])
        assert np.array_equal(masks[k], union)
        big = np.kron(union, np.ones((2, 2), bool))
        assert np.array_equal(swapped[k][~big], images[row_a][~big])
        assert np.array_equal(swapped[k][big], images[donor - 100][big])
    again = build_swap_pairs(split, path, regions=REGIONS, names=["eyes", "mouth"], per_region=6, dilation=0,
                             feather=0, seed=3, blend="feather")
    assert again[0] == records and np.array_equal(again[1], swapped)


def test_build_pairs_writes_the_store_and_counts(dataset, tmp_path):
    path, split_path, _, images, labels = dataset
    table = build_pairs(split_path, tmp_path / "p.tsv", n_genuine=2, n_impostor=3, seed=0, dataset_h5=path,
                        out_h5=tmp_path / "p.h5", out_json=tmp_path / "p.json",
                        swap={"regions": ["mouth"], "pairs_per_region": 2, "dilation": 1, "feather": 1},
                        regions=REGIONS)
    swap = table[table["kind"] == "swap"]
    assert len(swap) == 2 and (swap["region"] == "mouth").all()
    summary = json.loads((tmp_path / "p.json").read_text())
    assert summary["pairs"] == {"genuine": 2, "impostor": 3, "swap": 2} and summary["swap"]["mouth"]["made"] == 2
    read = read_pair_images(path, tmp_path / "p.h5", table["row_b"].to_numpy())
    with h5py.File(tmp_path / "p.h5") as h5:
        assert np.array_equal(read[table["kind"].to_numpy() == "swap"], h5["swap_images"][:])
        stored = h5["swap_masks"][:]
    others = table["kind"].to_numpy() != "swap"
    assert np.array_equal(read[others], images[table["row_b"].to_numpy()[others]])
    masks = expected_regions(path, tmp_path / "p.h5", table["row_a"], table["row_b"], list(table["kind"]),
                             list(table["region"]), REGIONS)
    assert np.array_equal(masks[~others], stored) and not masks[others].any()
    # the dilated union covers the mouth of A at least, and the swapped copy differs only inside it
    for k, row in enumerate(swap.itertuples()):
        assert masks[~others][k][labels[row.row_a] == CLASS_INDEX["mouth"]].all()
        outside = ~np.kron(stored[k], np.ones((2, 2), bool))
        assert np.array_equal(read[~others][k][outside], images[row.row_a][outside])


def test_a_swap_pair_needs_its_store(dataset, tmp_path):
    path, split_path, *_ = dataset
    with pytest.raises(ValueError, match="region-swap pairs need the fused dataset"):
        build_pairs(split_path, tmp_path / "p.tsv", n_genuine=1, n_impostor=1, seed=0,
                    swap={"regions": ["mouth"], "pairs_per_region": 1, "dilation": 0, "feather": 0}, regions=REGIONS)


def test_the_partner_fill_lift_is_fixed_by_the_swap_not_by_the_network():
    """Why `fill: partner` is refused on pairs with a ground truth: a masked copy b + M (a - b) of A with
    the swapped copy as fill equals A outside the swapped area, so CorrRISE's dissimilarity map lands in
    that area for any network that sees it: two untrained random CNNs and a network of raw pooled pixels
    all get a lift far above 1, and their maps agree. With a neutral fill the random CNN has no such lift."""
    import torch
    from scipy.stats import spearmanr
    from torch import nn

    from facexai.attributions.base import PairTask, get_method
    from facexai.data.samples import to_model_input
    from facexai.metrics.topq import mask_metrics

    def random_cnn(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(4), nn.Flatten()).eval()

    class Pixels(nn.Module):
        def forward(self, x):
            return nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    region = np.zeros((32, 32), bool)
    region[22:28, 10:22] = True
    swapped, union = swap_region(a, region, b, region, dilation=1, feather=1)
    x, partner = to_model_input(a[None]), to_model_input(swapped[None])
    out = {}
    for name, model, fill in (("cnn0", random_cnn(0), "partner"), ("cnn1", random_cnn(1), "partner"),
                              ("pixels", Pixels(), "partner"), ("cnn0_black", random_cnn(0), "black")):
        with torch.no_grad():
            task = PairTask(model, model(partner), [SWAP_ID_OFFSET], partner_images=partner)
        maps = get_method("corrrise", {"n_masks": 500, "cells": 4, "fill": fill})(task, x, np.array([1]), seed=0)
        out[name] = (maps[0], mask_metrics(maps, union[None], mode="negative")["lift"][0])
    for name in ("cnn0", "cnn1", "pixels"):
        assert out[name][1] > 3, (name, out[name][1])
    assert spearmanr(out["cnn0"][0].ravel(), out["cnn1"][0].ravel())[0] > 0.8
    assert not out["cnn0_black"][1] > 3


def test_poisson_paste_keeps_the_part_and_meets_the_target_at_the_border():
    """A flat grey target, a source that is a brighter copy of itself with a textured square: inside
    the area the result has the source's gradients (the texture, not its brightness offset), outside
    the target is kept bit for bit, and the seam energy stays at the target's; the feathered paste
    leaves a visible step."""
    from facexai.data.pairs import poisson_paste, seam_measures

    rng = np.random.default_rng(0)
    target = np.full((24, 24, 3), 100, np.uint8)
    source = np.full((24, 24, 3), 170, np.uint8)
    part = np.zeros((24, 24), bool)
    part[8:16, 8:16] = True
    source[part] = 170 + rng.integers(-30, 30, (64, 3))
    area = ndimage.binary_dilation(part, iterations=1)
    out = poisson_paste(target, source, area)
    assert np.array_equal(out[~area], target[~area])
    # the texture is the source's: neighbouring differences inside the part are kept (to rounding)
    inner = part[:, 1:] & part[:, :-1]
    d_out = np.diff(out.astype(int), axis=1)[inner]
    d_src = np.diff(source.astype(int), axis=1)[inner]
    assert np.abs(d_out - d_src).max() <= 2
    # the brightness offset is gone: the area's flat border ring is at the target's level
    assert abs(out[area & ~part].mean() - 100) < 12
    # a constant offset alone is removed entirely: a flat source gives back the target
    assert np.array_equal(poisson_paste(target, np.full_like(target, 200), area), target)
    feathered, union = swap_region(target, part, source, part, dilation=1, feather=1, blend="feather")
    poisson, union_p = swap_region(target, part, source, part, dilation=1, feather=0, blend="poisson")
    assert np.array_equal(union_p, area)
    seam = {name: seam_measures(target, image, u, part) for name, image, u in
            (("poisson", poisson, union_p), ("feather", feathered, union))}
    assert seam["poisson"]["part_share"] == part.sum() / area.sum()
    # the target is flat: any gradient on the border ring is the seam's (the ratio's base is ~0 there,
    # so compare the energies' order rather than a ratio)
    assert seam["poisson"]["edge_ratio"] < seam["feather"]["edge_ratio"] or np.isnan(seam["feather"]["edge_ratio"])


def test_poisson_swap_of_an_unchanged_part_is_the_identity():
    """A's own part pasted back into A by Poisson blending gives A bit for bit (no seam of its own)."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    region = np.zeros((20, 20), bool)
    region[5:12, 4:15] = True
    swapped, area = swap_region(a, region, a, region, dilation=1, feather=0, blend="poisson")
    assert np.array_equal(swapped, a) and area.sum() > region.sum()


def test_lift_on_the_part_and_on_the_pasted_border_apart(tmp_path):
    """A map equal to the donor's part has all its mass there (lift_part = 1 / the part's share of the
    image, lift_seam 0); a map on the border ring only has lift_part 0; other kinds stay NaN."""
    from facexai.data.pairs import write_pair_store
    from facexai.subjects.pairs import part_and_seam

    part = np.zeros((8, 8), bool)
    part[3:5, 3:5] = True
    area = ndimage.binary_dilation(part)
    write_pair_store(tmp_path / "p.h5", np.zeros((1, 8, 8, 3), np.uint8), area[None], {}, {}, part[None])
    maps = np.stack([part, area & ~part, part]).astype(np.float32)
    masks = np.stack([area, area, area])
    out = part_and_seam(maps, masks, ["swap", "swap", "genuine"], np.array([-1, -1, 5]), tmp_path / "p.h5",
                        {"q": 10, "mass": "positive"})
    assert out["lift_part"][0] == pytest.approx(64 / 4) and out["lift_seam"][0] == 0
    assert out["lift_part"][1] == 0 and out["lift_seam"][1] == pytest.approx(64 / (area.sum() - 4))
    assert np.isnan(out["lift_part"][2]) and np.isnan(out["lift_seam"][2])


def test_swap_controls_take_the_part_from_the_same_person_and_leave_the_swaps_alone(dataset):
    path, _, split, images, labels = dataset
    plain = build_swap_pairs(split, path, regions=REGIONS, names=["eyes"], per_region=4, dilation=1, feather=0,
                             seed=3)
    with_controls = build_swap_pairs(split, path, regions=REGIONS, names=["eyes"], per_region=4, dilation=1,
                                     feather=0, seed=3, controls=True)
    identity = dict(zip(split["id"], split["identity"]))
    swaps = [r for r in with_controls[0] if r[0] == "swap"]
    controls = [r for r in with_controls[0] if r[0] == "swap_control"]
    # the same swap pairs as without controls (their own random stream), and one control per swap
    assert [(r[1], r[3], r[5], r[6]) for r in swaps] == [(r[1], r[3], r[5], r[6]) for r in plain[0]]
    assert len(controls) == len(swaps) == 4 and with_controls[4]["eyes"]["controls"] == 4
    for kind, row_a, row_b, id_a, id_b, region, donor in controls:
        assert identity[donor] == identity[id_a] and donor != id_a   # another photo of the same person
        k = -1 - row_b
        area = np.kron(with_controls[2][k], np.ones((2, 2), bool))
        assert np.array_equal(with_controls[1][k][~area], images[row_a][~area])
