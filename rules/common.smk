import math
import sys
from pathlib import Path

from facexai.config import check_config, digest
from facexai.data.celebamask import annotation_files, IDENTITY_FILE
from facexai.data.synthetic import PAIRS_FILE

check_config(config)

R = config["results_dir"]
MODELS = [m["name"] for m in config["models"]]
METHODS = list(config["explain"]["methods"])
PAIR_METHODS = list(config["verification"]["explain"]["methods"])


def model_config(name):
    """A model's settings: its own keys over model_defaults."""
    own = next(m for m in config["models"] if m["name"] == name)
    return {k: v for k, v in {**config["model_defaults"], **own}.items() if k != "name"}


# models given as a weights file (TorchScript, or a state dict of one of our architectures) are
# imported, not trained
USER_MODELS = [m for m in MODELS if model_config(m).get("weights")]
TRAINED_MODELS = [m for m in MODELS if m not in USER_MODELS]

# "main" is the dataset itself; "shortcut" is the synthetic set regenerated with the spurious cue
# (synthetic.shortcut), made only when a model trains on it (the biased twin).
DATASETS = sorted({"main"} | {model_config(m).get("dataset", "main") for m in MODELS})


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),
    method="|".join(sorted(set(METHODS) | set(PAIR_METHODS))),
    shard=r"\d+",


def model_dataset(model):
    return model_config(model).get("dataset", "main")


def is_synthetic():
    return config["dataset"]["source"] == "synthetic"


def synthetic_root(dataset):
    return f"{R}/synthetic/{dataset}/CelebAMask-HQ"


def dataset_root(dataset):
    return synthetic_root(dataset) if is_synthetic() else config["dataset_root"]


def dataset_h5(wildcards):
    """The fused dataset a model trains on and is explained on."""
    return f"{R}/data/{model_dataset(wildcards.model)}/dataset.h5"


def split_tsv(wildcards):
    return f"{R}/data/{model_dataset(wildcards.model)}/split.tsv"


def identity_file(dataset="main"):
    """The identity file to read, or None (then the split follows CelebA's official partition)."""
    if config["dataset"]["identity_file"]:
        return config["dataset"]["identity_file"]
    if is_synthetic():
        return f"{synthetic_root(dataset)}/{IDENTITY_FILE}"
    default = Path(config["dataset_root"]) / IDENTITY_FILE
    return str(default) if default.is_file() else None


def n_samples():
    if is_synthetic():
        return config["synthetic"]["n_images"] + config["synthetic"]["region_pairs"]
    path = annotation_files(config["dataset_root"])["attributes"]
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the sample count on line 1 ({exc})")


FUSE_SHARDS = list(range(math.ceil(n_samples() / config["dataset"]["shard_size"])))


def training_mem_mb():
    """Training holds the split's images in memory (uint8, read once, not per epoch): 2 GB plus
    twice their size."""
    size = config["dataset"]["image_size"]
    return 2000 + math.ceil(2 * n_samples() * size * size * 3 / 1e6)


def tables_mem_mb(wildcards, input):
    """Jobs that read every per-sample table: about 4x the CSVs' size, at least 2 GB."""
    return max(2000, math.ceil(4 * input.size_mb))


def explain_shard_count():
    """Attribution jobs per (model, method): explain.shards, or, with explain.shard_size, enough
    shards for the expected number of explained test samples (the exact test split is known only
    after the split; shards are balanced, so each holds about shard_size samples)."""
    e = config["explain"]
    if not e.get("shard_size"):
        return e["shards"]
    expected = n_samples() * config["split"]["test_fraction"]
    if e["max_samples"]:
        expected = min(expected, e["max_samples"])
    return max(1, math.ceil(expected / e["shard_size"]))


EXPLAIN_SHARDS = list(range(explain_shard_count()))
PAIR_SHARDS = list(range(config["verification"]["explain"]["shards"]))


def explain_params(section, keys):
    """The settings an attribution job depends on, and no more: the method list is left out, so that
    adding a method does not rerun the others."""
    return {k: section[k] for k in keys if k in section}


EXPLAIN_PARAMS = {
    **explain_params(
        config["explain"], ("attributes", "only_positive", "max_samples", "batch_size")
    ),
    "shards": len(EXPLAIN_SHARDS),
}
PAIR_EXPLAIN_PARAMS = explain_params(
    config["verification"]["explain"], ("kinds", "max_pairs", "shards", "batch_size")
)


_FINGERPRINTS = []


def shard_files_digest(wildcards):
    """Real data: a digest of the names and sizes of this shard's image and mask files (a changed
    file reruns its shard; facexai/data/fingerprint.py). Computed on first use only."""
    if is_synthetic() or not config["dataset"]["fingerprint"]:
        return None
    if not _FINGERPRINTS:
        from facexai.data.fingerprint import shard_fingerprints

        _FINGERPRINTS.append(
            shard_fingerprints(config["dataset_root"], config["dataset"]["shard_size"])
        )
    digests = _FINGERPRINTS[0]
    shard = int(wildcards.shard)
    return digests[shard] if shard < len(digests) else None


def dataset_inputs(wildcards):
    """What fusion reads: the generated folder, or the real dataset's annotation files."""
    if is_synthetic():
        return {"root": synthetic_root(wildcards.dataset)}
    inputs = {k: str(v) for k, v in annotation_files(config["dataset_root"]).items()}
    if identity_file():
        inputs["identity"] = identity_file()
    return inputs


def synthetic_params(dataset):
    """Generator settings; only the shortcut dataset carries the spurious cue."""
    settings = dict(config["synthetic"])
    if dataset != "shortcut":
        settings["shortcut"] = {
            "attribute": None,
            "strength": settings["shortcut"]["strength"],
        }
    return settings


def dataset_digest(dataset):
    source = synthetic_params(dataset) if is_synthetic() else config["dataset_root"]
    return digest(config["dataset"], source)


def twin_pairs():
    """(fair, biased) model pairs: each model trained on the shortcut dataset with the first model of
    the same architecture trained on the main one; only when the shortcut attribute is explained.
    """
    attribute = config["synthetic"]["shortcut"]["attribute"]
    if not is_synthetic() or attribute not in config["explain"]["attributes"]:
        return []
    pairs = []
    for biased in MODELS:
        if model_dataset(biased) != "shortcut":
            continue
        arch = model_config(biased).get("arch")
        fair = [
            m
            for m in MODELS
            if model_dataset(m) == "main" and model_config(m).get("arch") == arch
        ]
        if fair:
            pairs.append((fair[0], biased))
    return pairs


TWINS = twin_pairs()
TWIN_MODELS = sorted({m for pair in TWINS for m in pair})


def gpu_request():
    """Ask the scheduler for a GPU only where the config says the jobs need one."""
    return 1 if config["device"] == "cuda" else 0


def final_outputs():
    return [
        f"{R}/tables/localisation_by_attribute.csv",
        f"{R}/tables/localisation_by_region.csv",
        f"{R}/tables/model_accuracy.csv",
        f"{R}/tables/method_comparison.csv",
        f"{R}/summary.json",
        f"{R}/figures/fr_vs_rp.png",
        *([f"{R}/figures/twin_mass.png"] if TWINS else []),
        *expand(f"{R}/figures/overlay_{{model}}.png", model=MODELS),
        f"{R}/gallery/index.html",
        *expand(f"{R}/figures/training_curves_{{model}}.png", model=TRAINED_MODELS),
        *([f"{R}/verification/embedder/eer.json"] if identity_file() else []),
        *(
            [f"{R}/tables/verification_localisation.csv"]
            if identity_file() and PAIR_METHODS
            else []
        ),
        *(
            [f"{R}/figures/verification_pairs.png"]
            if identity_file() and PAIR_METHODS
            else []
        ),
        # the per-shard maps and metric tables are results too: a missing or damaged one is remade
        *shard_outputs()["attributions"],
        *shard_outputs()["csv"],
    ]


def shard_outputs():
    """The shard files a run reads, by kind, for the integrity check."""
    return {
        "fused": [
            f"{R}/data/{d}/shards/fused_{s}.h5" for d in DATASETS for s in FUSE_SHARDS
        ]
        + [f"{R}/data/{d}/dataset.h5" for d in DATASETS],
        "attributions": [
            f"{R}/attributions/{m}/{method}/{s}.h5"
            for m in MODELS
            for method in METHODS
            for s in EXPLAIN_SHARDS
        ]
        + [
            f"{R}/attributions/verification/{method}/{s}.h5"
            for method in PAIR_METHODS
            for s in PAIR_SHARDS
        ],
        "csv": [
            f"{R}/metrics/{m}/{method}/{s}.csv"
            for m in MODELS
            for method in METHODS
            for s in EXPLAIN_SHARDS
        ]
        + [
            f"{R}/metrics/verification/{method}/{s}.csv"
            for method in PAIR_METHODS
            for s in PAIR_SHARDS
        ],
    }


# A damaged shard (truncated, overwritten, failing its checksums) is moved aside to <name>.corrupt
# before the DAG is built, so that it is made again rather than read (facexai/integrity.py).
if config["integrity_check"] and workflow.is_main_process:
    from facexai.integrity import quarantine

    for path, problem in quarantine(shard_outputs()):
        print(
            f"facexai: {path}: {problem}; moved to {path}.corrupt and scheduled again",
            file=sys.stderr,
        )
