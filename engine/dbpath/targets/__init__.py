"""Where an import writes: one small module per kind of target, behind ``open_target(url)``.

- ``postgresql://...``: PostgreSQL (Neon, bring-your-own, local), binary COPY into bare tables.
- ``file:PATH``: a libSQL/SQLite file, built beside the target and moved into place when verified.
- ``libsql://...`` / ``https://...?authToken=...``: Turso over Hrana 3 HTTP, pipelined and batched.

Every target loads inside one transaction (or a file not yet in place), so a failed import leaves the
target as it was.
"""

from __future__ import annotations

from engine.dbpath.targets.base import Dialect, Target
from engine.errors import InputError
from engine.redact import redact_url


def target_dialect(url: str) -> Dialect:
    """The SQL dialect behind a target URL, known before connecting."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    if url.startswith(("file:", "libsql://", "https://", "http://")):
        return "sqlite"
    raise InputError(
        f"unknown target {redact_url(url)!r}: use postgresql://..., file:PATH, or libsql://...?authToken=..."
    )


def open_target(url: str) -> Target:
    if url.startswith(("postgresql://", "postgres://")):
        from engine.dbpath.targets.postgres import PostgresTarget

        return PostgresTarget(url)
    if url.startswith("file:"):
        from engine.dbpath.targets.sqlite_file import SqliteFileTarget

        return SqliteFileTarget(url)
    if url.startswith(("libsql://", "https://", "http://")):
        from engine.dbpath.targets.hrana import HranaTarget

        return HranaTarget(url)
    raise InputError(
        f"unknown target {redact_url(url)!r}: use postgresql://..., file:PATH, or libsql://...?authToken=..."
    )


__all__ = ["Target", "open_target", "redact_url", "target_dialect"]
