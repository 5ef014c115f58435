"""Integrated Gradients' completeness error against its step count, on trained models.

    python benchmarks/ig_completeness.py [--results results] [--steps 16 32 64 128] [--rows 40]

For each model of a finished run (results/models/*, attribute classifiers) and the first `--rows`
explained decisions of its attribution shards (the same images, targets and baseline as the run),
prints the median, 90th percentile and maximum of the relative completeness error
|sum(map) - (f(x) - f(baseline))| / |f(x) - f(baseline)| (logits) per step count, and the share of
maps beyond 5 %. The default `methods.integrated_gradients.n_steps` is chosen from this table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import torch

from facexai.attributions import ClassTask, get_method
from facexai.attributions.store import read_shard
from facexai.data.samples import read_rows, to_model_input
from facexai.models.train import load_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--steps", type=int, nargs="*", default=[16, 32, 64, 128])
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args(argv)
    results = Path(args.results)
    print(f"{'model':<16}{'n_steps':>8}{'median':>9}{'p90':>9}{'max':>9}{'> 5 %':>8}"
          f"   (relative error, {args.rows} maps)")
    for model_dir in sorted(p for p in (results / "models").iterdir() if (p / "model.json").is_file()):
        meta = json.loads((model_dir / "model.json").read_text())
        shards = sorted((results / "attributions" / model_dir.name).glob("*/*.h5"))
        if not shards:
            continue
        shard = read_shard(shards[0], maps=False)
        rows, targets = shard["row"][:args.rows], shard["target"][:args.rows]
        dataset = results / "data" / meta.get("dataset", "main") / "dataset.h5"
        if not dataset.is_file():
            dataset = results / "data/main/dataset.h5"
        with h5py.File(dataset, "r") as h5:
            x = to_model_input(read_rows(h5, "images", rows))
        model, _ = load_model(model_dir)
        task = ClassTask(model, torch.from_numpy(targets))
        for steps in args.steps:
            method = get_method("integrated_gradients", {"n_steps": steps})
            method(task, x, np.asarray(rows), seed=0)
            error = method.diagnostics["completeness_error"]
            print(f"{model_dir.name:<16}{steps:>8}{np.median(error):>9.3f}{np.quantile(error, 0.9):>9.3f}"
                  f"{error.max():>9.3f}{(error > 0.05).mean():>8.0%}", flush=True)


if __name__ == "__main__":
    main()
