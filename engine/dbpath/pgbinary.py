"""Rows as binary COPY: the bytes the import sends are the bytes PostgreSQL sends back.

The import verifies a PostgreSQL load by reading every segment of rows back with binary ``COPY TO``
right after loading it and comparing the bytes with what it sent (``ServerChecks`` in the importer).
Each type's send function gives back what its receive function stored: integers, doubles, booleans and
timestamps as their bits, texts, enum labels and bytea as their bytes. Two forms are normalised here
first: a Decimal without trailing fractional zeros (it is read back through ``trim_scale``, since
DECIMAL(65,30) pads every value to 30 places), and Json as jsonb prints it (``pgtext.jsonb_text``).

Binary is also the cheaper format for the server to parse: about 40% less CPU than COPY text for the
benchmark's posts. Fixed-width columns are encoded a whole column at a time with numpy, variable-width
ones get their length prefixes from one numpy array, and a row is its pieces joined in C.

Nothing here talks to the database, so the worker processes that encode rows do not load psycopg.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import chain, repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.dbpath.pgtext import decimal_texts
from engine.dbpath.schema import Column, Table
from engine.errors import InputError

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then flags 0 and no header extension
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"  # a field of length -1
PG_EPOCH = datetime(2000, 1, 1)
PG_EPOCH_MS = 946_684_800_000  # PG_EPOCH in Unix epoch milliseconds
# A column's values: a list, or a numpy array where a whole column was converted at once (``fastpath``).
ColumnValues = Sequence[Any] | NDArray[np.int64]
FIXED_TYPES = {"Int": ">i4", "BigInt": ">i8", "Float": ">f8", "Boolean": "u1", "DateTime": ">i8"}
# Native types (``@db.X``) whose columns take the binary form of their Prisma type's default column.
SAME_BINARY_FORM = frozenset(
    {
        "Text",
        "VarChar",
        "Char",
        "Citext",
        "Integer",
        "BigInt",
        "DoublePrecision",
        "Decimal",
        "Timestamp",
        "Timestamptz",
        "JsonB",
        "Json",  # json keeps the text it is given: the jsonb text, without jsonb's version byte
        "ByteA",
        "Boolean",
    }
)
DEFAULT_COLUMNS = {
    "String": "TEXT",
    "Int": "INTEGER",
    "BigInt": "BIGINT",
    "Float": "DOUBLE PRECISION",
    "Decimal": "DECIMAL(65,30)",
    "Boolean": "BOOLEAN",
    "DateTime": "TIMESTAMP(3)",
    "Json": "JSONB",
    "Bytes": "BYTEA",
    "Enum": "the enum's type",
}
_MILLISECOND = timedelta(milliseconds=1)
_NUMERIC_NEGATIVE = 0x4000


# ------------------------------------------------------------------------------------- fixed width
def _timestamps(values: Sequence[datetime]) -> list[int]:
    """Microseconds since 2000-01-01, cut to the millisecond: Prisma's DateTime is TIMESTAMP(3)."""
    return [(moment - PG_EPOCH) // _MILLISECOND * 1000 for moment in values]


def _fixed_fields(column: Column, values: ColumnValues) -> list[bytes]:
    """Length-prefixed fields of a fixed-width type; ``values`` of a DateTime are datetimes, or already
    microseconds in a numpy array (``fastpath.pg_timestamps``)."""
    dtype = np.dtype(FIXED_TYPES[column.kind])
    nulls = [] if isinstance(values, np.ndarray) else _nulls(values)
    present = values
    if nulls:
        present = [v for v in values if v is not None]
    if column.kind == "DateTime" and not isinstance(present, np.ndarray):
        present = _timestamps(present)
    records = np.empty(len(present), dtype=[("length", ">i4"), ("value", dtype)])
    records["length"] = dtype.itemsize
    records["value"] = present
    fields: list[bytes] = records.view(np.dtype((np.void, records.dtype.itemsize))).tolist()  # type: ignore[assignment]
    return _with_nulls(fields, nulls, len(values))


def _nulls(values: Sequence[Any]) -> list[int]:
    """Indexes of the NULLs; ``in`` first, since most columns hold none and it scans in C."""
    return [i for i, v in enumerate(values) if v is None] if None in values else []


def _with_nulls(fields: list[bytes], nulls: list[int], total: int) -> list[bytes]:
    if not nulls:
        return fields
    found = iter(fields)
    null_rows = set(nulls)
    return [NULL if i in null_rows else next(found) for i in range(total)]


# ------------------------------------------------------------------------------------- variable width
def _length_prefixes(data: list[bytes], nulls: list[int]) -> list[bytes]:
    lengths = np.fromiter(map(len, data), dtype=">i4", count=len(data))
    lengths[nulls] = -1
    prefixes: list[bytes] = lengths.view("V4").tolist()
    return prefixes


def _encoder(encoding: str) -> Callable[[str], bytes]:
    if codecs.lookup(encoding).name == "utf-8":
        return str.encode
    return lambda text: text.encode(encoding)


def _is_jsonb(column: Column) -> bool:
    """jsonb's binary form is a version byte, then the text; ``@db.Json`` (json) is the text alone."""
    return column.kind == "Json" and column.native_type != "Json"


def _variable_fields(column: Column, values: Sequence[Any], encoding: str) -> list[list[bytes]]:
    """(length prefixes, data) of a text-like or bytea column: two pieces per row."""
    nulls = _nulls(values)
    if column.kind == "Bytes":
        data = [b"" if v is None else v for v in values] if nulls else list(values)
    else:
        texts = ["" if v is None else v for v in values] if nulls else values
        if _is_jsonb(column):
            texts = list(map("\x01".__add__, texts))
        data = list(map(_encoder(encoding), texts))
        for index in nulls:
            data[index] = b""
    return [_length_prefixes(data, nulls), data]


def _numeric_fields(values: Sequence[Any]) -> list[bytes]:
    """Decimals (or their exact texts) as numeric_send gives ``trim_scale`` of them, length-prefixed.

    numeric's binary form is base-10000 digits: their count, the weight of the first one (its power of
    10000), a sign, the display scale, then the digits, without leading or trailing zero digits. The
    plain decimal texts are aligned on the point in one character matrix and cut into groups of four.
    """
    nulls = _nulls(values)
    texts = decimal_texts([v for v in values if v is not None] if nulls else values)
    if not texts:
        return [NULL] * len(values)
    count = len(texts)
    codes = np.array(texts).view(np.uint32).reshape(count, -1)  # code points, 0-padded
    lengths = np.count_nonzero(codes, axis=1)
    negative = codes[:, 0] == ord("-")
    is_point = codes == ord(".")
    has_point = is_point.any(axis=1)
    point = np.where(has_point, is_point.argmax(axis=1), lengths)
    scale = np.where(has_point, lengths - point - 1, 0)  # no trailing zeros: the texts are trimmed
    integer_groups = -(-int((point - negative).max()) // 4)
    groups = max(integer_groups + -(-int(scale.max()) // 4), 1)
    # Character k of the aligned digits: integer digits end at the point, fraction digits follow it.
    k = np.arange(4 * groups)
    integer_width = 4 * integer_groups
    source = np.where(
        k < integer_width, point[:, None] - integer_width + k, point[:, None] + 1 + k - integer_width
    )
    valid = np.where(k < integer_width, source >= negative[:, None], source < lengths[:, None])
    characters = np.take_along_axis(codes, np.clip(source, 0, codes.shape[1] - 1), axis=1)
    digits = np.where(valid, characters.astype(np.int64) - ord("0"), 0)
    base = digits.reshape(count, groups, 4) @ np.array([1000, 100, 10, 1])
    nonzero = base != 0
    is_zero = ~nonzero.any(axis=1)
    first = nonzero.argmax(axis=1)
    last = groups - 1 - nonzero[:, ::-1].argmax(axis=1)
    ndigits = np.where(is_zero, 0, last - first + 1)
    records = np.zeros(
        count,
        dtype=[
            ("length", ">i4"),
            ("ndigits", ">i2"),
            ("weight", ">i2"),
            ("sign", ">i2"),
            ("scale", ">i2"),
            ("digits", ">i2", (groups,)),
        ],
    )
    records["length"] = 8 + 2 * ndigits
    records["ndigits"] = ndigits
    records["weight"] = np.where(is_zero, 0, integer_groups - 1 - first)
    records["sign"] = np.where(negative & ~is_zero, _NUMERIC_NEGATIVE, 0)
    records["scale"] = scale
    shifted = np.clip(first[:, None] + np.arange(groups), 0, groups - 1)
    records["digits"] = np.take_along_axis(base, shifted, axis=1)
    blob = records.tobytes()
    width = records.dtype.itemsize
    starts = range(0, count * width, width)
    ends = (np.arange(0, count * width, width) + 12 + 2 * ndigits).tolist()
    fields = list(map(blob.__getitem__, map(slice, starts, ends)))
    return _with_nulls(fields, nulls, len(values))


# ------------------------------------------------------------------------------------- rows
def check_native_types(tables: Sequence[Table]) -> None:
    """Refuse, before anything is written, a column whose ``@db`` type takes another binary form."""
    for table in tables:
        for column in table.columns:
            if column.native_type is not None and column.native_type not in SAME_BINARY_FORM:
                raise InputError(
                    f"{table.name}.{column.name} is declared @db.{column.native_type}, which the import "
                    f"cannot load into PostgreSQL yet; remove the attribute (the column is then "
                    f"{DEFAULT_COLUMNS[column.kind]}) or use one of: "
                    + ", ".join(f"@db.{name}" for name in sorted(SAME_BINARY_FORM))
                )


def column_fields(column: Column, values: ColumnValues, encoding: str) -> list[list[bytes]]:
    """A column's fields in binary COPY form, as one or two pieces per row."""
    if column.kind in FIXED_TYPES:
        return [_fixed_fields(column, values)]
    assert not isinstance(values, np.ndarray)  # only fixed-width columns come as arrays
    if column.kind == "Decimal":
        return [_numeric_fields(values)]
    return _variable_fields(column, values, encoding)


def copy_rows(columns: Sequence[Column], stored: Sequence[ColumnValues], encoding: str) -> bytes:
    """Columns in stored form as binary COPY tuples (without the signature and trailer)."""
    pieces = [
        p
        for column, values in zip(columns, stored, strict=True)
        for p in column_fields(column, values, encoding)
    ]
    field_count = struct.pack(">h", len(columns))
    return b"".join(chain.from_iterable(zip(repeat(field_count), *pieces)))


def split_rows(data: bytes | bytearray) -> list[list[bytes | None]]:
    """Binary COPY tuples back into their fields (None for NULL): for reports, not for the load."""
    rows: list[list[bytes | None]] = []
    offset = 0
    while offset < len(data):
        (count,) = struct.unpack_from(">h", data, offset)
        offset += 2
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, offset)
            offset += 4
            fields.append(None if length < 0 else bytes(data[offset : offset + length]))
            offset += max(length, 0)
        rows.append(fields)
    return rows


def _numeric_text(field: bytes) -> str:
    ndigits, weight, sign = struct.unpack_from(">hhH", field)
    digits = "".join(f"{d:04d}" for d in struct.unpack_from(f">{ndigits}h", field, 8)) or "0"
    number = Decimal((int(sign == _NUMERIC_NEGATIVE), tuple(map(int, digits)), 4 * (weight - ndigits + 1)))
    return format(number, "f")


def field_value(column: Column, field: bytes | None, encoding: str) -> Any:
    """A field as a report shows it."""
    if field is None:
        return None
    kind = column.kind
    if kind in ("Int", "BigInt"):
        return int.from_bytes(field, "big", signed=True)
    if kind == "Float":
        return struct.unpack(">d", field)[0]
    if kind == "Boolean":
        return field != b"\x00"
    if kind == "DateTime":
        return (PG_EPOCH + timedelta(microseconds=int.from_bytes(field, "big", signed=True))).isoformat(" ")
    if kind == "Decimal":
        return _numeric_text(field)
    if kind == "Bytes":
        return field
    return (field[1:] if _is_jsonb(column) else field).decode(encoding, errors="replace")
