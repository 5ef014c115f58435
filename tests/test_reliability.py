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
from PIL import Image

from facexai.data.synthetic import SyntheticConfig, generate

from conftest import REPO, TABLE_TARGETS, TABLES, assert_same_results, copy_run, has_dlib_extra, snakemake
from test_fusion import BAD_CASES
from test_reruns import extra_config, kill_mid_run, planned

# --------------------------------------------------------------------------- native crash in training


@pytest.mark.parametrize("arch", ["resnet_small", "vgg_small", "densenet_small"])
def test_training_with_two_threads_and_odd_last_batches(arch, tmp_path):
    # torch 2.13's CPU build aborted (double free / SIGSEGV) in a convolution's backward pass on the
    # permuted (channels-last strided) input with 2+ threads and odd batches; run in a child process
    # so that a native abort fails this test instead of killing pytest
    code = textwrap.dedent(f"""
        import numpy as np, pandas as pd, h5py, torch
        torch.set_num_threads(2)
        from facexai.models.backbones import channels_last_trains
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
                                       lr=1e-3, weight_decay=0.0, seed=0, width=4, threads=2, progress=False)
            # two threads: NCHW training (the crash was in channels-last weight gradients)
            assert torch.get_num_threads() == 2 and not channels_last_trains(torch.device("cpu"))
        print("trained")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0 and "trained" in result.stdout, (result.returncode, result.stderr[-3000:])



def test_explained_networks_run_channels_last_safely_with_two_threads(tmp_path):
    """Loaded networks run channels-last with frozen weights: the same scores and input gradients as
    NCHW, and no crash with 2 threads and odd batches (torch 2.13's CPU build segfaults computing
    channels-last weight gradients with 2+ threads; a child process, so that a crash fails the test).
    Training with 2 threads stays NCHW (test above)."""
    code = textwrap.dedent("""
        import copy, torch
        torch.set_num_threads(2)
        from facexai.models.backbones import ARCHITECTURES, build_model, channels_last_trains, for_inference
        assert not channels_last_trains(torch.device("cpu"))
        for arch in ARCHITECTURES:
            for width, batch in ((4, 5), (8, 7), (32, 13)):
                torch.manual_seed(0)
                plain = build_model(arch, 3, width=width).eval()
                fast = for_inference(copy.deepcopy(plain))
                assert not any(p.requires_grad for p in fast.parameters())
                assert fast.head.weight.is_contiguous() and any(
                    p.ndim == 4 and not p.is_contiguous() for p in fast.parameters())
                x = torch.randn(batch, 3, 32, 32)
                grads = []
                for net in (plain, fast):
                    xi = x.clone().requires_grad_(True)
                    (g,) = torch.autograd.grad(net(xi)[:, 1].sum(), xi)
                    grads.append(g)
                torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-5)
        print("explained")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0 and "explained" in result.stdout, (result.returncode, result.stderr[-3000:])


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
    bad_files = (evil, plain_pickle, not_a_model)
    work = tmp_path / "run"
    work.mkdir()
    # the three files as three models of one run (one import job each; --keep-going runs all three)
    models = "".join(f"  - {{name: {bad.stem}, weights: {bad}, format: {fmt}, arch: resnet_small, width: 8}}\n"
                     for bad in bad_files)
    config = extra_config(work, "models:\n" + models)
    result = snakemake(work, "--keep-going", *(f"results/models/{bad.stem}/model.json" for bad in bad_files), *config,
                       timeout=300)
    assert result.returncode != 0
    for bad in bad_files:
        log = (work / f"results/logs/import/{bad.stem}.log").read_text()
        assert str(bad) in log, log[-2000:]
        assert "weights_only=False" not in log and "weights_only` set to `False" not in log
        assert not (work / f"results/models/{bad.stem}/weights.pt").exists()
    assert not marker.exists(), "a pickled object was run"


# --------------------------------------------------------------------------- kill -9, determinism


@pytest.mark.slow
def test_kill_9_during_a_metrics_job_then_rerun(tiny_run, random_change, tmp_path):
    # the random baseline's changed parameter makes its 4 attribution shards and their 4 metrics tables
    # due; one copy was updated uninterrupted (conftest.random_change), this one is killed while a
    # metrics job runs, after another metrics table is recorded
    change, reference = random_change
    work = copy_run(tiny_run, tmp_path / "run")
    tables = sorted(p.relative_to(work).as_posix() for p in (work / "results/metrics").glob("*/random/*.csv"))
    assert len(tables) == 4
    victim, kept, mtime = kill_mid_run(work, tables, change, tmp_path / "killed.log")
    assert snakemake(work, "--unlock", *change).returncode == 0
    redone = {f"results/metrics/{w['subject']}/{w['method']}/{w['shard']}.csv"
              for w in planned(work, "--rerun-incomplete", *change).get("metrics", [])}
    assert victim in redone and not redone & set(kept), (victim, redone, kept)
    result = snakemake(work, "--rerun-incomplete", *TABLE_TARGETS, *change)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {s: mtime(s) for s in kept} == kept
    assert planned(work, *TABLE_TARGETS, *change) == {}
    # the resume made only the compared tables: what is still due reads them (figures, gallery,
    # report), never a map or a metrics table
    assert not {"attribute", "metrics"} & set(planned(work, *change))
    assert_same_results(work, reference, TABLES)


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


# --------------------------------------------------------------------------- round 3: embedders, photo folders


class _NanOnRealImages(torch.nn.Module):
    """Finite on a uniform image (the import check's grey images), NaN on any image with texture."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        spread = x.flatten(1).var(dim=1, keepdim=True)
        return self.conv(x).mean(dim=(2, 3)) + torch.sqrt(-spread)  # sqrt(-0) = 0; sqrt(< 0) = NaN


def _tiny_pair_data(tmp_path, n=4):
    import pandas as pd

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["images"] = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    pd.DataFrame({"kind": ["genuine", "impostor"], "row_a": [0, 1], "row_b": [2, 3], "id_a": [100, 101],
                  "id_b": [102, 103], "region": ["", ""], "donor_id": [-1, -1]}).to_csv(
        tmp_path / "pairs.tsv", sep="\t", index=False)


def test_an_embedder_nan_on_real_images_stops_the_job_naming_it_and_the_samples(tmp_path):
    from facexai.models import embedders as E
    from facexai.models.verification import NonFiniteEmbedding, equal_error_rate, evaluate_pairs

    path = tmp_path / "nan.pt"
    torch.jit.save(torch.jit.trace(_NanOnRealImages(), torch.zeros(1, 3, 8, 8)), str(path))
    spec = {"name": "mine", "kind": "torchscript", "weights": str(path), "input_size": 32}
    E.import_embedder(spec, tmp_path / "mine", image_size=32)  # passes: finite on the grey check images
    _tiny_pair_data(tmp_path)
    with pytest.raises(NonFiniteEmbedding, match=r"embedder mine: non-finite embedding .* for 4 of 4 images, "
                                                 r"sample ids \[100, 101, 102, 103\]"):
        evaluate_pairs(tmp_path / "mine", tmp_path / "d.h5", tmp_path / "pairs.tsv", tmp_path / "scores.tsv",
                       tmp_path / "eer.json", device="cpu")
    assert not (tmp_path / "eer.json").exists() and not (tmp_path / "scores.tsv").exists()
    with pytest.raises(ValueError, match="1 genuine and 0 impostor scores are not finite"):
        equal_error_rate(np.array([0.9, np.nan]), np.array([0.1, 0.2]))


def test_embedder_import_errors_name_their_cause(tmp_path):
    from facexai.models import embedders as E
    from facexai.models.backbones import build_model

    class Flat(torch.nn.Module):  # takes 2x2 images only: fails on the configured input size
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(12, 4)

        def forward(self, x):
            return self.fc(x.flatten(1))

    flat = tmp_path / "flat.pt"
    torch.jit.save(torch.jit.trace(Flat(), torch.zeros(1, 3, 2, 2)), str(flat))
    spec = {"name": "mine", "kind": "torchscript", "weights": str(flat), "input_size": 32}
    with pytest.raises(ValueError, match=r"flat.pt: forward pass on 2 images of 32x32 failed \(RuntimeError: mat1 "
                                         r"and mat2 shapes cannot be multiplied \(2x3072 and 12x4\)\)") as caught:
        E.import_embedder(spec, tmp_path / "out", image_size=32)
    assert caught.value.__cause__ is not None  # the chain reaches the job's log
    torch.manual_seed(0)
    net = build_model("resnet_small", 8, width=4)
    state = net.state_dict()
    sd = {"name": "sd", "kind": "state_dict", "weights": str(tmp_path / "sd.pt"), "arch": "resnet_small",
          "width": 4, "dim": 8, "input_size": 32}
    torch.save(state, tmp_path / "sd.pt")
    with pytest.raises(ValueError, match=r"sd.pt: weights do not fit resnet_small \(dim 16, width 4\): mis-sized "
                                         r"keys \(2\): .*\(8, \d+\) where \(16, \d+\) is expected"):
        E.import_embedder({**sd, "dim": 16}, tmp_path / "out", image_size=32)
    first = next(iter(state))
    torch.save({**{k: v for k, v in state.items() if k != first}, "extra.weight": torch.zeros(1)}, tmp_path / "sd.pt")
    with pytest.raises(ValueError, match=rf"missing keys \(1\): {first}; unexpected keys \(1\): extra.weight"):
        E.import_embedder(sd, tmp_path / "out", image_size=32)
    torch.save({**state, first: [1.0, 2.0]}, tmp_path / "sd.pt")
    with pytest.raises(ValueError, match=rf"values that are not tensors \(1\): {first} \(list\)"):
        E.import_embedder(sd, tmp_path / "out", image_size=32)
    # a TorchScript error over several lines keeps them all
    from facexai.models.user import exception_reason

    message = ("The following operation failed in the TorchScript interpreter.\nTraceback ...\n  File x\n"
               "RuntimeError: expected 1 channel\nhint: convert to grey\n")
    assert exception_reason(RuntimeError(message)) == "RuntimeError: expected 1 channel hint: convert to grey"
    # the wrong format for the file: say what the file is and which kind reads it (no weights_only advice)
    with pytest.raises(ValueError, match="flat.pt: this is a TorchScript archive .* give it with kind: torchscript"
                       ) as caught:
        E.import_embedder({**sd, "weights": str(flat)}, tmp_path / "out", image_size=32)
    assert "weights_only" not in str(caught.value)
    torch.save(state, tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="sd.pt: this is a torch.save file, .* goes with kind: state_dict"):
        E.import_embedder({**spec, "weights": str(tmp_path / "sd.pt")}, tmp_path / "out", image_size=32)
    # the attribute-model path names its own key
    from facexai.models.user import load_weights

    with pytest.raises(ValueError, match="flat.pt: this is a TorchScript archive .* format: torchscript"):
        load_weights(flat, "state_dict", "resnet_small", 1, width=4)
    with pytest.raises(ValueError, match="sd.pt: this is a torch.save file, .* goes with format: state_dict"):
        load_weights(tmp_path / "sd.pt", "torchscript", None, 1)
    torch.save(state, tmp_path / "old.pt", _use_new_zipfile_serialization=False)  # before PyTorch 1.6
    with pytest.raises(ValueError, match=r"old.pt: this is a torch.save file \(the pre-1.6 format\)"):
        load_weights(tmp_path / "old.pt", "torchscript", None, 1)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_identities_table_conflicts_are_refused_and_a_bom_is_read(tmp_path):
    from facexai.data.photos.folder import read_identities
    from facexai.errors import BadInputError

    for f in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / f).write_bytes(b"")
    photos = ["a.jpg", "b.jpg", "c.jpg"]
    table = tmp_path / "identities.tsv"
    table.write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\na.jpg\tann\n")  # a repeat that agrees is harmless
    assert read_identities(tmp_path, photos) == ["ann", "ann", "bob"]
    table.write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\nb.jpg\tbob\n")
    with pytest.raises(BadInputError, match=r"identities.tsv: b.jpg has two identities: 'ann' on line 2 and "
                                            r"'bob' on line 4"):
        read_identities(tmp_path, photos)
    table.write_bytes("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\n".encode("utf-8-sig"))
    assert read_identities(tmp_path, photos) == ["ann", "ann", "bob"]
    table.write_bytes("a.jpg\tann\t\r\nb.jpg\tann \r\nc.jpg\tbob\r\n".encode())  # trailing tab, CRLF
    assert read_identities(tmp_path, photos) == ["ann", "ann", "bob"]
    table.write_bytes("a.jpg\tJos\xe9\n".encode("latin-1"))  # an Excel export, not UTF-8
    with pytest.raises(BadInputError, match=r"identities.tsv: not UTF-8 text .*save it as UTF-8"):
        read_identities(tmp_path, photos)
    # one photo named by its path and by its bare name, with two identities
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/a.jpg").write_bytes(b"")
    nested = ["b.jpg", "c.jpg", "sub/a.jpg"]
    table.write_text("b.jpg\tann\nc.jpg\tbob\na.jpg\talice\nsub/a.jpg\tbob\n")
    with pytest.raises(BadInputError, match=r"sub/a.jpg has two identities: 'bob' on line 4 and 'alice' on line 3"):
        read_identities(tmp_path, nested)
    # a bare name that matches two photos is ambiguous
    table.write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\n")
    with pytest.raises(BadInputError, match=r"line 1: the bare name a.jpg matches 2 photos"):
        read_identities(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "sub/a.jpg"])


def test_attribute_table_conflicts_name_their_lines(tmp_path):
    from facexai.data.photos.folder import read_photo_attributes
    from facexai.errors import BadInputError
    from facexai.labels import ATTRIBUTE_NAMES

    ones, minus = " ".join(["1"] * 40), " ".join(["-1"] * 40)
    (tmp_path / "attributes.txt").write_text(f"3\n{' '.join(ATTRIBUTE_NAMES)}\n\nx.jpg {ones}\ny.jpg {ones}\n"
                                             f"x.jpg {minus}\n")
    with pytest.raises(BadInputError, match="x.jpg has two different rows: lines 4 and 6"):
        read_photo_attributes(tmp_path, ["x.jpg", "y.jpg"])
    (tmp_path / "attributes.txt").write_text(f"2\n{' '.join(ATTRIBUTE_NAMES)}\n\nx.jpg {ones}\ny.jpg 2\n")
    with pytest.raises(BadInputError, match="line 5: expected a file name and 40 values"):  # blank lines count
        read_photo_attributes(tmp_path, ["x.jpg", "y.jpg"])


@pytest.mark.skipif(not has_dlib_extra(), reason="photo folders need the dlib extra")
def test_photo_folder_problems_are_found_at_config_check(tmp_path):
    from facexai.config import check_config
    from facexai.errors import ConfigError
    from test_config import photos_config

    for f in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / f).write_bytes(b"")
    (tmp_path / "identities.tsv").write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\nb.jpg\tbob\n")
    with pytest.raises(ConfigError, match="dataset_root: .*identities.tsv: b.jpg has two identities"):
        check_config(photos_config(tmp_path))
    (tmp_path / "identities.tsv").write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tann\n")
    with pytest.raises(ConfigError, match="need at least 2 identities .*found 1 identity"):
        check_config(photos_config(tmp_path))
    (tmp_path / "identities.tsv").write_text("a.jpg\tann\nb.jpg\tann\nc.jpg\tbob\n")
    (tmp_path / "attributes.txt").write_text("1\nnot the header\n")
    with pytest.raises(ConfigError, match="dataset_root: .*attributes.txt: line 2 must name CelebA's 40"):
        check_config(photos_config(tmp_path))
    (tmp_path / "attributes.txt").unlink()
    config = photos_config(tmp_path)
    config["verification"]["region_swap"] = {"regions": ["hair"], "pairs_per_region": 5}
    with pytest.raises(ConfigError, match=r"region_swap.regions: 'hair' \(hair\) is never drawn on photos"):
        check_config(config)


def test_attribute_names_and_repeated_list_items_are_refused_by_key():
    from facexai.config import check_config, check_schema
    from facexai.errors import ConfigError
    from test_config import load_default

    config = load_default()
    config["explain"]["attributes"] = ["Eyeglasses", "Beard"]
    with pytest.raises(ConfigError, match=r"explain.attributes: \['Beard'\] not CelebA attribute"):
        check_config(config)
    config = load_default()
    config["explain"]["methods"] = ["gradcam", "random", "gradcam"]
    config["verification"]["explain"]["kinds"] = ["swap", "swap"]
    with pytest.raises(ConfigError) as caught:
        check_schema(config, f"{REPO}/config/schema/config.schema.yaml")
    message = str(caught.value)
    assert "explain.methods: 'gradcam' listed more than once" in message
    assert "verification.explain.kinds: 'swap' listed more than once" in message


def test_16_bit_and_other_photo_formats_are_read_not_clipped(tmp_path):
    from skimage import data

    from facexai.data.photos.decode import decode_photo
    from facexai.data.photos.folder import ignored_files, list_photos
    from facexai.errors import BadInputError

    grey8 = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    decoded = decode_photo(tmp_path / "grey16.png")
    assert decoded.dtype == np.uint8 and decoded.shape == grey8.shape + (3,)
    assert np.abs(decoded[..., 0].astype(int) - grey8).max() <= 1  # clipping made 89 % of it white
    # 12-bit data in a 16-bit file is scaled by 4095, not darkened 16-fold; 8-bit values in mode I by 255
    Image.fromarray(grey8.astype(np.uint16) * 16).save(tmp_path / "grey12.png")
    assert np.abs(decode_photo(tmp_path / "grey12.png")[..., 0].astype(int) - grey8).max() <= 1
    Image.fromarray(grey8.astype(np.int32), mode="I").save(tmp_path / "grey_i.tif")
    assert np.abs(decode_photo(tmp_path / "grey_i.tif")[..., 0].astype(int) - grey8).max() <= 1
    bad = grey8.astype(np.float32)
    bad[0, 0] = np.inf
    Image.fromarray(bad, mode="F").save(tmp_path / "inf.tif")
    with pytest.raises(BadInputError, match="inf.tif: cannot decode the photo .*1 non-finite pixel"):
        decode_photo(tmp_path / "inf.tif")
    for name in ("grey12.png", "grey_i.tif", "inf.tif"):
        (tmp_path / name).unlink()
    for ext in ("webp", "tif", "bmp"):
        Image.fromarray(data.astronaut()).save(tmp_path / f"a.{ext}")
        assert decode_photo(tmp_path / f"a.{ext}").shape == (512, 512, 3)
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "identities.tsv").write_text("")
    assert list_photos(tmp_path) == ["a.bmp", "a.tif", "a.webp", "grey16.png"]
    assert ignored_files(tmp_path) == ["notes.txt"]


@pytest.mark.skipif(not has_dlib_extra(), reason="photo alignment needs the dlib extra")
def test_small_faces_are_recorded_and_skips_are_explained(tmp_path, caplog):
    from skimage import data

    from facexai.data.photos.align import AlignSettings
    from facexai.data.photos.folder import list_photos, shard_photos
    from facexai.data.photos.layout import assemble_layout
    from facexai.data.photos.shards import align_shard
    from facexai.errors import BadInputError

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()).resize((120, 120)).save(folder / "small.png")
    Image.fromarray(np.full((400, 600, 3), 128, np.uint8)).save(folder / "wall.png")
    settings = AlignSettings(chip_size=128, mask_size=64)
    rows = align_shard(folder, shard_photos(list_photos(folder), 0, 10), tmp_path / "s0", settings,
                       on_bad_sample="skip", progress=False)
    by_file = {r["file"]: r for r in rows}
    assert by_file["small.png"]["status"] == "ok" and int(by_file["small.png"]["face_size"]) < 64
    # "no face" says at what size the detector sees faces in this photo, and which key changes it
    assert "faces from about 94 px in this 600x400 photo: raise photos.detect_size" in by_file["wall.png"]["problem"]
    with caplog.at_level("WARNING"):
        summary = assemble_layout(folder, [tmp_path / "s0"], tmp_path / "layout", min_face_size=64)
    assert "under photos.min_face_size = 64 px" in caplog.text
    assert summary["small_faces"] == 1 and summary["bad"] == 1
    assert "face_size" in (tmp_path / "layout/photos.tsv").read_text().splitlines()[0]
    # a folder where every photo is skipped stops with its own message
    (folder / "small.png").unlink()
    align_shard(folder, shard_photos(list_photos(folder), 0, 10), tmp_path / "s1", settings, on_bad_sample="skip",
                progress=False)
    with pytest.raises(BadInputError, match=r"every photo was skipped as bad \(1 of 1; problems: no face found"):
        assemble_layout(folder, [tmp_path / "s1"], tmp_path / "layout2")
    assert not (tmp_path / "layout2").exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not has_dlib_extra() or not os.path.isdir("/proc"), reason="needs dlib and /proc")
def test_align_workers_end_when_their_parent_is_killed(tmp_path):
    import signal
    import time

    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(60):
        Image.fromarray(data.astronaut()).save(folder / f"p{k:02d}.jpg")
    code = textwrap.dedent(f"""
        import os, sys
        from facexai.data.photos.align import AlignSettings
        from facexai.data.photos.folder import list_photos, shard_photos
        from facexai.data.photos.shards import align_shard
        print(os.getpid(), flush=True)
        align_shard("{folder}", shard_photos(list_photos("{folder}"), 0, 100), "{tmp_path}/shard",
                    AlignSettings(chip_size=128, mask_size=64), workers=2, progress=False)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    workers, deadline = [], time.time() + 60
    while len(workers) < 2 and time.time() < deadline:
        time.sleep(0.5)
        children = f"/proc/{pid}/task/{pid}/children"
        workers = [int(c) for c in open(children).read().split()] if os.path.exists(children) else []
    assert len(workers) == 2, "the pool never started"
    time.sleep(2)  # the workers are aligning
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does: no clean-up runs in the parent
    parent.wait()
    deadline = time.time() + 15
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"pool workers {left} outlived their killed parent"
