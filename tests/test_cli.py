"""The `facexai` command (facexai/cli.py) and the `python -m` forms that lead to it."""

import importlib.metadata
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

import facexai
from facexai.labels import CLASS_INDEX


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_console_script_is_installed():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("facexai") == "facexai.cli:main"


@pytest.mark.parametrize("command", [[], ["headlines"], ["demo-photos"], ["figures"], ["figures", "contact-sheet"],
                                     ["figures", "swap-pairs"], ["evaluate"]])
def test_every_subcommand_has_help(command, tmp_path):
    result = run("facexai.cli", *command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("usage: facexai"), result.stderr
    assert list(tmp_path.iterdir()) == []  # --help creates nothing (it once made a folder named --help)


def test_python_m_forms_parse_their_arguments(tmp_path):
    result = run("facexai.data.demo_photos", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "usage: facexai demo-photos" in result.stdout
    assert not (tmp_path / "--help").exists()
    result = run("facexai.headlines", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "usage: facexai headlines" in result.stdout


def test_a_missing_or_empty_results_folder_exits_non_zero_with_a_message(tmp_path):
    result = run("facexai.cli", "headlines", str(tmp_path / "nope"))
    assert result.returncode == 2 and "nope: no such results folder" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("facexai.headlines", str(tmp_path))
    assert result.returncode == 2 and "no finished run here" in result.stderr and result.stdout == ""
    result = run("facexai.cli", "figures", "contact-sheet", str(tmp_path / "nope"), str(tmp_path / "x.png"))
    assert result.returncode == 2 and "not a folder" in result.stderr


def test_evaluate_scores_a_maps_file_against_a_fused_dataset(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((5, 32, 32), np.uint8)
    labels[:, 8:12, 6:14] = CLASS_INDEX["r_eye"]
    labels[:, 8:12, 18:26] = CLASS_INDEX["l_eye"]
    labels[2, 20:26, 10:22] = CLASS_INDEX["u_lip"]
    with h5py.File(tmp_path / "dataset.h5", "w") as h5:
        h5["labels"], h5["ids"] = labels, np.array([10, 11, 12, 13, 14])
    maps, ids = rng.random((3, 16, 16)).astype(np.float32), np.array([14, 10, 12])
    np.savez(tmp_path / "maps.npz", maps=maps, ids=ids)
    result = run("facexai.cli", "evaluate", str(tmp_path / "maps.npz"), str(tmp_path / "dataset.h5"),
                 "--region", "eyes", "--out", str(tmp_path / "scores.csv"))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "scores.csv")
    expected = facexai.evaluate(maps, labels[[4, 0, 2]], "eyes", ids=ids)  # rows picked by id, in the maps' order
    assert list(table["id"]) == [14, 10, 12]
    np.testing.assert_allclose(table["rp"], expected["rp"], rtol=1e-6)
    # a sample listed more than once (one map per attribute) and a labels file that is not one
    np.savez(tmp_path / "twice.npz", maps=maps, ids=np.array([12, 10, 12]))
    result = run("facexai.cli", "evaluate", str(tmp_path / "twice.npz"), str(tmp_path / "dataset.h5"),
                 "--region", "eyes", "--out", str(tmp_path / "twice.csv"))
    assert result.returncode == 0, result.stderr
    assert list(pd.read_csv(tmp_path / "twice.csv")["id"]) == [12, 10, 12]
    np.savez(tmp_path / "nolabels.npz", masks=labels)
    result = run("facexai.cli", "evaluate", str(tmp_path / "maps.npz"), str(tmp_path / "nolabels.npz"),
                 "--region", "eyes", "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "needs an array named 'labels'" in result.stderr
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    result = run("facexai.cli", "evaluate", str(tmp_path / "maps.npz"), str(tmp_path / "junk.h5"),
                 "--region", "eyes", "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # a maps file without ids cannot be matched to a fused dataset's rows: said, not guessed
    np.save(tmp_path / "bare.npy", maps)
    result = run("facexai.cli", "evaluate", str(tmp_path / "bare.npy"), str(tmp_path / "dataset.h5"),
                 "--region", "eyes", "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "give the maps' sample ids" in result.stderr
    np.savez(tmp_path / "unknown.npz", maps=maps, ids=np.array([1, 2, 3]))
    result = run("facexai.cli", "evaluate", str(tmp_path / "unknown.npz"), str(tmp_path / "dataset.h5"),
                 "--region", "eyes", "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "sample id(s) [1, 2, 3] not in the dataset" in result.stderr
    assert not (tmp_path / "x.csv").exists()
