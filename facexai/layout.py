"""Every file and folder of a run's results folder (`results_dir`), named once: the rules, the run
plan, the headlines and the figures ask this module for their paths.

A path is a template with Snakemake wildcards, e.g. `metrics/{model}/{method}/{shard}.csv`. Values
given as keywords replace their wildcards; the others stay, so that the same call gives a rule's
wildcard pattern (`layout("metrics_csv")`), a pattern for `expand` (`layout("metrics_csv",
model="{{model}}")` keeps `{model}` through an expand over the others) and one file
(`layout("metrics_csv", model="resnet", method="gradcam", shard=0)`).
"""

from __future__ import annotations

import re
from pathlib import Path

# the files of one model folder (an attribute model or an embedder), as its trainers and importers
# write them
WEIGHTS, META, CURVES = "weights.pt", "model.json", "curves.tsv"

# relative to the results folder. The table and figure entries name the folders and the file
# pattern; each table's and figure's own name is given by the rule that makes it (and by the run
# plan's final targets).
FILES = {
    # the dataset: generated or aligned CelebAMask-HQ layouts, fused shards, the fused set, the split
    "synthetic_root": "synthetic/{dataset}/CelebAMask-HQ",
    "photos_root": "photos/{dataset}/CelebAMask-HQ",
    "photo_shard": "photos/{dataset}/shards/{shard}",
    "photo_summary": "photos/{dataset}/summary.json",
    "fused_shard": "data/{dataset}/shards/fused_{shard}.h5",
    "bad_shard": "data/{dataset}/shards/bad_{shard}.tsv",
    "dataset_h5": "data/{dataset}/dataset.h5",
    "bad_samples": "data/{dataset}/bad_samples.tsv",
    "split_tsv": "data/{dataset}/split.tsv",
    # attribute models
    "weights": f"models/{{model}}/{WEIGHTS}",
    "model_meta": f"models/{{model}}/{META}",
    "curves": f"models/{{model}}/{CURVES}",
    "test_metrics": "models/{model}/test_metrics.tsv",
    "model_eval": "models/{model}/eval_{dataset}.tsv",
    # verification: the pairs, and per embedder its network, curves, scores and equal error rate
    "pairs_h5": "verification/pairs.h5",
    "pairs_tsv": "verification/pairs.tsv",
    "pairs_json": "verification/pairs.json",
    "embedder_weights": f"verification/{{embedder}}/{WEIGHTS}",
    "embedder_meta": f"verification/{{embedder}}/{META}",
    "embedder_curves": f"verification/{{embedder}}/{CURVES}",
    "scores": "verification/{embedder}/scores.tsv",
    "eer": "verification/{embedder}/eer.json",
    # the maps and their per-sample metric tables, per explained subject (`subject`: a model's
    # decisions, or an embedder's pairs)
    "maps": "attributions/{subject}/{method}/{shard}.h5",
    "metrics_csv": "metrics/{subject}/{method}/{shard}.csv",
    # per attribute model: the mean of its normalised maps over the aligned test images (facexai/mean_maps.py)
    "mean_maps": "mean_maps/{model}.h5",
    # what a reader opens: tables, figures, galleries, the summary
    "table": "tables/{table}.csv",
    "pair_table": "tables/verification/{embedder}/{table}.csv",
    "figures": "figures",
    "figure": "figures/{figure}.{ext}",
    "gallery": "gallery/index.html",
    "pair_gallery": "gallery/verification_{embedder}.html",
    "summary": "summary.json",
    # every job's log and benchmark: logs/{stem}.log, benchmarks/{stem}.tsv
    "log": "logs/{stem}.log",
    "benchmark": "benchmarks/{stem}.tsv",
}

_WILDCARD = re.compile(r"\{(\w+)\}")
# the `subject` of an embedder's verification pairs (an attribute model's is its name)
PAIRS_SUBJECT = "verification/{embedder}"


def subject(model: str | None = None, *, embedder: str | None = None) -> str:
    """The `subject` wildcard's value: a model's name for its attribute decisions, verification/NAME
    for an embedder's pairs (a wildcard such as "{{embedder}}" may be given as the name)."""
    if (model is None) == (embedder is None):
        raise ValueError("subject: give a model or an embedder")
    return model if embedder is None else PAIRS_SUBJECT.format(embedder=embedder)


def subject_of(value: str) -> tuple[str, str]:
    """(kind, name) of a `subject` value: ("attributes", model) or ("pairs", embedder)."""
    prefix = PAIRS_SUBJECT.split("{", 1)[0]
    return ("pairs", value[len(prefix):]) if value.startswith(prefix) else ("attributes", value)


class Layout:
    """The files of one results folder (`root`, as written in the config: paths stay relative to
    the working directory when it is)."""

    def __init__(self, root: str | Path = "results"):
        self.root = str(root)

    def __call__(self, name: str, **values) -> str:
        if name not in FILES:
            raise KeyError(f"no file {name!r} in the results layout (facexai/layout.py FILES)")
        template = FILES[name]
        unknown = set(values) - set(_WILDCARD.findall(template))
        if unknown:
            raise KeyError(f"{name} ({template}) has no wildcard {sorted(unknown)}")
        filled = _WILDCARD.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)
        return f"{self.root}/{filled}"

    def path(self, name: str, **values) -> Path:
        return Path(self(name, **values))

    def find(self, name: str, **values) -> list[Path]:
        """The existing files of `name`, sorted, with each wildcard not given matched by any value
        (within a path segment); the root itself is not a pattern, given values are (glob)."""
        relative = self(name, **values)[len(self.root) + 1:]
        return sorted(Path(self.root).glob(_WILDCARD.sub("*", relative)))

    def table(self, table: str) -> str:
        return self("table", table=table)

    def pair_table(self, table: str, embedder: str = "{embedder}") -> str:
        return self("pair_table", table=table, embedder=embedder)

    def figure(self, figure: str, ext: str = "png") -> str:
        return self("figure", figure=figure, ext=ext)

    def log(self, stem: str) -> str:
        return self("log", stem=stem)

    def benchmark(self, stem: str) -> str:
        return self("benchmark", stem=stem)
