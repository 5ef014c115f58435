"""How much of a swapped area is the donor's part, and how visible its seam is, per blend.

    python benchmarks/swap_seams.py [--dataset results/data/main/dataset.h5] [--per-region 20]

Draws region swaps as the pipeline does (a test face A, a donor B of another identity, per region of
config/config.yaml's region_swap) on a fused dataset and reports per blend and region, mean [min, max]
over the swaps: `part share` = |R_B ∩ U| / |U| (how much of the expected region U is B's part) and
`edge ratio` = the squared Sobel gradient of A' summed over the ring within one pixel of U's border,
over the same sum for A (1: the border looks like A's). Goals: part share >= 0.6, edge ratio <= 1.1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml

from facexai.data.pairs import resize_any, seam_measures, swap_region
from facexai.data.samples import read_rows
from facexai.labels import region_class_indices

REPO = Path(__file__).resolve().parents[1]
BLENDS = {"feather (dilation 2, feather 2)": ("feather", 2, 2), "poisson (dilation 0)": ("poisson", 0, 0),
          "poisson (dilation 1)": ("poisson", 1, 0), "poisson (dilation 2)": ("poisson", 2, 0)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="results/data/main/dataset.h5")
    parser.add_argument("--per-region", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    regions = config["regions"]
    names = config["verification"]["region_swap"]["regions"]
    records = []
    with h5py.File(args.dataset, "r") as h5:
        n, size = h5["images"].shape[0], h5["images"].shape[1]
        rng = np.random.default_rng(args.seed)
        for region in names:
            classes = region_class_indices(region, regions)
            made = 0
            while made < args.per_region:
                a, b = (int(v) for v in rng.choice(n, 2, replace=False))
                labels = read_rows(h5, "labels", [a, b])
                ra, rb = (resize_any(np.isin(lab, classes), size) for lab in labels)
                if not (ra.any() and rb.any()):
                    continue
                images = read_rows(h5, "images", [a, b])
                for label, (blend, dilation, feather) in BLENDS.items():
                    swapped, area = swap_region(images[0], ra, images[1], rb, dilation=dilation, feather=feather,
                                                blend=blend)
                    records.append({"blend": label, "region": region, **seam_measures(images[0], swapped, area, rb)})
                made += 1
    table = pd.DataFrame(records)
    rows = []
    for (blend, region), g in table.groupby(["blend", "region"], sort=False):
        rows.append({"blend": blend, "region": region, "swaps": len(g),
                     **{k: f"{g[k].mean():.2f} [{g[k].min():.2f}, {g[k].max():.2f}]"
                        for k in ("part_share", "edge_ratio")}})
    print(f"{args.dataset}: {size} px images\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
