"""What the verification ground truth measures: fills on region-swap pairs and the inpainting game on
triplets, for the trained embedder beside embedders that know nothing of faces.

    python benchmarks/triplet_game.py [--results results] [--masks 1000] [--per-region 10]
                                      [--embedders trained untrained pixels] [--dlib]
                                      [--parts triplets swaps]

Embedders: `trained` (the run's, results/verification/trained), `untrained` (the same architecture
with random weights, seed 0), `pixels` (the image's colours pooled to an 8 x 8 grid: no network at
all), and with --dlib dlib's face ResNet (pip install 'facexai[dlib]'). A number the untrained or
pixel embedder reaches as well as the trained one measures the construction, not the explainer.

1. Region-swap pairs (A, A' = A with B's region; the first --per-region of each region): CorrRISE's
   lift in the swapped area U, of the dissimilarity map (negative part) and of the similarity map
   (positive part), per fill: `partner` (the masked copy takes A''s pixels: refused by the pipeline
   on these pairs) and the neutral fills black, blur, mean.
2. Triplets (probe P, mate M, twin M' = M with a donor's region, P' = P with it): per embedder the
   triplets it keeps (preference s(P, M) - s(P, M') > the run's margin), then per region and method
   the inpainting game (flip fraction, lower is better; game region lift) and the lift of the map in
   R on P, mean over the kept triplets [95 % CI by probe image]. Methods: CorrRISE with each neutral
   fill, Grad-CAM (CNN embedders), the random baseline and the `difference` oracle.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from facexai.aggregate import cluster_bootstrap_mean_ci
from facexai.attributions import PairTask, get_method
from facexai.data.pairs import expected_regions, read_pair_images, triplet_columns
from facexai.data.samples import to_model_input
from facexai.metrics.game import inpainting_game
from facexai.metrics.run import model_resolution_masks
from facexai.metrics.topq import mask_metrics
from facexai.models.backbones import build_model
from facexai.models.embedders import load_embedder
from facexai.models.verification import embed

REPO = Path(__file__).resolve().parents[1]
NEUTRAL = ("black", "blur", "mean")


class Pixels(nn.Module):
    """Colours pooled to an 8 x 8 grid: an 'embedder' of raw pixels."""

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)


def embedders(results: Path, names, dlib: bool) -> dict:
    out = {}
    trained, meta = load_embedder(results / "verification/trained")
    for name in names:
        if name == "trained":
            out[name] = trained
        elif name == "untrained":
            torch.manual_seed(0)
            out[name] = build_model(meta["arch"], meta["dim"], width=meta["width"]).eval()
        elif name == "pixels":
            out[name] = Pixels()
    if dlib:
        from facexai.models.embedders import import_embedder

        folder = results / "verification/_benchmark_dlib"
        if not (folder / "model.json").is_file():
            size = int(json.loads((results / "verification/trained/model.json").read_text()).get("image_size", 64))
            import_embedder({"name": "dlib", "kind": "dlib"}, folder, image_size=size)
        out["dlib"] = load_embedder(folder)[0]
    return out


def mean_ci(values, ids, seed=0):
    values, ids = np.asarray(values, float), np.asarray(ids)
    ok = np.isfinite(values)
    if not ok.any():
        return "n/a"
    low, high = cluster_bootstrap_mean_ci(values[ok], ids[ok], 1000, seed)
    return f"{values[ok].mean():.2f} [{low:.2f}, {high:.2f}]"


def swap_lifts(model, data, pairs_h5, swaps, regions, n_masks, ids_seed=0) -> list[dict]:
    images = read_pair_images(data, pairs_h5, swaps["row_a"])
    partners = read_pair_images(data, pairs_h5, swaps["row_b"])
    masks = expected_regions(data, pairs_h5, swaps["row_a"], swaps["row_b"], list(swaps["kind"]),
                             list(swaps["region"]), regions)
    x, partner_x = to_model_input(images), to_model_input(partners)
    with torch.no_grad():
        task = PairTask(model, torch.from_numpy(embed(model, partners, "cpu", check=False)),
                        swaps["id_b"].to_numpy(), partner_images=partner_x)
    records = []
    for fill in ("partner", *NEUTRAL):
        maps = get_method("corrrise", {"n_masks": n_masks, "fill": fill, "batch_size": 64})(
            task, x, swaps["id_a"].to_numpy(), ids_seed)
        for part, mode in (("dissimilarity", "negative"), ("similarity", "positive")):
            lift = mask_metrics(maps, masks, mode=mode)["lift"]
            lift = np.where(np.isfinite(lift), lift, 1.0)  # no mass: chance, as the pipeline scores it
            for region in sorted(set(swaps["region"])):
                sel = (swaps["region"] == region).to_numpy()
                records.append({"fill": fill, "map": part, "region": region,
                                "lift": mean_ci(lift[sel], swaps["id_a"].to_numpy()[sel])})
    return records


def triplet_game(model, data, pairs_h5, triplets, regions, n_masks, margin, cam: bool) -> tuple[list, dict]:
    extra = triplet_columns(triplets)
    probe = read_pair_images(data, pairs_h5, triplets["row_a"])
    mate = read_pair_images(data, pairs_h5, triplets["row_b"])
    twin = read_pair_images(data, pairs_h5, extra["row_c"])
    probe_swap = read_pair_images(data, pairs_h5, extra["row_d"])
    e = {k: torch.from_numpy(embed(model, v, "cpu", check=False)) for k, v in
         (("mate", mate), ("twin", twin))}
    x = to_model_input(probe)
    task = PairTask(model, e["mate"], triplets["id_b"].to_numpy(), twin_embeddings=e["twin"],
                    has_twin=np.ones(len(triplets), bool))
    with torch.no_grad():
        preference = task.score(x, list(range(len(x)))).numpy()
    kept = preference > margin
    counts = {r: f"{int(kept[(triplets['region'] == r).to_numpy()].sum())} / "
                 f"{int((triplets['region'] == r).sum())}" for r in sorted(set(triplets["region"]))}
    if not kept.any():
        return [], counts
    sel = np.flatnonzero(kept)
    t = triplets.iloc[sel].reset_index(drop=True)
    task = PairTask(model, e["mate"][sel], t["id_b"].to_numpy(), twin_embeddings=e["twin"][sel],
                    has_twin=np.ones(len(sel), bool))
    task.oracle_images = (to_model_input(mate[sel]), to_model_input(twin[sel]))
    labels = expected_regions(data, pairs_h5, t["row_a"], t["row_b"], list(t["kind"]), list(t["region"]), regions,
                              probe_swap_rows=extra["row_d"].to_numpy()[sel])
    regions_model = model_resolution_masks(labels, probe.shape[1])
    methods = {f"corrrise {fill}": ("corrrise", {"n_masks": n_masks, "fill": fill, "batch_size": 64})
               for fill in NEUTRAL}
    if cam:
        methods["gradcam"] = ("gradcam", {})
    methods.update({"random": ("random", {}), "difference (oracle)": ("difference", {})})
    ids = t["id_a"].to_numpy()
    records = []
    for label, (name, params) in methods.items():
        maps = get_method(name, params)(task, x[sel], ids, 0)
        game = inpainting_game(task, x[sel], to_model_input(probe_swap[sel]), maps, regions_model, steps=32,
                               seeds=ids)
        lift = mask_metrics(maps, labels)["lift"]
        lift = np.where(np.isfinite(lift), lift, 1.0)
        for region in sorted(set(t["region"])):
            r = (t["region"] == region).to_numpy()
            records.append({"method": label, "region": region, "n": int(r.sum()),
                            "flip fraction": mean_ci(game["game_flip_fraction"][r], ids[r]),
                            "game region lift": mean_ci(game["game_region_lift"][r], ids[r]),
                            "lift in R": mean_ci(lift[r], ids[r]),
                            "unwinnable": int((game["game_degenerate"][r] == "unwinnable").sum())})
    return records, counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--per-region", type=int, default=10)
    parser.add_argument("--embedders", nargs="*", default=["trained", "untrained", "pixels"])
    parser.add_argument("--dlib", action="store_true")
    parser.add_argument("--parts", nargs="*", default=["triplets", "swaps"], choices=["triplets", "swaps"])
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    results = Path(args.results)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    regions = config["regions"]
    margin = float(config["verification"]["triplets"]["margin"])
    data, pairs_h5 = results / "data/main/dataset.h5", results / "verification/pairs.h5"
    pairs = pd.read_csv(results / "verification/pairs.tsv", sep="\t", keep_default_na=False)
    swaps = pd.concat([g.iloc[:args.per_region] for _, g in pairs[pairs["kind"] == "swap"].groupby("region")],
                      ignore_index=True)
    triplets_all = pairs[pairs["kind"] == "triplet"]
    triplets = triplets_all.reset_index(drop=True)
    for name, model in embedders(results, args.embedders, args.dlib).items():
        start = time.time()
        cam = getattr(model, "cam_layer", None) is not None
        print(f"\n## {name}\n", flush=True)
        if "triplets" in args.parts:
            game, counts = triplet_game(model, data, pairs_h5, triplets, regions, args.masks, margin, cam)
            print(f"Triplets kept (preference > {margin}): {counts}\n")
            if game:
                print(pd.DataFrame(game).to_markdown(index=False), flush=True)
        if "swaps" in args.parts:
            lifts = pd.DataFrame(swap_lifts(model, data, pairs_h5, swaps, regions, args.masks))
            print(f"\nRegion-swap pairs ({args.per_region} per region), CorrRISE lift in U:\n")
            print(lifts.pivot_table(index=["fill", "map"], columns="region", values="lift", aggfunc="first")
                  .to_markdown(), flush=True)
        print(f"\n({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
