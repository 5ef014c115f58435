"""What a new user meets first, kept as tests: bad input stops the workflow naming the file and leaves
nothing half-written; a malicious pickle is refused without running; training survives threads and
odd batch sizes; no strided view enters a model; kill -9 during a metrics job resumes to the same
tables; two runs of one config are byte-identical."""

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch

from facexai.data.synthetic import SyntheticConfig, generate

from conftest import REPO, assert_same_results, snakemake
from test_fusion import BAD_CASES
from test_reruns import extra_config, kill_mid_run, planned, reference_and_copy

# --------------------------------------------------------------------------- native crash in training


@pytest.mark.parametrize("arch", ["resnet_small", "vgg_small", "densenet_small"])
def test_training_with_two_threads_and_odd_last_batches(arch, tmp_path):
    # torch 2.13's CPU build aborted (double free / SIGSEGV) in a convolution's backward pass on the
    # permuted (channels-last strided) input with 2+ threads and odd batches; run in a child process
    # so that a native abort fails this test instead of killing pytest
    code = textwrap.dedent(f"""
        import numpy as np, pandas as pd, h5py, torch
        torch.set_num_threads(2)
        from facexai.models.train import train_attribute_classifier
        n = 2 * 33 + 9   # training split 66: batches of 8 leave an odd last batch of 2; 33 leaves 0; ...
        rng = np.random.default_rng(0)
        with h5py.File("{tmp_path}/d.h5", "w") as h5:
            h5["images"] = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
            a = -np.ones((n, 40), np.int8); a[rng.random(n) < 0.5, 15] = 1
            h5["attributes"], h5["ids"] = a, np.arange(n)
            h5.attrs["image_size"] = 32
        pd.DataFrame({{"row": np.arange(n), "id": np.arange(n), "identity": np.arange(n),
                       "split": np.where(np.arange(n) < 66, "train", "test")}}).to_csv(
            "{tmp_path}/split.tsv", sep="\\t", index=False)
        for batch in (5, 7, 13, 31):   # last batches 1, 3, 1, 4 ... and odd full batches
            train_attribute_classifier("{tmp_path}/d.h5", "{tmp_path}/split.tsv", "{tmp_path}/m{{}}".format(batch),
                                       arch="{arch}", attributes=["Eyeglasses"], epochs=1, batch_size=batch,
                                       lr=1e-3, weight_decay=0.0, seed=0, width=4, progress=False)
        print("trained")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0 and "trained" in result.stdout, (result.returncode, result.stderr[-3000:])


def test_no_strided_view_enters_a_model(monkeypatch, tmp_path):
    """Every convolution of every entry point (training, prediction, each attribution method, the
    model-based metrics, embedding) sees contiguous input."""
    from facexai.attributions import ClassTask, get_method
    from facexai.data.samples import to_model_input
    from facexai.metrics.faithfulness import deletion_insertion
    from facexai.models.backbones import build_model
    from facexai.models.train import predict_proba
    from facexai.models.verification import embed

    seen = []
    original = torch.nn.Conv2d.forward

    def probe(self, x):
        seen.append(x.is_contiguous())
        return original(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", probe)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    assert to_model_input(images).is_contiguous()
    model = build_model("resnet_small", 4, width=4).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # a channels-last strided view handed straight to the model is made contiguous at its entry
    model(torch.from_numpy(images).float().permute(0, 3, 1, 2))
    predict_proba(model, images, "cpu")
    embed(model, images, "cpu")
    task = ClassTask(model, torch.tensor([0, 1, 2]))
    x = to_model_input(images)
    for name, params in [("gradcam", {}), ("gradcampp", {}), ("integrated_gradients", {"n_steps": 3}),
                         ("smoothgrad", {"nt_samples": 2}), ("occlusion", {"window": 8, "stride": 8}),
                         ("rise", {"n_masks": 4, "cells": 2}), ("lime", {"num_samples": 8, "n_segments": 4}),
                         ("shap", {"nsamples": 2})]:
        get_method(name, params)(task, x, np.arange(3), seed=0)
    maps = rng.random((3, 32, 32)).astype(np.float32)
    deletion_insertion(task, x, maps, steps=3, baseline="black")
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} convolutions got a strided input"


# --------------------------------------------------------------------------- bad input, end to end


def _real_layout(tmp_path, n=12):
    root = tmp_path / "CelebAMask-HQ"
    generate(SyntheticConfig(n_images=n, n_identities=4, image_size=64, mask_size=32), root, progress=False)
    return root


def _fuse(tmp_path, root, **dataset):
    config = tmp_path / "real.yaml"
    settings = {"source": "celebamask_hq", "image_size": 32, "mask_size": 32, "shard_size": 40, **dataset}
    lines = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    config.write_text(f"dataset_root: {root}\ndataset:\n{lines}models:\n  - {{name: resnet}}\n")
    return snakemake(tmp_path, "results/data/main/dataset.h5", "--configfile", str(config), timeout=300)


def _nothing_half_written(tmp_path):
    data = tmp_path / "results/data/main"
    left = [p.relative_to(tmp_path).as_posix() for p in data.rglob("*") if p.is_file()
            and (p.suffix == ".h5" or ".tmp" in p.name)] if data.exists() else []
    assert left == [], f"half-written or stale outputs left: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sample_stops_the_workflow_naming_the_file(tmp_path, case):
    root = _real_layout(tmp_path)
    bad_file = BAD_CASES[case](root)
    result = _fuse(tmp_path, root)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/fuse/main/0.log").read_text()
    assert f"sample 5: {bad_file}" in log, log[-2000:]
    _nothing_half_written(tmp_path)


@pytest.mark.slow
def test_bad_attribute_row_and_missing_root_are_named(tmp_path):
    root = _real_layout(tmp_path)
    attributes = root / "CelebAMask-HQ-attribute-anno.txt"
    lines = attributes.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 7"  # a value that is neither 1 nor -1, line 5
    attributes.write_text("\n".join(lines) + "\n")
    result = _fuse(tmp_path, root)
    assert result.returncode != 0
    text = result.stdout + result.stderr + "".join(p.read_text() for p in tmp_path.rglob("*.log"))
    assert str(attributes) in text and "line 5" in text, text[-3000:]
    _nothing_half_written(tmp_path)

    result = _fuse(tmp_path, tmp_path / "nowhere")
    assert result.returncode != 0
    assert f"dataset_root: {tmp_path / 'nowhere'} is not a directory" in result.stdout + result.stderr


@pytest.mark.slow
def test_skip_lists_bad_samples_where_the_readme_says(tmp_path):
    root = _real_layout(tmp_path)
    bad_file = BAD_CASES["truncated jpg"](root)
    assert _fuse(tmp_path, root, on_bad_sample="skip").returncode == 0
    listed = (tmp_path / "results/data/main/bad_samples.tsv").read_text()
    assert str(bad_file) in listed
    assert "results/data/{dataset}/bad_samples.tsv" in open(f"{REPO}/README.md").read()


# --------------------------------------------------------------------------- user model files


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_malicious_or_foreign_model_file_is_refused_naming_it(tmp_path, fmt):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"stem.0.weight": _Marker(marker)}, evil)
    plain_pickle = tmp_path / "plain.pt"
    plain_pickle.write_bytes(pickle.dumps(_Marker(marker)))
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_bytes(b"this is a text file, not a model\n" * 20)
    for bad in (evil, plain_pickle, not_a_model):
        work = tmp_path / bad.stem
        work.mkdir()
        config = extra_config(work, f"models:\n  - name: theirs\n    weights: {bad}\n    format: {fmt}\n"
                                    "    arch: resnet_small\n    width: 8\n")
        result = snakemake(work, "results/models/theirs/model.json", *config, timeout=300)
        log = (work / "results/logs/import/theirs.log").read_text()
        assert result.returncode != 0
        assert str(bad) in log, log[-2000:]
        assert "weights_only=False" not in log and "weights_only` set to `False" not in log
        assert not (work / "results/models/theirs/weights.pt").exists()
        assert not marker.exists(), "a pickled object was run"


# --------------------------------------------------------------------------- kill -9, determinism


@pytest.mark.slow
def test_kill_9_during_a_metrics_job_then_rerun(tiny_run, tmp_path):
    # a changed metric setting makes every metrics job due (4 attribute shards x 2 methods ...); one
    # copy is updated uninterrupted, the other killed while a metrics job runs, after one is recorded
    change = extra_config(tmp_path, "metrics:\n  q: 15\n")
    reference, work = reference_and_copy(tiny_run, tmp_path, change)
    tables = sorted(p.relative_to(work).as_posix() for p in (work / "results/metrics").glob("*/*/*.csv")
                    if "verification" not in p.as_posix())
    assert len(tables) >= 4
    victim, kept, mtime = kill_mid_run(work, tables, change, tmp_path / "killed.log")
    assert snakemake(work, "--unlock", *change).returncode == 0
    redone = {f"results/metrics/{w['model']}/{w['method']}/{w['shard']}.csv"
              for w in planned(work, "--rerun-incomplete", *change).get("metrics", [])}
    assert victim in redone and not redone & set(kept), (victim, redone, kept)
    result = snakemake(work, "--rerun-incomplete", *change)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {s: mtime(s) for s in kept} == kept
    assert planned(work, *change) == {}
    assert_same_results(work, reference, ["localisation_by_region.csv", "beats_random.csv"])


def _digest_tree(root, patterns):
    out = {}
    for pattern in patterns:
        for p in sorted(root.glob(pattern)):
            if p.suffix == ".h5":  # HDF5 files carry creation times: compare their arrays
                h = hashlib.sha256()
                with h5py.File(p, "r") as h5:
                    h5.visit(lambda name: h.update(name.encode() + (np.asarray(h5[name]).tobytes()
                                                                    if isinstance(h5[name], h5py.Dataset) else b"")))
                out[p.relative_to(root).as_posix()] = h.hexdigest()
            else:
                out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_two_runs_of_one_config_are_byte_identical(tiny_run, tmp_path):
    # a second run from scratch, up to one metrics table of each path (both datasets, both models,
    # a seeded and a gradient method, the verification pairs): every stage that draws random numbers
    # or trains runs again; the aggregate tables are seeded functions of these tables
    again = tmp_path / "again"
    targets = ["results/metrics/resnet/gradcam/0.csv", "results/metrics/biased/random/1.csv",
               "results/metrics/verification/trained/corrrise/0.csv"]
    result = snakemake(again, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    patterns = ["results/metrics/*/*/*.csv", "results/attributions/*/*/*.h5", "results/data/*/dataset.h5",
                "results/data/*/split.tsv", "results/models/*/weights.pt", "results/models/*/test_metrics.tsv",
                "results/metrics/verification/trained/*/*.csv", "results/attributions/verification/trained/*/*.h5",
                "results/verification/pairs.*", "results/verification/trained/*"]
    second = _digest_tree(again, patterns)
    first = {k: v for k, v in _digest_tree(tiny_run, patterns).items() if k in second}
    assert set(targets) <= second.keys() and len(second) >= 16 and first.keys() == second.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert differ == [], f"differ between two runs of one config: {differ}"
