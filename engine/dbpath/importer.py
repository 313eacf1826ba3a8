"""Import a generated app's preview data into its production database, verified.

One run: read the Prisma schema, check the source matches it, create the tables from Prisma's own DDL,
stream every row through its column's converter into bare tables, add keys and indexes, verify, record
the Prisma migration baseline, commit. Verification compares row counts and what was stored: a
PostgreSQL target reads every segment back with binary COPY and compares it byte for byte with what was
sent (``ServerChecks``); a libSQL/SQLite target compares per-column checksums (``Checksums``). A value
that cannot be converted is reported with its table, row key and column and the run commits nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from engine.dbpath.batches import (
    BATCH_ROWS,
    MAX_REPORTED_REJECTIONS,
    Rejection,
    TableConverter,
    display_value,
    without_cyclic_gc,
)
from engine.dbpath.convert import (
    Converter,
    to_datetime,
    to_decimal,
)
from engine.dbpath.ddl import LoadPlan, load_plan, schema_and_ddl
from engine.dbpath.pgbinary import ColumnValues, check_native_types, copy_rows, field_value, split_rows
from engine.dbpath.schema import Column, PrismaSchema, Table
from engine.dbpath.sources import check_integrity, check_matches, count_rows, open_source
from engine.dbpath.sql import column_list, quote
from engine.dbpath.targets import Target, open_target, target_dialect
from engine.dbpath.transform import datasource_provider
from engine.errors import Conflict, InputError, TransientError
from engine.retry import Backoff

Progress = Callable[[int, int, str], None]
MAX_ATTEMPTS = 3
# A lost connection or a busy server: wait a second or two before the next attempt (Retry-After wins).
IMPORT_BACKOFF = Backoff(base_delay=1.0, max_delay=8.0)
MAX_PENDING = 2  # converted batches waiting for the writer: bounds memory
MAX_PENDING_EARLY = 6  # while Prisma's schema engine computes the DDL, convert a little further ahead
MIGRATION_NAME = "0_init"
SEGMENT_ROWS = 50_000  # rows sent before they are read back and compared: bounds what is held
SEGMENT_BYTES = 4 << 20
HASH_MASK = (1 << 64) - 1
ROW_SALT = 0x5BD1E995


class TableReport(BaseModel):
    source_rows: int = 0
    imported_rows: int = 0
    rejected_rows: int = 0


class ImportReport(BaseModel):
    """The ``--json`` answer of ``launchdeck db import``."""

    tables: dict[str, TableReport] = Field(default_factory=dict)
    rejected: list[Rejection] = Field(default_factory=list)
    verified: bool = False
    seconds: float = 0.0
    error: str | None = None  # why nothing was committed, when something went wrong after the checks

    @property
    def ok(self) -> bool:
        return self.verified and not self.rejected and self.error is None


# ------------------------------------------------------------------------------------- checksums
def _identity(value: Any) -> Any:
    return value


def _none_safe(canon: Converter) -> Converter:
    def apply(value: Any) -> Any:
        return None if value is None else canon(value)

    return apply


def _target_canon(column: Column, dialect: str) -> Converter:
    if column.is_enum:
        return _identity
    if dialect == "sqlite":  # a SQLite target keeps the very JSON text the import wrote
        if column.type == "DateTime":
            return _none_safe(to_datetime)
        if column.type == "Decimal":
            return _none_safe(to_decimal)
        if column.type == "Bytes":
            return _none_safe(bytes)
    return _identity


class Checksums:
    """Row count, per column the sum of its values' hashes, and the sum of whole-row hashes.

    Sums do not depend on row order. A changed, lost or invented value changes its column's sum; a
    value moved to another row changes the row sum. Python's hash is consistent within one process,
    which is where both sides are computed.
    """

    def __init__(self, table: Table, canons: list[Converter]) -> None:
        self.rows = 0
        self.sums = [0] * len(table.columns)
        self.row_sum = 0
        self.canons = canons

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Stored rows as read back from the target: brought to their comparable form first."""
        if rows:
            self.add_columns(
                [
                    values if canon is _identity else list(map(canon, values))
                    for canon, values in zip(self.canons, zip(*rows, strict=True), strict=True)
                ]
            )

    def add_columns(self, columns: Sequence[ColumnValues]) -> None:
        """Columns already in comparable form (the converter's checksum columns)."""
        if not columns or len(columns[0]) == 0:
            return
        for index, values in enumerate(columns):
            self.sums[index] = (self.sums[index] + sum(map(hash, values))) & HASH_MASK
        # A row's tuple hash hashed once more: sums of bare tuple hashes stay equal, for some hash seeds,
        # when two rows swap a value (seen with a NULL beside the swapped text).
        row_hashes = map(hash, zip(*columns, strict=True))
        self.row_sum = (self.row_sum + sum(map(hash, zip(row_hashes, repeat(ROW_SALT))))) & HASH_MASK
        self.rows += len(columns[0])


ReadBack = Callable[[Table, str | None], tuple[bytes | bytearray, str | None]]


def _consists_of(whole: bytes | bytearray, pieces: list[bytes]) -> bool:
    """Whether ``whole`` is ``pieces`` end to end: compared in place, without joining a segment's copy."""
    offset = 0
    for piece in pieces:
        if not whole.startswith(piece, offset):
            return False
        offset += len(piece)
    return offset == len(whole)


class ServerChecks:
    """A PostgreSQL load verified by reading it back: every segment of rows is read with binary ``COPY TO``
    as soon as it is loaded and compared byte for byte with the binary COPY tuples that were sent. Values
    are sent in the form the server sends them back (``pgbinary``), so any value stored otherwise than it
    was meant (a lost, changed, moved or invented row or value) shows as a difference, reported with its
    row and column."""

    def __init__(self, table: Table, read_back: ReadBack, encoding: str) -> None:
        self.table = table
        self.read_back = read_back
        self.encoding = encoding
        self.pending: list[bytes] = []
        self.pending_rows = 0
        self.pending_bytes = 0
        self.after: str | None = None
        self.sent = 0
        self.stored = 0
        self.difference: str | None = None

    def add(self, data: bytes, rows: int) -> None:
        """The tuples just written (``copy_rows``), ``rows`` of them: what reading them back must give."""
        self.pending.append(data)
        self.pending_rows += rows
        self.pending_bytes += len(data)
        if self.pending_rows >= SEGMENT_ROWS or self.pending_bytes >= SEGMENT_BYTES:
            self.check()

    def check(self) -> None:
        """Read back what was stored since the last check and compare it with what was sent since then."""
        sent = self.pending
        rows = self.pending_rows
        self.sent += rows
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0
        stored, self.after = self.read_back(self.table, self.after)
        if _consists_of(stored, sent):
            self.stored += rows
            return
        stored_rows = split_rows(stored)
        self.stored += len(stored_rows)
        if self.difference is None:
            self.difference = self.describe(split_rows(b"".join(sent)), stored_rows)

    def describe(self, sent: list[list[bytes | None]], stored: list[list[bytes | None]]) -> str | None:
        """The first differing value: its row key, column and both values."""
        columns = self.table.columns
        for meant, found in zip(sent, stored, strict=False):
            if meant == found:
                continue
            key = ", ".join(
                f"{c.name}={field_value(c, meant[i], self.encoding)}"
                for i, c in enumerate(columns)
                if c.name in self.table.key_columns
            )
            for column, want, got in zip(columns, meant, found, strict=False):
                if want != got:
                    sent_as = display_value(field_value(column, want, self.encoding))
                    stored_as = display_value(field_value(column, got, self.encoding))
                    return f"{self.table.name}.{column.name}: row {key} was sent as {sent_as!r} but stored as {stored_as!r}"
            return f"{self.table.name}: row {key} was stored otherwise than it was sent"
        return None  # the same rows, a different number of them: counted in ``problems``

    def problems(self) -> list[str]:
        found = []
        if self.stored != self.sent:
            found.append(f"{self.table.name}: {self.sent} rows in the source, {self.stored} in the target")
        if self.difference is not None:
            found.append(self.difference)
        return found


def _load_and_check(
    write_copy: Callable[[Table, bytes], None], checks: ServerChecks, table: Table, data: bytes, rows: int
) -> None:
    """Send binary COPY tuples to the target, then hand them to the checks to compare with the read-back."""
    write_copy(table, data)
    checks.add(data, rows)


class BackgroundWriter:
    """Runs writes in one thread, in order, at most ``MAX_PENDING`` batches behind the converter.

    A failed write surfaces (re-raised) at the next ``submit`` or ``drain``. Disabled, it runs each write
    at once in the calling thread.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") if enabled else None
        self.pending: deque[Future[None]] = deque()

    def submit(self, write: Callable[..., None], *args: Any, limit: int = MAX_PENDING) -> None:
        if self.pool is None:
            write(*args)
            return
        while len(self.pending) >= limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write, *args))

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Cancel what has not started and wait for what has."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()


# ------------------------------------------------------------------------------------- the run
def import_preview(
    schema_path: Path | str,
    source: Path | str,
    target_url: str,
    *,
    replace: bool = False,
    progress: Progress | None = None,
    migrations_dir: Path | None = None,
) -> ImportReport:
    """Import ``source`` into ``target_url`` for the app whose schema is at ``schema_path``.

    Bad input (schema, source, target) raises ``InputError``; a non-empty target without ``replace``
    raises ``Conflict``. Rejected values or a failed verification come back in the report with
    ``verified`` false, and the target is left as it was.
    """
    started = time.monotonic()
    schema_file = Path(schema_path)
    if not schema_file.is_file():
        raise InputError(f"the Prisma schema {schema_file} does not exist")
    schema_text = schema_file.read_text(encoding="utf-8")
    datasource_provider(schema_text)  # a schema without a datasource fails before any connection
    dialect = target_dialect(target_url)
    from engine.dbpath import parallel  # it imports this module

    wants_workers = dialect == "postgresql" and parallel.worth_starting(source)
    # Forked before this process starts a thread (parallel.forked_pool), the workers start at once.
    forked = parallel.forked_pool() if wants_workers else None
    # Prisma's engines run in Node while this process connects and checks the source.
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="import-prepare")
    # Prisma's parser answers first: small tables are read and converted here while its schema engine
    # computes the DDL (worker processes wait for it to exit, see ``_run``).
    schema_ready: Future[PrismaSchema] = Future()

    def prepare() -> tuple[PrismaSchema, str]:
        try:
            return schema_and_ddl(
                schema_text,
                dialect,
                url=target_url if dialect == "postgresql" else None,
                on_schema=schema_ready.set_result,
            )
        except BaseException as exc:
            if not schema_ready.done():
                schema_ready.set_exception(exc)
            raise

    prepared = pool.submit(prepare)
    # Reading every page of the source takes a while: it runs beside everything else, awaited before commit.
    integrity = pool.submit(check_integrity, source)
    # Otherwise they start while Node runs, ready to convert once it has exited (see ``_run``).
    workers: Future[ProcessPoolExecutor] | None = None
    if forked is not None:
        workers = Future()
        workers.set_result(forked)
    elif wants_workers:
        workers = pool.submit(parallel.start_pool)
    attempt = 0
    try:
        while True:
            attempt += 1
            target = open_target(target_url)
            try:
                with open_source(source) as conn:
                    schema = schema_ready.result()  # a retry after a lost connection reuses the answer
                    check_matches(schema, conn)
                    if target.dialect == "postgresql":
                        check_native_types(schema.tables)
                    if not replace and not target.is_empty():
                        raise Conflict(
                            f"the target {target.description} already holds tables; pass --replace to overwrite them"
                        )
                    try:
                        with without_cyclic_gc():
                            report = _run(
                                schema,
                                conn,
                                target,
                                lambda: prepared.result()[1],
                                replace=replace,
                                progress=progress,
                                source_checked=integrity.result,
                                workers=workers,
                            )
                    except Exception as exc:
                        damaged = integrity.exception()  # a damaged source explains a failure better
                        if isinstance(damaged, InputError):
                            raise damaged from exc
                        mapped = target.translate_error(exc)
                        if mapped is None:
                            raise
                        raise mapped from exc
                break
            except TransientError as exc:
                target.rollback()
                if attempt >= MAX_ATTEMPTS:
                    raise
                time.sleep(IMPORT_BACKOFF.delay(attempt, exc.retry_after))
            finally:
                target.close()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if workers is not None and not workers.cancelled() and workers.exception() is None:
            workers.result().shutdown(wait=True, cancel_futures=True)
    if report.ok:
        ddl = prepared.result()[1]
        write_baseline(migrations_dir or schema_file.parent / "migrations", ddl, target.dialect)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _run(
    schema: PrismaSchema,
    conn: sqlite3.Connection,
    target: Target,
    ddl_answer: Callable[[], str],
    *,
    replace: bool,
    progress: Progress | None,
    source_checked: Callable[[], None],
    workers: Future[ProcessPoolExecutor] | None,
) -> ImportReport:
    """One attempt: load every table in one transaction, verify, commit. ``source_checked`` raises when the
    source turned out damaged; ``workers``, when given, is a pool for converting the large tables."""
    report = ImportReport()
    plans: list[LoadPlan] = []
    totals = {t.name: count_rows(conn, t.name) for t in schema.tables}
    total = sum(totals.values())
    done = 0
    source_sums: dict[str, Checksums] = {}
    server_checks: dict[str, ServerChecks] = {}
    read_back: ReadBack | None = getattr(target, "read_back", None)
    write_copy: Callable[[Table, bytes], None] | None = getattr(target, "write_copy", None)
    run_id = str(uuid.uuid4())
    committed = False
    # The server loads and reads back one batch while this thread reads and converts the next.
    writer = BackgroundWriter(enabled=write_copy is not None and read_back is not None)
    if writer.pool is None:
        ddl_answer()  # without the writer, wait before the transaction opens: a Hrana stream expires when idle
    target.begin(replace=replace)

    def create_tables() -> None:  # in the writer: waits for Prisma's DDL while rows are converted
        plans.append(load_plan(ddl_answer(), target.dialect))
        target.execute(plans[0].before)

    # Large tables are converted in worker processes; this one only sends their COPY data.
    from engine.dbpath import parallel  # it imports this module

    source = None
    if (
        workers is not None
        and writer.pool is not None
        and write_copy is not None
        and max(totals.values(), default=0) >= parallel.MIN_ROWS
    ):
        source = parallel.source_file(conn)
    pool = workers.result() if workers is not None and source is not None else None

    try:
        if pool is not None:
            # The workers start converting once Node has exited: Prisma's engines (about 80 MB) and two
            # converting workers at the same time would take the import over its memory budget.
            ddl_answer()
        writer.submit(create_tables)
        for table in schema.tables:
            converter = TableConverter(table, target.dialect)
            sums = Checksums(table, [_identity for _ in table.columns])
            checks = (
                ServerChecks(table, read_back, getattr(target, "copy_encoding"))  # noqa: B009 (PostgreSQL only)
                if read_back is not None
                else None
            )
            entry = report.tables[table.name] = TableReport(source_rows=totals[table.name])
            bounds = (
                parallel.chunk_bounds(conn, table)
                if pool is not None and totals[table.name] >= parallel.MIN_ROWS
                else None
            )
            if bounds is not None and pool is not None and source is not None and checks is not None:
                assert write_copy is not None
                chunks: deque[Future[parallel.Chunk]] = deque()
                ahead = 0
                for _ in bounds:
                    # One chunk more than workers keeps both busy; the rest waits (memory stays bounded).
                    while ahead < len(bounds) and len(chunks) <= parallel.WORKERS:
                        chunks.append(
                            pool.submit(parallel.convert_chunk, source, table, checks.encoding, bounds[ahead])
                        )
                        ahead += 1
                    chunk = chunks.popleft().result()
                    if chunk.bad_rows:
                        entry.rejected_rows += chunk.bad_rows
                        report.rejected.extend(
                            chunk.rejected[: MAX_REPORTED_REJECTIONS - len(report.rejected)]
                        )
                    elif not report.rejected:
                        writer.submit(_load_and_check, write_copy, checks, table, chunk.data, chunk.rows)
                        entry.imported_rows += chunk.rows
                    done += chunk.rows
                    if progress is not None:
                        progress(done, total, table.name)
                server_checks[table.name] = checks
                continue
            cursor = conn.execute(
                f"SELECT {column_list([c.name for c in table.columns])} FROM {quote(table.name)}"
            )
            while rows := cursor.fetchmany(BATCH_ROWS):
                stored, converted, bad = converter.convert(rows, report.rejected)
                if bad:
                    entry.rejected_rows += len(bad)
                elif not report.rejected:  # after a rejection keep scanning, to report them all
                    if write_copy is not None and checks is not None:
                        writer.submit(
                            _load_and_check,
                            write_copy,
                            checks,
                            table,
                            copy_rows(table.columns, stored, checks.encoding),
                            len(rows),
                            limit=MAX_PENDING if plans else MAX_PENDING_EARLY,
                        )
                    else:
                        target.load(table, list(zip(*stored, strict=True)))
                        sums.add_columns(converted)
                    entry.imported_rows += len(rows)
                done += len(rows)
                if progress is not None:
                    progress(done, total, table.name)
            if checks is not None:
                if not report.rejected:
                    writer.submit(checks.check)
                server_checks[table.name] = checks
            else:
                source_sums[table.name] = sums
        writer.drain()
        source_checked()
        if report.rejected:
            for entry in report.tables.values():
                entry.imported_rows = 0
            report.error = f"{sum(e.rejected_rows for e in report.tables.values())} row(s) hold values that cannot be converted; nothing was imported"
            target.rollback()
            return report
        target.execute(plans[0].after)
        for table in schema.tables:
            target.after_load(table)
        dangling = target.foreign_key_violations()
        if dangling:
            shown = "; ".join(f"{t} rowid {r} points at a missing {p} row" for t, r, p in dangling[:10])
            report.error = f"{len(dangling)} row(s) reference rows that do not exist: {shown}"
            target.rollback()
            return report
        if server_checks:
            problems = [p for checks in server_checks.values() for p in checks.problems()]
            if problems:
                report.error = "verification failed: " + "; ".join(problems)
            report.verified = not problems
        else:
            report.verified = _verify(schema, target, source_sums, report)
        if not report.verified:
            target.rollback()
            return report
        target.record_baseline(MIGRATION_NAME, hashlib.sha256(ddl_answer().encode()).hexdigest(), run_id)
        try:
            target.commit()
            committed = True
        except TransientError:
            confirm = getattr(target, "committed", None)
            if confirm is not None and confirm(run_id):
                committed = True
            else:
                raise
        return report
    except Exception:
        writer.close()  # nothing may write after the rollback
        if not committed:
            target.rollback()
        raise
    finally:
        writer.close()


def _verify(
    schema: PrismaSchema, target: Target, source_sums: dict[str, Checksums], report: ImportReport
) -> bool:
    problems: list[str] = []
    for table in schema.tables:
        expected = source_sums[table.name]
        found = Checksums(table, [_target_canon(c, target.dialect) for c in table.columns])
        for batch in target.read(table):
            found.add_rows(batch)
        if found.rows != expected.rows:
            problems.append(f"{table.name}: {expected.rows} rows in the source, {found.rows} in the target")
        for column, want, got in zip(table.columns, expected.sums, found.sums, strict=True):
            if want != got:
                problems.append(f"{table.name}.{column.name}: checksums differ")
        if expected.row_sum != found.row_sum and expected.sums == found.sums:
            problems.append(f"{table.name}: values sit in other rows than in the source")
    if problems:
        report.error = "verification failed: " + "; ".join(problems)
    return not problems


def write_baseline(migrations_dir: Path, ddl: str, dialect: str) -> Path:
    """``migrations/0_init/migration.sql`` and ``migration_lock.toml`` for the new provider.

    Migrations written for another provider cannot run on this one, so an existing folder is moved
    aside (never deleted) unless it already holds this very baseline.
    """
    init = migrations_dir / MIGRATION_NAME / "migration.sql"
    lock = migrations_dir / "migration_lock.toml"
    lock_text = (
        "# Please do not edit this file manually\n"
        "# It should be added in your version-control system (e.g., Git)\n"
        f'provider = "{dialect}"\n'
    )
    if migrations_dir.exists():
        same = init.is_file() and init.read_text() == ddl and lock.is_file() and lock.read_text() == lock_text
        if same:
            return init
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        shutil.move(
            str(migrations_dir), str(migrations_dir.with_name(f"{migrations_dir.name}.before-import-{stamp}"))
        )
    init.parent.mkdir(parents=True)
    init.write_text(ddl)
    lock.write_text(lock_text)
    return init
