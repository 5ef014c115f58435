"""Photo stage speed: dlib detection, alignment and landmark masks per 1024x1024 photo.

    python benchmarks/photo_alignment.py [--photos 40] [--size 1024] [--workers 1 2]

The photos are the demo folder's 4 public-domain faces upscaled to `--size` (long side) and copied
to `--photos` files. Printed: the time per photo of each step (decode, detect, 5- and 68-point
shapes with the chip, masks, writing), the end-to-end rate of align_shard with 1 and 2 worker
processes, and, as the baseline measured in the same run, the rate of decoding alone (a stage
cannot beat reading its photos). Loading the models (about 2-3 s per process, the 68-point predictor
is 100 MB) is paid once per job, so the marginal rate (running half the photos, then all) is what a
job of thousands of photos sees. Goal: >= 20 photos/s per core at 1024x1024.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--chip-size", type=int, default=512)
    parser.add_argument("--mask-size", type=int, default=512)
    args = parser.parse_args()

    from facexai.data.demo_photos import write_demo_folder
    from facexai.data.landmark_masks import landmark_masks
    from facexai.data.photos.align import AlignSettings, FaceAligner
    from facexai.data.photos.decode import decode_photo
    from facexai.data.photos.folder import list_photos, shard_photos
    from facexai.data.photos.shards import align_shard, write_sample

    settings = AlignSettings(chip_size=args.chip_size, padding=0.5, detect_size=512, min_score=0.3,
                             mask_size=args.mask_size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = tmp / "demo"
        names = write_demo_folder(demo, upscale=args.size)
        folder = tmp / "photos"
        folder.mkdir()
        for k in range(args.photos):
            shutil.copyfile(demo / names[k % len(names)], folder / f"{k:05d}.jpg")
        photos = list_photos(folder)
        print(f"{len(photos)} photos, {args.size} px long side (JPEG q95), chip {args.chip_size}, "
              f"masks {args.mask_size}, detection at 512 px")

        t0 = time.perf_counter()
        aligner = FaceAligner(settings)
        load = time.perf_counter() - t0
        print(f"loading dlib's detector and shape predictors: {load:.2f} s per process (once per job)")
        steps = {"decode": [], "detect": [], "shapes + chip": [], "masks": [], "write (jpg + png)": []}
        out = tmp / "steps"
        (out / "CelebA-HQ-img").mkdir(parents=True)
        for i, f in enumerate(photos):
            t0 = time.perf_counter()
            image = decode_photo(folder / f)
            t1 = time.perf_counter()
            faces = aligner.detect(image)
            t2 = time.perf_counter()
            face = aligner.align(image, faces[0])
            t3 = time.perf_counter()
            landmark_masks(face.landmarks, settings.chip_size, settings.mask_size)
            t4 = time.perf_counter()
            write_sample(out, i, face, settings)  # draws the masks again, then writes
            t5 = time.perf_counter()
            for name, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, (t5 - t4) - (t4 - t3))):
                steps[name].append(dt)
        total = sum(np.median(v) for v in steps.values())
        print("\nper photo, one process (median ms):")
        for name, values in steps.items():
            print(f"  {name:18s} {1000 * np.median(values):7.1f}")
        print(f"  {'sum':18s} {1000 * total:7.1f}  -> {1 / total:.1f} photos/s")

        decode = np.median(steps["decode"])
        print(f"\nbaseline, decoding alone: {1 / decode:.1f} photos/s")
        print("\nalign_shard end to end: all photos, and the marginal rate from running half of them too "
              "(the fixed cost, pool start and model loading, cancels: a job of thousands of photos runs "
              "at the marginal rate):")
        for workers in args.workers:
            times = {}
            for n in (len(photos) // 2, len(photos)):
                t0 = time.perf_counter()
                rows = align_shard(folder, shard_photos(photos, 0, n), tmp / f"shard_w{workers}_{n}", settings,
                                   workers=workers, progress=False)
                times[n] = time.perf_counter() - t0
                assert len(rows) == n and all(r["status"] == "ok" for r in rows)
            half, full = sorted(times)
            marginal = (full - half) / (times[full] - times[half])
            print(f"  {workers} worker(s): {times[full]:6.2f} s for {full} ({full / times[full]:5.1f} photos/s); "
                  f"marginal {marginal:5.1f} photos/s, {marginal / workers:5.1f} per core "
                  f"({marginal * decode:.2f}x the decode-only rate)")

if __name__ == "__main__":
    main()
