"""A PostgreSQL load is verified by reading it back: the binary COPY the import sends must be exactly what
the server sends back for the stored values, the stored values must be the ones meant, and a load that
stores something else than was meant fails verification, names the row and column, and leaves the
database empty."""

from __future__ import annotations

import json
import random
import sqlite3
import struct
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.dbpath.convert import EPOCH
from engine.dbpath.fastpath import pg_decimal_texts, pg_timestamps
from engine.dbpath.importer import import_preview
from engine.dbpath.pgbinary import DEFAULT_COLUMNS, NULL, copy_rows, split_rows
from engine.dbpath.pgtext import jsonb_text
from engine.dbpath.schema import Column, Table
from engine.dbpath.targets.postgres import PostgresTarget
from tests.dbpath.conftest import FIDELITY_SCHEMA
from tests.dbpath.fidelity import build_source

JSON_TEXTS = [
    '{"b": 1, "aa": [1.50, 1e2, -0.0, 1E-3, 2.5e-1, {"z": null, "é": "\\u00e9\\n\\t\\u0001\\u007f"}], "a": true}',
    '{"ä": 1, "bb": 2, "a": 3, "ab": {"y": [], "x": {}}}',
    '"just a string with \\"quotes\\" and \\\\ and 🚀"',
    "null",
    "[]",
    "{}",
    '{"a": 1, "a": 2}',
    "1.0",
    "-0",
    "12345678901234567890123",
    '  {"emoji": "\\ud83d\\ude80", "n": -12.500}  ',
]


EPOCH_MS = (1_767_225_600_123, 1_767_225_600_120, 1_767_225_600_100, 0, -1, -62_135_596_800_000)


CASES: list[tuple[Column, list[Any]]] = [
    (
        Column("s", "s", "String", False),
        [
            "",
            "tab\t nl\n \\N 'q' \"",
            "emoji 🎉 and a family 👨\u200d👩\u200d👧",
            "\x01\x1f",
            "cr\r bs\b ff\f vt\v \\\\ \u00a0\u2028\x7f",
            None,
        ],
    ),
    (Column("i", "i", "Int", False), [0, -1, 2**31 - 1, -(2**31), None]),
    (Column("b", "b", "BigInt", True), [2**63 - 1, -(2**63), 2**53 + 1, 0]),
    (Column("f", "f", "Float", False), [0.1, -0.0, 1e300, 5e-324, 123456789012345.0, 1e16, None]),
    (
        Column("d", "d", "Decimal", False),
        [
            Decimal("0.1"),
            Decimal("100"),
            Decimal("1E+2"),
            Decimal("-0.000"),
            Decimal("1.500"),
            Decimal("0E-30"),
            Decimal("12345678901234567890.123456789012345678901234567890"),
            Decimal("-12.5"),
            None,
        ],
    ),
    (
        Column("d", "d", "Decimal", False),
        [
            "0.1",
            "100.0",
            "-0.0",
            "5",
            "1234.5678",
            "1000000000000000.5",
            "0.0001",
            "-9223372036854775808",
            None,
        ],
    ),
    (Column("o", "o", "Boolean", False), [True, False, None]),
    (
        Column("t", "t", "DateTime", False),
        [
            datetime(2026, 1, 1, 0, 0, 0, 123000),
            datetime(2026, 1, 1, 0, 0, 0, 120000),
            datetime(2026, 1, 1, 0, 0, 0, 100000),
            datetime(1, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59),
            None,
        ],
    ),
    (Column("t", "t", "DateTime", True), list(EPOCH_MS)),  # epoch milliseconds: a whole column at once
    (Column("j", "j", "Json", False), [*JSON_TEXTS, None]),
    (Column("y", "y", "Bytes", False), [b"\x00\x01\xfe\xff", b"", None]),
    (Column("e", "e", "Mood", False, enum_values=("HAPPY", "sad")), ["HAPPY", "sad", None]),
]


def load_and_read_back(url: str, column: Column, values: Any) -> tuple[bytes, bytes | bytearray, list[Any]]:
    """Values loaded as the import loads them (binary COPY): what was sent, what reading it back gave, and
    the stored values as a query returns them."""
    table = Table("probe", None, (column,), ())
    target = PostgresTarget(url)
    try:
        target.begin(replace=False)
        if column.is_enum:
            target.execute(["CREATE TYPE \"Mood\" AS ENUM ('HAPPY', 'sad')"])
        sql_type = '"Mood"' if column.is_enum else DEFAULT_COLUMNS[column.type]
        target.execute([f"CREATE TABLE probe ({column.name} {sql_type})"])
        sent = copy_rows((column,), [values], "utf-8")
        target.write_copy(table, sent)
        stored, _ = target.read_back(table, None)
        queried = [row[0] for row in target.conn.execute(f"SELECT {column.name} FROM probe").fetchall()]
        return sent, stored, queried
    finally:
        target.close()


def _as_meant(column: Column, value: Any) -> Any:
    """What the stored value must equal, computed without the encoder."""
    if value is None:
        return None
    if column.type == "Decimal":
        return Decimal(str(value))
    if column.type == "Float":
        return struct.pack(">d", value)
    if column.type == "DateTime" and isinstance(value, int):
        return EPOCH + timedelta(milliseconds=value)
    if column.type == "DateTime":
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if column.type == "Json":
        return json.loads(value, parse_float=Decimal, parse_int=Decimal)
    return value


@pytest.mark.parametrize(("column", "values"), CASES, ids=[f"{c.type}-{i}" for i, (c, _) in enumerate(CASES)])
def test_server_sends_back_what_was_sent_and_stores_what_was_meant(
    pg_database: str, column: Column, values: list[Any]
) -> None:
    sent_values: Any = values
    if column.type == "Json":  # the converter sends Json as jsonb prints it
        sent_values = [None if v is None else jsonb_text(v) for v in values]
    if values == list(EPOCH_MS):
        sent_values = pg_timestamps(values)
        assert sent_values is not None, "epoch milliseconds in range take the whole-column path"
    sent, stored, queried = load_and_read_back(pg_database, column, sent_values)
    assert split_rows(stored) == split_rows(sent)
    assert [_as_meant(column, v) for v in queried] == [_as_meant(column, v) for v in values]


def test_decimals_arrive_exactly(pg_database: str) -> None:
    """numeric's base-10000 digits, weight and scale, encoded a whole column at once: random digits at
    every position DECIMAL(65,30) allows, either sign, as Decimals and as the texts of doubles."""
    rng = random.Random(11)
    values: list[Any] = []
    for _ in range(3_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
        point = rng.randint(max(0, len(digits) - 30), min(len(digits), 35))
        text = f"{rng.choice(['', '-'])}{digits[:point] or '0'}.{digits[point:] or '0'}"
        values.append(Decimal(text))
    values += [Decimal(10) ** e for e in range(-30, 35)] + [-(Decimal(10) ** e) + 1 for e in range(0, 35)]
    values += [repr(rng.uniform(-1e6, 1e6)) for _ in range(1_000)] + [None]
    rng.shuffle(values)
    sent, stored, queried = load_and_read_back(pg_database, Column("d", "d", "Decimal", False), values)
    assert stored == sent
    assert queried == [None if v is None else Decimal(v) for v in values]


def test_doubles_arrive_bit_for_bit(pg_database: str) -> None:
    """The shortest text of a double reads back as the same bits: random bit patterns, powers of ten."""
    rng = random.Random(7)
    patterns = (struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000))
    values: list[Any] = [v for v in patterns if v == v]  # NaN payloads: SQLite stores any NaN as NULL
    values += [rng.uniform(-1e17, 1e17) for _ in range(5_000)] + [rng.uniform(-1, 1) for _ in range(5_000)]
    values += [10.0**e for e in range(-20, 25)] + [-(10.0**e) - 0.5 for e in range(10, 18)]
    values += [float("inf"), float("-inf"), float("nan"), -0.0, 5e-324, 1.7976931348623157e308]
    sent, stored, queried = load_and_read_back(pg_database, Column("f", "f", "Float", True), values)
    assert stored == sent
    assert [struct.pack(">d", v) for v in queried] == [struct.pack(">d", v) for v in values]


def test_jsonb_text_refuses_what_is_not_json() -> None:
    for text in ["NaN", '{"a": Infinity}', "{", "[1,]"]:
        with pytest.raises(ValueError):
            jsonb_text(text)


Fields = list[list[bytes | None]]


def _tuples(rows: Fields) -> bytes:
    return b"".join(
        struct.pack(">h", len(fields))
        + b"".join(NULL if f is None else struct.pack(">i", len(f)) + f for f in fields)
        for fields in rows
    )


def _swap_notes(rows: Fields) -> Fields:
    rows[0][9], rows[1][9] = rows[1][9], rows[0][9]
    return rows


def _longer_json_number(rows: Fields) -> Fields:
    profile = rows[0][7]
    assert profile is not None and b"2.5" in profile
    rows[0][7] = profile.replace(b"2.5", b"2.50")
    return rows


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (
            lambda rows: [[rows[0][0], b"eve@example.com", *rows[0][2:]], *rows[1:]],
            "accounts.email: row id=1 was sent as 'ada@example.com' but stored as 'eve@example.com'",
        ),
        (lambda rows: rows[:-1], "accounts: 4 rows in the source, 3 in the target"),
        (_swap_notes, "accounts.note: row id=1 was sent as"),
        (_longer_json_number, "accounts.profile: row id=1 was sent as"),
    ],
    ids=["changed-value", "lost-row", "swapped-values", "changed-json-number"],
)
def test_postgresql_verification_catches_what_the_load_got_wrong(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch, corrupt: Any, problem: str
) -> None:
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")
    original = PostgresTarget.write_copy

    def faulty_write(self: PostgresTarget, table: Any, data: bytes) -> None:
        """The server is sent something else than the import meant (and compares against)."""
        if table.name == "accounts":
            data = _tuples(corrupt(split_rows(data)))
        original(self, table, data)

    monkeypatch.setattr(PostgresTarget, "write_copy", faulty_write)
    report = import_preview(schema, source, pg_database)

    assert not report.ok and not report.verified
    assert report.error is not None and problem in report.error
    with psycopg.connect(pg_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)  # rolled back: nothing was created
    assert not (tmp_path / "prisma" / "migrations").exists()


def test_decimal_texts_leave_what_needs_a_check_to_the_converter() -> None:
    assert pg_decimal_texts([1e-05, 2.0], required=True) is None  # an exponent
    assert pg_decimal_texts([float("inf")], required=True) is None
    assert pg_decimal_texts([1.5, None], required=True) is None  # a NULL in a required field is reported
    assert pg_decimal_texts([1.5, "2.5"], required=True) is None  # text goes through Decimal
    assert pg_decimal_texts([1.5, None, 7], required=False) == ["1.5", None, "7"]
    assert pg_decimal_texts([0.1, 100.0, -0.0, 1e15 + 0.5, 0.0001, -(2**63)], required=True) == [
        "0.1",
        "100.0",
        "-0.0",
        "1000000000000000.5",
        "0.0001",
        "-9223372036854775808",
    ]


def test_unpaired_surrogate_in_json_is_reported_not_crashed(tmp_path: Path, pg_database: str) -> None:
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")
    with sqlite3.connect(source) as conn:
        conn.execute("""UPDATE accounts SET profile = '{"a": "\\ud800"}' WHERE id = 3""")
    conn.close()

    report = import_preview(schema, source, pg_database)

    assert not report.ok
    assert [(r.table, r.key, r.column) for r in report.rejected] == [("accounts", "id=3", "profile")]
    assert "surrogate" in report.rejected[0].reason


def test_failure_while_a_copy_is_open_leaves_the_database_empty(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.dbpath.importer import ServerChecks

    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")

    def broken_add(self: ServerChecks, data: bytes, rows: int) -> None:
        raise RuntimeError("the checksum side broke after the rows were sent")

    monkeypatch.setattr(ServerChecks, "add", broken_add)  # write_copy has opened the COPY by then
    with pytest.raises(RuntimeError, match="checksum side broke"):
        import_preview(schema, source, pg_database)

    with psycopg.connect(pg_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
    assert not (tmp_path / "prisma" / "migrations").exists()


def test_a_batch_of_only_nulls_is_sent_as_nulls() -> None:
    for kind in ("DateTime", "Decimal", "Float", "Json", "Bytes", "Boolean", "String", "Int"):
        column = Column("c", "c", kind, False)
        assert split_rows(copy_rows((column,), [[None, None]], "utf-8")) == [[None], [None]]
