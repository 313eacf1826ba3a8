"""POST /api/stripe/webhook on a real engine: signed deliveries change the tier; bad signatures are 400."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx

from engine.config import Settings
from engine.service import Engine

SECRET = "whsec_route_test_secret"


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    t = at or int(time.time())
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def test_signed_subscription_event_changes_the_tier_and_a_forged_one_is_refused(tmp_path: Path) -> None:
    engine = Engine(Settings(workspace=tmp_path / "ws", edge_port=0, STRIPE_WEBHOOK_SECRET=SECRET))
    url = engine.start_in_thread()
    try:
        event = {
            "id": "evt_route_1",
            "object": "event",
            "type": "customer.subscription.deleted",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "sub_1",
                    "object": "subscription",
                    "status": "canceled",
                    "customer": "cus_1",
                    "metadata": {"launchdeck_user_id": "bob"},
                    "items": {"data": []},
                }
            },
        }
        body = json.dumps(event).encode()
        forged = httpx.post(
            f"{url}/api/stripe/webhook", content=body, headers={"Stripe-Signature": signed(body, "whsec_x")}
        )
        assert forged.status_code == 400
        assert "Stripe-Signature" in forged.json()["error"]["message"]

        accepted = httpx.post(
            f"{url}/api/stripe/webhook", content=body, headers={"Stripe-Signature": signed(body)}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["outcome"] == "applied"
        replay = httpx.post(
            f"{url}/api/stripe/webhook", content=body, headers={"Stripe-Signature": signed(body)}
        )
        assert replay.json()["outcome"] == "duplicate"
        assert engine.store.fetchone("SELECT tier, status FROM user_subscriptions WHERE user_id = 'bob'") == {
            "tier": "free",
            "status": "canceled",
        }
    finally:
        engine.stop_thread()
