"""Incremental reruns and faults, asserted from Snakemake's dry runs and from the files themselves:
a changed method parameter or an added method touches only its jobs; a changed dataset file reruns
fusion and everything after it, a `touch` does not; a killed run resumes keeping finished shards; a
damaged shard is made again rather than read."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from PIL import Image

from facexai.data.synthetic import SyntheticConfig, generate

from conftest import REPO, snakemake

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
    assert sorted((w["model"], w["shard"]) for w in jobs.pop("attribute")) == [
        ("biased", "0"), ("biased", "1"), ("resnet", "0"), ("resnet", "1")]
    assert {w["method"] for w in jobs["metrics"]} == {"random"} and len(jobs.pop("metrics")) == 4
    # and what reads every method's shards: tables, statistics, figures, gallery
    assert set(jobs) == {"aggregate", "statistics", "metric_figures", "twin_figure", "overlay_figure", "gallery",
                         "all"}


def test_adding_a_method_adds_only_its_jobs(tiny_run, tmp_path):
    jobs = planned(tiny_run, *extra_config(tmp_path, "explain:\n  methods: [gradcam, random, gradcampp]\n"))
    assert {w["method"] for w in jobs.pop("attribute")} == {"gradcampp"}
    assert {w["method"] for w in jobs.pop("metrics")} == {"gradcampp"}
    assert set(jobs) == {"aggregate", "statistics", "metric_figures", "twin_figure", "overlay_figure", "gallery",
                         "all"}


def _tables(workdir):
    return {p.relative_to(workdir).as_posix(): pd.read_csv(p)
            for p in sorted((workdir / "results").glob("metrics/*/*/*.csv"))}


def _assert_same_tables(a, b):
    ta, tb = _tables(a), _tables(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=False, rtol=1e-9, atol=1e-12, obj=name)
    for name in ("tables/localisation_by_region.csv", "tables/beats_random.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(a / "results" / name), pd.read_csv(b / "results" / name),
                                      check_exact=False, rtol=1e-9, atol=1e-12, obj=name)


def test_kill_9_during_attribution_then_rerun(tiny_run, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    shards = sorted((work / "results/attributions").glob("*/gradcam/*.h5"))
    for p in shards:  # gradcam's attribution shards (2 models x 2 shards) are to be made again
        p.unlink()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-s", f"{REPO}/Snakefile", "-d", str(work),
           "--configfile", f"{REPO}/tests/tiny.yaml"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and sum(p.exists() for p in shards) < 1:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, mid-run
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in shards if p.exists()}
    assert 1 <= len(done) < len(shards), "the kill should land between the first and the last shard"
    assert not list((work / "results/attributions").glob("*/gradcam/.*.tmp-*")), "no half-written shard is left"
    assert snakemake(work, "--unlock").returncode == 0
    todo = planned(work)
    redone = {f"results/attributions/{w['model']}/gradcam/{w['shard']}.h5" for w in todo.get("attribute", [])}
    assert redone == {p.relative_to(work).as_posix() for p in shards if p not in done}
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())  # finished shards were kept
    _assert_same_tables(work, tiny_run)


def test_a_damaged_shard_is_made_again_not_read(tiny_run, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    h5 = work / "results/attributions/resnet/random/1.h5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])  # truncated
    csv = work / "results/metrics/biased/gradcam/0.csv"
    csv.write_text(csv.read_text()[:-40])  # cut in the middle of the last row
    jobs = planned(work)
    assert [(w["model"], w["method"], w["shard"]) for w in jobs["attribute"]] == [("resnet", "random", "1")]
    assert sorted((w["model"], w["method"], w["shard"]) for w in jobs["metrics"]) == [
        ("biased", "gradcam", "0"), ("resnet", "random", "1")]
    assert (h5.parent / "1.h5.corrupt").is_file() and (csv.parent / "0.csv.corrupt").is_file()
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_same_tables(work, tiny_run)


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
