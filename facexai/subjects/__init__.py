"""The kinds of explained subjects (subjects/base.py says what a kind provides), by name. Adding a
kind is one module with a `SubjectKind` subclass and one entry here (or `register` at run time)."""

from __future__ import annotations

from .attributes import AttributeDecisions
from .base import SubjectKind
from .pairs import VerificationPairs

KINDS: dict[str, SubjectKind] = {kind.name: kind for kind in (AttributeDecisions(), VerificationPairs())}


def get(name: str) -> SubjectKind:
    if name not in KINDS:
        raise KeyError(f"no subject kind {name!r}; known: {sorted(KINDS)}")
    return KINDS[name]


def register(kind: SubjectKind) -> SubjectKind:
    """Add a kind (a plug-in, or a test's toy kind); a name already taken is refused."""
    if kind.name in KINDS:
        raise ValueError(f"subject kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    KINDS.pop(name, None)


def row_key(table) -> list[str]:
    """The columns naming one row of a per-sample metric table across methods: model, then the key
    columns of the subject kind whose required key columns the table has (the kind with the most),
    then those of its optional ones it has; model and id when no kind's are all there. The paired
    tests match rows by it."""
    return key_of_columns(table.columns)


def key_of_columns(columns) -> list[str]:
    """`row_key` of a table with these columns."""
    columns = set(columns)
    kinds = [k for k in KINDS.values() if set(k.key_columns) <= columns]
    kind = max(kinds, key=lambda k: len(k.key_columns)) if kinds else None
    named = ("id",) if kind is None else (*kind.key_columns, *kind.optional_key_columns)
    return [c for c in ("model", *named) if c in columns]
