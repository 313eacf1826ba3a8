"""Small SQL helpers shared by the sources and targets (identifiers come from the schema, so quote them)."""

from __future__ import annotations

from sqlglot import exp


def quote(name: str) -> str:
    """A double-quoted identifier, valid in SQLite and PostgreSQL."""
    return exp.to_identifier(name, quoted=True).sql("postgres")


def column_list(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(quote(n) for n in names)
