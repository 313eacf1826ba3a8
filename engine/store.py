"""The DuckDB store: one file in the workspace, numbered migrations applied at start.

The engine is the only process that opens the file (DuckDB allows one read-write process). Inside the
engine every call goes through one lock: DuckDB aborts concurrent updates of one row with
"Conflict on update!", and our writes are small, so serialising them costs little and removes a class
of failures. Reads take the same lock; they are short.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped in ``engine/migrations``, in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("engine.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    duplicates = {v for v in versions if versions.count(v) > 1}
    if duplicates:
        raise RuntimeError(f"two migrations share the number(s) {sorted(duplicates)}")
    return found


# DuckDB's default is 80% of RAM, and it keeps table blocks cached up to that: ingesting a 50,000-app
# fleet's readings grew the engine past 2.6 GB. With 1 GB it spills instead, at the same ingest speed
# (bench/costs_rollup.py --memory-limit).
DEFAULT_MEMORY_LIMIT = "1GB"


class Store:
    def __init__(self, path: Path | str, *, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = duckdb.connect(str(path), config={"memory_limit": memory_limit})
        self._lock = threading.RLock()
        self.migrate()

    # -- migrations -------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply every migration not yet applied, each in its own transaction. Returns their names."""
        applied: list[str] = []
        with self._lock:
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {
                row[0] for row in self._connection.execute("SELECT version FROM schema_migrations").fetchall()
            }
            for version, name, sql in migration_files():
                if version in done:
                    continue
                self._connection.execute("BEGIN")
                try:
                    self._connection.execute(sql)
                    self._connection.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name]
                    )
                    self._connection.execute("COMMIT")
                except Exception:
                    self._connection.execute("ROLLBACK")
                    raise
                applied.append(name)
        return applied

    # -- queries ----------------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        with self._lock:
            self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self._connection.executemany(sql, rows)

    def fetchall(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._connection.execute(sql, params)
            columns = [d[0] for d in cursor.description or []]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def fetchone(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        with self._lock:
            row = self._connection.execute(sql, params).fetchone()
            return row[0] if row else None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the store for a multi-statement transaction; yields the raw connection."""
        with self._lock:
            self._connection.execute("BEGIN")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The raw connection under the store's lock, for bulk work (Arrow/Polars ingest, COPY)."""
        with self._lock:
            yield self._connection

    def checkpoint(self) -> None:
        with self._lock:
            self._connection.execute("CHECKPOINT")

    def close(self) -> None:
        with self._lock:
            self._connection.close()
