"""The one retry module: when to come back, and polling until a provider is done."""

from __future__ import annotations

import pytest

from engine.errors import ProviderError, ProviderUnavailable
from engine.retry import Backoff, RetryPolicy, poll_until


def test_a_servers_retry_after_is_waited_at_least_and_capped() -> None:
    backoff = Backoff(base_delay=0.5, max_delay=4.0, max_retry_after=60.0)
    assert all(7.0 <= backoff.delay(attempt, retry_after=7.0) <= 7.5 for attempt in range(1, 20))
    assert backoff.delay(1, retry_after=3600.0) <= 60.5  # a step is not parked for an hour
    # Without a hint: full jitter under a doubling cap that stops at max_delay.
    assert all(0 <= backoff.delay(1) <= 0.5 for _ in range(50))
    assert all(0 <= backoff.delay(10) <= 4.0 for _ in range(50))
    assert max(backoff.delay(10) for _ in range(200)) > 2.0


def test_a_steps_policy_caps_retry_after_at_two_minutes() -> None:
    assert RetryPolicy().delay(1, retry_after=900.0) <= 120.5


def test_polling_doubles_its_interval_and_stops_at_a_failed_state() -> None:
    states = iter(["queued", "building", "building", "building", "ERROR"])
    waits: list[float] = []

    def ready(state: str) -> bool:
        if state == "ERROR":
            raise ProviderError("vercel", "deployment ended ERROR")
        return state == "READY"

    with pytest.raises(ProviderError, match="ended ERROR"):
        poll_until(
            lambda: next(states),
            ready,
            interval=1.0,
            max_interval=3.0,
            timeout=600,
            timed_out=lambda state: ProviderUnavailable("vercel", state),
            sleep=waits.append,
        )
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_polling_past_its_deadline_says_where_it_stood() -> None:
    with pytest.raises(ProviderUnavailable, match="still building"):
        poll_until(
            lambda: "building",
            lambda state: state == "READY",
            interval=0.01,
            timeout=0.05,
            timed_out=lambda state: ProviderUnavailable("vercel", f"still {state}"),
        )
