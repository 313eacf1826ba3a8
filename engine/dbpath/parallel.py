"""Large tables converted in worker processes, so conversion uses every core (Python's GIL holds one).

A table with at least ``MIN_ROWS`` rows in a SQLite file, bound for PostgreSQL, is cut by rowid into
chunks of ``CHUNK_ROWS`` rows. Each worker opens the source read-only and turns a chunk into
binary COPY tuples. The importer's process stays the only writer: it sends the chunks to its one
connection in source order, inside the import's one transaction, and reads each segment back to compare
it with what was sent, so a failure anywhere still rolls back everything.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.dbpath.batches import (
    BATCH_ROWS,
    MAX_REPORTED_REJECTIONS,
    Rejection,
    TableConverter,
    without_cyclic_gc,
)
from engine.dbpath.pgbinary import copy_rows
from engine.dbpath.schema import Table
from engine.dbpath.sources import connect_read_only, is_sqlite_file
from engine.dbpath.sql import column_list, quote

MIN_ROWS = 50_000  # below this, starting worker processes costs more than it saves
MIN_FILE_BYTES = 2 << 20  # a smaller SQLite file holds no table of MIN_ROWS rows
CHUNK_ROWS = 10_000  # a few chunks in flight bound the memory
WORKERS = 2  # the machine's cores
SHADOWING = frozenset({"rowid", "_rowid_", "oid"})

Bounds = tuple[int | None, int | None]  # rowid after which a chunk starts, rowid it ends at (inclusive)


@dataclass
class Chunk:
    rows: int = 0
    bad_rows: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    data: bytes = b""  # binary COPY tuples; empty once a row was rejected (nothing is loaded then)


def source_file(conn: sqlite3.Connection) -> str | None:
    """The file behind the source connection; None for a dump replayed in memory."""
    for _, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(path) or None
    return None


def chunk_bounds(conn: sqlite3.Connection, table: Table) -> list[Bounds] | None:
    """Rowid ranges of ``CHUNK_ROWS`` rows each, or None when the table has no usable rowid."""
    if any(c.name.lower() in SHADOWING for c in table.columns):
        return None
    name = quote(table.name)
    bounds: list[Bounds] = []
    last: int | None = None
    try:
        while True:
            where = "" if last is None else f" WHERE rowid > {last}"
            found = conn.execute(
                f"SELECT rowid FROM {name}{where} ORDER BY rowid LIMIT 1 OFFSET {CHUNK_ROWS - 1}"
            ).fetchone()
            bounds.append((last, None if found is None else int(found[0])))
            if found is None:
                return bounds
            last = int(found[0])
    except sqlite3.OperationalError:  # WITHOUT ROWID
        return None


def worth_starting(source: Path | str) -> bool:
    """Whether ``source`` is a SQLite file large enough to hold a table the workers would convert."""
    path = Path(source)
    return is_sqlite_file(path) and path.stat().st_size >= MIN_FILE_BYTES


def _started(context: multiprocessing.context.BaseContext) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=context)
    for _ in range(WORKERS):  # start them now, not at the first chunk
        pool.submit(int)
    return pool


def forked_pool() -> ProcessPoolExecutor | None:
    """Workers forked from this process, or None when it runs other threads.

    A forked worker shares the modules this process imported, page for page, and imports nothing
    itself: one copy of them in memory instead of a second one in a forkserver. A fork copies only the
    thread that calls it, so with other threads running it could copy a lock one of them holds; then
    ``start_pool`` starts the workers from a clean forkserver instead.
    """
    if threading.active_count() > 1:
        return None
    return _started(multiprocessing.get_context("fork"))


def start_pool() -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # each worker forks with the converters imported
    return _started(context)


_sources: dict[str, sqlite3.Connection] = {}


def convert_chunk(source: str, table: Table, encoding: str, bounds: Bounds) -> Chunk:
    """In a worker: one chunk's rows as binary COPY tuples for PostgreSQL, with its rejections."""
    with without_cyclic_gc():
        return _convert_chunk(source, table, encoding, bounds)


def _convert_chunk(source: str, table: Table, encoding: str, bounds: Bounds) -> Chunk:
    conn = _sources.get(source)
    if conn is None:
        conn = _sources[source] = connect_read_only(source)
    after, upto = bounds
    conditions = [
        c for c in ("rowid > ?" if after is not None else "", "rowid <= ?" if upto is not None else "") if c
    ]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor = conn.execute(
        f"SELECT {column_list([c.name for c in table.columns])} FROM {quote(table.name)}{where} ORDER BY rowid",
        [b for b in bounds if b is not None],
    )
    converter = TableConverter(table, "postgresql")
    chunk = Chunk()
    parts: list[bytes] = []
    while rows := cursor.fetchmany(BATCH_ROWS):
        stored, _, bad = converter.convert(rows, chunk.rejected)
        chunk.rows += len(rows)
        chunk.bad_rows += len(bad)
        if chunk.bad_rows:
            del chunk.rejected[MAX_REPORTED_REJECTIONS:]
            continue  # keep scanning, to report every rejection; nothing more to render
        parts.append(copy_rows(table.columns, stored, encoding))
    if not chunk.bad_rows:
        chunk.data = b"".join(parts)
    return chunk
