"""Deploy-event webhooks: signed with HMAC-SHA256, retried with backoff until the receiver takes them."""

from __future__ import annotations

import json
import time

from fastapi import FastAPI, Request, Response

from engine.retry import RetryPolicy
from engine.webhooks import SIGNATURE_HEADER, WebhookSender, sign, verify
from tests.servers.asgi import serve

SECRET = "whsec_test_secret_value"


def test_signature_verifies_and_rejects_tampering_and_replay() -> None:
    body = b'{"type":"deployment.live"}'
    now = int(time.time())
    header = sign(SECRET, body, now)
    assert verify(SECRET, body, header, now=now)
    assert not verify(SECRET, body + b" ", header, now=now)  # altered body
    assert not verify("another-secret", body, header, now=now)  # wrong secret
    assert not verify(SECRET, body, header, now=now + 3600)  # replayed an hour later
    assert not verify(SECRET, body, "garbage", now=now)


def test_event_is_retried_until_delivered_and_arrives_signed() -> None:
    received: list[tuple[bytes, str]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received.append((await request.body(), request.headers[SIGNATURE_HEADER]))
        if len(received) < 3:  # the receiver is down for a while
            return Response(status_code=503, headers={"Retry-After": "0"})
        return Response(status_code=204)

    with serve(app) as url:
        sender = WebhookSender(
            f"{url}/hook", SECRET, retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05)
        )
        sender.send("deployment.live", {"app": "shop", "url": "http://shop.localhost:8472/"})
        sender.flush(timeout=10)

    assert len(received) == 3
    body, header = received[-1]
    assert verify(SECRET, body, header)
    event = json.loads(body)
    assert event["type"] == "deployment.live" and event["data"]["app"] == "shop"
    # Every attempt carries the same event id, so the receiver can drop duplicates.
    assert len({json.loads(b)["id"] for b, _ in received}) == 1


def test_a_refusing_receiver_is_not_retried() -> None:
    calls: list[int] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> Response:
        calls.append(1)
        return Response(status_code=400)

    with serve(app) as url:
        sender = WebhookSender(
            f"{url}/hook", SECRET, retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05)
        )
        sender.send("deployment.failed", {"app": "shop"})
        sender.flush(timeout=10)
    assert calls == [1]
