"""Stripe webhooks: verified by ``Stripe-Signature`` with the stripe package, applied once, turned into tiers.

Verification (``stripe.Webhook.construct_event``) checks the HMAC and that the signed timestamp is within the
tolerance (default 300 s), which bounds replays in time; each event id is applied at most once, which stops a
replay inside the window too.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import stripe

from engine.costs.tiers import TierTable, default_tiers
from engine.errors import AuthError
from engine.store import Store

DEFAULT_TOLERANCE = 300
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated")


def verify(payload: bytes, signature: str | None, secret: str, *, tolerance: int = DEFAULT_TOLERANCE) -> Any:
    if not signature:
        raise AuthError("missing Stripe-Signature header")
    try:
        return stripe.Webhook.construct_event(payload, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise AuthError(f"Stripe-Signature rejected: {exc.user_message or exc}") from None
    except ValueError:
        raise AuthError("Stripe webhook body is not JSON") from None


def _tier_of(store: Store, subscription: Any, tiers: TierTable) -> str | None:
    items = subscription["items"]["data"] if subscription.get("items") else []
    price = items[0]["price"] if items else None
    if price is not None:
        row = store.fetchone("SELECT tier FROM stripe_tier_prices WHERE price_id = ?", [price["id"]])
        if row:
            return str(row["tier"])
        tier = (price.get("metadata") or {}).get("tier")
        if tier in tiers.tiers:
            return str(tier)
    tier = (subscription.get("metadata") or {}).get("tier")
    return str(tier) if tier in tiers.tiers else None


def _user_of(store: Store, customer: str | None, metadata: dict[str, Any] | None) -> str | None:
    if customer:
        row = store.fetchone(
            "SELECT user_id FROM user_subscriptions WHERE stripe_customer_id = ?", [customer]
        )
        if row:
            return str(row["user_id"])
    user = (metadata or {}).get("launchdeck_user_id")
    return str(user) if user else None


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None) if value else None


def apply_event(store: Store, event: Any, *, tiers: TierTable | None = None) -> str:
    """Apply a verified event once. Returns what happened: applied, duplicate, stale or ignored."""
    tiers = tiers or default_tiers()
    # One transaction: the event is marked applied only if applying it succeeded (the store's lock is reentrant).
    with store.transaction() as connection:
        if connection.execute("SELECT 1 FROM stripe_events WHERE event_id = ?", [event["id"]]).fetchone():
            return "duplicate"
        connection.execute(
            "INSERT INTO stripe_events (event_id, type) VALUES (?, ?)", [event["id"], event["type"]]
        )
        return _apply(store, event, tiers)


def _apply(store: Store, event: Any, tiers: TierTable) -> str:
    obj = event["data"]["object"]
    kind = event["type"]
    if kind in SUBSCRIPTION_EVENTS or kind == "customer.subscription.deleted":
        user = _user_of(store, obj.get("customer"), obj.get("metadata"))
        if user is None:
            return "ignored"
        deleted = kind == "customer.subscription.deleted" or obj.get("status") == "canceled"
        tier_name = "free" if deleted else _tier_of(store, obj, tiers)
        if tier_name is None:
            return "ignored"
        tier = tiers.get(tier_name)
        event_at = _ts(event.get("created"))
        last = store.scalar("SELECT stripe_event_at FROM user_subscriptions WHERE user_id = ?", [user])
        if event_at is not None and last is not None and event_at < last:
            return "stale"  # Stripe does not promise order: a newer event already set this subscription
        status = (
            "canceled"
            if deleted
            else ("past_due" if obj.get("status") in ("past_due", "unpaid") else "active")
        )
        store.execute(
            "INSERT INTO user_subscriptions (user_id, tier, status, max_deployed_apps, max_custom_domains,"
            " stripe_customer_id, stripe_subscription_id, current_period_start, current_period_end, stripe_event_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier,"
            " status = excluded.status, max_deployed_apps = excluded.max_deployed_apps,"
            " max_custom_domains = excluded.max_custom_domains, stripe_customer_id = excluded.stripe_customer_id,"
            " stripe_subscription_id = excluded.stripe_subscription_id,"
            " current_period_start = excluded.current_period_start,"
            " current_period_end = excluded.current_period_end, stripe_event_at = excluded.stripe_event_at,"
            " updated_at = now()",
            [
                user,
                tier.name,
                status,
                tier.max_deployed_apps,
                tier.max_custom_domains,
                obj.get("customer"),
                obj.get("id"),
                _ts(obj.get("current_period_start")),
                _ts(obj.get("current_period_end")),
                event_at,
            ],
        )
        return "applied"
    if kind == "invoice.paid":
        user = _user_of(store, obj.get("customer"), obj.get("metadata"))
        if user is None:
            return "ignored"
        created = _ts(obj.get("created")) or datetime.now(UTC)
        month = date(created.year, created.month, 1)
        tier_name = str(
            store.scalar("SELECT tier FROM user_subscriptions WHERE user_id = ?", [user]) or "free"
        )
        store.execute(
            "INSERT INTO revenue (month, user_id, tier, amount_cents, source, stripe_invoice_id)"
            " VALUES (?, ?, ?, ?, 'stripe', ?) ON CONFLICT (month, user_id, source) DO UPDATE SET"
            " amount_cents = revenue.amount_cents + excluded.amount_cents, stripe_invoice_id = excluded.stripe_invoice_id",
            [month, user, tier_name, int(obj.get("amount_paid") or 0), obj.get("id")],
        )
        return "applied"
    return "ignored"


def handle_webhook(
    store: Store, payload: bytes, signature: str | None, secret: str, *, tolerance: int = DEFAULT_TOLERANCE
) -> str:
    """Verify and apply one webhook delivery (the API route's whole job)."""
    verify(payload, signature, secret, tolerance=tolerance)
    return apply_event(store, json.loads(payload))  # the verified bytes, as plain dicts
