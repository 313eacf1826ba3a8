"""What apps actually use: CPU time and memory of real app servers on the edge host, per hour, into the
ledger; and the Railway baseline priced from that instead of from a reserved size."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from engine.config import Settings
from engine.costs.ledger import ingest
from engine.costs.rollup import RAILWAY_MEASURED, RAILWAY_RESERVED_ONLY, cost_month
from engine.costs.sheets import default_catalog
from engine.costs.sources.edge import EdgeResourceSource
from engine.costs.usage import Reading
from engine.edge import EdgeHost
from engine.store import Store
from pipelines.metering import collect_hour
from tests.costs.conftest import add_app
from tests.edge.conftest import fetch, node_server

MB = 1_000_000


@pytest.fixture
def busy_edge(tmp_path: Path) -> Iterator[EdgeHost]:
    host = EdgeHost(tmp_path / "workspace", 0, idle_seconds=None)  # sandboxed, as every app server is
    host.start()
    try:
        yield host
    finally:
        host.stop()


def test_a_real_servers_cpu_and_memory_land_in_the_ledger_once_per_hour(
    busy_edge: EdgeHost, store: Store, tmp_path: Path
) -> None:
    busy_edge.stage("busy", "d1", None, node_server(tmp_path / "srv", "v1"))
    busy_edge.promote("busy", "d1")
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    with httpx.Client(trust_env=False, timeout=30) as client:
        for _ in range(400):  # a bounded load: 400 requests with 20 kB bodies
            assert fetch(client, busy_edge, "busy.localhost", "/echo", method="POST", content=b"x" * 20_000)
    # The housekeeping thread samples every few seconds; wait for two samples after the load (memory is
    # integrated between samples).
    deadline = time.monotonic() + 30
    seen = busy_edge.resource_hour(this_hour.isoformat()).get("busy")
    while time.monotonic() < deadline:
        now = busy_edge.resource_hour(this_hour.isoformat()).get("busy")
        if now is not None and seen is not None and now.memory_byte_seconds > seen.memory_byte_seconds > 0:
            break
        seen = now if seen is None else seen
        time.sleep(0.5)
    use = busy_edge.resource_hour(this_hour.isoformat())["busy"]
    assert use.cpu_ms > 100  # Node's start plus 400 requests: well over a tenth of a CPU second
    assert 10 * MB < use.memory_peak_bytes < 2_000 * MB
    assert 0 < use.memory_avg_bytes <= use.memory_peak_bytes

    app_id = add_app(store, "busy")
    source = EdgeResourceSource(
        busy_edge.resource_hour,
        app_id_for=lambda name: app_id if name == "busy" else None,
        now=lambda: datetime.now(UTC) + timedelta(hours=1),  # as if the hour had ended
    )
    settings = Settings(workspace=tmp_path / "ws")
    first = collect_hour(store, settings, hour_start=this_hour, sources=[source])
    again = collect_hour(store, settings, hour_start=this_hour, sources=[source])

    assert (first.ingested.added, again.ingested.added, again.ingested.duplicates) == (1, 0, 1)
    row = store.fetchone(
        "SELECT cpu_ms, memory_peak_bytes, memory_avg_bytes, idempotency_key FROM usage_ledger WHERE app_id = ?",
        [app_id],
    )
    assert row is not None
    assert row["cpu_ms"] >= use.cpu_ms and row["memory_peak_bytes"] >= use.memory_peak_bytes
    assert row["idempotency_key"] == f"edge-resources|{app_id}|{this_hour:%Y-%m-%dT%H:%M:%S}"


def test_an_hour_still_running_is_not_collected(busy_edge: EdgeHost) -> None:
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    source = EdgeResourceSource(lambda hour: {"a": _Use()})
    assert source.collect(this_hour) == []
    assert len(source.collect(this_hour - timedelta(hours=1))) == 1


class _Use:
    cpu_ms = 5
    memory_peak_bytes = 60 * MB
    memory_avg_bytes = 50 * MB


def _idle_month(store: Store, app_id: str, month: date) -> None:
    """Every hour of a month as an idle Node server measures: a few ms of CPU, ~55 MB resident."""
    start = datetime(month.year, month.month, 1)
    hours = (datetime(month.year + month.month // 12, month.month % 12 + 1, 1) - start) // timedelta(hours=1)
    ingest(
        store,
        [
            Reading(
                app_id,
                "local",
                "edge-resources",
                start + timedelta(hours=h),
                {"cpu_ms": 40, "memory_peak_bytes": 60 * MB, "memory_avg_bytes": 55 * MB},
            )
            for h in range(hours)
        ],
    )


def test_an_idle_apps_measured_baseline_is_below_the_reserved_one_to_the_cent(store: Store) -> None:
    idle = add_app(store, "idle")
    never_ran = add_app(store, "elsewhere", hosting_provider="vercel")
    _idle_month(store, idle, date(2026, 11, 1))

    costs = cost_month(store, "2026-11")
    rows = {r["name"]: r for r in costs.by("app")}

    baseline = default_catalog().plan_for("railway", date(2026, 11, 1))[1].baseline
    assert baseline is not None and baseline.vcpu_minute is not None and baseline.memory_gb_minute is not None
    # 720 hours: 28.8 CPU seconds = 0.48 vCPU-minutes; 55 MB x 720 h = 39.6 GB-hours = 2,376 GB-minutes.
    from decimal import Decimal

    expected = Decimal("0.48") * baseline.vcpu_minute + Decimal("2376") * baseline.memory_gb_minute
    assert rows["idle"]["railway_measured_cents"] == round(expected * 100) == 55
    assert rows["idle"]["railway_basis"] == RAILWAY_MEASURED
    assert rows["idle"]["railway_measured_cents"] < rows["idle"]["railway_baseline_cents"] == 1500
    # An app that never ran here has no measurement: the reserved size, said so.
    assert rows["elsewhere"]["railway_measured_cents"] is None
    assert rows["elsewhere"]["railway_basis"] == RAILWAY_RESERVED_ONLY
    assert never_ran in costs.railway_cents
    (tier,) = [r for r in costs.by("tier") if r["tier"] == "starter"]
    assert tier["railway_measured_cents"] == 55 + 1500 and tier["apps_measured"] == 1


def test_a_closed_month_keeps_both_baselines_and_writes_deployment_usage(store: Store) -> None:
    idle = add_app(store, "idle")
    _idle_month(store, idle, date(2026, 10, 1))
    from engine.costs.closing import close_month

    open_month = {r["name"]: r for r in cost_month(store, "2026-10").by("app")}
    close_month(store, "2026-10", now=datetime(2026, 11, 5))
    frozen = {r["name"]: r for r in cost_month(store, "2026-10").by("app")}
    assert open_month["idle"]["railway_measured_cents"] == 57  # 744 hours in October
    assert frozen["idle"]["railway_measured_cents"] == 57 and frozen["idle"]["railway_baseline_cents"] == 1500
    row = store.fetchone(
        "SELECT period_start, period_end, total_cost_cents, hosting_cost_cents FROM deployment_usage"
        " WHERE CAST(deployed_app_id AS TEXT) = ?",
        [idle],
    )
    assert row is not None and row["period_start"].date() == date(2026, 10, 1)
    assert row["period_end"].date() == date(2026, 11, 1)
    assert row["total_cost_cents"] == sum(
        c for a, c in cost_month(store, "2026-10").app_cents().items() if a == idle
    )
