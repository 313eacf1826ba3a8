"""Ordered per-column digests for PostgreSQL, computed by the server itself: no table is read back.

While rows stream, each column's converted values are rendered as the text PostgreSQL gives for the stored
value, framed (``v<text>\\0`` for a value, ``\\0`` for NULL: text never holds NUL, so the framing is
unambiguous) and fed to one SHA-256 per column (the CPU's SHA instructions make it faster than MD5).
After every segment of rows the server computes the same digest over the rows stored since the last
segment, in physical order (``ORDER BY ctid``: COPY into a table created in the same transaction appends
pages, so rows are stored in the order they were sent). A changed, lost, invented or moved value changes
its column's digest.

What the server renders (``sql_text``) and what Python renders (``render_column``) must agree exactly:
numbers as plain text, booleans ``true``/``false``, DateTime as ``YYYY-MM-DD HH:MM:SS.ffffff``, Decimal
without trailing zeros (``trim_scale``), Float as the hex of its IEEE bytes, Bytes as hex, Json as jsonb
prints it (``jsonb_text``). For most kinds that is the very text the COPY sent (``pg_texts``), so each
value is rendered once for loading and checking.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any, cast

from psycopg import sql

from engine.dbpath.schema import Column
from engine.dbpath.targets.postgres import kind_of, pg_texts

SEGMENT_ROWS = 50_000  # rows per server-side check: bounds the server's memory for the aggregates
_pack_double = struct.Struct(">d").pack


# ------------------------------------------------------------------------------------- Json as jsonb
def _jsonb_key(pair: tuple[str, Any]) -> tuple[int, bytes]:
    encoded = pair[0].encode()
    return len(encoded), encoded


def _jsonb_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # jsonb orders keys by byte length, then bytes; of duplicate keys the last one wins.
    if len(pairs) > 1:
        pairs.sort(key=_jsonb_key)
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Fractions stay Decimal: jsonb keeps a number's digits (1.50 stays 1.50), a double would not.
_JSONB_DECODER = json.JSONDecoder(
    object_pairs_hook=_jsonb_object, parse_float=Decimal, parse_constant=_refuse_constant
)
_JSONB_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), check_circular=False)


def _numeric_text(number: Decimal) -> str:
    """PostgreSQL's numeric output for a JSON number: plain digits, the literal's scale, no negative zero."""
    return format(abs(number) if number.is_zero() else number, "f")


def _render_slow(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_JSONB_ENCODER.encode(k)}: {_render_slow(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(map(_render_slow, value)) + "]"
    if isinstance(value, Decimal):
        return _numeric_text(value)
    return _JSONB_ENCODER.encode(value)


def _no_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


# The C scanner and encoder called directly: ``loads``/``dumps`` build and wrap them on every call.
_scan_once = _JSONB_DECODER.scan_once  # type: ignore[attr-defined]
_encode_chunks = c_make_encoder(  # markers, default, encoder, indent, separators, sort, skip, allow_nan
    None, _no_default, c_encode_basestring, None, ": ", ", ", False, False, False
)


def jsonb_text(text: str) -> str:
    """``text`` as PostgreSQL prints it back from a jsonb column. Raises ValueError for invalid JSON."""
    try:
        parsed, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # leading or trailing whitespace, or not JSON: the full decoder says which
        parsed = _JSONB_DECODER.decode(text)
    try:
        rendered = "".join(_encode_chunks(parsed, 0))  # fails only on a fraction (a Decimal)
    except TypeError:
        rendered = _render_slow(parsed)
    if "\\u" in text:  # an escaped lone surrogate decodes but cannot be stored (nor encoded)
        rendered.encode()
    return rendered


# ------------------------------------------------------------------------------------- other types
def decimal_text(number: Decimal | str) -> str:
    """``trim_scale(n)::text``: plain digits, no trailing fractional zeros, zero as ``0``.

    ``number`` is a Decimal or the exact text of one (what ``pg_decimal_texts`` gives).
    """
    text = str(number)
    if "E" in text or "e" in text:
        text = format(Decimal(text).normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _decimals(values: Sequence[Any]) -> list[str | None]:
    texts: list[str | None] = (
        list(map(str, values)) if None not in values else [None if v is None else str(v) for v in values]
    )
    joined = "".join(t for t in texts if t is not None)
    if "E" in joined or "e" in joined:
        return [None if t is None else decimal_text(t) for t in texts]
    trimmed = [t.rstrip("0").rstrip(".") if t is not None and "." in t else t for t in texts]
    return ["0" if t == "-0" else t for t in trimmed] if "-0" in trimmed else trimmed


def _float_hex(value: float) -> str:
    return _pack_double(value).hex()


def _from_values(render: Callable[[Any], str]) -> DigestRender:
    def apply(texts: Sequence[str | None], values: Sequence[Any]) -> list[str | None]:
        if None not in values:
            return list(map(render, values))
        return [None if v is None else render(v) for v in values]

    return apply


def _texts(texts: Sequence[str | None], values: Sequence[Any]) -> Sequence[str | None]:
    return texts  # the COPY text itself is what the server prints back


def _values(texts: Sequence[str | None], values: Sequence[Any]) -> Sequence[str | None]:
    return values  # the converter already gives jsonb's text (jsonb_text)


def _decimal_texts(texts: Sequence[str | None], values: Sequence[Any]) -> list[str | None]:
    return _decimals(texts)


DigestRender = Callable[[Sequence[str | None], Sequence[Any]], Sequence[str | None]]
RENDERERS: dict[str, DigestRender] = {
    "String": _texts,
    "Enum": _texts,
    "Int": _texts,
    "BigInt": _texts,
    "Boolean": _texts,
    "DateTime": _texts,
    "Json": _values,
    "Float": _from_values(_float_hex),
    "Decimal": _decimal_texts,
    "Bytes": _from_values(bytes.hex),
}


def digest_texts(column: Column, texts: Sequence[str | None], values: Sequence[Any]) -> Sequence[str | None]:
    """What ``sql_text`` gives for stored values, from their COPY texts (``pg_texts``) and converted values.

    Most kinds are printed back exactly as they were sent, so the text is rendered once for both.
    """
    return RENDERERS[kind_of(column)](texts, values)


def render_column(column: Column, values: Sequence[Any]) -> list[str | None]:
    """Converted values as the text ``sql_text`` gives for them once stored."""
    return list(digest_texts(column, pg_texts(column, values), values))


def sql_text(column: Column) -> sql.Composable:
    """The server-side rendering of a stored column that ``render_column`` reproduces."""
    name = sql.Identifier(column.name)
    kind = kind_of(column)
    if kind == "Float":
        return sql.SQL("encode(float8send({}), 'hex')").format(name)
    if kind == "Decimal":
        return sql.SQL("trim_scale({})::text").format(name)
    if kind == "DateTime":
        return sql.SQL("to_char({}, 'YYYY-MM-DD HH24:MI:SS.US')").format(name)
    if kind == "Bytes":
        return sql.SQL("encode({}, 'hex')").format(name)
    return sql.SQL("{}::text").format(name)


def digest_query(columns: Sequence[Column], table: str, *, after: str | None) -> sql.Composed:
    """Row count, last ctid and one SHA-256 per column over the rows stored after ctid ``after``.

    One sort by ctid under the aggregate feeds every ``string_agg`` in stored order (an ``ORDER BY``
    inside each aggregate would sort once per column); the session runs without parallel workers.
    """
    framed = [
        sql.SQL(
            "encode(sha256(string_agg(coalesce('\\x76'::bytea || convert_to({}, 'UTF8') || '\\x00'::bytea,"
            " '\\x00'::bytea), ''::bytea)), 'hex')"
        ).format(sql_text(c))
        for c in columns
    ]
    where = sql.SQL(" WHERE ctid > {}::tid").format(sql.Literal(after)) if after else sql.SQL("")
    return sql.SQL(
        "SELECT count(*), max(stored.ctid)::text, {} FROM (SELECT ctid, * FROM {}{} ORDER BY ctid) AS stored"
    ).format(sql.SQL(", ").join(framed), sql.Identifier(table), where)


class ColumnDigests:
    """The Python side: one running SHA-256 per column over the framed rendering of each value."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.rows = 0
        self.hashes = [hashlib.sha256() for _ in self.columns]

    def add(self, rendered: Sequence[Sequence[str | None]]) -> None:
        """Columns as ``digest_texts`` gives them."""
        if not rendered or not rendered[0]:
            return
        for texts, digest in zip(rendered, self.hashes, strict=True):
            if None in texts:
                framed = "".join(["\x00" if t is None else f"v{t}\x00" for t in texts])
            else:
                framed = "v" + "\x00v".join(cast("list[str]", texts)) + "\x00"
            digest.update(framed.encode())
        self.rows += len(rendered[0])

    def take(self) -> tuple[int, list[str | None]]:
        """(rows, per-column hex digests or None for no rows) since the last take; starts afresh."""
        found = (self.rows, [h.hexdigest() if self.rows else None for h in self.hashes])
        self.rows = 0
        self.hashes = [hashlib.sha256() for _ in self.columns]
        return found
