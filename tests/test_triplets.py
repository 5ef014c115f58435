"""Triplets and the inpainting game (facexai/data/pairs.py build_triplets, facexai/metrics/game.py), the
partner fill refused for the kinds with a ground truth, the pair-aware oracle, and pair falsification
that reads the partner.

The known answers come from toy embedders that see only one region: an embedder of the eyes' content
must be explained by maps on the eyes (gradient and perturbation methods find them and beat random,
edge and centre); an embedder of the mouth has no preference on an eyes triplet, so no method can find
the eyes there and every verdict fails."""

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from facexai.attributions.base import PairTask, get_method
from facexai.data.pairs import expected_regions, read_pair_images, refuse_partner_fill, triplet_columns
from facexai.data.samples import to_model_input
from facexai.labels import CLASS_INDEX
from facexai.metrics.falsification import falsification
from facexai.metrics.game import inpainting_game
from facexai.metrics.run import model_resolution_masks
from facexai.metrics.topq import mask_metrics
from facexai.models.verification import build_pairs, evaluate_pairs
from facexai.stats import beats_random

SIZE = 32
EYES = (slice(6, 12), slice(6, 26))
MOUTH = (slice(21, 27), slice(10, 22))
REGIONS = {"eyes": ["l_eye", "r_eye"], "mouth": ["mouth"]}


class BoxEmbedder(nn.Module):
    """Mean colours of a 2 x 4 grid over one box of the image: the embedding depends on that box only."""

    def __init__(self, box):
        super().__init__()
        self.box = box

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x[:, :, self.box[0], self.box[1]], (2, 4)).flatten(1)


def toy_faces(n_identities: int = 12, per_identity: int = 3, seed: int = 0):
    """Faces of 32 px: per identity its own eye and mouth patterns (two photos of one person differ by
    noise), a random background per photo; labels: eyes and mouth boxes."""
    rng = np.random.default_rng(seed)
    images, identity = [], []
    for person in range(n_identities):
        eyes = rng.integers(0, 256, (EYES[0].stop - EYES[0].start, EYES[1].stop - EYES[1].start, 3))
        mouth = rng.integers(0, 256, (MOUTH[0].stop - MOUTH[0].start, MOUTH[1].stop - MOUTH[1].start, 3))
        for _ in range(per_identity):
            image = rng.integers(60, 200, (SIZE, SIZE, 3)).astype(np.float64)
            image[EYES] = eyes + rng.normal(0, 6, eyes.shape)
            image[MOUTH] = mouth + rng.normal(0, 6, mouth.shape)
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            identity.append(person)
    labels = np.zeros((len(images), SIZE, SIZE), np.uint8)
    labels[:, EYES[0], EYES[1].start:16] = CLASS_INDEX["r_eye"]
    labels[:, EYES[0], 16:EYES[1].stop] = CLASS_INDEX["l_eye"]
    labels[:, MOUTH[0], MOUTH[1]] = CLASS_INDEX["mouth"]
    return np.stack(images), labels, np.array(identity)


@pytest.fixture(scope="module")
def triplets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("triplets")
    images, labels, identity = toy_faces()
    path = tmp / "d.h5"
    with h5py.File(path, "w") as h5:
        h5["images"], h5["labels"] = images, labels
        h5.attrs["mask_size"] = SIZE
    split = pd.DataFrame({"row": np.arange(len(images)), "id": np.arange(len(images)) + 100, "identity": identity,
                          "split": "test"})
    split.to_csv(tmp / "split.tsv", sep="\t", index=False)
    build_pairs(tmp / "split.tsv", tmp / "pairs.tsv", n_genuine=6, n_impostor=6, seed=0, dataset_h5=path,
                out_h5=tmp / "pairs.h5", out_json=tmp / "pairs.json", regions=REGIONS,
                triplets={"regions": ["eyes"], "per_region": 12, "blend": "feather", "dilation": 1, "feather": 0,
                          "seed": 0})
    return tmp, path, images, labels


def test_the_expected_region_holds_r_when_labels_are_finer_than_images(tmp_path):
    """Labels at twice the image size with a region edge on an odd label row (a nearest-neighbour
    shrink to the image drops that row): at dilation 0 the pasted area must still hold every label
    pixel of R in A (swap pairs) and in P (triplets)."""
    images, labels, identity = toy_faces(n_identities=6, per_identity=2)
    fine = np.zeros((len(labels), 2 * SIZE, 2 * SIZE), np.uint8)
    fine[:, 13:23, 12:52] = CLASS_INDEX["l_eye"]  # label rows 13-22: image rows 6.5-11.5
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as h5:
        h5["images"], h5["labels"] = images, fine
        h5.attrs["mask_size"] = 2 * SIZE
    pd.DataFrame({"row": np.arange(len(images)), "id": np.arange(len(images)), "identity": identity,
                  "split": "test"}).to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    paste = {"regions": ["eyes"], "blend": "poisson", "dilation": 0, "feather": 0, "seed": 0}
    build_pairs(tmp_path / "split.tsv", tmp_path / "pairs.tsv", n_genuine=1, n_impostor=1, seed=0, dataset_h5=path,
                out_h5=tmp_path / "pairs.h5", out_json=tmp_path / "pairs.json", regions=REGIONS,
                swap={**paste, "pairs_per_region": 4}, triplets={**paste, "per_region": 4})
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t", keep_default_na=False)
    chosen = pairs[pairs["kind"].isin(["swap", "triplet"])].reset_index(drop=True)
    assert set(chosen["kind"]) == {"swap", "triplet"}
    extra = triplet_columns(chosen)
    masks = expected_regions(path, tmp_path / "pairs.h5", chosen["row_a"], chosen["row_b"], list(chosen["kind"]),
                             list(chosen["region"]), REGIONS, probe_swap_rows=extra["row_d"])
    for k in range(len(chosen)):
        own = fine[chosen.at[k, "row_a"]] == CLASS_INDEX["l_eye"]
        outside = int((own & ~masks[k]).sum())
        assert outside == 0, f"{chosen.at[k, 'kind']} row {k}: {outside} pixels of R outside the expected region"


def embedder_dir(tmp, name, box):
    """An embedder folder as the pipeline imports it: a TorchScript file of the box embedder, taking the
    pipeline's own input (its mean and std)."""
    from facexai.data.samples import PIXEL_MEAN, PIXEL_STD
    from facexai.models.embedders import import_embedder

    weights = tmp / f"{name}.pt"
    torch.jit.save(torch.jit.trace(BoxEmbedder(box), torch.zeros(1, 3, SIZE, SIZE)), str(weights))
    import_embedder({"name": name, "kind": "torchscript", "weights": str(weights), "input_size": SIZE,
                     "mean": [PIXEL_MEAN] * 3, "std": [PIXEL_STD] * 3}, tmp / name, image_size=SIZE)
    return tmp / name


def test_triplets_are_probe_mate_twin_and_the_probe_swap(triplets):
    tmp, path, images, labels = triplets
    pairs = pd.read_csv(tmp / "pairs.tsv", sep="\t", keep_default_na=False)
    t = pairs[pairs["kind"] == "triplet"].reset_index(drop=True)
    assert len(t) == 12
    extra = triplet_columns(t)
    split = pd.read_csv(tmp / "split.tsv", sep="\t")
    who = dict(zip(split["row"], split["identity"]))
    for k, row in t.iterrows():
        assert who[row["row_a"]] == who[row["row_b"]] and row["row_a"] != row["row_b"]  # probe and mate: one person
        donor_row = split.loc[split["id"] == row["donor_id"], "row"].item()
        assert who[donor_row] != who[row["row_a"]]  # the donor: another person
        twin = read_pair_images(path, tmp / "pairs.h5", [extra.at[k, "row_c"]])[0]
        probe_swap = read_pair_images(path, tmp / "pairs.h5", [extra.at[k, "row_d"]])[0]
        mate, probe = images[row["row_b"]], images[row["row_a"]]
        donor = images[donor_row]
        # the twin is the mate with the donor's eyes; the probe's swap is the probe with the same eyes
        assert np.array_equal(twin[EYES], donor[EYES]) and np.array_equal(probe_swap[EYES], donor[EYES])
        assert np.array_equal(twin[MOUTH], mate[MOUTH]) and np.array_equal(probe_swap[MOUTH], probe[MOUTH])
    # other kinds leave the triplet columns empty
    assert (pairs.loc[pairs["kind"] != "triplet", "row_c"] == "").all()
    # a probe serves once per region
    assert not t.duplicated(["row_a", "region"]).any()
    # the expected region is where P' differs from P, and it holds all of R in P's labels
    masks = expected_regions(path, tmp / "pairs.h5", t["row_a"], t["row_b"], list(t["kind"]), list(t["region"]),
                             REGIONS, probe_swap_rows=extra["row_d"])
    probe_swaps = read_pair_images(path, tmp / "pairs.h5", extra["row_d"])
    for k in range(len(t)):
        own_eyes = np.isin(labels[t.at[k, "row_a"]], [CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"]])
        assert masks[k][own_eyes].all()
        changed = (probe_swaps[k] != images[t.at[k, "row_a"]]).any(axis=2)
        assert not changed[~masks[k]].any()


def test_the_embedder_keeps_the_triplets_whose_swap_matters(triplets):
    tmp, path, *_ = triplets
    out = {}
    for name, box in (("eyes", EYES), ("mouth", MOUTH)):
        out[name] = evaluate_pairs(embedder_dir(tmp, name, box), path, tmp / "pairs.tsv", tmp / f"{name}.tsv",
                                   tmp / f"{name}.json", pairs_h5=tmp / "pairs.h5", triplet_margin=0.01)
    eyes, mouth = out["eyes"]["triplets"]["eyes"], out["mouth"]["triplets"]["eyes"]
    assert eyes["made"] == mouth["made"] == 12
    # the eyes embedder prefers the mate over the twin (the donor's eyes) in every triplet, and its P'
    # (the probe with the donor's eyes) prefers the twin: every game can be won
    assert eyes["kept"] == 12 and eyes["probe_swap_prefers_twin"] == 1.0
    # the mouth embedder does not see the swap: no preference, nothing kept
    assert mouth["kept"] == 0 and mouth["dropped"] == 12
    scores = pd.read_csv(tmp / "mouth.tsv", sep="\t", keep_default_na=False)
    assert np.allclose(scores.loc[scores["kind"] == "triplet", "preference"].astype(float), 0, atol=1e-6)


def triplet_task(tmp, path, box, rows, pairs_tsv=None, pairs_h5=None):
    """The preference task of the triplet rows `rows` for a box embedder, with the images."""
    pairs_h5 = pairs_h5 or tmp / "pairs.h5"
    pairs = pd.read_csv(pairs_tsv or tmp / "pairs.tsv", sep="\t", keep_default_na=False)
    t = pairs[pairs["kind"] == "triplet"].reset_index(drop=True).iloc[rows].reset_index(drop=True)
    extra = triplet_columns(t)
    model = BoxEmbedder(box)
    probe = to_model_input(read_pair_images(path, pairs_h5, t["row_a"]))
    mate = to_model_input(read_pair_images(path, pairs_h5, t["row_b"]))
    twin = to_model_input(read_pair_images(path, pairs_h5, extra["row_c"]))
    probe_swap = to_model_input(read_pair_images(path, pairs_h5, extra["row_d"]))
    with torch.no_grad():
        task = PairTask(model, model(mate), t["id_b"].to_numpy(), twin_embeddings=model(twin),
                        has_twin=np.ones(len(t), bool))
    task.oracle_images = (mate, twin)
    return task, probe, probe_swap, t


METHODS = {"integrated_gradients": {"n_steps": 16, "baseline": "black"},
           "occlusion": {"window": 4, "stride": 2, "baseline": "black"},
           "corrrise": {"n_masks": 400, "cells": 4, "fill": "blur"},
           "random": {}, "edge": {}, "centre": {}, "parts": {"classes": ["l_eye", "r_eye", "mouth"]},
           "difference": {"sigma": 1.0}}


def game_table(tmp, path, labels, box, pairs_tsv=None, pairs_h5=None, truth=None):
    """Every method's game and lift on the 12 triplets for a box embedder; scored against `truth`
    (default: the eyes in each probe's labels)."""
    rows = list(range(12))
    task, probe, probe_swap, t = triplet_task(tmp, path, box, rows, pairs_tsv, pairs_h5)
    if truth is None:
        truth = np.isin(labels[t["row_a"]], [CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"]])
    regions = model_resolution_masks(truth, SIZE)
    frames = []
    task.part_labels = labels[t["row_a"]]  # the parts baseline reads the probe's own label map
    for method, params in METHODS.items():
        maps = get_method(method, params)(task, probe, t["id_a"].to_numpy(), seed=0)
        game = inpainting_game(task, probe, probe_swap, maps, regions, steps=16, seeds=t["id_a"].to_numpy())
        mm = mask_metrics(maps, regions)
        frames.append(pd.DataFrame({"kind": "triplet", "method": method, "id": t["id_a"], "partner_id": t["id_b"],
                                    "lift": mm["lift"], **game}))
    return pd.concat(frames, ignore_index=True)


def test_the_game_finds_the_region_the_embedder_reads_and_beats_the_baselines(triplets):
    tmp, path, _, labels = triplets
    table = game_table(tmp, path, labels, EYES)
    means = table.groupby("method")[["game_flip_fraction", "game_region_lift", "lift"]].mean()
    print(means)  # reported, not asserted beyond the verdicts
    verdicts = beats_random(table, metrics=["game_flip_fraction", "game_region_lift"], group="kind")
    for method in ("integrated_gradients", "occlusion", "corrrise", "difference"):
        rows = verdicts[verdicts["method"] == method]
        assert (rows["verdict_random"] == "beats").all(), rows
        assert (rows["verdict_edge"] == "beats").all() and (rows["verdict_centre"] == "beats").all(), rows
    # the layout of the parts (eyes and mouth alike) is a strong baseline: it wins the game faster than
    # random, and a method has shown that it reads the model only where it beats it
    parts = verdicts[verdicts["method"] == "parts"]
    assert (parts["verdict_random"] == "beats").all(), parts
    for method in ("integrated_gradients", "occlusion"):
        rows = verdicts[verdicts["method"] == method]
        assert (rows["verdict_parts"] == "beats").all(), rows
    # the oracle marks where M and M' differ, on P's grid: inside the eyes (not always the fastest flip:
    # a gradient map ranks the most influential pixels of the region first)
    assert means.loc["difference", "lift"] > means.loc["random", "lift"] + 1
    assert (table["game_degenerate"].isin(["", "constant_map"])).all()


def test_an_embedder_of_another_region_fails_the_game_on_the_eyes(triplets):
    """The verdict on R can fail. The mouth embedder has no preference at all on an eyes triplet (its
    game cannot be won: every map ties at flip 1, lift 1). On triplets that swap eyes and mouth
    together it prefers the mate because of the mouth: the maps flip the game (fast, beating random)
    by switching the mouth, so their game region lift on the eyes does not beat random, and the
    eyes embedder's does."""
    tmp, path, images, labels = triplets
    table = game_table(tmp, path, labels, MOUTH)
    model_based = table[table["method"].isin(["integrated_gradients", "occlusion", "corrrise"])]
    assert (model_based["game_degenerate"] == "unwinnable").all()
    assert np.allclose(model_based["game_flip_fraction"], 1.0) and np.allclose(model_based["game_region_lift"], 1.0)
    # both parts swapped at once: scored on the eyes only
    both = both_parts_triplets(tmp, images, labels)
    verdicts = {}
    for name, box in (("mouth", MOUTH), ("eyes", EYES)):
        t = game_table(tmp, both["path"], labels, box, pairs_tsv=both["tsv"], pairs_h5=both["store"],
                       truth=both["eyes"])
        verdicts[name] = beats_random(t, metrics=["game_flip_fraction", "game_region_lift"], group="kind")
    for method in ("integrated_gradients", "occlusion"):
        mouth = verdicts["mouth"].set_index(["method", "metric"])
        eyes = verdicts["eyes"].set_index(["method", "metric"])
        assert mouth.loc[(method, "game_flip_fraction"), "verdict_random"] == "beats"
        assert mouth.loc[(method, "game_region_lift"), "verdict_random"] != "beats"
        assert eyes.loc[(method, "game_region_lift"), "verdict_random"] == "beats"


def both_parts_triplets(tmp, images, labels):
    """Triplets whose twin and P' carry the donor's eyes and mouth (one region "face" = eyes + mouth),
    with the eyes part of each probe's expected region."""
    out = tmp / "both"
    out.mkdir(exist_ok=True)
    regions = {**REGIONS, "face": ["l_eye", "r_eye", "mouth"]}
    build_pairs(tmp / "split.tsv", out / "pairs.tsv", n_genuine=6, n_impostor=6, seed=0,
                dataset_h5=tmp / "d.h5", out_h5=out / "pairs.h5", regions=regions,
                triplets={"regions": ["face"], "per_region": 12, "blend": "feather", "dilation": 0, "feather": 0,
                          "seed": 1})
    pairs = pd.read_csv(out / "pairs.tsv", sep="\t", keep_default_na=False)
    t = pairs[pairs["kind"] == "triplet"].reset_index(drop=True)
    eyes = np.isin(labels[t["row_a"]], [CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"]])
    return {"path": tmp / "d.h5", "tsv": out / "pairs.tsv", "store": out / "pairs.h5", "eyes": eyes}


def test_game_by_hand():
    """A 1 x 4 image whose preference is 1.5 - (number of P' pixels among pixels 0 and 1): it flips
    at the second pixel in map order if the first two are pixels 0 and 1, and the share in R = {0, 1}
    is then 1; a map ordering 3, 2 first flips only when all four are switched."""

    class Task2:
        def score(self, x, rows):
            return 1.5 - x[:, 0, 0, :2].sum(dim=1)

    task = Task2()
    probe, swapped = torch.zeros(1, 3, 1, 4), torch.ones(1, 3, 1, 4)
    region = np.array([[[True, True, False, False]]])
    good = inpainting_game(task, probe, swapped, np.array([[[4.0, 3.0, 2.0, 1.0]]]), region, steps=4)
    assert good["game_flip_fraction"][0] == 0.5 and good["game_region_share"][0] == 1.0
    assert good["game_region_lift"][0] == 2.0
    bad = inpainting_game(task, probe, swapped, np.array([[[1.0, 2.0, 3.0, 4.0]]]), region, steps=4)
    assert bad["game_flip_fraction"][0] == 1.0 and bad["game_region_share"][0] == 0.5
    # bisection inside a coarse step: one grid step (all 4 pixels) still finds the flip at 2 pixels
    fine = inpainting_game(task, probe, swapped, np.array([[[4.0, 3.0, 2.0, 1.0]]]), region, steps=1)
    assert fine["game_flip_fraction"][0] == 0.5
    # P' that still prefers the mate: unwinnable, flip 1 for every map, lift 1, counted
    never = inpainting_game(task, probe, torch.zeros(1, 3, 1, 4), np.array([[[4.0, 3.0, 2.0, 1.0]]]), region,
                            steps=4)
    assert never["game_degenerate"][0] == "unwinnable" and never["game_flip_fraction"][0] == 1.0
    assert never["game_region_lift"][0] == 1.0

    class Dips:  # 0.5 - x0 + x1: switching pixel 0 alone dips below 0, but P' (both) prefers the mate
        def score(self, x, rows):
            return 0.5 - x[:, 0, 0, 0] + x[:, 0, 0, 1]

    for order in ([[4.0, 3.0, 2.0, 1.0]], [[1.0, 4.0, 3.0, 2.0]]):  # pixel 0 first, pixel 1 first
        dip = inpainting_game(Dips(), probe, swapped, np.array([order]), region, steps=4)
        assert dip["game_degenerate"][0] == "unwinnable" and dip["game_flip_fraction"][0] == 1.0

    class Already:  # P prefers the twin (-0.5) and P' the mate: no game, whatever P' does
        def score(self, x, rows):
            return -0.5 + x[:, 0, 0, :2].sum(dim=1)

    gone = inpainting_game(Already(), probe, swapped, np.array([[[4.0, 3.0, 2.0, 1.0]]]), region, steps=4)
    assert gone["game_degenerate"][0] == "probe_prefers_twin" and np.isnan(gone["game_flip_fraction"][0])


def test_partner_fill_refused_for_kinds_with_a_ground_truth():
    for kind in ("region", "swap", "triplet"):
        with pytest.raises(ValueError, match=r"methods\.corrrise\.fill: partner"):
            refuse_partner_fill("corrrise", {"fill": "partner"}, ["genuine", kind])
    refuse_partner_fill("corrrise", {"fill": "partner"}, ["genuine", "impostor"])  # a counterfactual: allowed
    refuse_partner_fill("corrrise", {"fill": "blur"}, ["triplet"])


def test_pair_falsification_reads_the_partner():
    """One image, one map, two partners: the embedder compares the left half's mean colour with the
    partner's. The map marks the left half. Against a partner equal to the image, perturbing the left
    half lowers the similarity (not falsified); against a partner whose similarity perturbations of the
    left half raise, the same map is falsified."""

    class LeftHalf(nn.Module):
        def forward(self, x):
            left = x[:, :, :, : x.shape[3] // 2].mean(dim=(2, 3))
            return torch.cat([left, torch.full((len(x), 1), 0.3)], dim=1)

    model = LeftHalf()
    image = torch.zeros(1, 3, 8, 8) - 0.8   # dark: random colours brighten it on average
    bright = torch.zeros(1, 3, 8, 8) + 0.8
    maps = np.zeros((1, 8, 8), np.float32)
    maps[0, :, :4] = np.linspace(1.0, 2.0, 32).reshape(8, 4)
    verdicts = {}
    for name, partner in (("itself", image), ("bright", bright)):
        with torch.no_grad():
            task = PairTask(model, model(partner), [7])
        fal = falsification(task, image, maps, k=6, q=25, seeds=np.array([3]))
        verdicts[name] = fal["sized_falsified"][0]
    assert verdicts == {"itself": 0.0, "bright": 1.0}


def test_rows_no_mask_moves_are_counted_and_scored_at_chance(tmp_path):
    """A method whose map is all-zero on half the pairs (no mask moved the score): those rows enter the
    localisation table and the verdicts at lift 1 (RP = chance), counted per reason; without that
    the method's mean lift would be its lift on the other half only."""
    from facexai.aggregate import summarise_tables
    from facexai.stats import pair_rows_at_chance

    rng = np.random.default_rng(0)
    n = 12
    ids = np.arange(n) + 100
    rows = []
    for method in ("corrrise", "random"):
        lift = rng.uniform(0.9, 1.1, n) if method == "random" else np.where(np.arange(n) < 6, 8.0, np.nan)
        degenerate = np.where(np.isnan(lift), "zero_map", "")
        rows.append(pd.DataFrame({"model": "e", "method": method, "budget": "", "id": ids, "partner_id": ids + 1,
                                  "kind": "swap", "region": "eyes", "lift": lift, "rp": lift * 0.05,
                                  "chance": 0.05, "degenerate": degenerate,
                                  "lift_dissimilarity": np.nan, "degenerate_dissimilarity": "zero_map"}))
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(tmp_path / "t.csv", index=False)
    table["pointing"], table["auc"], table["recall"] = np.nan, np.nan, np.nan
    table.loc[table["degenerate"] == "", ["pointing", "auc", "recall"]] = 0.9
    at_chance = pair_rows_at_chance(table, q=10)
    corr = at_chance[at_chance["method"] == "corrrise"]
    assert np.allclose(corr["lift"], np.r_[np.full(6, 8.0), np.ones(6)])
    assert np.allclose(corr["rp"].iloc[6:], 0.05) and np.allclose(at_chance["lift_dissimilarity"], 1.0)
    # the values of a uniform map: pointing = the region's share, AUC 0.5, recall q / 100
    assert np.allclose(corr[["pointing", "auc", "recall"]].iloc[6:], [0.05, 0.5, 0.1])
    assert np.allclose(corr[["pointing", "auc", "recall"]].iloc[:6], 0.9)
    # model metrics of a map that orders nothing: the random baseline's value on the same pair
    table["deletion_auc"] = np.where(table["method"] == "random", np.arange(2 * n) / 100, 0.3)
    table["perturbation_degenerate"] = ""
    constant = (table["method"] == "corrrise") & (table["degenerate"] == "zero_map")
    table.loc[constant, "deletion_auc"] = np.nan
    table.loc[constant, "perturbation_degenerate"] = "constant_map"
    filled = pair_rows_at_chance(table)
    assert np.allclose(filled.loc[constant, "deletion_auc"], np.arange(n + 6, 2 * n) / 100)
    assert np.allclose(filled.loc[~constant & (table["method"] == "corrrise"), "deletion_auc"], 0.3)
    assert np.isnan(pair_rows_at_chance(table[table["method"] != "random"]).loc[constant, "deletion_auc"]).all()
    # a genuine pair has no region: NaN in a column of strings once read back from a CSV
    genuine = table.assign(kind="genuine", region=pd.Series([np.nan] * len(table), dtype=object, index=table.index))
    assert np.allclose(pair_rows_at_chance(genuine).loc[constant, "deletion_auc"], np.arange(n + 6, 2 * n) / 100)
    # a non-finite map is not a map without mass: it stays NaN
    broken = table.copy()
    broken.loc[0, ["degenerate", "lift"]] = ["nonfinite_map", np.nan]
    assert np.isnan(pair_rows_at_chance(broken).loc[0, "lift"])
    summary = summarise_tables([tmp_path / "t.csv"], tmp_path / "s.csv", by=["method", "kind", "region"],
                               metrics=["lift"], n_resamples=200, prepare=pair_rows_at_chance)
    row = summary[summary["method"] == "corrrise"].iloc[0]
    assert row["lift_mean"] == pytest.approx(4.5) and row["lift_n_valid"] == n
    assert row["n_degenerate"] == 6 and row["n_degenerate:zero_map"] == 6
    # raw (the per-sample table as written): the mean would be 8 over 6 rows
    raw = summarise_tables([tmp_path / "t.csv"], tmp_path / "r.csv", by=["method", "kind", "region"],
                           metrics=["lift"], n_resamples=200)
    assert raw[raw["method"] == "corrrise"]["lift_mean"].item() == pytest.approx(8.0)


def test_the_explained_controls_are_those_of_the_explained_swaps():
    from facexai.subjects.pairs import pair_shard

    rows = [("swap", a, -1 - a, 100 + a, 10**9 + a, "eyes", 7) for a in range(5)]
    # controls exist for A = 1, 3, 4 only (the others have no second photo)
    rows += [("swap_control", a, -20 - a, 100 + a, 10**9 + 20 + a, "eyes", 8) for a in (1, 3, 4)]
    pairs = pd.DataFrame(rows, columns=["kind", "row_a", "row_b", "id_a", "id_b", "region", "donor_id"])
    chosen = pair_shard(pairs, 0, 1, ["swap", "swap_control"], max_pairs=2)
    assert list(chosen.loc[chosen["kind"] == "swap", "row_a"]) == [0, 1]
    assert list(chosen.loc[chosen["kind"] == "swap_control", "row_a"]) == [1]  # not the first two controls



def test_pairs_that_explain_one_image_are_explained_side_by_side(monkeypatch):
    """A swap pair and its control explain the same A: by_image orders them next to each other, so that
    CorrRISE scores one set of masked copies of A for both (half the
    model passes of two separate batches), with the same maps."""
    from facexai.attributions import PairTask, get_method
    from facexai.subjects.pairs import by_image, pair_shard

    rows = [("swap", a, -1 - a, 100 + a, 10**9 + a, "eyes", 7) for a in range(4)]
    rows += [("swap_control", a, -20 - a, 100 + a, 10**9 + 20 + a, "eyes", 8) for a in range(4)]
    rows += [("genuine", 9, 10, 109, 110, "", -1)]
    pairs = pd.DataFrame(rows, columns=["kind", "row_a", "row_b", "id_a", "id_b", "region", "donor_id"])
    chosen = pair_shard(pairs, 0, 1, ["swap", "swap_control", "genuine"], max_pairs=3)
    order = by_image(chosen)
    ordered = chosen.iloc[order]
    assert list(zip(ordered["kind"], ordered["id_a"])) == [
        ("swap", 100), ("swap_control", 100), ("swap", 101), ("swap_control", 101), ("swap", 102),
        ("swap_control", 102), ("genuine", 109)]
    assert sorted(order.tolist()) == list(range(len(chosen)))  # a permutation of the rows

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    a = torch.randn(1, 3, 16, 16)
    partners = torch.randn(2, 3, 16, 16)
    task = PairTask(net, net(partners).detach(), [1, 2])
    calls.clear()
    method = get_method("corrrise", {"n_masks": 64, "batch_size": 32, "fill": "black"})
    together = method(task, a.expand(2, -1, -1, -1), np.array([100, 100]), seed=0)
    assert sum(calls) == 64  # one set of masked copies for the two rows
    apart = [method(PairTask(net, net(partners[k:k + 1]).detach(), [k + 1]), a, np.array([100]), seed=0)[0]
             for k in range(2)]
    np.testing.assert_allclose(together, np.stack(apart), atol=1e-6)


def test_a_probe_and_mate_in_two_regions_and_a_genuine_pair_are_three_rows(tmp_path):
    """One probe and mate may form a genuine pair and a triplet per region: the statistics match rows
    across methods by (id, partner id, region) within a kind, and the attribution files name a pair
    row by (id, partner id, kind, region), so none overwrites another."""
    from facexai.attributions.store import make_shard, read_shard
    from facexai.stats import method_comparisons

    rows = []
    for method, shift in (("a", 0.0), ("b", 1.0)):
        for i in range(8):
            for kind, region in (("triplet", "eyes"), ("triplet", "mouth"), ("genuine", "")):
                rows.append({"model": "e", "method": method, "id": 100 + i, "partner_id": 200 + i, "kind": kind,
                             "region": region, "lift": i + shift + (region == "mouth")})
    table = pd.DataFrame(rows)
    out = method_comparisons(table, ["lift"], group="kind")
    assert set(out["n_rows"]) == {16, 8}  # triplets: 8 images x 2 regions; genuine: 8
    make_shard(tmp_path / "s.h5", np.zeros((3, 4, 4), np.float32), ids=np.array([1, 1, 1]),
               partner_id=np.array([2, 2, 2]), partner_row=np.array([2, 2, 2]), kind=["genuine", "triplet", "triplet"],
               region=["", "eyes", "mouth"])
    assert len(set(read_shard(tmp_path / "s.h5").keys())) == 3
