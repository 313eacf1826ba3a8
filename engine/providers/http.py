"""The one HTTP client base every cloud provider module uses.

It owns, once for all providers: the httpx transport seam, retry with exponential backoff and full
jitter that honours ``Retry-After``, mapping of failures into ``engine.errors`` at the boundary, a
client-side rate limiter, and redaction of credentials in every log line and exception text.

Retry is decided by safety, not hope: a request the server never processed (connect failure, 429, or
a status the provider documents as "try again", such as 503 or Neon's 423) is retried for any method;
a read timeout or another 5xx is retried only for idempotent requests, because a POST that timed out
may have been applied. Provider modules make creation idempotent by name (find, then create, then
adopt on 409) and pass ``idempotent=True`` where they do.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine import redact as redaction
from engine.errors import (
    ProviderConflict,
    ProviderError,
    ProviderNotFound,
    ProviderUnavailable,
)
from engine.retry import Backoff, parse_retry_after

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RequestRetry(Backoff):
    """Which answers a request is tried again after, and how often; the wait is ``Backoff``'s."""

    attempts: int = 5
    # A provider asking for longer than this is treated as unavailable now, not waited on forever.
    max_retry_after: float = 300.0
    # Statuses meaning "not processed, try again": retried for every method.
    retry_any_method: frozenset[int] = frozenset({429, 503})
    # Statuses that may hide a processed request: retried only when the request is idempotent.
    retry_idempotent: frozenset[int] = frozenset({500, 502, 504, 520, 521, 522, 523, 524})
    # Methods safe to repeat after an ambiguous failure, unless the caller says otherwise.
    idempotent_methods: frozenset[str] = IDEMPOTENT_METHODS

    def is_transient(self, status: int) -> bool:
        return status in self.retry_any_method or status in self.retry_idempotent or status >= 500


class Slot:
    """One request's place in the window: it counts from when it is taken until ``period`` after it
    finished. The server counts a request when it arrives, which is before its answer reaches us, so
    timing the window from the answer can never let the server see more than ``limit`` in a window,
    however long requests wait in queues."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = math.inf


class RateLimiter:
    """At most ``limit`` requests in any sliding window of ``period`` seconds, shared by threads.

    ``acquire`` blocks until a slot is free; ``release`` marks the request finished. ``hold`` pauses
    everyone after the server said 429, so one throttled thread stops the others too.
    """

    def __init__(
        self, limit: int, period: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ):
        if limit < 1 or period <= 0:
            raise ValueError("rate limit needs limit >= 1 and period > 0")
        self.limit, self.period = limit, period
        self._clock, self._sleep = clock, sleep
        self._slots: list[Slot] = []
        self._not_before = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> Slot:
        while True:
            with self._lock:
                now = self._clock()
                cutoff = now - self.period
                self._slots = [slot for slot in self._slots if slot.finished > cutoff]
                wait = self._not_before - now
                if wait <= 0 and len(self._slots) < self.limit:
                    slot = Slot()
                    self._slots.append(slot)
                    return slot
                if wait <= 0:
                    finished = [slot.finished for slot in self._slots if slot.finished != math.inf]
                    # All in flight: one of them finishing frees nothing for ``period``; look again soon.
                    wait = min(finished) + self.period - now if finished else min(0.05, self.period)
            self._sleep(max(wait, 0.001))

    def release(self, slot: Slot) -> None:
        with self._lock:
            slot.finished = self._clock()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)


_shared_limiters: dict[tuple[str, str], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(provider: str, key: str, limit: int, period: float) -> RateLimiter:
    """One limiter per provider account within this process: every client of the account shares it."""
    with _shared_lock:
        limiter = _shared_limiters.get((provider, key))
        if limiter is None or (limiter.limit, limiter.period) != (limit, period):
            limiter = _shared_limiters[(provider, key)] = RateLimiter(limit, period)
        return limiter


@dataclass
class RequestStats:
    """What a client sent: the benchmark reads these."""

    requests: int = 0
    bytes_sent: int = 0
    retries: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, size: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_sent += size
            key = f"{method} {path}"
            self.by_path[key] = self.by_path.get(key, 0) + 1


_SECRET_NAME = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|AUTH|DSN|DATABASE_URL", re.I)


def looks_secret(name: str) -> bool:
    """Env var names whose values are redacted from logs; plain ones (NODE_ENV=production) are not,
    since redacting common words would garble every log line that mentions them."""
    return _SECRET_NAME.search(name) is not None


def default_error_message(response: httpx.Response) -> str:
    """The provider's own words: ``error``/``message`` fields, else the body text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error") if "error" in body else body.get("message")
        if isinstance(error, dict):
            error = error.get("message") or error.get("code")
        if error:
            return str(error)
    return response.text.strip()[:500]


class ProviderClient:
    """A sync httpx client for one provider account; safe to share between worker threads."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        retry: RequestRetry | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=10.0),
        error_message: Callable[[httpx.Response], str] = default_error_message,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.provider = provider
        self.retry = retry or RequestRetry()
        self.limiter = limiter
        self.stats = RequestStats()
        self._error_message = error_message
        self._sleep = sleep
        self.log = logging.getLogger(f"launchdeck.providers.{provider}")
        for secret in secrets:
            self.add_secret(secret)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=dict(headers or {}), transport=transport, timeout=timeout
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._http.base_url

    def add_secret(self, secret: str | None) -> None:
        """Register a value that must never appear in a log line or an exception message."""
        if secret:
            redaction.register(secret)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        ok: Iterable[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response (or one listed in ``ok``), else raise mapped errors.

        ``url`` may be relative to the base URL or absolute (Turso's per-database host).
        """
        method = method.upper()
        safe = method in self.retry.idempotent_methods if idempotent is None else idempotent
        accepted = set(ok)
        last: ProviderUnavailable | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                delay = self.retry.delay(attempt, last.retry_after if last else None)
                if last and last.retry_after is not None and last.retry_after > self.retry.max_retry_after:
                    raise last
                self.stats.retries += 1
                self.log.info(self.clean(f"retrying {method} {url} in {delay:.2f}s after: {last}"))
                self._sleep(delay)
            try:
                return self._send_once(method, url, safe, accepted, **kwargs)
            except _Retry as retry:
                last = retry.error
        assert last is not None
        raise last

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        return response.json() if response.content else None

    def clean(self, text: str) -> str:
        return redaction.redact(text)

    def _send_once(
        self, method: str, url: str, safe: bool, accepted: set[int], **kwargs: Any
    ) -> httpx.Response:
        request = self._http.build_request(method, url, **kwargs)
        body = request.read()
        limiter = self.limiter
        slot = limiter.acquire() if limiter is not None else None
        self.stats.record(method, request.url.path, len(body))
        label = f"{method} {request.url.copy_with(query=None)}"
        try:
            response = self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached the server: always safe to try again.
            raise _Retry(self._unavailable(f"{label}: cannot connect ({type(exc).__name__})")) from exc
        except httpx.TransportError as exc:
            error = self._unavailable(f"{label}: {type(exc).__name__} {exc}")
            if safe:
                raise _Retry(error) from exc
            raise error from exc
        finally:
            if limiter is not None and slot is not None:
                limiter.release(slot)
        status = response.status_code
        self.log.debug(self.clean(f"{label} -> {status}"))
        if status < 300 or status in accepted:
            return response
        message = self.clean(f"{label} -> {status}: {self._error_message(response)}")
        if status == 429 or self.retry.is_transient(status):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            error = self._unavailable(message, status=status, retry_after=retry_after)
            if status == 429 and self.limiter is not None and retry_after:
                self.limiter.hold(retry_after)
            if (
                status in self.retry.retry_any_method
                or (safe and status in self.retry.retry_idempotent)
                or (safe and status >= 500)
            ):
                raise _Retry(error)
            raise error
        if status == 404:
            raise ProviderNotFound(self.provider, message, status=status)
        if status == 409:
            raise ProviderConflict(self.provider, message, status=status)
        raise ProviderError(self.provider, message, status=status)

    def _unavailable(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> ProviderUnavailable:
        return ProviderUnavailable(self.provider, self.clean(message), status=status, retry_after=retry_after)


class _Retry(Exception):
    def __init__(self, error: ProviderUnavailable) -> None:
        super().__init__(str(error))
        self.error = error
