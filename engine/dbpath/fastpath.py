"""Whole-column conversion for the common case, in C-level ``map``/``set``/``min`` calls.

Most preview columns hold one storage form throughout (every DateTime an integer, every Boolean 0/1);
for those a batch is converted without a Python call per value. Anything else returns ``None`` and the
per-value converters in ``convert`` take over, with their exact rejection reasons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import partial
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np

from engine.dbpath.convert import EPOCH, INT32, STRICT_JSON
from engine.dbpath.pgbinary import PG_EPOCH_MS
from engine.dbpath.schema import Column

FastPath = Callable[[Sequence[Any]], list[Any] | None]
NONE_TYPE = type(None)
BOOLEANS = {0: False, 1: True, None: None}
_not_none = partial(is_not, None)


def _kinds(values: Sequence[Any], column: Column) -> set[type] | None:
    """The value types present, or None when a required column holds a NULL (let the slow path report it)."""
    kinds = set(map(type, values))
    if column.required and NONE_TYPE in kinds:
        return None
    return kinds - {NONE_TYPE}


def fast_path(column: Column) -> FastPath:
    def convert(values: Sequence[Any]) -> list[Any] | None:
        kinds = set(map(type, values))
        has_null = NONE_TYPE in kinds
        if has_null and column.required:
            return None  # the slow path reports the NULL
        kinds.discard(NONE_TYPE)
        if not kinds:
            return list(values)  # all NULL in an optional column
        present = list(filter(_not_none, values)) if has_null else values
        return _convert(column, values, present, kinds, has_null)

    return convert


def _convert(
    column: Column, values: Sequence[Any], present: Sequence[Any], kinds: set[type], has_null: bool
) -> list[Any] | None:
    kind = column.kind
    if kind == "String" and kinds == {str}:
        return None if "\x00" in "\x01".join(present) else list(values)
    if kind == "Json" and kinds == {str}:
        return list(values)  # validated with its checksum form (json_checksum_values)
    if kind == "Enum" and kinds == {str}:
        return list(values) if set(present) <= set(column.enum_values or ()) else None
    if kind == "BigInt" and kinds == {int}:
        return list(values)
    if kind == "Int" and kinds == {int}:
        return list(values) if INT32[0] <= min(present) and max(present) <= INT32[1] else None
    if kind == "Float" and kinds == {float}:
        return list(values)
    if kind == "Boolean" and kinds == {int} and set(present) <= {0, 1}:
        return list(map(BOOLEANS.__getitem__, values))
    if kind == "DateTime" and kinds == {int} and not has_null:
        try:  # timedelta(days, seconds, microseconds, milliseconds)
            return list(map(EPOCH.__add__, map(timedelta, repeat(0), repeat(0), repeat(0), values)))
        except OverflowError:
            return None
    if kind == "Decimal" and kinds == {float} and not has_null and all(map(math.isfinite, values)):
        return list(map(Decimal, map(repr, values)))  # the shortest text of each double, as Prisma prints it
    return None


def json_checksum_values(values: Sequence[Any], *, render: Callable[[str], str] | None) -> list[Any] | None:
    """Validate JSON texts; with ``render`` give each one's comparable form, else the texts themselves.

    None when a value is not valid JSON (or holds ``\\u0000``): the per-value converter reports it.
    """
    if "\\u0000" in "".join(v for v in values if isinstance(v, str)):
        return None
    try:
        if render is not None:
            return [None if v is None else render(v) for v in values]
        for _ in map(STRICT_JSON.decode, filter(_not_none, values)):
            pass
    except (ValueError, TypeError):
        return None
    return list(values)


def pg_decimal_texts(values: Sequence[Any], *, required: bool) -> list[Any] | None:
    """A Decimal column stored as REAL or INTEGER, as exact texts for PostgreSQL's numeric; else None.

    ``repr`` of a double is the shortest text that reads back as it (what Prisma prints), so the text is
    the converted value itself. Without an exponent it has at most 17 digits, 16 before the point and
    21 after: always within DECIMAL(65,30), so no per-value range check is needed.
    """
    kinds = set(map(type, values))
    if NONE_TYPE in kinds:
        if required:
            return None  # the slow path reports the NULL
        kinds.discard(NONE_TYPE)
        texts = [None if v is None else repr(v) for v in values]
    else:
        texts = list(map(repr, values))
    if not kinds <= {float, int}:
        return None
    joined = "".join(t for t in texts if t is not None)
    if "e" in joined or "n" in joined:  # an exponent, nan or inf
        return None
    return texts


# Epoch milliseconds of 0001-01-01 and of the last millisecond of 9999: Python's datetime range, which the
# per-value converter (timedelta from the epoch) accepts.
EPOCH_MS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)


def pg_timestamps(values: Sequence[Any]) -> np.ndarray | None:
    """A DateTime column stored as epoch milliseconds, as PostgreSQL's timestamps (microseconds since
    2000-01-01) in one numpy array; else None. Anything else, NULLs included, goes through the
    per-value converter."""
    if set(map(type, values)) != {int} or not values:
        return None
    if min(values) < EPOCH_MS_RANGE[0] or max(values) > EPOCH_MS_RANGE[1]:
        return None
    return (np.array(values, dtype=np.int64) - PG_EPOCH_MS) * 1000
