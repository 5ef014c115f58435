"""Per-method attribution speed at the default model size, against bare model passes in the same run.

    python benchmarks/attribution_benchmark.py [--rows 16] [--size 64] [--device auto]

For each method: seconds per explained image, and efficiency = (time of the forward / backward
passes the method needs, run bare, batched the same way) / (method time). 1.0 means the method
adds nothing around the model calls.

LIME and SHAP are also run the way their packages are used by default (LIME: batch_size=10;
shap.GradientExplainer: batch_size=50) at the same sample counts and seeds: the speed-up of our
batched calls and the Spearman rank correlation between the two maps are printed.
Goals (issue 4): efficiency >= 0.8 for IG, RISE, CorrRISE, Occlusion; LIME and SHAP >= 3x faster
than default usage with rank correlation >= 0.95.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from facexai.attributions import ClassTask, get_method
from facexai.attributions.lime_shap import LIME, SHAP
from facexai.device import resolve_device
from facexai.models.backbones import build_model
from facexai.models.train import load_model


def timed(fn, repeat=2):
    best, out = float("inf"), None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, best


def bare_forward(model, n_images, batch, x):
    def run():
        with torch.no_grad():
            done = 0
            while done < n_images:
                k = min(batch, n_images - done)
                model(x[:1].expand(k, -1, -1, -1).contiguous())
                done += k
    return run


def bare_forward_backward(model, n_images, batch, x):
    def run():
        done = 0
        while done < n_images:
            k = min(batch, n_images - done)
            xi = x[:1].expand(k, -1, -1, -1).contiguous().requires_grad_(True)
            model(xi)[:, 0].sum().backward()
            done += k
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-dir", default="results/models/resnet",
                        help="a trained model (for meaningful LIME/SHAP maps); random weights if absent")
    parser.add_argument("--data", default="results/data/main/dataset.h5", help="fused faces; noise if absent")
    args = parser.parse_args(argv)
    dev = resolve_device(args.device)
    torch.manual_seed(0)
    try:
        model, _ = load_model(args.model_dir, dev)
        source = args.model_dir
    except FileNotFoundError:
        model, source = build_model("resnet_small", 10, width=32).to(dev).eval(), "random weights"
    for p in model.parameters():
        p.requires_grad_(False)
    try:  # real faces make LIME / SHAP maps meaningful (a model is flat on noise)
        import h5py

        from facexai.data.samples import to_model_input
        with h5py.File(args.data, "r") as h5:
            x = to_model_input(h5["images"][:args.rows], dev)
        args.size = x.shape[-1]
    except (OSError, KeyError):
        x = torch.randn(args.rows, 3, args.size, args.size, device=dev)
    ids = np.arange(args.rows)
    task = ClassTask(model, torch.arange(args.rows) % 10)
    n, s = args.rows, args.size
    occ = {"window": 8, "stride": 4, "perturbations_per_eval": 8}
    n_windows = ((s - occ["window"]) // occ["stride"] + 1) ** 2
    plans = {
        # method: (params, bare passes it needs)
        "gradcam": ({}, bare_forward_backward(model, n, n, x)),
        "gradcampp": ({}, bare_forward_backward(model, n, n, x)),
        "integrated_gradients": ({"n_steps": 16, "internal_batch_size": 256},
                                 bare_forward_backward(model, n * 16, 256, x)),
        # captum evaluates perturbations_per_eval copies of the whole batch per call
        "occlusion": (occ, bare_forward(model, n * (n_windows + 1), occ["perturbations_per_eval"] * n, x)),
        "rise": ({"n_masks": 512, "batch_size": 256}, bare_forward(model, n * 512, 256, x)),
        "corrrise": ({"n_masks": 512, "batch_size": 256}, bare_forward(model, n * 512, 256, x)),
        "lime": ({"num_samples": 300, "batch_size": 50}, bare_forward(model, n * 300, 50, x)),
        "shap": ({"nsamples": 32}, bare_forward_backward(model, n * 32, 32, x)),
    }
    print(f"device {dev}, {n} explained images of {s}x{s}, resnet_small width 32 ({source})")
    print(f"{'method':<22}{'s / image':>10}{'bare s / image':>16}{'efficiency':>12}")
    for name, (params, bare) in plans.items():
        method = get_method(name, params)
        _, t_method = timed(lambda: method(task, x, ids, seed=0))
        _, t_bare = timed(bare)
        print(f"{name:<22}{t_method / n:>10.4f}{t_bare / n:>16.4f}{t_bare / t_method:>12.2f}")

    print("\nagainst the packages' default usage (same samples, same seeds):")
    rows = min(n, 4)
    sub_task = ClassTask(model, torch.arange(rows) % 10)
    for label, ours, default in (
            ("lime (batch 10 -> 50)", LIME(num_samples=300, batch_size=50), LIME(num_samples=300, batch_size=10)),
            ("shap (batch 50 -> all)", SHAP(nsamples=32, batch_size=0), SHAP(nsamples=32, batch_size=50))):
        fast, t_fast = timed(lambda: ours(sub_task, x[:rows], ids[:rows], seed=0), repeat=1)
        slow, t_slow = timed(lambda: default(sub_task, x[:rows], ids[:rows], seed=0), repeat=1)
        rho = np.mean([spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(fast, slow)])
        print(f"{label:<26} ours {t_fast / rows:.3f} s/image, default {t_slow / rows:.3f} s/image, "
              f"speed-up x{t_slow / t_fast:.1f}, rank correlation {rho:.4f}")


if __name__ == "__main__":
    main()
