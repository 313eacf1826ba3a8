"""Retrying and waiting, one way everywhere: the backoff formula, the reading of ``Retry-After`` and
the poll loop used by the pipeline runner, provider clients, webhooks, the importer and libSQL streams.

What differs between callers (which statuses are transient, whether a request may be repeated, whether
a retry must stay on the same stream) stays with them; when to come back is decided here.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog); a server's ``Retry-After`` wins.

    ``attempt`` counts retries from 1. A ``Retry-After`` gets a little jitter on top so that clients told
    the same moment do not all come back at once; it is capped at ``max_retry_after``."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = math.inf

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) + random.uniform(0, self.base_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How often a step is tried, and the wait between tries (``engine.retry.Backoff``); a provider's
    ``Retry-After`` is honoured up to ``max_retry_after``."""

    max_retry_after: float = 120.0
    max_attempts: int = 3


def poll_until(
    fetch: Callable[[], T],
    finished: Callable[[T], bool],
    *,
    interval: float,
    timeout: float,
    timed_out: Callable[[T], Exception],
    max_interval: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fetch`` until ``finished`` says so (it raises for a failed state), waiting ``interval``
    and doubling up to ``max_interval`` (8 intervals by default); raise ``timed_out(last)`` past
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay, cap = interval, max_interval if max_interval is not None else interval * 8
    while True:
        result = fetch()
        if finished(result):
            return result
        if time.monotonic() + delay > deadline:
            raise timed_out(result)
        sleep(delay)
        delay = min(delay * 2, cap)
