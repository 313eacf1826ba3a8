"""A libSQL/SQLite file target (``file:PATH``), what ``@prisma/adapter-libsql`` opens locally.

The new database is built in a file beside the target and moved over it (an atomic rename) only once it
is loaded and verified, so a failed import leaves the target file exactly as it was.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.dbpath.schema import Table
from engine.dbpath.targets import sqlite_common
from engine.dbpath.targets.base import Dialect, Row
from engine.errors import InputError, LaunchdeckError, TerminalError, TransientError

READ_BATCH = 20_000


def path_of(url: str) -> Path:
    raw = url.removeprefix("file:")
    if raw.startswith("//"):
        raw = raw[2:]
    path = Path(raw.split("?", 1)[0]).expanduser()
    if not raw or path.is_dir():
        raise InputError(f"the target {url!r} must name a database file, e.g. file:./prod.db")
    return path


class SqliteFileTarget:
    dialect: Dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = path_of(url)
        self.description = f"file:{self.path}"
        self.building = self.path.with_name(f".{self.path.name}.import-{secrets.token_hex(4)}")
        self.conn: sqlite3.Connection | None = None

    def is_empty(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        with sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True) as existing:
            try:
                rows = existing.execute(sqlite_common.USER_OBJECTS).fetchall()
            except sqlite3.DatabaseError as exc:
                raise InputError(
                    f"the target {self.path} exists but is not a SQLite database ({exc})"
                ) from None
        return not any(kind == "table" for kind, _ in rows)

    def begin(self, *, replace: bool) -> None:
        # Whatever the target held is replaced by the file built here when the import succeeds.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.building, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")  # a scratch file: the rename is the commit
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("PRAGMA foreign_keys = OFF")  # self relations cannot be loaded in key order
        self.conn.execute("BEGIN")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self.conn is None:
            raise RuntimeError("begin() first")
        return self.conn

    def execute(self, statements: Sequence[str]) -> None:
        for statement in statements:
            self._conn.execute(statement)

    def load(self, table: Table, rows: Sequence[Row]) -> None:
        self._conn.executemany(sqlite_common.insert_sql(table), rows)

    def read(self, table: Table) -> Iterator[Sequence[Row]]:
        cursor = self._conn.execute(sqlite_common.select_sql(table))
        while batch := cursor.fetchmany(READ_BATCH):
            yield batch

    def after_load(self, table: Table) -> None:
        return None

    def foreign_key_violations(self) -> list[tuple[str, int, str]]:
        return [(r[0], r[1], r[2]) for r in self._conn.execute("PRAGMA foreign_key_check").fetchall()]

    def record_baseline(self, migration_name: str, checksum: str, run_id: str) -> None:
        now = int(datetime.now(UTC).timestamp() * 1000)
        self._conn.execute(sqlite_common.PRISMA_MIGRATIONS_DDL)
        self._conn.execute(
            sqlite_common.PRISMA_MIGRATIONS_INSERT, (run_id, checksum, now, migration_name, now)
        )

    def translate_error(self, exc: Exception) -> LaunchdeckError | None:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return TransientError(f"{self.description} is locked by another process: {exc}")
        if isinstance(exc, sqlite3.Error):
            return TerminalError(f"SQLite refused the import into {self.description}: {exc}")
        return None

    def commit(self) -> None:
        conn = self._conn
        conn.execute("COMMIT")
        conn.close()
        self.conn = None
        with self.building.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.building, self.path)
        for suffix in ("-wal", "-shm", "-journal"):  # journals of the old file must not meet the new one
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def rollback(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.building.unlink(missing_ok=True)

    def close(self) -> None:
        self.rollback()
