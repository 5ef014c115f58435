"""Time per attribution method with a config's own parameters, and what a shard job will take.

    python benchmarks/method_time_estimate.py [--config config/celebamask-hq.yaml] [--rows 8]
                                              [--device auto]

Reads config/config.yaml with the given config on top (as `snakemake --configfile` does), builds
each model of `models:` with random weights at `dataset.image_size` (speed does not depend on the
weights), and times every method of `explain.methods` with its `methods:` parameters on `--rows`
images. Prints seconds per image and the estimated time of one attribution job
(`explain.shard_size` images), per model. This is how the estimates in the README were made; run it
on your own hardware (a GPU changes the model-bound methods by a large factor).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from snakemake.utils import update_config

from facexai.attributions import ClassTask, get_method
from facexai.device import resolve_device
from facexai.models.backbones import build_model

REPO = Path(__file__).resolve().parents[1]


def merged_config(path: str | None) -> dict:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if path:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    return config


def smooth_images(n: int, size: int, device) -> torch.Tensor:
    """Images with structure (SLIC needs some), in the model's normalised range."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(n, 3, 6, 6, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").to(device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="a config on top of config/config.yaml")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="*", default=None, help="model names (default: all of models:)")
    args = parser.parse_args(argv)
    config = merged_config(args.config)
    dev = resolve_device(args.device)
    size = int(config["dataset"]["image_size"])
    shard = config["explain"].get("shard_size") or config["explain"].get("max_samples") or args.rows
    x = smooth_images(args.rows, size, dev)
    ids = np.arange(args.rows)
    print(f"device {dev}, {args.rows} images of {size}x{size}, {torch.get_num_threads()} threads; "
          f"one attribution job = {shard} images")
    print(f"{'model':<14}{'method':<22}{'s / image':>10}{'per job':>10}")
    for spec in config["models"]:
        if args.models and spec["name"] not in args.models:
            continue
        kwargs = {"width": spec["width"]} if "width" in spec else {}
        model = build_model(spec.get("arch", "resnet_small"), 40, **kwargs).to(dev).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        task = ClassTask(model, torch.arange(args.rows) % 40)
        for name in config["explain"]["methods"]:
            method = get_method(name, config["methods"].get(name))
            if method.needs_labels:  # reads the label maps, never the model: no model time to estimate
                print(f"{spec['name']:<14}{name:<22}{'(reads labels: model-free)':>20}")
                continue
            method(ClassTask(model, task.extra[0][:1]), x[:1], ids[:1], seed=0)  # warm-up (imports, allocator)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            method(task, x, ids, seed=0)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            per_image = (time.perf_counter() - start) / args.rows
            job = per_image * shard
            print(f"{spec['name']:<14}{name:<22}{per_image:>10.4f}{job / 60:>8.1f} m", flush=True)


if __name__ == "__main__":
    main()
