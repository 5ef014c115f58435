"""Outputs are renamed into place only when complete; a killed writer's temporary is cleared."""

import os

import pytest

from facexai.atomic import atomic_path


def test_output_appears_only_when_the_block_succeeds(tmp_path):
    final = tmp_path / "out" / "x.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not final.exists() and list(final.parent.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole"


def test_a_killed_writers_temporary_is_removed_by_the_next_writer(tmp_path):
    final = tmp_path / "x[1].h5"  # glob characters in the name are taken literally
    stale = tmp_path / ".x[1].h5.tmp-99999"
    other = tmp_path / ".y.h5.tmp-99999"
    stale.write_text("left by kill -9")
    other.write_text("another output's")
    with atomic_path(final) as tmp:
        assert tmp.name == f".x[1].h5.tmp-{os.getpid()}"
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".y.h5.tmp-99999", "x[1].h5"]
