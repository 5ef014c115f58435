# The plan's answers for the rules: every decision is made by facexai.plan.RunPlan (unit-tested); this
# file names them, adapts them to Snakemake's wildcards, and does two things at parse time: it caches
# the real data's file digests (shard_files_digest) and moves damaged shards aside (quarantine below).
import sys

from facexai.config import check_config
from facexai.data.photos.layout import BAD_PHOTOS
from facexai.data.synthetic import META_FILE, PAIRS_FILE
from facexai.layout import subject
from facexai.plan import RunPlan, jobs_will_run

check_config(config)
PLAN = RunPlan(config)

L = PLAN.layout  # every path of the results folder (facexai/layout.py)
MODELS = PLAN.models
METHODS = PLAN.methods
PAIR_METHODS = PLAN.pair_methods
USER_MODELS = PLAN.user_models
TRAINED_MODELS = PLAN.trained_models
DATASETS = PLAN.datasets
FUSE_SHARDS = PLAN.fuse_shards
EXPLAIN_SHARDS = PLAN.explain_shards
PAIR_SHARDS = PLAN.pair_shards
EMBEDDERS = PLAN.embedders
TRAINED_EMBEDDERS = PLAN.trained_embedders
IMPORTED_EMBEDDERS = PLAN.imported_embedders
embedder_config = PLAN.embedder_config
TWINS = PLAN.twins
TWIN_MODELS = PLAN.twin_models
GROUP_TWINS = PLAN.group_twins
GROUP_TWIN_MODELS = PLAN.group_twin_models

model_config = PLAN.model_config
model_dataset = PLAN.model_dataset
synthetic_root = PLAN.synthetic_root
dataset_root = PLAN.dataset_root
identity_file = PLAN.identity_file
n_samples = PLAN.n_samples
synthetic_params = PLAN.synthetic_params
dataset_digest = PLAN.dataset_digest
training_mem_mb = PLAN.training_mem_mb
gpu_request = PLAN.gpu_request
final_outputs = PLAN.final_outputs
shard_outputs = PLAN.shard_outputs


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS) or "^$",
    method="|".join(sorted(set(METHODS) | set(PAIR_METHODS))),
    embedder="|".join(EMBEDDERS),
    subject="|".join(PLAN.subjects) or "^$",
    shard=r"\d+",


def is_synthetic():
    return PLAN.is_synthetic


def dataset_h5(wildcards):
    return PLAN.dataset_h5(wildcards.model)


def split_tsv(wildcards):
    return PLAN.split_tsv(wildcards.model)


def attribution_inputs(wildcards):
    return PLAN.attribution_inputs(wildcards.subject, wildcards.method)


def metric_inputs(wildcards):
    return PLAN.metric_inputs(wildcards.subject, wildcards.method, wildcards.shard)


def dataset_inputs(wildcards):
    return PLAN.dataset_inputs(wildcards.dataset)


def tables_mem_mb(wildcards, input):
    return PLAN.tables_mem_mb(input.size_mb)


_FINGERPRINTS = []


def shard_files_digest(wildcards):
    """Real data: a digest of the names and sizes of this shard's image and mask files (a changed
    file reruns its shard; facexai/data/fingerprint.py). Computed on first use only."""
    if is_synthetic() or PLAN.is_photos or not config["dataset"]["fingerprint"]:
        return None
    if not _FINGERPRINTS:
        from facexai.data.fingerprint import shard_fingerprints

        _FINGERPRINTS.append(
            shard_fingerprints(config["dataset_root"], config["dataset"]["shard_size"])
        )
    digests = _FINGERPRINTS[0]
    shard = int(wildcards.shard)
    return digests[shard] if shard < len(digests) else None


# A damaged shard (truncated, overwritten, failing its checksums) is moved aside to <name>.corrupt
# before the DAG is built, so that it is made again rather than read (facexai/integrity.py); only
# when jobs will run: a dry run, a report or a DAG drawing moves nothing.
if config["integrity_check"] and workflow.is_main_process and jobs_will_run():
    from facexai.integrity import quarantine

    for path, problem in quarantine(shard_outputs()):
        print(
            f"facexai: {path}: {problem}; moved to {path}.corrupt and scheduled again",
            file=sys.stderr,
        )


def report_photo_counts():
    """On the console at the end of a photo run: what became of the folder's files (also in the
    headlines), so that a skipped photo is never seen only in a job's log."""
    import json
    from pathlib import Path

    from facexai.headlines import photo_counts

    path = L.path("photo_summary", dataset="main")
    if PLAN.is_photos and path.is_file():
        counts = photo_counts(json.loads(path.read_text()))
        print(
            f"facexai: photo folder {config['dataset_root']}: {counts}", file=sys.stderr
        )


onsuccess:
    report_photo_counts()
