"""How CorrRISE's dissimilarity lift on region-swap pairs depends on its mask count, and how much of
its spread is mask noise.

    python benchmarks/corrrise_masks.py results --embedders trained dlib --pairs 3 --seeds 3 \
        --masks 256 1000 4000

Reads a finished run (its fused dataset, pairs.tsv / pairs.h5 and embedder folders). For each
embedder, on the first `pairs` region-swap pairs of every region, CorrRISE (the run's settings but
n_masks) is run with `seeds` different mask seeds. Printed per mask count: the mean lift of the
dissimilarity map in the pair's expected region, the mask-noise SD (the SD across seeds of one
pair's lift, averaged over pairs), the between-pair SD (the SD across pairs of each pair's mean
lift over seeds), their ratio, and seconds per map. Random's lift on the same pairs is the baseline
(its expectation is 1). Mask noise is negligible in the per-pair table when its SD is a small
fraction of the between-pair SD: the CI of a mean over pairs then reflects the pairs, not the masks.
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

from facexai.attributions.base import PairTask, get_method
from facexai.data.pairs import expected_regions, read_pair_images
from facexai.data.samples import to_model_input
from facexai.metrics.topq import mask_metrics
from facexai.models.verification import embed, load_embedder


def lifts(method, params, model, similarity, images, partners, ids, partner_ids, masks, seed):
    x = to_model_input(images)
    partner_x = to_model_input(partners)
    task = PairTask(model, torch.from_numpy(embed(model, partners, "cpu", similarity=similarity)), partner_ids,
                    partner_images=partner_x, similarity=similarity)
    maps = get_method(method, params)(task, x, ids, seed)
    return mask_metrics(maps, masks, q=10, mode="negative", workers=2)["lift"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--embedders", nargs="+", default=["trained"])
    parser.add_argument("--pairs", type=int, default=3, help="region-swap pairs per region")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--masks", type=int, nargs="+", default=[256, 1000, 4000])
    parser.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "config/config.yaml",
                        help="the run's config file (over config/config.yaml)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((Path(__file__).parents[1] / "config/config.yaml").read_text())
    override = yaml.safe_load(args.config.read_text())  # the run's config file over the defaults
    config["regions"] = override.get("regions", config["regions"])
    params = {**config["methods"]["corrrise"], **override.get("methods", {}).get("corrrise", {})}
    R = args.results
    pairs = pd.read_csv(R / "verification/pairs.tsv", sep="\t", keep_default_na=False)
    swap = pd.concat(g.iloc[:args.pairs] for _, g in pairs[pairs["kind"] == "swap"].groupby("region"))
    data, store = R / "data/main/dataset.h5", R / "verification/pairs.h5"
    images = read_pair_images(data, store, swap["row_a"].to_numpy())
    partners = read_pair_images(data, store, swap["row_b"].to_numpy())
    masks = expected_regions(data, store, swap["row_a"].to_numpy(), swap["row_b"].to_numpy(), list(swap["kind"]),
                             list(swap["region"]), config["regions"])
    ids, partner_ids = swap["id_a"].to_numpy(), swap["id_b"].to_numpy()
    print(f"{len(swap)} region-swap pairs ({args.pairs} per region: {sorted(set(swap['region']))}), "
          f"{args.seeds} mask seeds; CorrRISE {json.dumps({k: v for k, v in params.items() if k != 'n_masks'})}")
    for name in args.embedders:
        model, meta = load_embedder(R / "verification" / name)
        with torch.no_grad():
            random = lifts("random", {}, model, meta["similarity"], images, partners, ids, partner_ids, masks, 0)
        print(f"\n## embedder {name} ({meta['kind']}, {meta['similarity']})")
        print(f"random: mean lift {np.nanmean(random):.2f}")
        print("| n_masks | mean lift | mask-noise SD | between-pair SD | ratio | s / map |")
        print("|---|---|---|---|---|---|")
        for n_masks in args.masks:
            started = time.perf_counter()
            runs = np.stack([lifts("corrrise", {**params, "n_masks": n_masks}, model, meta["similarity"], images,
                                   partners, ids, partner_ids, masks, seed) for seed in range(args.seeds)])
            per_map = (time.perf_counter() - started) / runs.size
            noise = float(np.nanmean(np.nanstd(runs, axis=0, ddof=1)))
            between = float(np.nanstd(np.nanmean(runs, axis=0), ddof=1))
            by_region = {r: float(np.nanmean(runs[:, (swap["region"] == r).to_numpy()]))
                         for r in sorted(set(swap["region"]))}
            print(f"| {n_masks} | {np.nanmean(runs):.2f} | {noise:.2f} | {between:.2f} | {noise / between:.2f} | "
                  f"{per_map:.2f} |  by region: " + ", ".join(f"{r} {v:.2f}" for r, v in by_region.items()))


if __name__ == "__main__":
    main()
