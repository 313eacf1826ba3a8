"""Small SQL helpers shared by the sources and targets (identifiers come from the schema, so quote them)."""

from __future__ import annotations


def quote(name: str) -> str:
    """A double-quoted identifier, valid in SQLite and PostgreSQL (an inner quote is doubled)."""
    return '"' + name.replace('"', '""') + '"'


def column_list(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(quote(n) for n in names)
