"""PostgreSQL computes the import's checksums itself: its rendering of stored values must equal ours, and a
load that stores something else than was sent fails verification and leaves the database empty."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from engine.dbpath.digest import jsonb_text, render_column, sql_text
from engine.dbpath.fastpath import pg_decimal_texts
from engine.dbpath.importer import import_preview
from engine.dbpath.schema import Column
from engine.dbpath.targets.postgres import copy_text
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
CASES: list[tuple[Column, list[Any]]] = [
    (Column("s", "s", "String", False), ["", "tab\t nl\n \\N 'q' \"", "emoji 🎉", "\x01\x1f", None]),
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
        [datetime(2026, 1, 1, 0, 0, 0, 123000), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59), None],
    ),
    (Column("j", "j", "Json", False), [*JSON_TEXTS, None]),
    (Column("y", "y", "Bytes", False), [b"\x00\x01\xfe\xff", b"", None]),
    (Column("e", "e", "Mood", False, enum_values=("HAPPY", "sad")), ["HAPPY", "sad", None]),
]
SQL_TYPES = {
    "String": "text",
    "Int": "integer",
    "BigInt": "bigint",
    "Float": "double precision",
    "Decimal": "decimal(65,30)",
    "Boolean": "boolean",
    "DateTime": "timestamp(3)",
    "Json": "jsonb",
    "Bytes": "bytea",
}


@pytest.mark.parametrize(("column", "values"), CASES, ids=[f"{c.type}-{i}" for i, (c, _) in enumerate(CASES)])
def test_server_renders_stored_values_as_we_do(pg_database: str, column: Column, values: list[Any]) -> None:
    """Values go in as the import loads them (COPY text fields) and come out as the server renders them."""
    sent = [None if v is None else jsonb_text(v) for v in values] if column.type == "Json" else values
    with psycopg.connect(pg_database) as conn:
        if column.is_enum:
            conn.execute("CREATE TYPE \"Mood\" AS ENUM ('HAPPY', 'sad')")
        sql_type = '"Mood"' if column.is_enum else SQL_TYPES[column.type]
        conn.execute(f"CREATE TABLE probe (n serial, {column.name} {sql_type})".encode())
        fields = copy_text(column, values)
        with conn.cursor().copy(
            sql.SQL("COPY probe ({}) FROM STDIN").format(sql.Identifier(column.name))
        ) as copy:
            copy.write("".join(f"{field}\n" for field in fields).encode())
        stored = [
            r[0]
            for r in conn.execute(
                sql.SQL("SELECT {} FROM probe ORDER BY n").format(sql_text(column))
            ).fetchall()
        ]
    assert render_column(column, sent) == stored


def test_jsonb_text_refuses_what_is_not_json() -> None:
    for text in ["NaN", '{"a": Infinity}', "{", "[1,]"]:
        with pytest.raises(ValueError):
            jsonb_text(text)


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (
            lambda rows: [(rows[0][0], "eve@example.com", *rows[0][2:]), *rows[1:]],
            "accounts.email: checksums differ",
        ),
        (lambda rows: rows[:-1], "accounts: 4 rows in the source, 3 in the target"),
        (
            lambda rows: [
                (*rows[0][:9], rows[1][9], rows[0][10]),
                (*rows[1][:9], rows[0][9], rows[1][10]),
                *rows[2:],
            ],
            "accounts.note: checksums differ",
        ),
        (
            lambda rows: [(*rows[0][:7], rows[0][7].replace("2.5", "2.50"), *rows[0][8:]), *rows[1:]],
            "accounts.profile: checksums differ",
        ),
    ],
    ids=["changed-value", "lost-row", "swapped-values", "changed-json-number"],
)
def test_postgresql_verification_catches_what_the_load_got_wrong(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch, corrupt: Any, problem: str
) -> None:
    from engine.dbpath.targets.postgres import PostgresTarget

    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")
    original = PostgresTarget.load_columns

    def faulty_load(self: PostgresTarget, table: Any, columns: Any) -> None:
        if table.name == "accounts":
            columns = [list(c) for c in zip(*corrupt(list(zip(*columns, strict=True))), strict=True)]
        original(self, table, columns)

    monkeypatch.setattr(PostgresTarget, "load_columns", faulty_load)
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

    def broken_add(self: ServerChecks, texts: Any, converted: Any) -> None:
        raise RuntimeError("the checksum side broke after the rows were sent")

    monkeypatch.setattr(ServerChecks, "add", broken_add)  # load_columns has opened the COPY by then
    with pytest.raises(RuntimeError, match="checksum side broke"):
        import_preview(schema, source, pg_database)

    with psycopg.connect(pg_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
    assert not (tmp_path / "prisma" / "migrations").exists()
