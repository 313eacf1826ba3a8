"""Every cost in the ledger: Vercel usage (FOCUS billing charges), local build time, EAS builds and minutes,
store fees. Each source collected twice adds nothing the second time; a store fee is charged once per owner."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from engine.config import Settings
from engine.costs.rollup import cost_month
from engine.costs.sources.builds import LocalBuildSource, MobileCostSource
from engine.costs.sources.cloud import VercelUsageSource
from engine.mobile import costs as mobile_costs
from engine.providers.vercel import Vercel
from engine.store import Store
from pipelines.metering import collect_hour
from tests.costs.conftest import add_app
from tests.emulators.vercel import VercelEmulator
from tests.providers.conftest import FAST_RETRY, write_site
from tests.servers.asgi import serve

HOUR = datetime(2026, 12, 3, 14)


def collect_twice(store: Store, source: object, hour: datetime) -> tuple[int, int, int]:
    settings = Settings(workspace=Path("/nonexistent"))
    first = collect_hour(store, settings, hour_start=hour, sources=[source])  # type: ignore[list-item]
    again = collect_hour(store, settings, hour_start=hour, sources=[source])  # type: ignore[list-item]
    assert not first.errors and not again.errors
    return first.ingested.added, again.ingested.added, again.ingested.duplicates


@pytest.fixture
def vercel_site(tmp_path: Path) -> Iterator[tuple[Vercel, str]]:
    emulator = VercelEmulator()
    try:
        with serve(emulator.app) as url:
            client = Vercel(
                emulator.token, base_url=url, retry=FAST_RETRY, poll_interval=0.01, deploy_timeout=10
            )
            client.deploy("brochure", write_site(tmp_path / "site", {"index.html": "x" * 10_000}), {})
            yield client, client.production_url("brochure")
            client.close()
    finally:
        emulator.close()


def test_vercel_usage_from_its_billing_charges(store: Store, vercel_site: tuple[Vercel, str]) -> None:
    client, url = vercel_site
    parsed = httpx.URL(url)
    for _ in range(7):
        page = httpx.get(
            f"http://127.0.0.1:{parsed.port}/", headers={"Host": parsed.netloc.decode()}, timeout=10
        )
        assert page.status_code == 200
    app_id = add_app(store, "brochure", hosting_provider="vercel")
    source = VercelUsageSource(client, {app_id: "brochure"})
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    # Vercel reports days: today's usage is read from tomorrow (any hour of it), at today's first hour.
    assert collect_twice(store, source, today + timedelta(days=1, hours=5)) == (1, 0, 1)
    row = store.fetchone(
        "SELECT hour_start, requests, bandwidth_bytes FROM usage_ledger WHERE app_id = ?", [app_id]
    )
    assert row == {"hour_start": today, "requests": 7, "bandwidth_bytes": 70_000}


def _run(
    store: Store,
    app_id: str,
    pipeline: str,
    finished: datetime,
    state: dict[str, object],
    status: str = "succeeded",
) -> str:
    run = str(uuid.uuid4())
    store.execute(
        "INSERT INTO deployments (id, app_id, pipeline, status, params, state, requested_by, started_at, finished_at)"
        " VALUES (?, ?, ?, ?, '{}', ?, 'test', ?, ?)",
        [run, app_id, pipeline, status, json.dumps(state), finished - timedelta(minutes=9), finished],
    )
    return run


def test_local_build_time(store: Store) -> None:
    app_id = add_app(store, "shop")
    run = _run(store, app_id, "web", HOUR + timedelta(minutes=20), {})
    store.execute(
        "INSERT INTO step_runs (deployment_id, position, name, status, started_at, finished_at) VALUES"
        " (?, 4, 'build', 'succeeded', ?, ?)",
        [run, HOUR + timedelta(minutes=18), HOUR + timedelta(minutes=19, seconds=30)],
    )
    assert collect_twice(store, LocalBuildSource(store), HOUR) == (1, 0, 1)
    assert store.scalar("SELECT build_ms FROM usage_ledger WHERE app_id = ?", [app_id]) == 90_000


def _build(build_id: str, platform: str) -> dict[str, object]:
    return {
        "id": build_id,
        "platform": platform.upper(),
        "status": "FINISHED",
        "resourceClass": "MEDIUM",
        "workerStartedAt": "2026-12-03T14:01:00+00:00",
        "completedAt": "2026-12-03T14:13:00+00:00",
    }


def test_eas_builds_and_store_fees_charged_once_per_owner(store: Store) -> None:
    ios = add_app(store, "shop-ios")
    android = add_app(store, "shop-android")
    other_ios = add_app(store, "blog-ios")  # same owner (ada): the Apple membership is paid once a year
    for app_id, build_id, platform in (
        (ios, "b-1", "ios"),
        (android, "b-2", "android"),
        (other_ios, "b-3", "ios"),
    ):
        readings = mobile_costs.eas_build_readings(app_id, _build(build_id, platform))
        readings += mobile_costs.store_fee_readings(app_id, "ada", platform)
        _run(store, app_id, "mobile", HOUR + timedelta(minutes=30), {"cost_readings": readings})
    # A failed build is billed too: its readings are in the run's log, not its state.
    failed = _run(store, android, "mobile", HOUR + timedelta(minutes=40), {}, status="failed")
    for reading in mobile_costs.eas_build_readings(android, _build("b-4", "android")):
        store.execute(
            "INSERT INTO deployment_log (deployment_id, step, line) VALUES (?, 'eas-build', ?)",
            [failed, f"cost reading: {json.dumps(reading)}"],
        )

    added, again, duplicates = collect_twice(store, MobileCostSource(store), HOUR)
    assert (added, again) == (added, 0) and duplicates == added and added == 5
    rows = store.fetchall(
        "SELECT app_id, provider, builds_android, builds_ios, build_minutes, fee_cents FROM usage_ledger ORDER BY provider, app_id"
    )
    by = {(r["app_id"], r["provider"]): r for r in rows}
    assert by[(android, "eas")]["builds_android"] == 2 and by[(android, "eas")]["build_minutes"] == 24
    assert by[(ios, "eas")]["builds_ios"] == 1 and by[(other_ios, "eas")]["builds_ios"] == 1
    apple = [r for r in rows if r["provider"] == "apple"]
    assert len(apple) == 1 and apple[0]["fee_cents"] == 9900  # once for ada this year, not once per app
    (google,) = [r for r in rows if r["provider"] == "google"]
    assert google["fee_cents"] == 2500

    # A later hour with another submission by the same owner charges no second fee.
    later = HOUR + timedelta(hours=3)
    again_fee = mobile_costs.store_fee_readings(ios, "ada", "ios")
    _run(store, ios, "mobile", later + timedelta(minutes=5), {"cost_readings": again_fee})
    assert collect_twice(store, MobileCostSource(store), later) == (0, 0, 0)

    # Priced: EAS builds on the EAS sheet, Google's registration in the month it was paid.
    costs = cost_month(store, "2026-12")
    bills = {b.provider: b for b in costs.bills}
    assert bills["google"].components["fee_cents"] == 2500
    assert bills["eas"].usage_totals["builds_android"] == 2 and bills["eas"].usage_totals["builds_ios"] == 2
