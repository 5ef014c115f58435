"""CorrRISE's fill of masked pixels, measured on a finished run's region pairs.

    python benchmarks/corrrise_fills.py [--results results] [--fills black blur mean partner]
                                        [--masks 256 1000] [--pairs 60]

A region pair is a test photo and its copy with one region changed (the synthetic set's region
pairs). For each fill and mask count, CorrRISE explains the pair similarity over the photo (partner
fixed) and, per region, the lift of the dissimilarity map (negative part) and of the similarity map
(positive part) in the changed region (the union of the region in both photos), mean and 95 %
bootstrap CI over pairs, beside the random baseline's. A fill that lets the dissimilarity map show
where the pair differs puts its lift well above 1 and above random's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import yaml

from facexai.aggregate import bootstrap_mean_ci
from facexai.attributions import PairTask, get_method
from facexai.data.samples import read_rows, to_model_input
from facexai.metrics.run import region_masks
from facexai.metrics.topq import mask_metrics
from facexai.models.verification import embed, load_embedder

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--fills", nargs="*", default=["black", "blur", "mean", "partner"])
    parser.add_argument("--masks", type=int, nargs="*", default=[256, 1000])
    parser.add_argument("--pairs", type=int, default=60, help="region pairs at most")
    args = parser.parse_args(argv)
    results = Path(args.results)
    regions = yaml.safe_load((REPO / "config/config.yaml").read_text())["regions"]
    pairs = pd.read_csv(results / "verification/pairs.tsv", sep="\t", keep_default_na=False)
    pairs = pairs[pairs["kind"] == "region"].iloc[:args.pairs]
    model, _ = load_embedder(results / "verification/embedder")
    with h5py.File(results / "data/main/dataset.h5", "r") as h5:
        images = read_rows(h5, "images", pairs["row_a"].to_numpy())
        partners = read_rows(h5, "images", pairs["row_b"].to_numpy())
        names = list(pairs["region"])
        masks = (region_masks(read_rows(h5, "labels", pairs["row_a"].to_numpy()), names, regions)
                 | region_masks(read_rows(h5, "labels", pairs["row_b"].to_numpy()), names, regions))
    x, partner_x = to_model_input(images), to_model_input(partners)
    task = PairTask(model, torch.from_numpy(embed(model, partners, "cpu")), pairs["id_b"].to_numpy(),
                    partner_images=partner_x)
    ids = pairs["id_a"].to_numpy()
    runs = [("random", None, {})] + [(f"corrrise {fill}", n, {"n_masks": n, "fill": fill, "batch_size": 64})
                                     for n in args.masks for fill in args.fills]
    records = []
    for label, n_masks, params in runs:
        maps = get_method("random" if label == "random" else "corrrise", params)(task, x, ids, seed=0)
        dis = mask_metrics(maps, masks, mode="negative")["lift"]
        sim = mask_metrics(maps, masks, mode="positive")["lift"]
        for region in sorted(set(names)):
            sel = np.array([r == region for r in names])
            for kind, lift in (("dissimilarity", dis[sel]), ("similarity", sim[sel])):
                valid = lift[np.isfinite(lift)]
                low, high = bootstrap_mean_ci(valid, 2000, 0)
                records.append({"method": label, "n_masks": n_masks, "region": region, "map": kind,
                                "lift": valid.mean() if valid.size else np.nan, "ci_low": low, "ci_high": high,
                                "n": int(valid.size)})
        done = pd.DataFrame(records[-2 * len(set(names)):])
        for kind in ("dissimilarity", "similarity"):
            cells = [f"{r.region} {r.lift:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"
                     for r in done[done["map"] == kind].itertuples()]
            masks_label = "" if n_masks is None else f", {n_masks} masks"
            print(f"{label}{masks_label}, {kind} lift (n={done['n'].iloc[0]} per region): " + "; ".join(cells),
                  flush=True)
    return pd.DataFrame(records)

if __name__ == "__main__":
    main()
