"""The shared client's rules, on httpx.MockTransport where a real peer cannot misbehave on cue."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from engine.errors import ProviderConflict, ProviderError, ProviderNotFound, ProviderUnavailable
from engine.providers.http import ProviderClient, RateLimiter, RequestRetry
from engine.retry import parse_retry_after

FAST = RequestRetry(attempts=4, base_delay=0.001, max_delay=0.002, max_retry_after=1.0)
SECRET = "sk-live-0123456789abcdef"


def _client(handler: httpx.MockTransport, **kwargs: object) -> ProviderClient:
    return ProviderClient(
        "acme",
        "https://api.acme.test",
        headers={"Authorization": f"Bearer {SECRET}"},
        secrets=[SECRET],
        transport=handler,
        retry=FAST,
        **kwargs,
    )  # type: ignore[arg-type]


def test_post_read_timeout_is_not_retried_but_get_is() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"ok": True})

    client = _client(httpx.MockTransport(handler))
    with pytest.raises(ProviderUnavailable, match="ReadTimeout"):
        client.request("POST", "/things", json={})
    assert calls == ["POST"]
    assert client.json("GET", "/things") == {"ok": True}
    assert calls == ["POST", "GET", "GET"]


def test_connect_errors_are_retried_for_any_method() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": 1})

    assert _client(httpx.MockTransport(handler)).json("POST", "/things", json={}) == {"id": 1}
    assert calls == 2


def test_status_mapping_keeps_the_providers_message() -> None:
    answers = {
        "/gone": (404, {"error": "no such thing"}),
        "/taken": (409, {"message": "name taken"}),
        "/quota": (402, {"error": {"message": "over quota"}}),
        "/down": (502, {"error": "bad gateway"}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = answers[request.url.path]
        return httpx.Response(status, json=body)

    client = _client(httpx.MockTransport(handler))
    with pytest.raises(ProviderNotFound, match="no such thing"):
        client.request("GET", "/gone")
    with pytest.raises(ProviderConflict, match="name taken"):
        client.request("POST", "/taken")
    with pytest.raises(ProviderError, match="over quota") as quota:
        client.request("POST", "/quota")
    assert quota.value.status == 402 and not isinstance(quota.value, ProviderUnavailable)
    with pytest.raises(ProviderUnavailable, match="bad gateway") as down:
        client.request("POST", "/down")  # a 502 on POST may hide a processed request: not retried
    assert down.value.status == 502 and client.stats.requests == 4


def test_a_retry_after_beyond_the_limit_is_not_waited_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": "slow down"})

    client = _client(httpx.MockTransport(handler))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        client.request("GET", "/x")
    assert caught.value.retry_after == 3600 and time.monotonic() - started < 1
    assert client.stats.requests == 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (parse_retry_after(later) or 0) <= 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_credentials_never_reach_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # A provider that echoes the credential back in its error, as some do.
        return httpx.Response(503, json={"error": f"token {SECRET} rejected by postgresql://u:pa55w0rd@db/x"})

    client = _client(httpx.MockTransport(handler))
    with (
        caplog.at_level(logging.DEBUG, logger="launchdeck.providers"),
        pytest.raises(ProviderUnavailable) as e,
    ):
        client.request("GET", "/x")
    text = str(e.value) + caplog.text
    assert "rejected" in text and SECRET not in text and "pa55w0rd" not in text


def test_rate_limiter_spaces_requests_across_threads() -> None:
    limiter = RateLimiter(5, 0.5)
    sent: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            slot = limiter.acquire()
            with lock:
                sent.append(time.monotonic())
            limiter.release(slot)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent.sort()
    assert len(sent) == 15
    for i in range(5, 15):  # no window of 0.5 s ever holds more than 5
        assert sent[i] - sent[i - 5] >= 0.5 - 1e-3
    assert sent[-1] - sent[0] >= 1.0  # 15 requests at 5 per 0.5 s need two full windows


def test_limiter_hold_pauses_everyone_after_a_429() -> None:
    limiter = RateLimiter(100, 1.0)
    limiter.hold(0.3)
    started = time.monotonic()
    limiter.release(limiter.acquire())
    assert time.monotonic() - started >= 0.29


def test_a_request_still_in_flight_keeps_its_place_in_the_window() -> None:
    # A request that waited in a queue reaches the server late; it must not let the next window start
    # early. Two places per 0.2 s; one request stays in flight for 0.5 s.
    limiter = RateLimiter(2, 0.2)
    slow, quick = limiter.acquire(), limiter.acquire()
    limiter.release(quick)
    released = threading.Timer(0.5, limiter.release, [slow])
    released.start()
    started = time.monotonic()
    limiter.release(limiter.acquire())  # quick's place frees at 0.2 s
    limiter.release(limiter.acquire())  # slow still holds one: wait for the third's place, at 0.4 s
    assert time.monotonic() - started >= 0.38  # timed from sending, slow's place would free at 0.2 s
    released.join()


def test_env_names_that_hold_secrets_are_recognised() -> None:
    from engine.providers.http import looks_secret

    assert all(map(looks_secret, ["DATABASE_URL", "TURSO_AUTH_TOKEN", "STRIPE_SECRET_KEY", "DB_PASSWORD"]))
    assert not any(map(looks_secret, ["NODE_ENV", "APP_NAME", "PORT"]))
