"""Provider plan limits, checked before anything is created: each refusal names the limit, the plan and what
lifts it; a redeploy of an app that already has its database or Worker takes nothing more."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from engine.costs.limits import check_room, cloudflare_mode, headroom, record_cloudflare_mode
from engine.costs.sheets import default_catalog
from engine.errors import PlanLimitReached
from engine.store import Store
from tests.costs.conftest import add_app

MONTH = date(2026, 12, 1)


def _fill(store: Store, provider: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        add_app(store, f"{provider}-{i}", database_provider=provider)
    store.execute("UPDATE deployed_apps SET database_id = name WHERE database_provider = ?", [provider])


def test_neon_projects(store: Store) -> None:
    _fill(store, "neon", 99)
    check_room(store, "neon", month=MONTH)  # the 100th fits
    _fill(store, "neon", 1, start=99)
    with pytest.raises(PlanLimitReached) as refused:
        check_room(store, "neon", month=MONTH)
    assert str(refused.value) == (
        "neon's launch plan allows 100 projects and Launchdeck's apps use 100: one more app does not fit; "
        "the scale plan (1000 projects) lifts it. Nothing was created."
    )


def test_turso_databases_on_the_free_plan(store: Store) -> None:
    catalog = default_catalog()
    free = dataclasses.replace(catalog, account={**catalog.account, "turso": "free"})
    _fill(store, "turso", 100)
    with pytest.raises(PlanLimitReached, match="turso's free plan allows 100 databases") as refused:
        check_room(store, "turso", catalog=free, month=MONTH)
    assert "the developer plan (unlimited databases) lifts it" in str(refused.value)
    check_room(store, "turso", month=MONTH)  # Developer (the account's plan): unlimited
    # A destroyed app's database is gone: it no longer counts.
    store.execute("UPDATE deployed_apps SET status = 'destroyed' WHERE name = 'turso-0'")
    check_room(store, "turso", catalog=free, month=MONTH)


def test_workers_per_account_and_the_switch_to_workers_for_platforms(store: Store) -> None:
    for i in range(500):
        add_app(store, f"w-{i}", hosting_provider="cloudflare")
        record_cloudflare_mode(store, f"w-{i}", "workers")
    with pytest.raises(PlanLimitReached, match="workers-paid plan allows 500 scripts") as refused:
        check_room(store, "cloudflare", month=MONTH)
    assert "Workers for Platforms" in str(refused.value)
    check_room(store, "cloudflare-platforms", month=MONTH)  # no per-account cap
    # auto: an app already hosted keeps its mode; a new one goes to the namespace past 90% of the cap.
    assert cloudflare_mode(store, "w-3", month=MONTH) == "workers"
    assert cloudflare_mode(store, "new-app", month=MONTH) == "platforms"
    assert cloudflare_mode(store, "new-app", setting="workers", month=MONTH) == "workers"
    assert cloudflare_mode(store, "new-app", platforms_after=1000, month=MONTH) == "workers"
    rows = {r.provider: r for r in headroom(store, month=MONTH)}
    assert (rows["cloudflare"].used, rows["cloudflare"].left) == (500, 0)
    record_cloudflare_mode(store, "new-app", "platforms")  # the dispatch Worker is one more plain Worker
    add_app(store, "new-app", hosting_provider="cloudflare")
    assert {r.provider: r for r in headroom(store, month=MONTH)}["cloudflare"].used == 501
