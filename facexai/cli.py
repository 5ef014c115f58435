"""The `facexai` command: what a finished run says, figures for the docs, maps made elsewhere scored.

    facexai headlines results               the headline results of a run, as Markdown
    facexai figures contact-sheet ROOT OUT  a CelebAMask-HQ-layout folder's images and label maps
    facexai figures swap-pairs RESULTS OUT  a run's region-swap pairs
    facexai demo-photos OUT                 four public-domain photos of two people, to try photo runs
    facexai evaluate MAPS LABELS --region eyes --out scores.csv
                                            maps from anywhere scored against label maps (facexai.evaluate)

Each subcommand has --help. Problems (a missing folder, a file that is not what it should be) end
with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class CommandError(Exception):
    """A problem the user can fix, said in one line."""


def _headlines(args) -> None:
    from .headlines import headlines

    sys.stdout.write(headlines(args.results))


def _demo_photos(args) -> None:
    from .data.demo_photos import PEOPLE, write_demo_folder

    names = write_demo_folder(args.out)
    print(f"{args.out}: {len(names)} photos of {len(PEOPLE)} people and identities.tsv")


def _contact_sheet(args) -> None:
    from .map_figures import layout_sheet

    if not Path(args.root).is_dir():
        raise CommandError(f"{args.root}: not a folder")
    n = layout_sheet(args.root, args.out, args.ids, args.max, args.columns)
    print(f"{args.out}: {n} samples")


def _swap_pairs(args) -> None:
    from .map_figures import swap_sheet

    if not Path(args.results).is_dir():
        raise CommandError(f"{args.results}: not a folder")
    n = swap_sheet(args.results, args.out, args.per_region)
    print(f"{args.out}: {n} region-swap pairs")


def read_maps_file(path: Path):
    """(maps (N, h, w), ids or None) from a .npy (maps) or .npz (`maps`, optional `ids`) file."""
    import numpy as np

    if not path.is_file():
        raise CommandError(f"{path}: file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: not a .npy or .npz file of arrays ({exc})") from None
    if isinstance(data, np.ndarray):
        return data, None
    if "maps" not in data.files:
        raise CommandError(f"{path}: an .npz file needs an array named 'maps' (and optionally 'ids'); it has "
                           f"{data.files}")
    return data["maps"], (data["ids"] if "ids" in data.files else None)


def read_labels_file(path: Path, ids):
    """Label maps for `ids` from a fused dataset (HDF5 with `labels` and `ids`), or all of an .npy /
    .npz (`labels`) file in the maps' order."""
    import numpy as np

    if not path.is_file():
        raise CommandError(f"{path}: file not found")
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as h5:
            if "labels" not in h5 or "ids" not in h5:
                raise CommandError(f"{path}: a fused dataset needs datasets 'labels' and 'ids'")
            known = {int(i): k for k, i in enumerate(h5["ids"][:])}
            if ids is None:
                raise CommandError(f"{path}: give the maps' sample ids (an 'ids' array in the maps .npz) to pick "
                                   "their label maps from a fused dataset")
            missing = [int(i) for i in ids if int(i) not in known]
            if missing:
                raise CommandError(f"{path}: sample id(s) {missing[:5]} not in the dataset")
            rows = np.array([known[int(i)] for i in ids])
            # h5py reads increasing, unique rows; a sample may be listed more than once (per attribute)
            unique, inverse = np.unique(rows, return_inverse=True)
            return h5["labels"][unique][inverse]
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: not a .npy, .npz or fused .h5 file ({exc})") from None
    if isinstance(data, np.ndarray):
        return data
    if "labels" not in data.files:
        raise CommandError(f"{path}: an .npz of label maps needs an array named 'labels'; it has {data.files}")
    return data["labels"]


def _evaluate(args) -> None:
    from .api import evaluate

    maps, ids = read_maps_file(Path(args.maps))
    labels = read_labels_file(Path(args.labels), ids)
    regions = None
    if args.regions:
        import yaml

        with open(args.regions) as fh:
            regions = (yaml.safe_load(fh) or {}).get("regions")
        if not isinstance(regions, dict):
            raise CommandError(f"{args.regions}: expected a `regions:` table (name: [class names])")
    try:
        table = evaluate(maps, labels, args.region, regions=regions, ids=ids)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    from .atomic import atomic_path

    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"{args.out}: {len(table)} maps scored against region {args.region}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="facexai", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="Run the pipeline itself with snakemake (README).")
    sub = top.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser("headlines", help="the headline results of a finished run, as Markdown")
    p.add_argument("results", type=Path, help="the run's results folder (results, results-study, ...)")
    p.set_defaults(run=_headlines)
    p = sub.add_parser("demo-photos", help="write four public-domain photos of two people (a photo-run demo)")
    p.add_argument("out", type=Path, help="the folder to write (created)")
    p.set_defaults(run=_demo_photos)
    figures = sub.add_parser("figures", help="figures for the docs and for eyeballing data")
    kinds = figures.add_subparsers(dest="figure", required=True, metavar="figure")
    p = kinds.add_parser("contact-sheet", help="images of a CelebAMask-HQ-layout folder beside their fused "
                                               "label maps")
    p.add_argument("root", type=Path, help="a folder in the CelebAMask-HQ layout")
    p.add_argument("out", type=Path, help="PNG")
    p.add_argument("--ids", type=int, nargs="*", help="sample ids (default: the first --max)")
    p.add_argument("--max", type=int, default=8)
    p.add_argument("--columns", type=int, default=4)
    p.set_defaults(run=_contact_sheet)
    p = kinds.add_parser("swap-pairs", help="region-swap pairs of a finished run (A, donor B, A', |A' - A|)")
    p.add_argument("results", type=Path, help="the run's results folder")
    p.add_argument("out", type=Path, help="PNG (a PDF is written beside it)")
    p.add_argument("--per-region", type=int, default=2)
    p.set_defaults(run=_swap_pairs)
    p = sub.add_parser("evaluate", help="score maps made anywhere against label maps (facexai.evaluate) into a CSV")
    p.add_argument("maps", type=Path, help=".npy of maps (N, h, w), or .npz with 'maps' and optional 'ids'")
    p.add_argument("labels", type=Path, help="a fused dataset (results/data/main/dataset.h5; rows picked by the "
                                             "maps' ids), or .npy / .npz of label maps (N, H, W) in the maps' order")
    p.add_argument("--region", required=True, help="the expected region's name (e.g. eyes, mouth, nose)")
    p.add_argument("--regions", help="a YAML file with a `regions:` table (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="the CSV to write")
    p.set_defaults(run=_evaluate)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (CommandError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"facexai {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as exc:  # a file that is not what it should be, said in one line
        print(f"facexai {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
