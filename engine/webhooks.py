"""Outgoing webhooks: deploy events (started, live, failed, rolled back, suspended, ...) and quota
notices, signed with HMAC-SHA256 and retried with backoff.

The receiver checks ``Launchdeck-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256(secret, "<t>.<body>"), the scheme Stripe uses, so a replayed or altered body fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Any

import httpx

from engine.retry import RetryPolicy, parse_retry_after

log = logging.getLogger("launchdeck.webhooks")
SIGNATURE_HEADER = "Launchdeck-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` seconds old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), f"t={timestamp},v1={parts.get('v1', '')}")


class WebhookSender:
    """Delivers events in the background so a slow receiver never slows a pipeline."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._retry = retry or RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=60.0)
        self._http = httpx.Client(timeout=10.0, transport=transport)
        self._threads: list[threading.Thread] = []

    def send(self, event: str, data: dict[str, Any]) -> threading.Thread:
        body = json.dumps(
            {"id": str(uuid.uuid4()), "type": event, "created": int(time.time()), "data": data}, default=str
        ).encode()
        thread = threading.Thread(
            target=self._deliver, args=(event, body), daemon=True, name=f"webhook-{event}"
        )
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def _deliver(self, event: str, body: bytes) -> bool:
        for attempt in range(1, self._retry.max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            }
            retry_after: float | None = None
            try:
                response = self._http.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return True
                if response.status_code < 500 and response.status_code != 429:
                    log.warning("webhook %s refused with %s; not retrying", event, response.status_code)
                    return False
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            except httpx.TransportError as exc:
                log.info("webhook %s attempt %d failed: %s", event, attempt, type(exc).__name__)
            if attempt < self._retry.max_attempts:
                time.sleep(self._retry.delay(attempt, retry_after))
        log.warning("webhook %s not delivered after %d attempts", event, self._retry.max_attempts)
        return False

    def flush(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
