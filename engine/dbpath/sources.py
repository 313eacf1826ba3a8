"""Preview data sources: a SQLite file as sql.js ``db.export()`` writes it, or a ``sqlite3 .dump`` text.

The source is never modified: a file is opened read-only and immutable; a dump is replayed into a private
in-memory database. Either way the importer reads through one ``sqlite3.Connection``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.dbpath.schema import PrismaSchema
from engine.errors import InputError

SQLITE_MAGIC = b"SQLite format 3\x00"
SKIPPED_TABLES = frozenset({"_prisma_migrations"})


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` is a SQLite database file (else a dump, or nothing readable)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def connect_read_only(path: Path | str) -> sqlite3.Connection:
    """A connection that can neither change the file nor leave a journal beside it."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro&immutable=1", uri=True)


@contextmanager
def open_source(source: Path | str) -> Iterator[sqlite3.Connection]:
    path = Path(source)
    if not path.is_file():
        raise InputError(f"the source {path} does not exist or is not a file")
    conn = _open_file(path) if is_sqlite_file(path) else _load_dump(path)
    try:
        yield conn
    finally:
        conn.close()


def _open_file(path: Path) -> sqlite3.Connection:
    conn = connect_read_only(path)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _damaged(path, exc) from None
    return conn


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> InputError:
    return InputError(f"the source {path} is a damaged SQLite file ({exc}); export the preview again")


def check_integrity(source: Path | str) -> None:
    """Raise ``InputError`` when a SQLite source file is damaged anywhere (a dump: nothing to check).

    ``PRAGMA quick_check`` reads every page, half a second for 200 MB: the importer runs it on its own
    connection (SQLite releases the GIL) while the rows are read, and waits for it before committing.
    """
    path = Path(source)
    if not is_sqlite_file(path):
        return
    conn = connect_read_only(path)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    finally:
        conn.close()
    if problems != ["ok"]:
        raise InputError(f"the source {path} is a damaged SQLite file: {'; '.join(problems[:5])}")


def _load_dump(path: Path) -> sqlite3.Connection:
    """Replay a SQL dump statement by statement, so that an error names its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"the source {path} is neither a SQLite file nor a UTF-8 SQL dump; pass the preview's "
            "sql.js export or the output of `sqlite3 preview.db .dump`"
        ) from None
    conn = sqlite3.connect(":memory:", isolation_level=None)
    pending: list[str] = []
    start_line = 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not pending:
            if not line.strip():
                continue
            start_line = number
        pending.append(line)
        statement = "".join(pending)
        if not sqlite3.complete_statement(statement):
            continue
        pending = []
        try:
            conn.execute(statement)
        except sqlite3.Error as exc:
            conn.close()
            first = statement.strip().splitlines()[0][:120]
            raise InputError(f"the SQL dump {path} fails at line {start_line}: {exc} (in: {first})") from None
    if "".join(pending).strip():
        conn.close()
        raise InputError(f"the SQL dump {path} ends inside a statement that starts at line {start_line}")
    if conn.in_transaction:  # a dump cut off before its COMMIT still holds every row it inserted
        conn.execute("COMMIT")
    return conn


def source_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """User tables and their columns, without SQLite's own and Prisma's migration table."""
    tables: dict[str, list[str]] = {}
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
    ).fetchall():
        if name.startswith("sqlite_") or name in SKIPPED_TABLES:
            continue
        tables[name] = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")').fetchall()]
    return tables


def check_matches(schema: PrismaSchema, conn: sqlite3.Connection) -> None:
    """Refuse a source whose tables or columns differ from the schema: rows would be lost or invented."""
    found = source_tables(conn)
    problems: list[str] = []
    for table in schema.tables:
        if table.name not in found:
            problems.append(f"table {table.name} (model {table.model or 'implicit many-to-many'}) is missing")
            continue
        present = set(found[table.name])
        for column in table.columns:
            if column.name not in present:
                problems.append(f"table {table.name} has no column {column.name} (field {column.field})")
        expected = {c.name for c in table.columns}
        for extra in found[table.name]:
            if extra not in expected:
                problems.append(
                    f"column {table.name}.{extra} is not in the Prisma schema; its data would be lost"
                )
    for extra_table in sorted(set(found) - {t.name for t in schema.tables}):
        problems.append(f"table {extra_table} is not in the Prisma schema; its rows would be lost")
    if problems:
        raise InputError("the Prisma schema does not match the preview data: " + "; ".join(problems))


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
