"""PostgreSQL target: binary COPY into bare tables inside one transaction, keys and indexes after.

PostgreSQL DDL is transactional, so creating the tables, loading them, adding keys, verifying and
recording the migration baseline is one transaction: any failure rolls all of it back. Values are sent in
the form the server sends them back (``pgbinary``), so what was stored can be read back with binary
``COPY TO`` and compared byte for byte with what was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import Copy, QueuedLibpqWriter
from psycopg.types.json import set_json_dumps, set_json_loads

from engine.dbpath.pgbinary import SIGNATURE, TRAILER
from engine.dbpath.schema import Column, Table
from engine.dbpath.targets.base import Dialect, Row
from engine.errors import InputError, LaunchdeckError, TerminalError, TransientError
from engine.redact import redact_url

READ_BATCH = 20_000
COPY_TYPES = {
    "String": "text",
    "Int": "int4",
    "BigInt": "int8",
    "Float": "float8",
    "Decimal": "numeric",
    "Boolean": "bool",
    "DateTime": "timestamp",
    "Json": "jsonb",
    "Bytes": "bytea",
}


def copy_type(column: Column) -> str:
    # An enum's binary form is its label's text, so it travels as text into the enum-typed column.
    return "text" if column.is_enum else COPY_TYPES[column.type]


def _json_text(obj: Any) -> str:
    if not isinstance(obj, str):
        raise TypeError("the importer passes JSON as validated text")
    return obj


def _raw_json(data: str | bytes) -> str:
    """Verification compares JSON by value, so keep the stored text as it comes."""
    return data if isinstance(data, str) else bytes(data).decode("utf-8")


def _read_back_column(column: Column) -> sql.Composable:
    name = sql.Identifier(column.name)
    if column.kind == "Decimal":  # DECIMAL(65,30) pads every value to 30 places
        return sql.SQL("trim_scale({})").format(name)
    return name


class PostgresTarget:
    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = redact_url(url)
        try:
            self.conn = psycopg.connect(url, connect_timeout=15, application_name="launchdeck-import")
        except psycopg.OperationalError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "password authentication" in message or "does not exist" in message or "permission" in message:
                raise InputError(f"cannot connect to {self.description}: {message}") from None
            raise TransientError(f"cannot connect to {self.description}: {message}") from None
        self._open_copy = ExitStack()
        self._copy: Copy | None = None
        self._copying: Table | None = None
        set_json_dumps(_json_text, self.conn)
        set_json_loads(_raw_json, self.conn)

    def is_empty(self) -> bool:
        count = self.conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchone()
        self.conn.rollback()
        return bool(count is not None and count[0] == 0)

    def begin(self, *, replace: bool) -> None:
        self.conn.execute("SET LOCAL lock_timeout = '15s'")
        # The key and index builds stay in memory instead of spilling.
        self.conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        if replace:
            self.conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            self.conn.execute("CREATE SCHEMA public")

    def execute(self, statements: Sequence[str]) -> None:
        self.end_load()
        for statement in statements:
            self.conn.execute(statement.encode())

    def load(self, table: Table, rows: Sequence[Row]) -> None:
        query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        )
        cursor = self.conn.cursor()
        # The queued writer sends to the server from its own thread while this one converts the next rows.
        with cursor.copy(query, writer=QueuedLibpqWriter(cursor)) as copy:
            copy.set_types([copy_type(c) for c in table.columns])
            for row in rows:
                copy.write_row(row)

    @property
    def copy_encoding(self) -> str:
        """The Python codec of the connection: what ``write_copy`` data is encoded with."""
        return self.conn.info.encoding

    def write_copy(self, table: Table, data: bytes) -> None:
        """Append binary COPY tuples (``pgbinary.copy_rows``, texts in the connection's encoding)."""
        if self._copying is not table:
            self.end_load()
            # FREEZE: the table was created in this transaction, so its rows are written frozen and its
            # pages all-visible. Checking a foreign key then reads the referencing column's index, not
            # the table (a third of the time), and the app's first VACUUM has nothing to rewrite.
            query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY, FREEZE)").format(
                sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
            )
            cursor = self.conn.cursor()
            self._copy = self._open_copy.enter_context(cursor.copy(query, writer=QueuedLibpqWriter(cursor)))
            self._copying = table
            self._copy.write(SIGNATURE)
        assert self._copy is not None
        self._copy.write(data)

    def end_load(self) -> None:
        """Finish the open COPY, if any: the server has then stored every row sent."""
        if self._copy is not None:
            self._copy.write(TRAILER)
        self._copying = self._copy = None
        self._open_copy.close()

    def _abort_load(self) -> None:
        """Cancel the open COPY, if any (the server discards it), ignoring a connection already lost."""
        self._copying = self._copy = None
        stack, self._open_copy = self._open_copy, ExitStack()
        with suppress(psycopg.Error):
            stack.__exit__(InterruptedError, InterruptedError("the import was abandoned"), None)

    def read(self, table: Table) -> Iterator[Sequence[Row]]:
        # A server-side cursor in binary: rows are parsed in psycopg's C code, a batch at a time.
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns), sql.Identifier(table.name)
        )
        with self.conn.cursor(name=f"verify_{id(table)}", binary=True) as cursor:
            cursor.itersize = READ_BATCH
            cursor.execute(query)
            while batch := cursor.fetchmany(READ_BATCH):
                yield batch

    def read_back(self, table: Table, after: str | None) -> tuple[bytearray, str | None]:
        """(binary COPY tuples, last ctid) of the rows stored after ctid ``after``, in stored order.

        COPY into a table created in the same transaction appends pages in the order rows were sent, and a
        TID range scan returns them in that order. Columns come back as ``pgbinary.copy_rows`` sent them.
        """
        self.end_load()
        columns = sql.SQL(", ").join(map(_read_back_column, table.columns))
        where = sql.SQL(" WHERE ctid > {}::tid").format(sql.Literal(after)) if after else sql.SQL("")
        name = sql.Identifier(table.name)
        cursor = self.conn.cursor()
        stored = bytearray()  # one growing buffer: a list of the server's row messages costs more
        query = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT (FORMAT BINARY)").format(columns, name, where)
        with cursor.copy(query) as copy:
            for row in copy:
                stored += row
        del stored[: len(SIGNATURE)], stored[-len(TRAILER) :]
        last = self.conn.execute(sql.SQL("SELECT max(ctid)::text FROM {}{}").format(name, where)).fetchone()
        return stored, (last[0] if last is not None and last[0] is not None else after)

    def after_load(self, table: Table) -> None:
        self.end_load()
        for column in table.columns:
            if column.autoincrement:
                self.conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({}), 0) + 1, false) FROM {}"
                    ).format(sql.Identifier(column.name), sql.Identifier(table.name)),
                    (sql.Identifier(table.name).as_string(self.conn), column.name),
                )

    def foreign_key_violations(self) -> list[tuple[str, int, str]]:
        return []  # PostgreSQL checks every row when the foreign keys are added

    def record_baseline(self, migration_name: str, checksum: str, run_id: str) -> None:
        self.conn.execute(
            'CREATE TABLE IF NOT EXISTS "_prisma_migrations" ('
            ' "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,'
            ' "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT,'
            ' "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),'
            ' "applied_steps_count" INTEGER NOT NULL DEFAULT 0)'
        )
        self.conn.execute(
            'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at,'
            " applied_steps_count) VALUES (%s, %s, now(), %s, now(), 1)",
            (run_id, checksum, migration_name),
        )

    def translate_error(self, exc: Exception) -> LaunchdeckError | None:
        if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.SerializationFailure):
            return TransientError(f"{self.description} is busy (a lock is held): {exc}")
        if isinstance(exc, psycopg.OperationalError):
            return TransientError(f"lost the connection to {self.description}: {exc}")
        if isinstance(exc, psycopg.Error):
            detail = f" ({exc.diag.context.splitlines()[0]})" if exc.diag.context else ""
            return TerminalError(f"PostgreSQL refused the import: {exc.diag.message_primary or exc}{detail}")
        return None

    def commit(self) -> None:
        self.end_load()
        self.conn.commit()

    def rollback(self) -> None:
        self._abort_load()
        if not self.conn.closed:
            self.conn.rollback()

    def close(self) -> None:
        self._abort_load()
        self.conn.close()
