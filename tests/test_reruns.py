"""Incremental reruns and faults, asserted from Snakemake's dry runs and from the files themselves:
a changed method parameter or an added method touches only its jobs; a changed dataset file reruns
fusion and everything after it, a `touch` does not; a killed run resumes keeping finished shards; a
damaged shard is made again rather than read."""

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from facexai.data.synthetic import SyntheticConfig, generate

from conftest import EMBEDDERS_CONFIG, REPO, TABLE_TARGETS, TABLES, assert_same_results, copy_run, snakemake


pytestmark = pytest.mark.slow


def planned(workdir, *args) -> dict[str, list[dict]]:
    """The jobs a dry run would run: {rule: [wildcards dict, ...]}."""
    result = snakemake(workdir, "-n", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout + result.stderr
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n)|\n(?=(?:local)?rule \w+:)", text):
        m = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.setdefault(m.group(1), []).append(wildcards)
    return jobs


def extra_config(tmp_path, text):
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return ["--configfile", str(path)]


def test_nothing_to_do_after_a_run(tiny_run):
    assert planned(tiny_run) == {}


def test_changing_one_method_parameter_reruns_only_that_method(tiny_run, tmp_path):
    jobs = planned(tiny_run, *extra_config(tmp_path, "methods:\n  random: {cells: 4}\n"))
    # random explains both models in 2 shards; it is not a pair method in the tiny config
    assert sorted((w["subject"], w["shard"]) for w in jobs.pop("attribute")) == [
        ("biased", "0"), ("biased", "1"), ("resnet", "0"), ("resnet", "1")]
    assert {w["method"] for w in jobs["metrics"]} == {"random"} and len(jobs.pop("metrics")) == 4
    # and what reads every method's shards: tables, statistics, figures, gallery, the twin table
    assert set(jobs) == {"aggregate", "statistics", "metric_figures", "overlay_figure", "mean_maps", "gallery",
                         "group_tables", "twin_shift", "twin_groups", "twin_figure", "all"}


def test_adding_a_method_adds_only_its_jobs(tiny_run, tmp_path):
    jobs = planned(tiny_run, *extra_config(tmp_path, "explain:\n  methods: [gradcam, random, edge, gradcampp]\n"))
    assert {w["method"] for w in jobs.pop("attribute")} == {"gradcampp"}
    assert {w["method"] for w in jobs.pop("metrics")} == {"gradcampp"}
    assert set(jobs) == {"aggregate", "statistics", "metric_figures", "overlay_figure", "mean_maps", "gallery",
                         "group_tables", "twin_shift", "twin_groups", "twin_figure", "all"}


def test_changing_one_embedder_reruns_only_its_jobs(tiny_run, tmp_path):
    text = (tiny_run / EMBEDDERS_CONFIG).read_text()
    assert "input_size: 48" in text
    jobs = planned(tiny_run, *extra_config(tmp_path, text.replace("input_size: 48", "input_size: 40")))
    per_embedder = {"import_embedder", "evaluate_verification", "verification_localisation", "pair_figure",
                    "pair_gallery", "game_figure", "pair_group_tables"}
    # the attribution and metric jobs of its pairs (subject verification/scripted), none of a model
    per_subject = {"attribute", "metrics"}
    # summary.json holds each embedder's triplet game: the statistics (and the figures drawn from them)
    # are made again
    assert set(jobs) == per_embedder | per_subject | {"statistics", "metric_figures", "all"}
    assert all(w["embedder"] == "scripted" for rule in per_embedder for w in jobs[rule])
    assert all(w["subject"] == "verification/scripted" for rule in per_subject for w in jobs[rule])
    assert len(jobs["attribute"]) == len(jobs["metrics"]) == 2  # gradcam and corrrise, 1 shard


def _marker(workdir, kind, path):
    """Snakemake's own record for an output file: .snakemake/{incomplete,metadata}/<urlsafe b64 of its path>."""
    return workdir / ".snakemake" / kind / base64.urlsafe_b64encode(path.encode()).decode()


def kill_mid_run(work, outputs, change, log_path):
    """Run the workflow in `work` with one job at a time and SIGKILL its whole process tree once one of
    `outputs` has been rewritten and recorded by Snakemake and another is being made. Returns the
    output killed mid-job, the recorded ones {path: mtime} and an mtime function."""
    old = {s: (work / s).stat().st_mtime_ns for s in outputs}

    def running(s):  # started and not yet recorded as finished
        return _marker(work, "incomplete", s).exists()

    def mtime(s):  # Snakemake deletes a job's old outputs before the job starts
        return (work / s).stat().st_mtime_ns if (work / s).exists() else None

    def recorded(s):  # rewritten, and Snakemake has written its metadata and dropped the marker
        return mtime(s) not in (None, old[s]) and not running(s) and _marker(work, "metadata", s).exists()

    # one job at a time, so that the kill finds exactly one job mid-run
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "-s", f"{REPO}/Snakefile", "-d", str(work),
           "--configfile", f"{REPO}/tests/tiny.yaml",
           *([str(work / EMBEDDERS_CONFIG)] if (work / EMBEDDERS_CONFIG).is_file() else []), change[1]]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline, victim = time.time() + 300, None
        while time.time() < deadline and proc.poll() is None:
            if any(recorded(s) for s in outputs):
                victim = next((s for s in outputs if running(s)), None)
                if victim:
                    break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, mid-run
        proc.wait()
    assert victim, "no job was caught running after a first finished one:\n" + open(log_path).read()[-3000:]
    return victim, {s: mtime(s) for s in outputs if recorded(s)}, mtime


def test_kill_9_during_attribution_then_rerun(tiny_run, random_change, tmp_path):
    # a changed parameter of the random baseline makes its 4 attribution shards (2 models x 2
    # shards) and what follows due; one copy of the run was brought up to date uninterrupted
    # (conftest.random_change), this one is killed with SIGKILL while an attribution job runs, after
    # Snakemake has recorded at least one finished shard, and is then resumed
    change, reference = random_change
    work = copy_run(tiny_run, tmp_path / "run")
    shards = sorted(p.relative_to(work).as_posix() for p in (work / "results/attributions").glob("*/random/*.h5"))
    assert len(shards) == 4
    victim, kept, mtime = kill_mid_run(work, shards, change, tmp_path / "killed.log")
    assert kept and victim not in kept and len(kept) < len(shards)
    # what to do after a kill: unlock, then run again with --rerun-incomplete (an output of the killed
    # job left on disk, e.g. a metrics table written before its log, is marked incomplete)
    assert snakemake(work, "--unlock", *change).returncode == 0
    redone = {f"results/attributions/{w['subject']}/random/{w['shard']}.h5"
              for w in planned(work, "--rerun-incomplete", *change).get("attribute", [])}
    assert redone == set(shards) - set(kept), (redone, kept)  # exactly the unfinished ones
    result = snakemake(work, "--rerun-incomplete", *TABLE_TARGETS, *change)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {s: mtime(s) for s in kept} == kept  # finished shards were not rewritten
    assert not list((work / "results/attributions").glob("*/random/.*.tmp-*")), "a killed job's temporary is left"
    assert planned(work, *TABLE_TARGETS, *change) == {}
    # the resume made only the compared tables: what is still due reads them (figures, gallery,
    # report), never a map or a metrics table
    assert not {"attribute", "metrics"} & set(planned(work, *change))
    assert_same_results(work, reference, TABLES)


def test_a_damaged_shard_is_made_again_not_read(tiny_run, tmp_path):
    work = copy_run(tiny_run, tmp_path / "run")
    h5 = work / "results/attributions/resnet/random/1.h5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])  # truncated
    csv = work / "results/metrics/biased/gradcam/0.csv"
    csv.write_text(csv.read_text()[:-40])  # cut in the middle of the last row
    # a dry run only looks: it neither checks nor moves anything (nor does --report, --dag, ...)
    planned(work)
    assert h5.is_file() and not (h5.parent / "1.h5.corrupt").exists()
    assert csv.is_file() and not (csv.parent / "0.csv.corrupt").exists()
    shards = [p for p in (work / "results").glob("*/*/*/*") if p.suffix in (".h5", ".csv")]
    before = {p: p.stat().st_mtime_ns for p in shards}
    # the whole workflow, whose targets name every shard: Snakemake does not remake a missing
    # intermediate file for a target that is otherwise up to date (a run of the tables alone leaves
    # the quarantined files missing)
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{h5.relative_to(work)}: unreadable HDF5" in result.stderr
    assert f"{csv.relative_to(work)}: does not end with a newline" in result.stderr
    assert (h5.parent / "1.h5.corrupt").is_file() and (csv.parent / "0.csv.corrupt").is_file()
    remade = sorted(p.relative_to(work).as_posix() for p in shards if p.stat().st_mtime_ns != before[p])
    assert remade == ["results/attributions/resnet/random/1.h5", "results/metrics/biased/gradcam/0.csv",
                      "results/metrics/resnet/random/1.csv"], remade
    assert_same_results(work, tiny_run, TABLES)


def test_a_bit_flip_in_the_maps_is_caught_by_their_checksums(tiny_run, tmp_path):
    from facexai.integrity import h5_problem

    path = tmp_path / "0.h5"
    shutil.copy(tiny_run / "results/attributions/resnet/gradcam/0.h5", path)
    assert h5_problem(path, "attributions") is None
    import h5py

    with h5py.File(path, "r") as f:
        offset = f["maps"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "unreadable HDF5" in h5_problem(path, "attributions")


def test_real_dataset_reruns_on_a_changed_file_not_on_a_touch(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    generate(SyntheticConfig(n_images=24, n_identities=6, image_size=64, mask_size=32), root, progress=False)
    cfg = extra_config(tmp_path, f"dataset_root: {root}\ndataset:\n  source: celebamask_hq\n  image_size: 32\n"
                                 "  mask_size: 32\n  shard_size: 12\nmodels:\n  - {name: resnet}\n")
    target = "results/data/main/split.tsv"
    assert snakemake(tmp_path, *cfg, target).returncode == 0
    assert planned(tmp_path, *cfg, target) == {}
    mask = next((root / "CelebAMask-HQ-mask-anno/0").glob("00015_*.png"))
    for path in (mask, root / "CelebAMask-HQ-attribute-anno.txt", root / "CelebA-HQ-img/3.jpg"):
        os.utime(path)  # touched, unchanged
    assert planned(tmp_path, *cfg, target) == {}
    # a mask of sample 15 (shard 1) rewritten with other content: that shard and what follows
    with Image.open(mask) as im:
        edited = im.convert("L").point(lambda v: 0 if v else 255)
    edited.save(mask)
    jobs = planned(tmp_path, *cfg, target)
    assert jobs.pop("fuse_shard") == [{"dataset": "main", "shard": "1"}]
    assert set(jobs) == {"merge_fused", "split"}
    # an edited annotation file: every shard is fused again
    attributes = root / "CelebAMask-HQ-attribute-anno.txt"
    lines = attributes.read_text().splitlines()
    lines[2] = lines[2].replace(" -1", " 1", 1)
    attributes.write_text("\n".join(lines) + "\n")
    assert sorted(w["shard"] for w in planned(tmp_path, *cfg, target)["fuse_shard"]) == ["0", "1"]
