"""Channels-last against NCHW for the package's backbones on the CPU: a training step, a forward
pass and an input gradient (what the attribution methods and metrics run), one thread.

    python benchmarks/memory_layout.py [--size 64] [--width 32] [--batches 32 64] [--repeats 5]

Printed per architecture and batch: milliseconds per call in each layout and the speed-up
(NCHW time / channels-last time). The pipeline runs explained networks channels-last
(`backbones.for_inference`) and trains channels-last with one CPU thread
(`backbones.channels_last_trains`).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from facexai.models.backbones import ARCHITECTURES, build_model, channels_last


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN picks its kernels on the first call)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.size} x {args.size} px, width {args.width}, one thread; ms per call")
    print("| arch | batch | step NCHW | step CL | x | forward NCHW | forward CL | x | input grad NCHW | "
          "input grad CL | x |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in ARCHITECTURES:
        for batch in args.batches:
            torch.manual_seed(0)
            plain = build_model(arch, 10, width=args.width)
            x = torch.randn(batch, 3, args.size, args.size)
            y = torch.rand(batch, 10)
            row = []
            for kind in ("step", "forward", "grad"):
                times = []
                for layout in ("nchw", "cl"):
                    net = copy.deepcopy(plain)
                    if layout == "cl":
                        net = channels_last(net)
                    if kind == "step":
                        opt = torch.optim.AdamW(net.parameters(), 1e-3)
                        loss_fn = torch.nn.BCEWithLogitsLoss()

                        def step(net=net, opt=opt, loss_fn=loss_fn):
                            loss = loss_fn(net(x), y)
                            opt.zero_grad()
                            loss.backward()
                            opt.step()
                        times.append(timed(step, args.repeats))
                    elif kind == "forward":
                        net.eval()
                        times.append(timed(lambda net=net: net(x).detach(), args.repeats))
                    else:
                        net.eval().requires_grad_(False)
                        xi = x.clone().requires_grad_(True)
                        times.append(timed(lambda net=net: torch.autograd.grad(net(xi)[:, 0].sum(), xi),
                                           args.repeats))
                row += [f"{times[0]:.0f}", f"{times[1]:.0f}", f"{times[0] / times[1]:.2f}"]
            print(f"| {arch} | {batch} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
