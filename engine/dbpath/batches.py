"""A table's rows, a batch at a time, in the form the target stores: what the importer and its worker
processes (``parallel``) share.

Each column goes through its converter (``convert``), over the whole column at once where the values
allow (``fastpath``); a value that cannot be converted becomes a ``Rejection`` naming its table, row key
and column. Nothing here talks to a database, so worker processes load only this, not psycopg.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from pydantic import BaseModel

from engine.dbpath.convert import Converter, Unconvertible, column_pipeline
from engine.dbpath.fastpath import fast_path, json_checksum_values, pg_decimal_texts, pg_timestamps
from engine.dbpath.pgbinary import ColumnValues
from engine.dbpath.pgtext import jsonb_text
from engine.dbpath.schema import Column, Table

BATCH_ROWS = 5_000
MAX_REPORTED_REJECTIONS = 1_000


class Rejection(BaseModel):
    table: str
    key: str
    column: str
    value: Any
    reason: str


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Rows and converted values hold no reference cycles, yet the cyclic collector scans them again and
    again while they are built (12% of the conversion time): it is off while an import runs."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def display_value(value: Any) -> Any:
    """A value as a report shows it: bytes in hex, long texts cut."""
    if isinstance(value, bytes):
        return f"x'{value.hex()[:200]}'"
    if isinstance(value, str) and len(value) > 500:
        return value[:500] + "..."
    return value


def _whole_column(column: Column) -> Callable[[Sequence[Any]], ColumnValues | None] | None:
    if column.type == "Decimal":
        return partial(pg_decimal_texts, required=column.required)
    if column.type == "DateTime":
        return pg_timestamps
    return None


class TableConverter:
    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self.steps = [column_pipeline(c, dialect) for c in table.columns]
        self.fast = [fast_path(c) for c in table.columns]
        # PostgreSQL stores Json as jsonb and prints it back its own way: that text is what is sent.
        self.render_json = jsonb_text if dialect == "postgresql" else None
        self.key_index = [i for i, c in enumerate(table.columns) if c.name in table.key_columns]
        # Columns converted for PostgreSQL a whole column at once: a Decimal stored as REAL as the exact
        # text of the double, a DateTime stored as epoch milliseconds as PostgreSQL's timestamps.
        self.whole_column = [
            _whole_column(c) if dialect == "postgresql" and not c.is_enum else None for c in table.columns
        ]

    def key_of(self, row: Sequence[Any]) -> str:
        return ", ".join(f"{self.table.columns[i].name}={row[i]!r}" for i in self.key_index)

    def convert(
        self, rows: list[tuple[Any, ...]], rejected: list[Rejection]
    ) -> tuple[list[ColumnValues], list[ColumnValues], set[int]]:
        """(columns in stored form, columns in checksum form, indexes of rejected rows)."""
        bad_rows: set[int] = set()
        check_columns: list[ColumnValues] = []
        stored_columns: list[ColumnValues] = []
        for index, values in enumerate(zip(*rows, strict=True)):
            convert, store = self.steps[index]
            is_json = self.table.columns[index].kind == "Json"
            check: list[Any] | None = None
            whole = self.whole_column[index]
            if whole is not None:
                converted = whole(values)
                if converted is not None:
                    check_columns.append(converted)
                    stored_columns.append(converted)
                    continue
            converted = self.fast[index](values)
            if converted is not None and is_json:
                check = json_checksum_values(converted, render=self.render_json)
                converted = converted if check is not None else None  # invalid JSON: reported below
            try:
                if converted is None:
                    converted = list(map(convert, values))
                stored = converted if store is None else [None if v is None else store(v) for v in converted]
            except Unconvertible:
                check = None
                converted, stored = self._slow(index, values, convert, store, rows, rejected, bad_rows)
            if is_json and check is None and self.render_json is not None:
                check = [None if v is None else self.render_json(v) for v in converted]
            check_columns.append(converted if check is None else check)
            stored_columns.append(check if is_json and check is not None and self.render_json else stored)
        return stored_columns, check_columns, bad_rows

    def _slow(
        self,
        index: int,
        values: Sequence[Any],
        convert: Converter,
        store: Converter | None,
        rows: list[tuple[Any, ...]],
        rejected: list[Rejection],
        bad_rows: set[int],
    ) -> tuple[list[Any], list[Any]]:
        converted: list[Any] = []
        stored: list[Any] = []
        column = self.table.columns[index]
        for row_number, value in enumerate(values):
            try:
                good = convert(value)
                kept = store(good) if store is not None and good is not None else good
            except Unconvertible as exc:
                good = kept = None
                bad_rows.add(row_number)
                if len(rejected) < MAX_REPORTED_REJECTIONS:
                    rejected.append(
                        Rejection(
                            table=self.table.name,
                            key=self.key_of(rows[row_number]),
                            column=column.name,
                            value=display_value(value),
                            reason=str(exc),
                        )
                    )
            converted.append(good)
            stored.append(kept)
        return converted, stored
