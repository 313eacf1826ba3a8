"""Values as PostgreSQL prints them back: the COPY text the import sends is the text the server returns.

The import verifies a PostgreSQL load by reading every segment of rows back as COPY text right after
loading it and comparing the bytes with what it sent (``ServerChecks`` in the importer). That works
because each value is sent in the very form PostgreSQL's output gives for the stored value: Boolean
``t``/``f``, DateTime as ``YYYY-MM-DD HH:MM:SS.mmm`` without trailing fractional zeros (the ISO DateStyle
the import sets), Decimal without trailing fractional zeros (read back through ``trim_scale``), Json as
jsonb prints it, and COPY's own escapes. Float is the one exception: ``copy_data`` gives the hex of its
bits as what reading it back must give, since float8out may print more digits than the shortest text it
was sent as.

Nothing here talks to the database, so the worker processes that render COPY text do not load psycopg.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import compress, repeat
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from operator import contains, not_
from typing import Any, cast

from engine.dbpath.convert import plain_decimal
from engine.dbpath.schema import Column


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


# ------------------------------------------------------------------------------------- numbers
def decimal_texts(values: Sequence[Any]) -> list[str]:
    """``trim_scale(n)::text`` of a column without NULLs (Decimals or their exact texts): plain digits, no
    trailing fractional zeros, zero as ``0``; in C-level calls unless an exponent shows up."""
    texts = list(map(str, values))
    joined = "".join(texts)
    if "E" in joined or "e" in joined:
        return [plain_decimal(Decimal(t)) for t in texts]
    if "." in joined:
        texts = [t.rstrip("0").rstrip(".") if "." in t else t for t in texts]
    return ["0" if t == "-0" else t for t in texts] if "-0" in texts else texts


# ------------------------------------------------------------------------------------- COPY text
NULL_FIELD = "\\N"
_pack_double = struct.Struct(">d").pack
BOOLEAN_TEXT = {True: "t", False: "f"}  # what boolout prints
# Kinds whose texts may hold a backslash or a control character: only these need COPY escaping.
ESCAPED_KINDS = frozenset({"String", "Json", "Enum", "Bytes"})
# What COPY TO escapes (CopyAttributeOutText): sending the same escapes makes the read-back identical.
COPY_ESCAPES = (
    ("\\", "\\\\"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\b", "\\b"),
    ("\f", "\\f"),
    ("\v", "\\v"),
)


def _escape_text(value: str) -> str:
    for raw, escaped in COPY_ESCAPES:
        if raw in value:
            value = value.replace(raw, escaped)
    return value


def _escape_texts(values: list[str | None]) -> list[str | None]:
    """COPY text escaping for a whole column at once, exactly as ``COPY TO`` escapes; NULL stays None.

    The characters COPY escapes are a backslash and control characters, which ``isprintable`` refuses: C
    scans find the few values that may need it (``str(None)`` needs none), and only those are escaped.
    """
    texts = cast("list[str]", values if None not in values else list(map(str, values)))
    joined = "".join(texts)
    backslash = "\\" in joined
    if not backslash and joined.isprintable():
        return values
    suspects = set(compress(range(len(texts)), map(not_, map(str.isprintable, texts))))
    if backslash:
        suspects.update(compress(range(len(texts)), map(contains, texts, repeat("\\"))))
    escaped = list(values)
    for index in suspects:
        escaped[index] = _escape_text(cast("str", values[index]))
    return escaped


def _bytea_text(value: bytes) -> str:
    return "\\x" + value.hex()  # bytea's input form; COPY escaping doubles the backslash


def _timestamp_text(moment: datetime) -> str:
    text = moment.isoformat(" ", "milliseconds")
    return text[:-4] if text.endswith(".000") else text.rstrip("0")


def _datetime_text(values: Sequence[datetime | str]) -> list[str]:
    """What PostgreSQL prints for the stored timestamps (``pg_datetime_texts`` gives texts already)."""
    if values and isinstance(values[0], str):
        return cast("list[str]", list(values))
    return list(map(_timestamp_text, cast("Sequence[datetime]", values)))


def _each(render: Callable[[Any], str]) -> Callable[[Sequence[Any]], list[str]]:
    return lambda values: list(map(render, values))


def _same(values: Sequence[Any]) -> list[Any]:
    return list(values)


TEXT_RENDERERS: dict[str, Callable[[Sequence[Any]], list[Any]]] = {
    "String": _same,
    "Json": _same,
    "Enum": _same,
    "Int": _each(str),
    "BigInt": _each(str),
    "Float": _each(float.__repr__),  # the shortest text that reads back as the same double
    "Decimal": decimal_texts,  # read back through trim_scale: DECIMAL(65,30) pads to 30 places
    "Boolean": _each(BOOLEAN_TEXT.__getitem__),
    "DateTime": _datetime_text,
    "Bytes": _each(_bytea_text),
}


def pg_texts(column: Column, values: Sequence[Any]) -> list[str | None]:
    """Stored values as the text PostgreSQL reads, before COPY escaping; None for NULL."""
    render = TEXT_RENDERERS[column.kind]
    if render is _same or None not in values:  # texts already, NULL (None) included
        return render(values)
    present = render([v for v in values if v is not None])
    found = iter(present)
    return [None if v is None else next(found) for v in values]


def copy_fields(column: Column, texts: list[str | None]) -> list[str]:
    """``pg_texts`` as COPY text fields: escaped where the kind needs it, ``\\N`` for NULL."""
    if column.kind in ESCAPED_KINDS:
        texts = _escape_texts(texts)
    if None in texts:
        return [NULL_FIELD if t is None else t for t in texts]
    return cast("list[str]", texts)


def _copy_lines(fields: Sequence[list[str]]) -> str:
    """Fields given column by column as text-format COPY data, one line per row."""
    return "\n".join(map("\t".join, zip(*fields, strict=True))) + "\n"


def _float_hex(value: float) -> str:
    return _pack_double(value).hex()


def copy_data(columns: Sequence[Column], stored: Sequence[list[Any]], encoding: str) -> tuple[bytes, bytes]:
    """Columns in stored form as (COPY text to send, the COPY text ``read_back`` must then give).

    The two are the same object unless a Float column is present: float8out may print a double with more
    digits than the shortest text it was sent as, so a Float is read back as the hex of its bits.
    """
    fields = [copy_fields(c, pg_texts(c, values)) for c, values in zip(columns, stored, strict=True)]
    sent = _copy_lines(fields).encode(encoding)
    if not any(c.kind == "Float" for c in columns):
        return sent, sent
    expected = [
        copy_fields(c, [None if v is None else _float_hex(v) for v in values])
        if c.kind == "Float"
        else sent_fields
        for c, sent_fields, values in zip(columns, fields, stored, strict=True)
    ]
    return sent, _copy_lines(expected).encode(encoding)
