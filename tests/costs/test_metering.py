"""Hourly metering end to end: real PostgreSQL and SQLite app databases and edge counters into the ledger,
costs and margins out, over-quota apps suspended through the caller's callback."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from engine.config import Settings
from engine.costs.rollup import cost_month
from engine.store import Store
from pipelines.billing import close_previous_month, sync_revenue
from pipelines.metering import collect_hour, enforce_quotas, local_sources
from tests.costs.conftest import add_app
from tests.costs.test_sources import admin_url, app_database, run_workload  # noqa: F401

HOUR = datetime(2026, 10, 5, 13)


@dataclass(frozen=True)
class Traffic:
    requests: int
    bytes_out: int


class FakeEdge:
    def __init__(self) -> None:
        self.counters: dict[str, Traffic] = {}

    def usage_counters(self) -> dict[str, Traffic]:
        return dict(self.counters)


def test_metered_local_apps_are_costed_and_over_quota_free_apps_suspended(
    store: Store,
    tmp_path: Path,
    app_database: str,  # noqa: F811
) -> None:
    settings = Settings(workspace=tmp_path, postgres_admin_url=admin_url())
    pg_app = add_app(store, "pg-app", user_id="biz", tier="business", database_provider="local-postgres")
    lite_app = add_app(store, "lite-app", user_id="free-user", tier="free", database_provider="local-libsql")
    store.execute(
        "UPDATE deployed_apps SET database_id = ? WHERE CAST(id AS TEXT) = ?", [app_database, pg_app]
    )
    store.execute("UPDATE deployed_apps SET database_id = 'lite.db' WHERE CAST(id AS TEXT) = ?", [lite_app])
    with sqlite3.connect(tmp_path / "lite.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    run_workload(app_database, ["CREATE TABLE t (x int) WITH (autovacuum_enabled = false)"])
    edge = FakeEdge()
    edge.counters = {"pg-app": Traffic(10, 1_000), "lite-app": Traffic(5, 500)}
    sources = local_sources(store, settings, edge=edge)

    first = collect_hour(store, settings, hour_start=HOUR, sources=sources)
    assert first.errors == {} and first.ingested.added == 4  # postgres, sqlite file and edge (2 apps)
    run_workload(app_database, ["INSERT INTO t SELECT generate_series(1, 40)", "SELECT * FROM t"])
    edge.counters = {"pg-app": Traffic(30, 4_000), "lite-app": Traffic(200_005, 10_000_500)}
    second = collect_hour(store, settings, hour_start=HOUR + timedelta(hours=1), sources=sources)
    again = collect_hour(store, settings, hour_start=HOUR + timedelta(hours=1), sources=sources)
    assert second.ingested.added == 4 and again.ingested.added == 0

    costs = cost_month(store, "2026-10")
    usage = {row["name"]: row for row in costs.by("app")}
    assert usage["pg-app"]["usage"]["neon"]["db_rows_read"] == 40
    assert usage["pg-app"]["usage"]["neon"]["db_rows_written"] == 40
    assert usage["pg-app"]["usage"]["cloudflare"]["requests"] == 20
    assert usage["lite-app"]["usage"]["turso"]["db_rows_read"] is None  # not measured, not zero
    assert usage["lite-app"]["usage"]["cloudflare"]["requests"] == 200_000
    assert sum(r["cost_cents"] for r in usage.values()) == costs.total_cents()

    suspended: list[str] = []
    notified: list[str] = []
    actions = enforce_quotas(
        store,
        month=costs.month,
        notify=lambda a: notified.append(a.app_id),
        suspend=lambda app_id, reason: suspended.append(app_id),
    )
    assert suspended == [lite_app] and notified == [lite_app]
    assert "requests 200,000 > 100,000" in actions[0].reason
    assert enforce_quotas(store, month=costs.month, notify=lambda a: None, suspend=lambda *_: None) == []

    assert sync_revenue(store, settings, month=costs.month)["source"] == "list_price"
    waiting = close_previous_month(store, settings, now=datetime(2026, 11, 1, 0, 5))
    assert not waiting["closed"] and "late readings" in waiting["reason"]
    closed = close_previous_month(store, settings, now=datetime(2026, 11, 3, 0, 5))
    assert closed["closed"] and closed["total_cents"] == costs.total_cents()
