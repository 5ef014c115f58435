"""The tiny workflow submitted to a real single-node SLURM through profiles/slurm (the daemons are
started by the test and stopped by PID), compared with a local run of the same config."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, assert_same_results
from local_slurm import LocalSlurm, available

pytestmark = pytest.mark.slow

GPU_RULES = {"train_attribute_model", "evaluate_attribute_model", "train_embedder", "evaluate_verification",
             "attribute", "metrics"}


def _require_slurm():
    reason = available()
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        reason = reason or "snakemake-executor-plugin-slurm is not installed (pip install -e .[slurm])"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM test: {reason}")
        pytest.skip(reason)


def test_profile_asks_a_gpu_for_model_rules_only():
    import yaml

    for profile in ("slurm", "local-gpu"):
        settings = yaml.safe_load((REPO_PATH / "profiles" / profile / "config.yaml").read_text())
        assert {rule for rule, res in settings["set-resources"].items() if res.get("gpu") == 1} == GPU_RULES
    rules = "".join(p.read_text() for p in (REPO_PATH / "rules").glob("*.smk"))
    # every rule that loads a model declares the device it runs on (and so can use the GPU)
    for rule in GPU_RULES:
        body = re.search(rf"^rule {rule}:\n(.*?)(?=^rule |\Z)", rules, re.S | re.M).group(1)
        assert "device=" in body and "gpu=gpu_request()" in body, rule


REPO_PATH = __import__("pathlib").Path(REPO)


def _jobs(cluster) -> list[dict]:
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, env=cluster.env).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]


# one chain of each kind of job through the cluster (every rule that runs a model among them): a model
# trained, evaluated, explained and scored; an embedder trained, evaluated, its pairs built, explained
# and scored (the whole tiny workflow as single SLURM jobs took 8 minutes of mostly scheduling waits)
TARGETS = ("results/models/resnet/eval_main.tsv", "results/metrics/resnet/gradcam/0.csv",
           "results/metrics/verification/trained/gradcam/0.csv")


def test_tiny_workflow_on_a_real_slurm_equals_a_local_run(tiny_run, tmp_path):
    _require_slurm()
    work = tmp_path / "run"
    # the node announces 8 CPUs and 4 stand-in GPUs on a 2-core machine so that the tiny jobs (mostly
    # start-up time) run side by side; each still gets the threads it declares, as in the local run
    with LocalSlurm(tmp_path / "slurm", cpus=8, gpus=4) as cluster:
        cmd = ["timeout", "-k", "20", "1500", sys.executable, "-m", "snakemake", "--profile", f"{REPO}/profiles/slurm",
               "-s", f"{REPO}/Snakefile", "-d", str(work), *TARGETS,
               # this test cluster keeps no accounting: job states from squeue, no account to charge
               "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
               "--slurm-no-account", "--seconds-between-status-checks", "3", "--configfile", f"{REPO}/tests/tiny.yaml"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env)
        jobs = _jobs(cluster)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rules = set()
    for job in jobs:
        # the plugin names jobs by run and puts the rule in the comment: rule_<name>[_wildcards_...]
        rule = job.get("Comment", "").split("_wildcards_")[0].removeprefix("rule_")
        rules.add(rule)
        asked = bool(re.search(r"gres[:/]gpu", job.get("TresPerJob", "") + job.get("TresPerNode", "")))
        if rule in GPU_RULES:
            assert asked, f"{rule} did not ask for a GPU: {job}"
        else:
            assert not asked, f"{rule} asked for a GPU: {job}"
    # the jobs went through SLURM: every rule that runs a model, and rules that do not (fusion)
    assert GPU_RULES <= rules and {"fuse_shard", "merge_fused"} <= rules, rules
    # the tables made equal the local run's (the tiny config alone: the trained embedder)
    assert_same_results(work, tiny_run, [], subset=True)
