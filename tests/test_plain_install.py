"""A plain `pip install .` (no test extra) in a fresh virtual environment runs the `facexai` command
and builds the Snakemake report of a finished run (snakemake's report needs pygments, which
snakemake only declares under its `reports` extra)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import EMBEDDERS_CONFIG, copy_run
from conftest import REPO as _REPO

REPO = Path(_REPO)


@pytest.mark.slow
def test_report_and_command_from_a_plain_install_in_a_fresh_venv(tiny_run, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # outside the checkout, and without a PYTHONPATH: only the venv's own install may be imported
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip, python = venv / "bin" / "pip", venv / "bin" / "python"
    # the torch build of this environment first (as install.sh does), then the package from a copy of
    # the source tree (an in-tree build would leave build/ in the checkout)
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(REPO / "facexai", source / "facexai", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    torch_version = torch.__version__.split("+")[0]
    for args in (["torch==" + torch_version], [str(source)]):
        result = subprocess.run([str(pip), "install", "--quiet", *args], capture_output=True, text=True,
                                timeout=1500, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    result = subprocess.run([str(python), "-c", "import pygments, facexai; print(facexai.__file__)"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0 and str(venv) in result.stdout, result.stderr[-2000:]
    result = subprocess.run([str(venv / "bin" / "facexai"), "headlines", str(tiny_run / "results")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0 and "### FR vs RP" in result.stdout, result.stderr[-2000:]
    run = tmp_path / "run"  # the shared run is read only: report on a copy
    copy_run(tiny_run, run)
    # the run's embedders without dlib's (the dlib extra is not part of a plain install)
    embedders = (run / EMBEDDERS_CONFIG).read_text().splitlines()
    (tmp_path / "embedders.yaml").write_text("\n".join(line for line in embedders if "kind: dlib" not in line))
    report = tmp_path / "report.html"
    result = subprocess.run([str(python), "-m", "snakemake", "--cores", "1", "-s", str(REPO / "Snakefile"),
                             "-d", str(run), "--report", str(report), "--configfile",
                             str(REPO / "tests/tiny.yaml"), str(tmp_path / "embedders.yaml")],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert report.stat().st_size > 100_000 and "pygments must be installed" not in result.stderr
