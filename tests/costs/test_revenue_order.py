"""A month's Stripe revenue does not depend on the order things arrive in: webhooks in any order, delivered
twice, before or after a revenue sync, leave the same revenue; an older subscription event arriving late leaves
a newer tier alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.billing.webhooks import apply_event, record_invoice
from engine.store import Store

MONTH = date(2026, 11, 1)
USERS = ("ada", "bob", "cy")
START = datetime(2026, 11, 3, tzinfo=UTC)


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _store() -> Store:
    store = Store(":memory:")
    for user in USERS:
        store.execute(
            "INSERT INTO user_subscriptions (user_id, tier, stripe_customer_id) VALUES (?, 'pro', ?)",
            [user, f"cus_{user}"],
        )
    return store


def _invoice(number: int, user: str, amount: int) -> dict[str, Any]:
    created = START + timedelta(days=number)
    return {
        "id": f"in_{number}",
        "customer": f"cus_{user}",
        "amount_paid": amount,
        "created": _stamp(created),
    }


def _paid_event(invoice: dict[str, Any], copy: int) -> dict[str, Any]:
    # Stripe's event is created when the invoice is paid (a minute after it was created); a redelivery is the
    # same event id.
    return {
        "id": f"evt_{invoice['id']}",
        "type": "invoice.paid",
        "created": invoice["created"] + 60,
        "data": {"object": invoice},
        "_copy": copy,
    }


def _sync(store: Store, invoices: list[dict[str, Any]], now: datetime) -> None:
    """What ``StripeBilling.sync_revenue`` does with Stripe's list of paid invoices."""
    users = {f"cus_{u}": u for u in USERS}
    with store.transaction():
        for invoice in invoices:
            record_invoice(store, users[invoice["customer"]], invoice, "paid", now.replace(tzinfo=None))


def _revenue(store: Store) -> dict[str, int]:
    return {
        r["user_id"]: int(r["amount_cents"])
        for r in store.fetchall(
            "SELECT user_id, amount_cents FROM revenue WHERE month = ? AND source = 'stripe'", [MONTH]
        )
    }


invoices_strategy = st.lists(
    st.tuples(st.sampled_from(USERS), st.integers(min_value=1, max_value=100_000)), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), bought=invoices_strategy)
def test_revenue_is_the_same_whatever_order_webhooks_and_syncs_arrive_in(
    data: st.DataObject, bought: list[tuple[str, int]]
) -> None:
    invoices = [_invoice(i, user, amount) for i, (user, amount) in enumerate(bought)]
    expected: dict[str, int] = {}
    for user, amount in bought:
        expected[user] = expected.get(user, 0) + amount
    deliveries: list[Any] = [_paid_event(inv, 0) for inv in invoices]
    deliveries += [_paid_event(inv, 1) for inv in invoices if data.draw(st.booleans(), label="redelivered")]
    syncs = data.draw(st.integers(min_value=0, max_value=2), label="syncs")
    order = data.draw(st.permutations([*deliveries, *(["sync"] * syncs)]), label="order")

    store = _store()
    try:
        now = datetime(2026, 12, 1, tzinfo=UTC)  # every invoice was paid before anything below arrives
        for item in order:
            now += timedelta(seconds=1)
            if item == "sync":
                _sync(store, invoices, now)
            else:
                apply_event(store, item)
        assert _revenue(store) == expected
    finally:
        store.close()


def test_a_late_webhook_after_a_sync_is_not_counted_twice() -> None:
    store = _store()
    try:
        invoice = _invoice(1, "ada", 1500)
        _sync(store, [invoice], datetime(2026, 12, 1, tzinfo=UTC))
        assert apply_event(store, _paid_event(invoice, 0)) == "stale"  # paid before the sync read it
        assert _revenue(store) == {"ada": 1500}
        voided = {**invoice, "amount_paid": 0}
        event = {
            "id": "evt_void",
            "type": "invoice.voided",
            "created": _stamp(datetime(2026, 12, 2, tzinfo=UTC)),
        }
        assert apply_event(store, {**event, "data": {"object": voided}}) == "applied"
        assert _revenue(store) == {}  # a voided invoice is no revenue
    finally:
        store.close()


def _subscription_event(event_id: str, tier: str, at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "customer.subscription.updated",
        "created": _stamp(at),
        "data": {
            "object": {"id": "sub_1", "customer": "cus_ada", "status": "active", "metadata": {"tier": tier}}
        },
    }


def test_subscription_events_apply_in_stripes_order_not_delivery_order() -> None:
    store = _store()
    try:
        assert (
            apply_event(store, _subscription_event("evt_2", "business", START + timedelta(hours=2)))
            == "applied"
        )
        assert (
            apply_event(store, _subscription_event("evt_1", "starter", START + timedelta(hours=1))) == "stale"
        )
        assert store.scalar("SELECT tier FROM user_subscriptions WHERE user_id = 'ada'") == "business"
    finally:
        store.close()
