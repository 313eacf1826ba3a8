"""Stripe revenue against the emulator: tier prices, customers, subscriptions, invoices, meter events, and
webhook signatures checked by the stripe package itself (tolerance, replay)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date

import pytest
import stripe

from engine.billing.stripe_billing import StripeBilling
from engine.billing.webhooks import handle_webhook
from engine.costs.margins import margins_month
from engine.errors import AuthError, ProviderError, ProviderUnavailable
from engine.store import Store
from tests.costs.conftest import add_app
from tests.emulators.stripe import StripeEmulator, request_params, response_problems, spec_template
from tests.servers.asgi import serve

SECRET = "whsec_test_secret"


@pytest.fixture
def emulator() -> Iterator[tuple[StripeEmulator, str]]:
    emu = StripeEmulator()
    with serve(emu.app) as url:
        yield emu, url


@pytest.fixture
def billing(emulator: tuple[StripeEmulator, str]) -> StripeBilling:
    emu, url = emulator
    return StripeBilling(emu.api_key, url)


def test_subscription_webhook_changes_the_tier_and_invoices_become_revenue(
    store: Store, emulator: tuple[StripeEmulator, str], billing: StripeBilling
) -> None:
    emu, _ = emulator
    prices = billing.ensure_tier_prices(store)
    assert set(prices) == {"starter", "pro", "business"}
    assert billing.ensure_tier_prices(store) == prices  # found again, not created twice
    assert len(emu.objects["product"]) == 3
    subscription_id = billing.subscribe(store, "ada", "pro")
    assert billing.ensure_customer(store, "ada") == store.scalar(
        "SELECT stripe_customer_id FROM user_subscriptions WHERE user_id = 'ada'"
    )
    assert (
        store.scalar("SELECT tier FROM user_subscriptions WHERE user_id = 'ada'") == "free"
    )  # until the webhook
    body, signature = emu.signed_event(
        SECRET, "customer.subscription.created", emu.objects["subscription"][subscription_id]
    )
    assert handle_webhook(store, body, signature, SECRET) == "applied"
    row = store.fetchone(
        "SELECT tier, status, max_deployed_apps FROM user_subscriptions WHERE user_id = 'ada'"
    )
    assert row == {"tier": "pro", "status": "active", "max_deployed_apps": 10}
    month = date.today().replace(day=1)
    assert billing.sync_revenue(store, month) == 1
    add_app(store, "shop", user_id="ada", tier="pro")
    margins = margins_month(store, month)
    assert margins.revenue_source == "stripe"
    assert {t["tier"]: t["revenue_cents"] for t in margins.tiers}["pro"] == 1500


def test_webhook_signature_tolerance_and_replay(store: Store, emulator: tuple[StripeEmulator, str]) -> None:
    emu, _ = emulator
    subscription = {
        "id": "sub_x",
        "object": "subscription",
        "customer": "cus_x",
        "status": "canceled",
        "metadata": {"launchdeck_user_id": "bob"},
        "items": {"data": []},
    }
    body, signature = emu.signed_event(SECRET, "customer.subscription.deleted", subscription)
    with pytest.raises(AuthError, match="Stripe-Signature rejected"):
        handle_webhook(store, body, signature, "whsec_wrong")
    tampered = body.replace(b"canceled", b"active!!")
    with pytest.raises(AuthError, match="Stripe-Signature rejected"):
        handle_webhook(store, tampered, signature, SECRET)
    old_body, old_signature = emu.signed_event(
        SECRET, "customer.subscription.deleted", subscription, timestamp=int(time.time()) - 600
    )
    with pytest.raises(AuthError, match="tolerance"):
        handle_webhook(store, old_body, old_signature, SECRET)
    assert handle_webhook(store, old_body, old_signature, SECRET, tolerance=900) == "applied"
    assert handle_webhook(store, body, signature, SECRET) == "applied"
    assert handle_webhook(store, body, signature, SECRET) == "duplicate"  # replay inside the window
    assert store.fetchone("SELECT tier, status FROM user_subscriptions WHERE user_id = 'bob'") == {
        "tier": "free",
        "status": "canceled",
    }
    with pytest.raises(AuthError, match="missing"):
        handle_webhook(store, body, None, SECRET)


def test_meter_events_send_only_the_increase_with_idempotent_identifiers(
    store: Store, emulator: tuple[StripeEmulator, str], billing: StripeBilling
) -> None:
    emu, _ = emulator
    billing.ensure_meter()
    assert billing.ensure_meter() == next(iter(emu.objects["billing.meter"]))
    month = date(2026, 11, 1)
    assert billing.report_overage(store, month, "ada", "app-1", "requests", 500) == 500
    assert billing.report_overage(store, month, "ada", "app-1", "requests", 500) == 0
    assert billing.report_overage(store, month, "ada", "app-1", "requests", 800) == 300
    values = sorted(int(e["payload"]["value"]) for e in emu.meter_events.values())
    assert values == [300, 500]  # Stripe sums them: 800 over quota, never double-counted
    store.execute(
        "DELETE FROM stripe_meter_events"
    )  # a crash lost our record: Stripe's identifier still holds
    assert billing.report_overage(store, month, "ada", "app-1", "requests", 800) == 800
    assert len(emu.meter_events) == 2


def test_stripe_errors_map_to_transient_and_terminal(
    store: Store, emulator: tuple[StripeEmulator, str], billing: StripeBilling
) -> None:
    emu, url = emulator
    emu.faults.add(429, times=1, retry_after=2, path="/v1/customers")
    with pytest.raises(ProviderUnavailable) as limited:
        billing.ensure_customer(store, "ada")
    assert limited.value.retry_after == 2.0
    emu.faults.add(503, times=1, path="/v1/customers")
    with pytest.raises(ProviderUnavailable):
        billing.ensure_customer(store, "ada")
    emu.faults.add(None, times=1, delay=2.0, path="/v1/customers")
    with pytest.raises(ProviderUnavailable, match="create customer"):
        StripeBilling(emu.api_key, url, timeout=0.5).ensure_customer(store, "ada")  # a timeout is transient
    assert billing.ensure_customer(store, "ada").startswith("cus_")
    with pytest.raises(ProviderError, match="Invalid API Key"):
        StripeBilling("sk_test_wrong", url).ensure_customer(store, "zed")


def test_requests_use_only_parameters_the_stripe_spec_defines(
    store: Store, emulator: tuple[StripeEmulator, str], billing: StripeBilling
) -> None:
    emu, _ = emulator
    billing.subscribe(store, "ada", "starter")
    billing.sync_revenue(store, date.today().replace(day=1))
    posts = [e for e in emu.recorder.exchanges if e.path.startswith("/v1/")]
    assert {e.path for e in posts} >= {
        "/v1/customers",
        "/v1/products",
        "/v1/prices",
        "/v1/subscriptions",
        "/v1/invoices",
    }
    assert all(e.status == 200 for e in posts), [(e.path, e.response_body) for e in posts if e.status != 200]
    spec = emu.spec
    problems = [
        p for e in posts for p in response_problems(spec, e.path, e.method, json.loads(e.response_body))
    ]
    assert problems == []  # every answer carries the properties the spec requires
    assert "name" in (request_params(spec, "/v1/products", "POST") or set())
    assert spec_template(spec, "/v1/subscriptions/sub_1") == "/v1/subscriptions/{subscription_exposed_id}"
    with pytest.raises(stripe.InvalidRequestError, match="Received unknown parameter: colour"):
        billing.client.raw_request("post", "/v1/customers", colour="blue")
