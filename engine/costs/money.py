"""Money helpers: integer cents, exact decimals, and largest-remainder allocation.

Money is integer cents everywhere; unit prices are ``Decimal`` (never floats). Each invoice line is rounded to
cents once, half up, as providers round their own line items; allocation then splits those integer cents
exactly, so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

CENTS_PER_DOLLAR = Decimal(100)


def to_cents(dollars: Decimal) -> int:
    """Round an exact dollar amount to integer cents, half up."""
    return int((dollars * CENTS_PER_DOLLAR).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cents_to_dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def largest_remainder(total: int, weights: Sequence[tuple[K, int]]) -> dict[K, int]:
    """Split ``total`` integer cents across keys in proportion to integer ``weights``; parts sum to ``total``.

    Each key first gets the floor of its exact share; the cents left over go one each to the keys with the
    largest remainders (ties: the earlier key), so no key is ever more than one cent from its exact share.
    """
    if total < 0:
        raise ValueError("cannot allocate a negative amount")
    if any(weight < 0 for _, weight in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weight for _, weight in weights)
    if weight_sum == 0:
        raise ValueError("cannot allocate by weights that are all zero")
    parts: list[int] = []
    remainders: list[int] = []
    for _, weight in weights:
        part, remainder = divmod(total * weight, weight_sum)
        parts.append(part)
        remainders.append(remainder)
    leftover = total - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[index] += 1
    allocated: dict[K, int] = {}
    for (key, _), part in zip(weights, parts, strict=True):
        allocated[key] = allocated.get(key, 0) + part
    return allocated
