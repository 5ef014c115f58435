import math
from pathlib import Path

from facexai.config import check_config, digest
from facexai.data.celebamask import annotation_files, IDENTITY_FILE

check_config(config)

R = config["results_dir"]
SYNTHETIC_ROOT = f"{R}/synthetic/CelebAMask-HQ"
MODELS = list(config["models"])
METHODS = list(config["methods"])
EXPLAIN_SHARDS = list(range(config["explain"]["shards"]))


def is_synthetic():
    return config["dataset"]["source"] == "synthetic"


def dataset_root():
    return SYNTHETIC_ROOT if is_synthetic() else config["dataset_root"]


def identity_file():
    """The identity file to read, or None (then the split follows CelebA's official partition)."""
    if config["dataset"]["identity_file"]:
        return config["dataset"]["identity_file"]
    if is_synthetic():
        return f"{SYNTHETIC_ROOT}/{IDENTITY_FILE}"
    default = Path(config["dataset_root"]) / IDENTITY_FILE
    return str(default) if default.is_file() else None


def n_samples():
    if is_synthetic():
        return config["synthetic"]["n_images"]
    path = annotation_files(config["dataset_root"])["attributes"]
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the sample count on line 1 ({exc})")


FUSE_SHARDS = list(range(math.ceil(n_samples() / config["dataset"]["shard_size"])))


def dataset_inputs(wildcards=None):
    """What fusion reads: the generated folder, or the real dataset's annotation files."""
    if is_synthetic():
        return {"root": SYNTHETIC_ROOT}
    inputs = {k: str(v) for k, v in annotation_files(config["dataset_root"]).items()}
    if identity_file():
        inputs["identity"] = identity_file()
    return inputs


def dataset_digest():
    return digest(config["dataset"], config["synthetic"] if is_synthetic() else config["dataset_root"])


def gpu_request():
    """Ask the scheduler for a GPU only where the config says the jobs need one."""
    return 1 if config["device"] == "cuda" else 0


def final_outputs():
    return [
        f"{R}/tables/localisation_by_attribute.csv",
        f"{R}/tables/localisation_by_region.csv",
        *expand(f"{R}/figures/overlay_{{model}}.png", model=MODELS),
    ]
