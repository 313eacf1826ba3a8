"""The ledger: idempotent ingest, late readings, closed months frozen, months costed with their sheets."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.costs.closing import close_month
from engine.costs.ledger import ingest, usage_series
from engine.costs.margins import export_month, margins_month
from engine.costs.rollup import MonthCosts, cost_month
from engine.costs.usage import Reading
from engine.errors import Conflict, InputError
from engine.store import Store
from tests.costs.conftest import add_app, subscribe

HOUR = datetime(2026, 10, 5, 13)


def edge_reading(app_id: str, hour: datetime, requests: int, bytes_out: int = 1000) -> Reading:
    return Reading(app_id, "local", "edge", hour, {"requests": requests, "bandwidth_bytes": bytes_out})


def test_collecting_the_same_hour_twice_adds_nothing(store: Store) -> None:
    app = add_app(store, "shop")
    first = ingest(store, [edge_reading(app, HOUR, 10)])
    again = ingest(store, [edge_reading(app, HOUR, 99), edge_reading(app, HOUR, 7)])
    assert (first.added, again.added, again.duplicates) == (1, 0, 2)
    rows = store.fetchall("SELECT requests FROM usage_ledger")
    assert rows == [{"requests": 10}]


def test_the_ledger_shows_each_readings_idempotency_key(store: Store) -> None:
    app = add_app(store, "shop")
    readings = [edge_reading(app, HOUR, 10), Reading(app, "local", "postgres", HOUR, {"db_rows_read": 3})]
    ingest(store, readings)
    keys = [
        row["idempotency_key"]
        for row in store.fetchall("SELECT idempotency_key FROM usage_ledger ORDER BY 1")
    ]
    assert keys == sorted(r.idempotency_key for r in readings)


def test_a_replayed_batch_with_new_hours_adds_only_the_new_ones(store: Store) -> None:
    app = add_app(store, "shop")
    ingest(store, [edge_reading(app, HOUR + timedelta(hours=h), 10) for h in range(3)])
    replay = ingest(store, [edge_reading(app, HOUR + timedelta(hours=h), 1000) for h in range(5)])
    assert (replay.added, replay.duplicates) == (2, 3)
    assert store.scalar("SELECT sum(requests) FROM usage_ledger") == 3 * 10 + 2 * 1000
    assert store.scalar("SELECT sum(requests) FROM daily_usage") == 3 * 10 + 2 * 1000


def test_late_readings_count_until_the_month_is_closed(store: Store) -> None:
    app = add_app(store, "shop")
    ingest(store, [edge_reading(app, HOUR, 10)])
    late = ingest(store, [edge_reading(app, HOUR - timedelta(days=3), 5)])
    assert late.added == 1
    before = cost_month(store, "2026-10").by("app")[0]["usage"]["cloudflare"]["requests"]
    assert before == 15
    close_month(store, "2026-10", now=datetime(2026, 11, 2))
    refused = ingest(store, [edge_reading(app, HOUR - timedelta(days=1), 1_000_000)])
    assert (refused.added, refused.refused_closed) == (0, 1)
    frozen = cost_month(store, "2026-10")
    assert frozen.closed
    assert frozen.by("app")[0]["usage"]["cloudflare"]["requests"] == 15


def test_closing_twice_or_early_is_refused(store: Store) -> None:
    with pytest.raises(InputError, match="has not ended"):
        close_month(store, "2026-11", now=datetime(2026, 11, 20))
    close_month(store, "2026-10", now=datetime(2026, 11, 2))
    with pytest.raises(Conflict, match="already closed"):
        close_month(store, "2026-10", now=datetime(2026, 11, 2))


def test_a_month_is_costed_with_the_sheet_in_force_during_it(store: Store) -> None:
    app = add_app(
        store,
        "pg-app",
        database_provider="local-postgres",
        hosting_provider=None,
        created_at=datetime(2025, 1, 1),
    )
    for month in (7, 9):  # Neon's usage-based plans took effect 2025-08-14
        hours = [datetime(2025, month, 2) + timedelta(hours=h) for h in range(400)]
        ingest(
            store,
            [
                Reading(app, "local-postgres", "postgres", h, {"db_rows_read": 5, "db_storage_bytes": 10**9})
                for h in hours
            ],
        )
    july = cost_month(store, "2025-07").by("provider")[0]
    september = cost_month(store, "2025-09").by("provider")[0]
    assert (july["sheet_effective_from"], september["sheet_effective_from"]) == ("2025-01-01", "2025-08-14")
    # 400 active hours x 0.25 CU: $10.60 at $0.106, $14.00 at $0.14; plus 1 GB-month storage at $0.35.
    assert july["components"]["db_active_hours"] == 1060
    assert september["components"]["db_active_hours"] == 1400
    assert july["bill_cents"] == 1060 + 35


def test_not_measured_is_none_not_zero(store: Store) -> None:
    app = add_app(store, "lite")
    ingest(
        store,
        [
            Reading(
                app,
                "local-libsql",
                "sqlite-file",
                HOUR,
                {"db_storage_bytes": 4096, "db_rows_read": None, "db_rows_written": None},
            )
        ],
    )
    usage = cost_month(store, "2026-10").by("app")[0]["usage"]["turso"]
    assert usage["db_rows_read"] is None and usage["db_storage_bytes_peak"] == 4096
    series = usage_series(store, start=HOUR, end=HOUR + timedelta(hours=1), grain="hour")
    assert series[0]["db_rows_read"] is None


def test_costs_margins_and_export_for_a_metered_month(store: Store, tmp_path: Path) -> None:
    subscribe(store, "ada", "pro")
    a = add_app(store, "shop", user_id="ada")
    b = add_app(store, "blog", user_id="ada")
    c = add_app(store, "free-app", user_id="bob", tier="free")
    for app, requests in ((a, 12_000_000), (b, 1_000_000), (c, 100)):
        ingest(store, [edge_reading(app, HOUR, requests)])
    costs = cost_month(store, "2026-10")
    cloudflare = next(row for row in costs.by("provider") if row["provider"] == "cloudflare")
    assert cloudflare["components"] == {
        "base_fee": 500,
        "requests": 90,
        "compute_ms": 0,
    }  # 3M over at $0.30/M
    per_app = {row["name"]: row for row in costs.by("app")}
    assert sum(row["cost_cents"] for row in per_app.values()) == costs.total_cents()
    assert per_app["shop"]["cost_cents"] > per_app["blog"]["cost_cents"] > per_app["free-app"]["cost_cents"]
    assert per_app["shop"]["railway_baseline_cents"] == 1500
    margins = margins_month(store, "2026-10")
    tiers = {row["tier"]: row for row in margins.tiers}
    assert tiers["pro"]["revenue_cents"] == 1500 and tiers["free"]["revenue_cents"] == 0
    assert tiers["pro"]["payment_fee_cents"] == 84  # 2.9% + 30c + 0.7% of $15
    assert margins.least_profitable(1)[0]["name"] == "free-app"
    files = export_month(store, "2026-10", tmp_path)
    assert {p.suffix for p in files} == {".parquet", ".csv"} and all(p.stat().st_size > 0 for p in files)


def test_daily_costs_add_up_to_the_month(store: Store) -> None:
    from engine.costs.rollup import daily_costs

    busy = add_app(store, "busy")
    quiet = add_app(store, "quiet")
    ingest(store, [edge_reading(busy, datetime(2026, 10, 3, h), 1_000_000) for h in range(12)])
    ingest(store, [edge_reading(quiet, datetime(2026, 10, 20, 1), 10)])
    month = cost_month(store, "2026-10")
    days = daily_costs(store, "2026-10")
    for app in (busy, quiet):
        assert sum(d["cost_cents"] for d in days if d["app_id"] == app) == month.app_cents().get(app, 0)
    busy_days = {d["day"].day: d["cost_cents"] for d in days if d["app_id"] == busy}
    assert busy_days[3] == max(busy_days.values())  # the overage lands on the day the traffic happened
    assert daily_costs(store, "2026-10", app_id=quiet) == [d for d in days if d["app_id"] == quiet]


def test_an_app_that_never_went_live_carries_no_cost(store: Store) -> None:
    live = add_app(store, "live")
    add_app(store, "never", status="failed")
    ingest(store, [edge_reading(live, HOUR, 10)])
    names = {row["name"] for row in cost_month(store, "2026-10").by("app")}
    assert "live" in names and "never" not in names


LEDGER_MONTH_SQL = """
SELECT app_id, provider, sum(db_rows_read) AS r, sum(db_rows_written) AS w, max(db_storage_bytes) AS peak,
       CAST(round(avg(db_storage_bytes)) AS BIGINT) AS avg_storage,
       count(*) FILTER (WHERE coalesce(db_rows_read, 0) + coalesce(db_rows_written, 0) > 0) AS active,
       sum(requests) AS q
FROM usage_ledger GROUP BY ALL ORDER BY ALL
"""
ROLLUP_MONTH_SQL = """
SELECT app_id, provider, sum(db_rows_read) AS r, sum(db_rows_written) AS w, max(db_storage_bytes_max) AS peak,
       CAST(round(sum(db_storage_bytes_sum) / nullif(sum(db_storage_bytes_count), 0)) AS BIGINT) AS avg_storage,
       sum(db_active_hours) AS active, sum(requests) AS q
FROM daily_usage GROUP BY ALL ORDER BY ALL
"""


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b"]),
                st.sampled_from(["edge", "postgres"]),
                st.integers(min_value=0, max_value=80),  # hour of the month
                st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
                st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
            ),
            max_size=15,
        ),
        max_size=5,
    )
)
def test_the_daily_rollup_always_matches_the_ledger(
    batches: list[list[tuple[str, str, int, int | None, int | None]]],
) -> None:
    store = Store(":memory:")
    try:
        for batch in batches:
            ingest(
                store,
                [
                    Reading(
                        app,
                        "local",
                        source,
                        datetime(2026, 10, 1) + timedelta(hours=hour),
                        {"db_rows_read": value, "db_storage_bytes": size, "requests": value},
                    )
                    for app, source, hour, value, size in batch
                ],
            )
        assert store.fetchall(ROLLUP_MONTH_SQL) == store.fetchall(LEDGER_MONTH_SQL)
        # One rollup row per app, provider and day, however the batches overlapped.
        assert not store.fetchall(
            "SELECT app_id, provider, day FROM daily_usage GROUP BY ALL HAVING count(*) > 1"
        )
    finally:
        store.close()


def test_closing_a_month_keeps_every_figure_it_showed_open(store: Store) -> None:
    subscribe(store, "ada", "pro")
    apps = [add_app(store, f"app-{i}", user_id="ada" if i % 2 else "bob", tier="free") for i in range(5)]
    ingest(store, [edge_reading(app, HOUR, 3_000_000 * (i + 1)) for i, app in enumerate(apps)])
    open_costs, open_margins = cost_month(store, "2026-10"), margins_month(store, "2026-10")
    frozen = close_month(store, "2026-10", now=datetime(2026, 11, 2))
    assert frozen.closed
    assert frozen.by("app") == open_costs.by("app")
    assert frozen.by("tier") == open_costs.by("tier")

    def bills(costs: MonthCosts) -> list[tuple[str, int, dict[str, int]]]:
        return [
            (r["provider"], r["bill_cents"], {k: v for k, v in r["components"].items() if v})
            for r in costs.by("provider")
        ]

    assert bills(frozen) == bills(open_costs)
    assert margins_month(store, "2026-10").apps == open_margins.apps
    assert margins_month(store, "2026-10").totals() == open_margins.totals()
