"""Texts as PostgreSQL prints them back: Json as jsonb prints it, and Decimal as ``trim_scale`` gives it.

The import sends both in these forms (``pgbinary``), so that reading the stored values back gives the
very bytes that were sent. Nothing here talks to the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any

from engine.dbpath.convert import plain_decimal


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
