"""The results layout: every path of a run named once (facexai/layout.py), and the rules ask it."""

import re
from pathlib import Path

import pytest

from facexai.layout import FILES, Layout, subject, subject_of

REPO = Path(__file__).resolve().parents[1]


def test_a_path_by_hand_and_wildcards_kept_for_patterns():
    L = Layout("out")
    assert L("metrics_csv", subject="resnet", method="gradcam", shard=0) == "out/metrics/resnet/gradcam/0.csv"
    # a rule's pattern: every wildcard kept; an expand pattern: one kept through the expand
    assert L("metrics_csv") == "out/metrics/{subject}/{method}/{shard}.csv"
    assert L("metrics_csv", subject="{{model}}") == "out/metrics/{{model}}/{method}/{shard}.csv"
    # an embedder's pairs are the subject verification/NAME, and back
    assert L("maps", subject=subject(embedder="dlib"), method="gradcam", shard=1) == \
        "out/attributions/verification/dlib/gradcam/1.h5"
    assert subject_of(subject(embedder="dlib")) == ("pairs", "dlib")
    assert subject_of(subject("resnet")) == ("attributes", "resnet")
    assert subject_of("verification") == ("attributes", "verification")  # a model may be named so
    with pytest.raises(ValueError, match="give a model or an embedder"):
        subject("resnet", embedder="dlib")
    assert L.figure("overlay_{model}", "pdf") == "out/figures/overlay_{model}.pdf"
    assert L.pair_table("localisation", "dlib") == "out/tables/verification/dlib/localisation.csv"
    assert L.log("train/{model}") == "out/logs/train/{model}.log"
    assert L.benchmark("statistics") == "out/benchmarks/statistics.tsv"


def test_unknown_names_and_wildcards_are_refused_naming_them():
    with pytest.raises(KeyError, match="no file 'metric_csv'"):
        Layout()("metric_csv")
    with pytest.raises(KeyError, match=r"has no wildcard \['embedder'\]"):
        Layout()("metrics_csv", embedder="dlib")


def test_no_two_entries_name_the_same_files():
    """No file of one entry is a file of another or lies inside one (a folder entry such as
    `figures`): each entry's example, its wildcards filled with a value no literal path holds, is
    matched against every other entry's pattern and against every other example as a folder."""
    sentinel = "\x00"
    examples = {name: re.sub(r"\{\w+\}", sentinel, t) for name, t in FILES.items()}
    patterns = {name: re.compile("^" + "[^/]+".join(re.escape(p) for p in re.split(r"\{\w+\}", t)) + "$")
                for name, t in FILES.items()}
    folders = {"figures"}  # the figures' folder: a prefix for multiext, never an output itself
    for a, example in examples.items():
        for b, pattern in patterns.items():
            if a != b:
                assert not pattern.match(example), (a, b)
                assert b in folders or not example.startswith(examples[b] + "/"), (a, "inside", b)
    # the checks can fail: an entry that a wildcard of another covers, and a file inside a folder entry
    assert patterns["eer"].match("verification/dlib/eer.json")
    assert examples["figure"].startswith(examples["figures"] + "/")


def test_model_folder_names_are_the_writers_names():
    """The trainers and importers write a model folder's files under layout.WEIGHTS / META / CURVES;
    the layout's entries end in exactly those names (a rename in one place would leave a rule's
    output missing)."""
    from facexai.layout import CURVES, META, WEIGHTS

    for entry, name in {"weights": WEIGHTS, "model_meta": META, "curves": CURVES, "embedder_weights": WEIGHTS,
                        "embedder_meta": META, "embedder_curves": CURVES}.items():
        assert FILES[entry].endswith("/" + name), entry
    for module in ("models/train.py", "models/verification.py", "models/embedders.py", "models/user.py"):
        text = (REPO / "facexai" / module).read_text()
        assert not re.search(r"([\"'])(weights\.pt|model\.json|curves\.tsv)\1", text), module


def test_find_matches_the_missing_wildcards_within_a_segment(tmp_path):
    root = tmp_path / "run [1]"  # the root is not a pattern
    for e in ("dlib", "trained"):
        (root / "tables/verification" / e).mkdir(parents=True)
        (root / "tables/verification" / e / "localisation.csv").write_text("x\n")
    (root / "tables/verification/dlib/beats_random.csv").write_text("x\n")
    found = Layout(root).find("pair_table", table="localisation")
    assert [p.parent.name for p in found] == ["dlib", "trained"]
    assert Layout(root).find("pair_table", table="beats_random", embedder="trained") == []


def test_the_rules_spell_no_results_path_themselves():
    """Every file under the results folder comes from the layout: no rule writes `{R}/...` or a
    literal 'results/' path (the Snakefile and rules are read as text)."""
    texts = {p.name: p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]}
    for name, text in texts.items():
        assert "{R}" not in text and not re.search(r"[\"']results/", text), name
        assert "PLAN.results" not in text and "results_dir" not in text, name
    assert any('L("metrics_csv")' in t for t in texts.values())
