"""Tier enforcement: refused deploys name the limit and the tier that lifts it; over-quota apps are acted on."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine.costs.ledger import ingest
from engine.costs.rollup import cost_month, parse_month
from engine.costs.tiers import check_deploy_allowed, over_quota, record_action, set_spend_cap
from engine.costs.usage import Reading
from engine.errors import TierLimitExceeded
from engine.store import Store
from tests.costs.conftest import add_app, subscribe


def test_app_count_limit_names_the_tier_that_lifts_it(store: Store) -> None:
    subscribe(store, "ada", "starter")
    for i in range(3):
        add_app(store, f"app-{i}", user_id="ada")
    add_app(store, "old", user_id="ada", status="destroyed")  # destroyed apps do not count
    with pytest.raises(TierLimitExceeded) as refused:
        check_deploy_allowed(store, "ada", None, "turso", custom_domain=False)
    message = str(refused.value)
    assert (
        "max_deployed_apps" in message
        and "starter tier allows 3" in message
        and "the pro tier allows 10" in message
    )
    check_deploy_allowed(
        store, "ada", None, "turso", custom_domain=False, app_name="app-1"
    )  # a redeploy is fine
    check_deploy_allowed(store, "ada", "pro", "turso", custom_domain=False)


def test_database_provider_and_custom_domain_limits(store: Store) -> None:
    with pytest.raises(
        TierLimitExceeded, match=r"does not include the 'neon' database.*the business tier includes it"
    ):
        check_deploy_allowed(store, "bob", "pro", "neon", custom_domain=False)
    with pytest.raises(TierLimitExceeded, match=r"max_custom_domains.*the pro tier allows 10"):
        check_deploy_allowed(store, "bob", "starter", "turso", custom_domain=True)
    check_deploy_allowed(store, "bob", "business", "neon", custom_domain=True)
    with pytest.raises(TierLimitExceeded, match="free tier allows 1 deployed app"):
        add_app(store, "first", user_id="carol", tier="free")
        check_deploy_allowed(store, "carol", None, "turso", custom_domain=False)


def test_over_quota_free_app_is_suspended_paid_app_notified_once(store: Store) -> None:
    subscribe(store, "paid", "starter")
    free_app = add_app(store, "free-app", user_id="free-user", tier="free")
    paid_app = add_app(store, "paid-app", user_id="paid", tier="starter")
    quiet_app = add_app(store, "quiet", user_id="paid", tier="starter")
    hour = datetime(2026, 10, 1, 0)
    ingest(
        store,
        [
            Reading(free_app, "local", "edge", hour, {"requests": 150_000}),
            Reading(paid_app, "local", "edge", hour, {"requests": 2_000_000}),
            Reading(quiet_app, "local", "edge", hour, {"requests": 10}),
        ],
    )
    month = parse_month("2026-10")
    costs = cost_month(store, month)
    actions = over_quota(store, month, costs.usage, costs.apps, costs.app_cents())
    assert {(a.app_id, a.action) for a in actions} == {
        (free_app, "notify"),
        (free_app, "suspend"),
        (paid_app, "notify"),
    }
    assert "requests 150,000 > 100,000" in next(a.reason for a in actions if a.app_id == free_app)
    for action in actions:
        record_action(store, month, action)
    assert over_quota(store, month, costs.usage, costs.apps, costs.app_cents()) == []


def test_spend_cap_suspends_a_paid_users_apps(store: Store) -> None:
    subscribe(store, "paid", "pro")
    app = add_app(store, "busy", user_id="paid", tier="pro")
    set_spend_cap(store, "paid", 100)
    ingest(store, [Reading(app, "local", "edge", datetime(2026, 10, 1), {"requests": 5_000_000})])
    month = parse_month("2026-10")
    costs = cost_month(store, month)
    assert costs.app_cents()[app] > 100
    actions = over_quota(store, month, costs.usage, costs.apps, costs.app_cents())
    assert {a.action for a in actions} == {"notify", "suspend"}
    assert "over the cap of 100 cents" in actions[0].reason
