"""CorrRISE with a mask count chosen by convergence: how many masks each map needs, what it costs
against the fixed count, and how close the stopped map is to a map from many more masks.

    python benchmarks/corrrise_convergence.py results [--embedder trained] [--per-kind 4]
        [--reference 4000] [--block 250] [--tolerances 0.05 0.1 0.2] [--threads 1]

Reads a finished run (its fused dataset, pairs and embedder). On the first `per-kind` explained
pairs of each kind the run explains (per region for swap pairs, their controls and triplets, as the
run picks them), the pair scores of the config's `n_masks` masks are drawn once (the method's own
mask set, whose first masks the stopping rule uses); then for each tolerance the stopping rule of
`methods.corrrise.tolerance` is applied to them (`rise.converged_counts`: a map stops when it
changed by less than the tolerance over the last `block` masks). The reference map uses
`reference` masks of the same seed. Printed per tolerance and kind: the mean and range of the masks used, the model
passes saved against the fixed `n_masks` of the config (the speed-up of the attribution job's model
passes), the Spearman correlation of each stopped map with the `reference`-mask map (mean and
minimum), beside the same for the fixed count; and, for pairs with an expected region, the lift of
the negative (dissimilarity) part there. The method draws the same masks block by block, so its maps
equal the simulated ones (tests/test_attributions.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import spearmanr

from facexai.attributions.rise import _MaskedScores, converged_counts, correlation_maps
from facexai.layout import Layout
from facexai.subjects.pairs import load_pairs
from facexai.data.pairs import GROUND_TRUTH_KINDS, expected_regions
from facexai.metrics.topq import mask_metrics

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--embedder", default="trained")
    parser.add_argument("--per-kind", type=int, default=4)
    parser.add_argument("--reference", type=int, default=4000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.config != REPO / "config/config.yaml":
        override = yaml.safe_load(args.config.read_text())
        for key in ("methods", "verification", "regions"):
            if isinstance(config.get(key), dict):
                config[key].update(override.get(key, {}))
    params = dict(config["methods"]["corrrise"])
    fixed = int(params["n_masks"])
    explain = config["verification"]["explain"]
    R = args.results
    L = Layout(R)
    inputs = {"data": L("dataset_h5", dataset="main"), "pairs": L("scores", embedder=args.embedder),
              "meta": L("embedder_meta", embedder=args.embedder), "store": L("pairs_h5")}
    pairs, extra, loaded, _, _ = load_pairs(inputs, shard=0, n_shards=1, kinds=explain["kinds"],
                                            max_pairs=args.per_kind, dev=torch.device("cpu"), partner_fill=False)
    pairs = pairs.reset_index(drop=True)
    n = len(pairs)
    from facexai.data.samples import to_model_input

    images = to_model_input(loaded.images)
    size = tuple(images.shape[-2:])
    # the method's own mask set (n_masks; the stopping rule uses its first masks) and a larger set of
    # the same seed for the reference map (a larger set is not an extension of a smaller one)
    started = time.perf_counter()
    masks, scores = _MaskedScores(params, seed=0)(loaded.span(0, n), images, pairs["id_a"].to_numpy())
    seconds_per_mask = (time.perf_counter() - started) / (n * fixed)
    scores, flat = scores.cpu().numpy(), masks.view(masks.shape[0], -1).cpu().numpy()
    big_masks, big_scores = _MaskedScores({**params, "n_masks": args.reference}, seed=0)(
        loaded.span(0, n), images, pairs["id_a"].to_numpy())
    reference = correlation_maps(big_scores.cpu().numpy(), big_masks.view(args.reference, -1).cpu().numpy())
    at_fixed = correlation_maps(scores, flat)
    truth_rows = np.isin(pairs["kind"], GROUND_TRUTH_KINDS)
    regions = None
    if truth_rows.any():
        regions = expected_regions(inputs["data"], inputs["store"],
                                   pairs["row_a"].to_numpy(), pairs["row_b"].to_numpy(), list(pairs["kind"]),
                                   list(pairs["region"]), config["regions"],
                                   probe_swap_rows=extra["row_d"].to_numpy())

    def lift(maps):
        if regions is None:
            return np.full(n, np.nan)
        m = maps.reshape(n, *size).astype(np.float32)
        out = np.full(n, np.nan)
        sel = truth_rows & (regions.reshape(n, -1).any(axis=1))
        out[sel] = mask_metrics(m[sel], regions[sel], q=10, mode="negative", workers=1)["lift"]
        return out

    def rho(a, b):
        return np.array([spearmanr(x, y)[0] for x, y in zip(a, b)])

    print(f"{n} pairs of embedder {args.embedder} ({args.per_kind} per kind, per region for swaps, controls and "
          f"triplets), {args.reference} reference masks, block {args.block}, fixed n_masks {fixed}; "
          f"{seconds_per_mask * 1000:.2f} ms per masked pass")
    lift_ref, lift_fixed = lift(reference), lift(at_fixed)
    rho_fixed = rho(at_fixed, reference)
    rows = []
    for tolerance in args.tolerances:
        used, stopped = converged_counts(scores, flat, args.block, tolerance)
        rho_stop, lift_stop = rho(stopped, reference), lift(stopped)
        for kind in [*dict.fromkeys(pairs["kind"]), "all"]:
            sel = np.ones(n, bool) if kind == "all" else (pairs["kind"] == kind).to_numpy()
            rows.append({"tolerance": tolerance, "kind": kind, "n": int(sel.sum()),
                         "masks mean": used[sel].mean(), "masks min-max": f"{used[sel].min()}-{used[sel].max()}",
                         "speed-up": fixed * sel.sum() / used[sel].sum(),
                         "rho stop mean": rho_stop[sel].mean(), "rho stop min": rho_stop[sel].min(),
                         f"rho {fixed} mean": rho_fixed[sel].mean(), f"rho {fixed} min": rho_fixed[sel].min(),
                         "lift stop": np.nanmean(lift_stop[sel]) if truth_rows[sel].any() else np.nan,
                         f"lift {fixed}": np.nanmean(lift_fixed[sel]) if truth_rows[sel].any() else np.nan,
                         f"lift {args.reference}": np.nanmean(lift_ref[sel]) if truth_rows[sel].any() else np.nan})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
