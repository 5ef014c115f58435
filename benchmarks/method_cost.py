"""Each method's cost against the bare model passes it needs, measured in the same run.

    python benchmarks/method_cost.py [--rows 16] [--size 64] [--device auto]

For each method: seconds per explained image, and efficiency = (time of the forward / backward
passes the method needs, run bare, batched the same way) / (method time). 1.0 means the method
adds nothing around the model calls.

LIME and SHAP are also run the way their packages are used by default (engine: package, i.e.
LimeImageExplainer.explain_instance with its default batch_size=10, one shap.GradientExplainer per
image with its default batch_size=50) at the same sample counts and seeds: the speed-up of our
batched engine and the Spearman rank correlation between the two maps are printed.
They are timed twice: with the model, and with a stand-in model that costs next to nothing, which
shows the time each engine spends outside the model (what is left on a GPU, where calls on small
batches are cheap). Goals: efficiency >= 0.8 for IG, RISE, CorrRISE, Occlusion; LIME and
SHAP >= 3x faster than default usage with rank correlation >= 0.95.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from facexai.attributions import ClassTask, get_method
from facexai.attributions.lime_shap import LIME, SHAP
from facexai.device import resolve_device
from facexai.models.backbones import build_model, for_inference
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


class ReadsAFewPixels(nn.Module):
    """A stand-in model that costs next to nothing: 10 outputs from a few pixels. Timing the engines
    with it shows what they spend outside the model (on a GPU, model calls on small batches are
    cheap and this overhead is what is left)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 1))

    def forward(self, x):
        h, w = x.shape[-2:]
        row = x[:, :, h // 2, w // 4:w // 4 + 10]
        return (row.transpose(1, 2) @ self.w)[..., 0] + x[:, :, h // 4, w // 2:w // 2 + 10].sum(1)


def engines(task, x, ids, batch):
    """LIME and SHAP, batched engine against the package's default usage: (label, s/image each, rho)."""
    rows = len(x)
    for label, ours, default in (
            ("lime", LIME(num_samples=300, batch_size=batch), LIME(num_samples=300, batch_size=10, engine="package")),
            ("shap", SHAP(nsamples=32, batch_size=batch), SHAP(nsamples=32, batch_size=50, engine="package"))):
        fast, t_fast = timed(lambda: ours(task, x, ids, seed=0), repeat=1)
        slow, t_slow = timed(lambda: default(task, x, ids, seed=0), repeat=1)
        rho = np.mean([spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(fast, slow)])
        yield label, t_fast / rows, t_slow / rows, rho


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", nargs="*", default=None, help="methods of the first table (default all)")
    parser.add_argument("--batch", type=int, default=256,
                        help="inputs per model call of IG, RISE, CorrRISE, LIME, SHAP (batched engine), Occlusion")
    parser.add_argument("--no-engines", action="store_true", help="skip the LIME / SHAP engine comparison")
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
        # as the pipeline runs an explained network: frozen weights, channels-last
        model, source = for_inference(build_model("resnet_small", 10, width=32).to(dev)), "random weights"
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
    b = args.batch
    occ = {"window": 8, "stride": 4, "perturbations_per_eval": max(1, b // n)}
    n_windows = ((s - occ["window"]) // occ["stride"] + 1) ** 2
    plans = {
        # method: (params, bare passes it needs)
        "gradcam": ({}, bare_forward_backward(model, n, n, x)),
        "gradcampp": ({}, bare_forward_backward(model, n, n, x)),
        "integrated_gradients": ({"n_steps": 16, "internal_batch_size": b},
                                 bare_forward_backward(model, n * 16, b, x)),
        # captum evaluates perturbations_per_eval copies of the whole batch per call
        "occlusion": (occ, bare_forward(model, n * (n_windows + 1), occ["perturbations_per_eval"] * n, x)),
        "rise": ({"n_masks": 512, "batch_size": b}, bare_forward(model, n * 512, b, x)),
        "corrrise": ({"n_masks": 512, "batch_size": b}, bare_forward(model, n * 512, b, x)),
        "lime": ({"num_samples": 300, "batch_size": args.batch}, bare_forward(model, n * 300, args.batch, x)),
        "shap": ({"nsamples": 32, "batch_size": args.batch}, bare_forward_backward(model, n * 32, args.batch, x)),
    }
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {dev} ({name}), {n} explained images of {s}x{s}, resnet_small width 32 ({source}), "
          f"{b} inputs per model call")
    cuda = dev.type == "cuda"
    peak_header = f"{'peak GiB':>10}" if cuda else ""
    print(f"{'method':<22}{'s / image':>10}{'bare s / image':>16}{'efficiency':>12}{'goal 0.8':>10}{peak_header}")
    for name, (params, bare) in plans.items():
        if args.only and name not in args.only:
            continue
        method = get_method(name, params)
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        _, t_method = timed(lambda: method(task, x, ids, seed=0))
        peak = f"{torch.cuda.max_memory_allocated(dev) / 2 ** 30:>10.2f}" if cuda else ""
        _, t_bare = timed(bare)
        ratio = t_bare / t_method
        goal = "met" if ratio >= 0.8 else "MISSED"
        print(f"{name:<22}{t_method / n:>10.4f}{t_bare / n:>16.4f}{ratio:>12.2f}{goal:>10}{peak}", flush=True)

    if args.no_engines:
        return
    print(f"\nLIME (300 samples) and SHAP (32 samples), batched engine ({args.batch} inputs per model call "
          "across images) against the packages' default usage (same samples, same seeds):")
    print(f"{'':<34}{'batched s/img':>14}{'package s/img':>14}{'speed-up':>10}{'rank corr':>10}")
    stand_in = ReadsAFewPixels().to(dev).eval()
    for model_label, m in (("this model", model), ("model cost removed (stand-in)", stand_in)):
        for label, t_fast, t_slow, rho in engines(ClassTask(m, torch.arange(n) % 10), x, ids, args.batch):
            print(f"{label + ', ' + model_label:<34}{t_fast:>14.4f}{t_slow:>14.4f}{t_slow / t_fast:>9.1f}x{rho:>10.4f}")


if __name__ == "__main__":
    main()
