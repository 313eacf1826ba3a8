"""Stripe webhooks: verified by ``Stripe-Signature`` with the stripe package, applied once and in order.

Verification (``stripe.Webhook.construct_event``) checks the HMAC and that the signed timestamp is within the
tolerance (default 300 s), which bounds replays in time; each event id is applied at most once, which stops a
replay inside the window too.

Stripe does not deliver events in order, and a delivery can come after a revenue sync has read the same
invoice. So state is kept per object with the time of what last set it: a subscription event older than the
one (or the sync) that set the user's subscription is stale and changes nothing; an invoice is one row
(``stripe_invoices``), written by whichever of webhook and sync knows it newest, and a month's revenue is the
sum of its paid invoices, the same whatever the order.
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
    """Apply a verified event once. Returns what happened: applied, stale, duplicate or ignored."""
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
    at = _ts(event.get("created")) or datetime.now(UTC).replace(tzinfo=None)
    if kind in SUBSCRIPTION_EVENTS or kind == "customer.subscription.deleted":
        user = _user_of(store, obj.get("customer"), obj.get("metadata"))
        if user is None:
            return "ignored"
        newer = store.scalar("SELECT stripe_event_at FROM user_subscriptions WHERE user_id = ?", [user])
        if newer is not None and newer > at:
            return "stale"  # a later event (or sync) already set this user's subscription
        deleted = kind == "customer.subscription.deleted" or obj.get("status") == "canceled"
        tier_name = "free" if deleted else _tier_of(store, obj, tiers)
        if tier_name is None:
            return "ignored"
        tier = tiers.get(tier_name)
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
                at,
            ],
        )
        return "applied"
    if kind in INVOICE_EVENTS:
        user = _user_of(store, obj.get("customer"), obj.get("metadata"))
        if user is None:
            return "ignored"
        status = INVOICE_EVENTS[kind] if kind != "invoice.updated" else str(obj.get("status") or "open")
        written = record_invoice(store, user, obj, status, at)
        return "applied" if written else "stale"
    return "ignored"


# invoice event -> the invoice's status it reports (invoice.updated: the object's own)
INVOICE_EVENTS = {
    "invoice.paid": "paid",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
    "invoice.updated": "",
}


def record_invoice(store: Store, user: str, invoice: Any, status: str, at: datetime) -> bool:
    """Keep an invoice as of ``at`` unless something newer already set it; then the month's revenue is again
    the sum of the user's paid invoices. Returns whether the invoice was written. Run it inside the caller's
    transaction (a webhook's, or a sync's around all its invoices)."""
    created = _ts(invoice.get("created")) or at
    month = date(created.year, created.month, 1)
    amount = int(invoice.get("amount_paid") or 0) if status == "paid" else 0
    known = store.scalar("SELECT event_at FROM stripe_invoices WHERE invoice_id = ?", [invoice["id"]])
    if known is not None and known > at:
        return False
    store.execute(
        "INSERT INTO stripe_invoices (invoice_id, user_id, month, amount_cents, status, event_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (invoice_id) DO UPDATE SET amount_cents = excluded.amount_cents,"
        " status = excluded.status, event_at = excluded.event_at, recorded_at = now()",
        [invoice["id"], user, month, amount, status, at],
    )
    refresh_revenue(store, user, month)
    return True


def refresh_revenue(store: Store, user: str, month: date) -> None:
    """The user's Stripe revenue for a month: the sum of its paid invoices (no row when there is none)."""
    total = store.fetchone(
        "SELECT sum(amount_cents) AS amount, max(invoice_id) AS invoice FROM stripe_invoices"
        " WHERE user_id = ? AND month = ? AND status = 'paid'",
        [user, month],
    )
    store.execute("DELETE FROM revenue WHERE month = ? AND user_id = ? AND source = 'stripe'", [month, user])
    if total is None or total["amount"] is None:
        return
    tier = store.scalar("SELECT tier FROM user_subscriptions WHERE user_id = ?", [user]) or "free"
    store.execute(
        "INSERT INTO revenue (month, user_id, tier, amount_cents, source, stripe_invoice_id)"
        " VALUES (?, ?, ?, ?, 'stripe', ?)",
        [month, user, tier, int(total["amount"]), total["invoice"]],
    )


def handle_webhook(
    store: Store, payload: bytes, signature: str | None, secret: str, *, tolerance: int = DEFAULT_TOLERANCE
) -> str:
    """Verify and apply one webhook delivery (the API route's whole job)."""
    verify(payload, signature, secret, tolerance=tolerance)
    return apply_event(store, json.loads(payload))  # the verified bytes, as plain dicts
