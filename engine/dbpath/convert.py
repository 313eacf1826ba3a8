"""Per-column conversion of preview SQLite values into what the production database must hold.

Real Prisma SQLite files store one Prisma type in several forms (DateTime as epoch milliseconds, ISO-8601
text with ``Z`` or an offset, or ``YYYY-MM-DD HH:MM:SS``; Boolean as 0/1; Decimal as REAL or TEXT), even
mixed in one column. Each converter accepts every form that means one value and raises ``Unconvertible``
for anything else: a value is reported, never guessed or dropped.

``canonical`` gives each value one comparable form, so the source and the target can be checksummed the
same way whatever their storage.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from engine.dbpath.schema import Column

EPOCH = datetime(1970, 1, 1)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
SQLITE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


class Unconvertible(ValueError):
    """A source value that has no faithful form in the target; the message is the reason."""


Converter = Callable[[Any], Any]


# ---------------------------------------------------------------------------------------- scalars
def to_string(value: Any) -> str:
    if isinstance(value, str):
        if "\x00" in value:
            raise Unconvertible("text contains a NUL character, which PostgreSQL text cannot hold")
        return value
    if isinstance(value, bytes):
        raise Unconvertible("a String column holds binary data")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise Unconvertible(f"unexpected {type(value).__name__}")


def _integer(value: Any, bounds: tuple[int, int], name: str) -> int:
    if type(value) is int:
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and INTEGER_TEXT.match(value.strip()):
        number = int(value.strip())
    else:
        raise Unconvertible(f"not an integer ({name})")
    if not bounds[0] <= number <= bounds[1]:
        raise Unconvertible(f"out of range for {name}")
    return number


def to_int(value: Any) -> int:
    if type(value) is int and INT32[0] <= value <= INT32[1]:
        return value
    return _integer(value, INT32, "Int, 32-bit")


def to_bigint(value: Any) -> int:
    if type(value) is int:
        return value  # SQLite integers are 64-bit already
    return _integer(value, INT64, "BigInt, 64-bit")


def to_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    if type(value) is int:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise Unconvertible("not a number (Float)")


def to_decimal(value: Any) -> Decimal:
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Unconvertible("not a finite number (Decimal)")
            return Decimal(repr(value))  # the shortest text that reads back as this REAL, as Prisma prints it
        if type(value) is int:
            return Decimal(value)
        if isinstance(value, str):
            number = Decimal(value.strip())
            if number.is_finite():
                return number
    except InvalidOperation:
        pass
    raise Unconvertible("not a decimal number (Decimal)")


def to_bool(value: Any) -> bool:
    if value == 1 and not isinstance(value, str):
        return True
    if value == 0 and not isinstance(value, str):
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise Unconvertible("not a boolean (expected 0/1 or true/false)")


def to_datetime(value: Any) -> datetime:
    """A naive UTC datetime with millisecond precision, as Prisma's DateTime holds it."""
    if type(value) is int or (isinstance(value, float) and value.is_integer()):
        try:
            return EPOCH + timedelta(milliseconds=int(value))
        except OverflowError:
            raise Unconvertible("epoch milliseconds out of range (DateTime)") from None
    if isinstance(value, str):
        text = value.strip()
        if INTEGER_TEXT.match(text):
            return to_datetime(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise Unconvertible("not a date-time (epoch ms, ISO-8601 or YYYY-MM-DD HH:MM:SS)") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        # SQLite's CURRENT_TIMESTAMP and Prisma both write UTC, so a bare timestamp is UTC.
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    raise Unconvertible("not a date-time (epoch ms, ISO-8601 or YYYY-MM-DD HH:MM:SS)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# Python's json accepts NaN and Infinity; JSON (and so jsonb) does not.
STRICT_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def to_json_text(value: Any) -> str:
    if isinstance(value, bytes):
        raise Unconvertible("a Json column holds binary data")
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        parsed = STRICT_JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise Unconvertible(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError as exc:
        raise Unconvertible(f"not valid JSON ({exc})") from None
    if "\\u" in text:  # an escaped lone surrogate decodes, but is no character: no database can store it
        try:
            json.dumps(parsed, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise Unconvertible("JSON holds an unpaired surrogate escape (\\ud800-\\udfff)") from None
    if "\\u0000" in text:
        raise Unconvertible("JSON contains \\u0000, which PostgreSQL jsonb cannot hold")
    return text


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    raise Unconvertible("a Bytes column holds text or a number, not a BLOB")


def to_enum(values: tuple[str, ...]) -> Converter:
    allowed = frozenset(values)

    def convert(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise Unconvertible(f"not one of the enum's values {sorted(allowed)}")

    return convert


CONVERTERS: dict[str, Converter] = {
    "String": to_string,
    "Int": to_int,
    "BigInt": to_bigint,
    "Float": to_float,
    "Decimal": to_decimal,
    "Boolean": to_bool,
    "DateTime": to_datetime,
    "Json": to_json_text,
    "Bytes": to_bytes,
}


def converter_for(column: Column) -> Converter:
    """The converter for a column; NULL passes through where the field is optional."""
    base = to_enum(column.enum_values) if column.enum_values is not None else CONVERTERS[column.type]
    required = column.required

    def convert(value: Any) -> Any:
        if value is None:
            if required:
                raise Unconvertible("NULL in a required field")
            return None
        return base(value)

    return convert


# -------------------------------------------------------------------------------------- canonical
# normalize() rounds to its context's precision, 28 digits by default: this one keeps every digit.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def plain_decimal(number: Decimal) -> str:
    """Plain digits without trailing fractional zeros; zero (negative zero too) as ``0``."""
    normal = number.normalize(EXACT)
    return format(normal if normal != 0 else Decimal(0), "f")


# Built once: json.loads/dumps with options construct a new decoder/encoder on every call.
_NUMBERS_AS_DOUBLES = json.JSONDecoder(parse_int=float)
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """One text per JSON value: keys sorted, every number as a double (jsonb reorders keys and rewrites
    ``1e2`` as ``100``; reading both sides the same way makes them compare by value)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return _CANONICAL_ENCODER.encode(_NUMBERS_AS_DOUBLES.decode(text))


def canonical(column: Column, value: Any) -> Any:
    """The comparable form of a converted (source) or stored (target) value."""
    if value is None:
        return None
    kind = column.kind
    if kind in ("String", "Enum"):
        return str(value)
    if kind in ("Int", "BigInt"):
        return int(value)
    if kind == "Float":
        return float(value)
    if kind == "Decimal":
        return plain_decimal(to_decimal(value))
    if kind == "Boolean":
        return to_bool(value)
    if kind == "DateTime":
        moment = value if isinstance(value, datetime) else to_datetime(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return (moment - EPOCH) // timedelta(milliseconds=1)
    if kind == "Json":
        return canonical_json(value)
    if kind == "Bytes":
        return bytes(value)
    raise KeyError(kind)


# ------------------------------------------------------------------------------ stored form per target
PG_DECIMAL_SCALE = 30  # Prisma's Decimal is DECIMAL(65,30) on PostgreSQL
PG_DECIMAL_INTEGER_DIGITS = 35


def _pg_decimal(value: Decimal) -> Decimal:
    exponent = value.normalize(EXACT).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PG_DECIMAL_SCALE:
        raise Unconvertible(f"more than {PG_DECIMAL_SCALE} decimal places; DECIMAL(65,30) would round it")
    if value != 0 and value.adjusted() >= PG_DECIMAL_INTEGER_DIGITS:
        raise Unconvertible(
            f"more than {PG_DECIMAL_INTEGER_DIGITS} digits before the point; DECIMAL(65,30) overflows"
        )
    return value


def _sqlite_decimal(value: Decimal) -> int | float:
    """SQLite's DECIMAL column keeps integers or doubles; refuse what a double would round."""
    if value == value.to_integral_value() and INT64[0] <= value <= INT64[1]:
        return int(value)
    number = float(value)
    if Decimal(repr(number)).normalize(EXACT) != value.normalize(EXACT):
        raise Unconvertible("needs more precision than a libSQL/SQLite DECIMAL column keeps (a double)")
    return number


def _sqlite_datetime(value: datetime) -> str:
    """ISO-8601 with milliseconds and Z, as Prisma's libSQL driver adapter writes DateTime."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def stored_form(column: Column, dialect: str) -> Converter | None:
    """The last step from a converted value to what ``dialect`` stores; None when nothing changes."""
    if column.is_enum:
        return None
    if dialect == "postgresql":
        return _pg_decimal if column.type == "Decimal" else None
    if column.type == "Decimal":
        return _sqlite_decimal
    if column.type == "DateTime":
        return _sqlite_datetime
    if column.type == "Boolean":
        return int
    return None


def column_pipeline(column: Column, dialect: str) -> tuple[Converter, Converter | None]:
    """(source value -> converted value, converted value -> stored value or None)."""
    return converter_for(column), stored_form(column, dialect)
