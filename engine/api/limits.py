"""The API's limits, as ASGI middleware in front of every route:

1. Authentication before any body is read: a request to ``/api/...`` without a valid token is answered
   401 here (FastAPI itself parses a JSON body before dependencies run).
2. Per-token rate limits (``limits``' moving window): 429 with ``Retry-After``.
3. Body size: ``Content-Length`` over the limit is 413 at once; a body without one is read here up to
   the limit. Uploads stream past this middleware and are counted by the upload route itself.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from limits import parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.auth import WORKER_ROUTES, authenticate
from engine.errors import AuthError

if TYPE_CHECKING:
    from engine.service import Engine

UNAUTHENTICATED = ("/api/stripe/webhook",)  # Stripe signs its deliveries instead
STREAMED_BODIES = ("/api/uploads", "/api/worker/blobs/")  # each route counts its own body's bytes
NOT_LIMITED = ("/healthz",)


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


async def _answer(
    send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = _error(kind, message)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RateLimits:
    """Per-key moving windows (keys expire with their window, so the state stays bounded)."""

    def __init__(self, rate: str) -> None:
        self.rate = parse(rate)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def wait(self, key: str) -> int | None:
        """None when the request may go ahead; else the seconds to wait."""
        if self.limiter.hit(self.rate, key):
            return None
        reset = self.limiter.get_window_stats(self.rate, key).reset_time
        return max(1, math.ceil(reset - time.time()))


class ApiLimits:
    def __init__(self, app: ASGIApp, engine: Engine, rates: RateLimits) -> None:
        self.app = app
        self.engine = engine
        self.rates = rates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        settings = self.engine.settings
        key = "anonymous"
        if path.startswith("/api/") and not path.startswith(UNAUTHENTICATED):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            try:
                principal = authenticate(
                    self.engine.store, token.strip() if scheme.lower() == "bearer" else None
                )
            except AuthError as exc:
                await _answer(send, 401, "AuthError", str(exc), {"WWW-Authenticate": "Bearer"})
                return
            if principal.role == "worker" and not path.startswith(WORKER_ROUTES):
                await _answer(send, 403, "Forbidden", "a worker token may only call the /api/worker/ routes")
                return
            scope.setdefault("state", {})["principal"] = principal
            key = f"token:{principal.token_id}"
        wait = None if path.startswith(NOT_LIMITED) else self.rates.wait(key)
        if wait is not None:
            await _answer(
                send, 429, "RateLimited",
                f"rate limit of {self.rates.rate} for this token reached (LAUNCHDECK_RATE_LIMIT): retry in {wait} s",
                {"Retry-After": str(wait)},
            )  # fmt: skip
            return
        streamed = path.startswith(STREAMED_BODIES)
        limit = (
            settings.worker_blob_max_bytes
            if path.startswith("/api/worker/blobs/")
            else settings.upload_max_bytes
            if streamed
            else settings.request_max_bytes
        )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "InputError", "Content-Length is not a number")
                return
            if int(length) > limit:
                await _answer(send, 413, "TooLarge", _too_large(limit, streamed))
                return
        if streamed or (scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and length is None):
            await self.app(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > limit:
                await _answer(send, 413, "TooLarge", _too_large(limit, streamed))
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _too_large(limit: int, upload: bool) -> str:
    if upload:
        return f"the upload is over the limit of {limit:,} bytes (LAUNCHDECK_UPLOAD_MAX_BYTES)"
    return (
        f"the request body is over the limit of {limit:,} bytes (LAUNCHDECK_REQUEST_MAX_BYTES); "
        "send apps and databases through POST /api/uploads"
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class StreamSlots:
    """Concurrent status streams per token, so no token can hold the store with many open streams."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self.open: dict[str, int] = {}

    def take(self, key: str) -> bool:
        if self.open.get(key, 0) >= self.per_token:
            return False
        self.open[key] = self.open.get(key, 0) + 1
        return True

    def give_back(self, key: str) -> None:
        left = self.open.get(key, 1) - 1
        if left <= 0:
            self.open.pop(key, None)
        else:
            self.open[key] = left


def retry_headers(seconds: int) -> dict[str, Any]:
    return {"Retry-After": str(seconds)}
