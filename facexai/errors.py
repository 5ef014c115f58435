"""Errors that name what is wrong and where, instead of a traceback from deep inside numpy."""

from __future__ import annotations

from pathlib import Path


class BadInputError(ValueError):
    """A dataset file is missing, unreadable or inconsistent. Carries the file and the problem."""

    def __init__(self, path: str | Path, problem: str, sample_id: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.sample_id = sample_id
        where = f"sample {sample_id}: " if sample_id is not None else ""
        super().__init__(f"{where}{self.path}: {problem}")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""
