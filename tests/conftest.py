import os
import subprocess
import sys

import numpy as np
import pytest

from facexai.labels import CLASS_NAMES

from facexai.data.synthetic import SyntheticConfig, generate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(**overrides) -> SyntheticConfig:
    base = dict(n_images=24, n_identities=6, image_size=64, mask_size=32, seed=3, odd_mask_fraction=0.2)
    base.update(overrides)
    return SyntheticConfig(**base)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A small generated set; tests must not modify it (copy it first)."""
    root = tmp_path_factory.mktemp("synthetic") / "CelebAMask-HQ"
    generate(small_config(), root, progress=False)
    return root


def independent_refusion(root, sample_id, size):
    """Re-fuse from the PNGs with different code: skimage reader, explicit loop over class indices."""
    from skimage.io import imread

    labels = np.zeros((size, size), np.uint8)
    folder = root / "CelebAMask-HQ-mask-anno" / str(sample_id // 2000)
    for index in range(1, len(CLASS_NAMES)):
        path = folder / f"{sample_id:05d}_{CLASS_NAMES[index]}.png"
        if path.exists():
            mask = imread(path)
            if mask.ndim == 3:
                mask = mask[..., :3].max(axis=2)
            labels[mask > 0] = index
    return labels


# written by the tiny_run fixture into its folder: more embedders (dlib when its extra is installed, and a
# TorchScript file); every later run in that folder (or a copy of it) reads it too
EMBEDDERS_CONFIG = "embedders.yaml"


def has_dlib_extra() -> bool:
    import importlib.util

    return importlib.util.find_spec("face_recognition_models") is not None


def write_scripted_embedder(path, seed: int = 0, out_dim: int = 12):
    """A small TorchScript embedder (traced; 48x48 input) standing in for a user's network."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, out_dim))
    torch.jit.save(torch.jit.trace(net.eval(), torch.zeros(1, 3, 48, 48)), str(path))
    return path


def snakemake(workdir, *args, timeout=1800):
    """Run the workflow in `workdir` with the tiny config (a later --configfile overrides it key by key)."""
    extra = list(args)
    configs = [f"{REPO}/tests/tiny.yaml"]
    if (workdir / EMBEDDERS_CONFIG).is_file():
        configs.append(str(workdir / EMBEDDERS_CONFIG))
    while "--configfile" in extra:
        k = extra.index("--configfile")
        configs.append(extra.pop(k + 1))
        extra.pop(k)
    # --configfile takes several values: it comes last, after targets and options
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-s", f"{REPO}/Snakefile", "-d", str(workdir),
           *extra, "--configfile", *configs]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def assert_same_results(work, reference, tables, subset: bool = False):
    """Every per-sample metrics CSV of `reference` and the named tables equal those of `work`, to
    float32 resolution: the scores are float32 model outputs, and a job run with another thread count
    than the reference's (another summation order in the CPU kernels; the tests' runs now use one
    thread per job, the tiny run once used two) has been seen to differ from the same job in an
    uninterrupted run by a few 1e-8 (relative) in one deletion value,
    and by 1e-7 (absolute) in a dlib pair score, minus the distance between two nearly equal
    128-d embeddings, whose float32 error is absolute, not relative; a resume defect (a stale,
    missing or half-written table) differs by far more. Two uninterrupted runs are compared bit for bit in
    test_reliability.py."""
    import pandas as pd

    names = sorted(p.relative_to(reference).as_posix() for p in (reference / "results").glob("metrics/**/*.csv"))
    made = sorted(p.relative_to(work).as_posix() for p in (work / "results").glob("metrics/**/*.csv"))
    if subset:  # `work` ran part of the reference's configuration: its tables, all of them in the reference
        assert made and set(made) <= set(names), sorted(set(made) - set(names))
        names = made
    assert names == made
    for rel in names + [f"results/tables/{t}" for t in tables]:
        got, want = pd.read_csv(work / rel), pd.read_csv(reference / rel)
        # rank correlations of a randomised network's maps: a summation-order change reorders
        # near-tied pixels, which moved one dlib sanity Spearman by 5e-6; compared to 1e-4 instead
        ranks = [c for c in want.columns if c.startswith(("sanity_spearman", "smprt_spearman", "sanity_ssim"))]
        pd.testing.assert_frame_equal(got.drop(columns=ranks, errors="ignore"),
                                      want.drop(columns=ranks, errors="ignore"), check_exact=False,
                                      rtol=1e-6, atol=1e-6, obj=rel)
        if ranks:
            pd.testing.assert_frame_equal(got[ranks], want[ranks], check_exact=False, rtol=0, atol=1e-4, obj=rel)


# the tables that runs compared with a reference check beside every per-sample metrics CSV, and the
# targets that make exactly them (and the CSVs they read): no figure, gallery or report is drawn
TABLES = ["localisation_by_region.csv", "beats_random.csv"]
TABLE_TARGETS = [f"results/tables/{name}" for name in TABLES]


def _built_once(tmp_path_factory, name, build):
    """A folder that `build(folder)` fills once per test session, also when pytest-xdist runs the tests in
    several worker processes: the first worker to ask builds it under a file lock, the others wait for it
    and then read the same folder (a failed build fails them too, with its message, and is not retried)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        path = tmp_path_factory.mktemp(name)
        build(path)
        return path
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp().parent  # shared by the workers of one session
    path, done, failed = base / name, base / f"{name}.done", base / f"{name}.failed"
    with FileLock(str(base / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"{name} failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            if path.exists():  # a worker that died mid-build (a native crash, the OOM killer) left it
                pytest.fail(f"{name}: an earlier build in {path} was interrupted; see that worker's report")
            path.mkdir()
            try:
                build(path)
            except BaseException as error:
                failed.write_text(f"{type(error).__name__}: {error}")
                raise
            done.touch()
    return path


def _tiny_run(workdir):
    scripted = write_scripted_embedder(workdir / "scripted.pt")
    dlib = "    - {name: dlib, kind: dlib}\n" if has_dlib_extra() else ""
    (workdir / EMBEDDERS_CONFIG).write_text(
        "verification:\n  embedders:\n"
        "    - {name: trained, kind: trained, arch: resnet_small, width: 8, dim: 16, epochs: 2, batch_size: 16,\n"
        "       lr: 0.003, margin: 0.2, scale: 16.0}\n" + dlib +
        f"    - {{name: scripted, kind: torchscript, weights: {scripted}, input_size: 48, mean: [0.5, 0.5, 0.5],"
        " std: [0.5, 0.5, 0.5]}\n")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow at tiny size (tests/tiny.yaml), run once per session; tests only read it
    (copy it first to change anything)."""
    return _built_once(tmp_path_factory, "tiny_run", _tiny_run)


def copy_run(run, dest):
    """A copy of a run (the shared tiny run is read only) for a test to change or interrupt, without
    Snakemake's log, lock and I/O cache folders: another worker's dry run in `run` writes (and a
    report removes) its I/O cache while it is copied."""
    import shutil

    def volatile(folder, names):
        return [n for n in names if n in ("log", "locks", "iocache") and os.path.basename(folder) == ".snakemake"]

    shutil.copytree(run, dest, symlinks=True, ignore=volatile)
    return dest


# the change of the random baseline's parameter (random_change)
RANDOM_CHANGE = "methods:\n  random: {cells: 4}\n"


@pytest.fixture(scope="session")
def random_change(tiny_run, tmp_path_factory):
    """A changed parameter of the random baseline (its 4 attribution shards, 2 models x 2 shards,
    their 4 metrics tables and what reads them become due) and a copy of the tiny run brought up
    to date with it uninterrupted: the reference of the kill -9 tests, which interrupt the same
    update in their own copies (once during an attribution job, once during a metrics job). Only
    the compared tables are made (TABLE_TARGETS)."""
    def build(tmp):
        (tmp / "change.yaml").write_text(RANDOM_CHANGE)
        copy_run(tiny_run, tmp / "reference")
        result = snakemake(tmp / "reference", *TABLE_TARGETS, "--configfile", str(tmp / "change.yaml"))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    tmp = _built_once(tmp_path_factory, "random_change", build)
    return ["--configfile", str(tmp / "change.yaml")], tmp / "reference"


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist's workers (pyproject's addopts: -n 2 --dist loadgroup, which hands the tests out
    in this order as the workers ask, each holding at most three), the order keeps both cores busy:
    one test that needs the tiny run first (its worker builds it), the end-to-end tests that do not
    need it next (the other worker runs them meanwhile), then those that need it, the SLURM test
    first (it mostly waits on the scheduler, beside the others' work), then the quick tests, which
    fill the gaps at the end. The tests do not depend on their order; without workers it is only
    another order."""
    def needs_run(item):
        return "tiny_run" in getattr(item, "fixturenames", ())

    def slow(item):
        return item.get_closest_marker("slow") is not None

    first = [i for i in items if needs_run(i) and i.path.name != "test_slurm.py"][:1]
    rest = [i for i in items if i not in first]
    independent = [i for i in rest if slow(i) and not needs_run(i)]
    dependent = sorted((i for i in rest if needs_run(i)), key=lambda i: i.path.name != "test_slurm.py")
    quick = [i for i in rest if not slow(i) and not needs_run(i)]
    items[:] = first + independent + dependent + quick


@pytest.fixture(scope="session", autouse=True)
def _one_thread_per_worker():
    """Two workers on two cores: each one's own torch work (not the Snakemake jobs it starts, which set
    their threads from the config) on one thread, so that they do not oversubscribe the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER") is not None:
        import torch

        torch.set_num_threads(1)
    yield
