"""The software declarations agree, the workflow lints clean and is formatted."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from conftest import REPO as _REPO

REPO = Path(_REPO)


def _requirements(lines):
    return {re.split(r"[<>=!~ ]", line, maxsplit=1)[0].lower(): line.replace(" ", "") for line in lines}


def test_conda_env_equals_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs/facexai.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # the rules that align photos and import dlib's recogniser need the dlib extra inside the env too
    assert _requirements(pip) == _requirements(project["dependencies"] + project["optional-dependencies"]["dlib"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))


def test_every_rule_declares_its_software_and_log():
    from snakemake.api import SnakemakeApi  # noqa: F401  (snakemake is importable)

    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.split(r"^rule ", text, flags=re.M)[1:]
        for body in rules:
            name = body.split(":", 1)[0]
            assert 'conda:\n        "../envs/facexai.yaml"' in body, f"{smk.name}: rule {name} has no conda: env"
            assert "\n    log:" in body, f"{smk.name}: rule {name} has no log:"
            for env in re.findall(r'conda:\n\s+"([^"]+)"', body):
                assert (smk.parent / env).resolve().is_file(), f"{smk.name}: rule {name}: {env} missing"


def test_snakemake_lint_is_clean(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile"),
                             "-d", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr, (
        result.stdout + result.stderr)


def test_snakefile_and_rules_are_formatted_with_snakefmt():
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "Snakefile", "rules"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, "run `snakefmt Snakefile rules`:\n" + result.stdout[-3000:] + result.stderr[-3000:]


def test_python_code_lints_clean_with_ruff():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, "run `ruff check .`:\n" + result.stdout[-3000:] + result.stderr[-3000:]


def test_a_plain_install_brings_what_snakemake_report_needs():
    """`snakemake --report` needs pygments, which snakemake declares only under its `reports` extra:
    facexai's own dependencies (not the test extra) must ask for it."""
    import importlib.metadata as metadata

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(d.replace(" ", "").startswith("snakemake[reports]") for d in project["dependencies"])
    reports = [r for r in metadata.requires("snakemake") if 'extra == "reports"' in r]
    assert any(r.startswith("pygments") for r in reports), reports
    assert not any(d.startswith("pygments") for d in project["optional-dependencies"]["test"])


def test_python_floor_agrees_with_the_code():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # tomllib (tests), `X | Y` in isinstance
    floors = _requirements(project["dependencies"])
    assert floors["numpy"] == "numpy>=2.0" and floors["torch"] == "torch>=2.3"  # np.trapezoid; numpy-2 torch
