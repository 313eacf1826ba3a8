"""Billing and usage over the engine's HTTP API: a subscription created through the API (Stripe emulator), a
platform reading usage and cost of its own apps only (the plan's UsageStats panel) and subscribing its own user,
and the provider accounts' headroom the Apps page shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from engine.auth import issue_token
from engine.config import Settings
from engine.costs.ledger import ingest
from engine.costs.usage import Reading
from engine.service import Engine
from tests.costs.conftest import add_app
from tests.emulators.stripe import StripeEmulator
from tests.servers.asgi import serve


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Engine, str, StripeEmulator]]:
    stripe_emulator = StripeEmulator()
    with serve(stripe_emulator.app) as stripe_url:
        engine = Engine(
            Settings(
                workspace=tmp_path / "ws",
                edge_port=0,
                stripe_api_url=stripe_url,
                STRIPE_API_KEY=stripe_emulator.api_key,
            )
        )
        url = engine.start_in_thread()
        try:
            yield engine, url, stripe_emulator
        finally:
            engine.stop_thread()


def _headers(engine: Engine, role: str, principal: str = "operator") -> dict[str, str]:
    token = issue_token(engine.store, role=role, principal=principal, name=f"{role}-{principal}")
    return {"Authorization": f"Bearer {token}"}


def test_a_subscription_is_created_through_the_api(api: tuple[Engine, str, StripeEmulator]) -> None:
    engine, url, stripe_emulator = api
    operator = _headers(engine, "operator")
    created = httpx.post(
        f"{url}/api/billing/subscriptions", json={"user": "ada", "tier": "pro"}, headers=operator
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["subscription_id"].startswith("sub_") and body["tier_requested"] == "pro"
    subscription = stripe_emulator.objects["subscription"][body["subscription_id"]]
    assert subscription["metadata"] == {"launchdeck_user_id": "ada", "tier": "pro"}
    row = engine.store.fetchone(
        "SELECT stripe_customer_id, stripe_subscription_id FROM user_subscriptions WHERE user_id = 'ada'"
    )
    assert row is not None and row["stripe_subscription_id"] == body["subscription_id"]

    refused = httpx.post(
        f"{url}/api/billing/subscriptions", json={"user": "ada", "tier": "gold"}, headers=operator
    )
    assert refused.status_code == 422 and "unknown tier 'gold'" in refused.text

    platform = _headers(engine, "platform", "builder")
    own = httpx.post(
        f"{url}/api/billing/subscriptions", json={"user": "builder", "tier": "starter"}, headers=platform
    )
    assert own.status_code == 201, own.text
    other = httpx.post(
        f"{url}/api/billing/subscriptions", json={"user": "ada", "tier": "starter"}, headers=platform
    )
    assert other.status_code == 404  # another owner's user is not this token's to subscribe
    finance = httpx.post(
        f"{url}/api/billing/subscriptions",
        json={"user": "ada", "tier": "pro"},
        headers=_headers(engine, "finance"),
    )
    assert finance.status_code == 403


def test_a_platform_reads_usage_and_cost_of_its_own_apps_only(
    api: tuple[Engine, str, StripeEmulator],
) -> None:
    engine, url, _ = api
    mine = add_app(engine.store, "builder-shop", user_id="builder")
    users = add_app(engine.store, "ada-notes", user_id="builder/ada")  # the platform's own end user
    theirs = add_app(engine.store, "other-blog", user_id="someone-else")
    ingest(
        engine.store,
        [
            Reading(
                mine,
                "local",
                "edge",
                datetime(2026, 11, 2, 5),
                {"requests": 250_000, "bandwidth_bytes": 10**9},
            ),
            Reading(users, "local", "edge", datetime(2026, 11, 2, 5), {"requests": 7}),
            Reading(theirs, "local", "edge", datetime(2026, 11, 2, 5), {"requests": 9}),
        ],
    )
    platform = _headers(engine, "platform", "builder")
    answer = httpx.get(f"{url}/api/usage/apps", params={"month": "2026-11"}, headers=platform)
    assert answer.status_code == 200, answer.text
    app, user_app = sorted(answer.json()["apps"], key=lambda a: a["app"] != "builder-shop")
    assert app["app"] == "builder-shop" and app["usage"]["requests"] == 250_000
    assert user_app["app"] == "ada-notes" and user_app["usage"]["requests"] == 7
    assert app["quotas"]["requests"] == {"used": 250_000, "limit": 1_000_000, "percent": 25.0}  # starter tier
    assert isinstance(app["cost_cents"], int) and app["railway_reserved_cents"] == 1505  # $15 + 1 GB egress
    everyone = httpx.get(
        f"{url}/api/usage/apps", params={"month": "2026-11"}, headers=_headers(engine, "finance")
    )
    assert {a["app"] for a in everyone.json()["apps"]} == {"builder-shop", "ada-notes", "other-blog"}
    one_user = httpx.get(
        f"{url}/api/usage/apps", params={"month": "2026-11", "owner": "builder/ada"}, headers=platform
    )
    assert [a["app"] for a in one_user.json()["apps"]] == ["ada-notes"]
    someone_elses = httpx.get(
        f"{url}/api/usage/apps", params={"month": "2026-11", "owner": "someone-else"}, headers=platform
    )
    assert someone_elses.status_code == 404


def test_provider_headroom_for_the_apps_page(api: tuple[Engine, str, StripeEmulator]) -> None:
    engine, url, _ = api
    for i in range(3):
        add_app(engine.store, f"n-{i}", database_provider="neon")
        engine.store.execute("UPDATE deployed_apps SET database_id = 'prj' WHERE name = ?", [f"n-{i}"])
    rows = httpx.get(f"{url}/api/providers/headroom", headers=_headers(engine, "finance")).json()
    by = {r["provider"]: r for r in rows}
    assert by["neon"] == {
        "provider": "neon",
        "plan": "launch",
        "limit_name": "projects",
        "limit": 100,
        "used": 3,
        "left": 97,
        "lifted_by": "the scale plan (1000 projects)",
    }
    assert by["cloudflare"]["limit"] == 500 and by["cloudflare-platforms"]["limit"] is None
    assert by["turso"]["limit"] is None  # Developer: unlimited databases
