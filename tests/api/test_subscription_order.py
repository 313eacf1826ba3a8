"""Tiers come from subscriptions: a subscription event Stripe delivers late never undoes a newer one."""

from __future__ import annotations

from typing import Any

from engine.billing.webhooks import apply_event
from engine.costs.tiers import subscription_tier
from engine.store import Store


def event(event_id: str, created: int, tier: str) -> dict[str, Any]:
    subscription = {"id": "sub_1", "customer": "cus_1", "status": "active", "items": None,
                    "metadata": {"launchdeck_user_id": "ada", "tier": tier}}  # fmt: skip
    return {"id": event_id, "type": "customer.subscription.updated", "created": created,
            "data": {"object": subscription}}  # fmt: skip


def test_a_late_older_subscription_event_is_ignored() -> None:
    store = Store(":memory:")
    assert apply_event(store, event("evt_new", 2_000_000_000, "pro")) == "applied"
    assert apply_event(store, event("evt_old", 1_900_000_000, "starter")) == "stale"
    assert subscription_tier(store, "ada") == "pro"
    assert apply_event(store, event("evt_newer", 2_000_000_100, "business")) == "applied"
    assert subscription_tier(store, "ada") == "business"
