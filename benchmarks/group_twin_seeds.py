"""The group-imbalanced twin over training seeds: does the accuracy cost for the scarce group hold
from one training run to the next?

    python benchmarks/group_twin_seeds.py --data results-study/data/main [--seeds 0 1 2]
        [--group Pale_Skin] [--shares 0.5 0.05] [--size 700] [--epochs 10] [--threads 2]

For each seed, trains one resnet_small per share (the model defaults of config/config.yaml; the
seed sets both the draw of the training split and the network's initialisation) on `--size`
images of `--data`'s training split in which the group is that share, and tests every one on the
same test split. Prints per seed and share the accuracy on the group and on the rest (mean over the
model's attributes, each image first) and the gap group - rest, then per seed the change of the
gap from the first share to each other one, with its 95 % bootstrap CI (test persons resampled)
(`facexai.group_twin.paired_side_rows`, the workflow's own rows). The workflow trains one seed; this
says how far another would move its numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml

from facexai.group_twin import correct_on_test, paired_side_rows
from facexai.groups import membership, persons
from facexai.models.train import train_attribute_classifier

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a fused dataset folder: dataset.h5 and split.tsv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--group", default="Pale_Skin")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.05])
    parser.add_argument("--size", type=int, default=700)
    parser.add_argument("--epochs", type=int, default=None, help="default: model_defaults.epochs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    data = Path(args.data)
    dataset, split = data / "dataset.h5", data / "split.tsv"
    for path in (dataset, split):
        if not path.is_file():
            parser.error(f"{path}: not found (--data is a fused dataset folder, e.g. results/data/main)")
    defaults = yaml.safe_load((REPO / "config/config.yaml").read_text())["model_defaults"]
    attributes = defaults["attributes"]
    print(f"{'seed':>4} {'share':>6} {'n_train':>8} {'group':>7} {'rest':>7} {'gap':>7}   (accuracy, mean over "
          f"{len(attributes)} attributes)")
    changes = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            correct = {}
            for share in args.shares:
                out = Path(tmp) / f"s{seed}_{share}"
                train_attribute_classifier(
                    dataset, split, out, arch="resnet_small", attributes=attributes,
                    epochs=args.epochs or defaults["epochs"], batch_size=defaults["batch_size"], lr=defaults["lr"],
                    weight_decay=defaults["weight_decay"], seed=seed, threads=args.threads, width=defaults["width"],
                    group_share={"group": args.group, "share": share, "size": args.size}, progress=False)
                ids, right = correct_on_test(out, dataset, split, attributes, "cpu")
                correct[share] = right.mean(axis=1)
                side = membership(dataset, ids, [args.group])[args.group].to_numpy()
                n_train = json.loads((out / "model.json").read_text())["n_train"]
                yes, no = correct[share][side == "yes"].mean(), correct[share][side == "no"].mean()
                print(f"{seed:>4} {share:>6.2f} {n_train:>8} {yes:>7.3f} {no:>7.3f} {yes - no:>+7.3f}", flush=True)
            base = args.shares[0]
            for share in args.shares[1:]:
                gap = paired_side_rows(correct[base], correct[share], side, 1000, seed, persons(dataset, ids))[2]
                changes.append((seed, share, gap))
    print(f"\nchange of the gap group - rest, share {args.shares[0]} -> another (95 % CI, persons resampled)")
    for seed, share, gap in changes:
        print(f"  seed {seed}, share {share:.2f}: {gap['difference_mean']:+.3f} "
              f"[{gap['difference_ci_low']:+.3f}, {gap['difference_ci_high']:+.3f}]"
              f"  ({gap['n_member']} {args.group} images of {gap['n_member_units']} persons, {gap['n_rest']} others "
              f"of {gap['n_rest_units']})")
    values = np.array([g["difference_mean"] for _, _, g in changes])
    print(f"over the seeds: mean {values.mean():+.3f}, min {values.min():+.3f}, max {values.max():+.3f}")


if __name__ == "__main__":
    main()
