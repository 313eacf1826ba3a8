"""Local usage sources measure for real: PostgreSQL statistics, SQLite file sizes, edge-host counters."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from engine.costs.sources import EdgeTrafficSource, PostgresUsageSource, SqliteFileUsageSource
from engine.costs.usage import StoreCounterState
from engine.dbpath.ddl import make_conninfo_url
from engine.store import Store


def admin_url() -> str:
    """The test run's password-only PostgreSQL (``shared_postgres`` in tests/conftest.py)."""
    return os.environ["LAUNCHDECK_POSTGRES_ADMIN_URL"]


HOUR = datetime(2026, 10, 5, 13)


@pytest.fixture
def app_database() -> Iterator[str]:
    name = f"ld_costs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_workload(database: str, statements: list[str]) -> None:
    with psycopg.connect(make_conninfo_url(admin_url(), database), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")  # the backend goes idle once more and flushes its statistics


def test_postgres_rows_read_and_written_are_hourly_deltas_of_real_statistics(app_database: str) -> None:
    run_workload(
        app_database,
        [
            "CREATE TABLE post (id int PRIMARY KEY, title text) WITH (autovacuum_enabled = false)",
            "INSERT INTO post SELECT g, 'p' || g FROM generate_series(1, 100) g",
        ],
    )
    source = PostgresUsageSource(admin_url(), {"app-1": app_database})
    first = source.collect(HOUR)
    assert first[0].metrics["db_rows_read"] is None  # no earlier value: not measured, not zero
    assert (first[0].metrics["db_storage_bytes"] or 0) > 1_000_000  # pg_database_size of a real database
    run_workload(
        app_database,
        [
            "INSERT INTO post SELECT g, 'p' || g FROM generate_series(101, 150) g",
            "UPDATE post SET title = 'x' WHERE id = 7",
            "SELECT count(*) FROM post",
        ],
    )
    second = source.collect(HOUR + timedelta(hours=1))
    # 150 rows scanned by count(*), one row fetched by the primary-key update; 50 inserts + 1 update written.
    assert second[0].metrics["db_rows_read"] == 151
    assert second[0].metrics["db_rows_written"] == 51
    assert source.collect(HOUR + timedelta(hours=1)) == []  # the hour is closed: nothing collected twice


def test_sqlite_files_report_size_and_rows_not_measured(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    readings = SqliteFileUsageSource({"app-1": path, "gone": tmp_path / "missing.db"}).collect(HOUR)
    by_app = {r.app_id: r.metrics for r in readings}
    assert by_app["app-1"]["db_storage_bytes"] == path.stat().st_size
    assert by_app["app-1"]["db_rows_read"] is None and by_app["app-1"]["db_rows_written"] is None
    assert by_app["gone"]["db_storage_bytes"] is None


@dataclass(frozen=True)
class FakeTraffic:
    requests: int
    bytes_out: int


def test_edge_counters_become_hourly_deltas_and_survive_a_restart(store: Store) -> None:
    counters = {"shop": FakeTraffic(100, 5_000)}
    names = {"shop": "id-shop"}
    source = EdgeTrafficSource(lambda: counters, app_id_for=names.get, state=StoreCounterState(store))
    assert source.collect(HOUR)[0].metrics == {"requests": None, "bandwidth_bytes": None}
    counters["shop"] = FakeTraffic(130, 8_000)
    assert source.collect(HOUR + timedelta(hours=1))[0].metrics == {"requests": 30, "bandwidth_bytes": 3_000}
    counters["shop"] = FakeTraffic(150, 9_000)
    assert source.collect(HOUR + timedelta(hours=1)) == []  # re-collecting the hour moves nothing
    restarted = EdgeTrafficSource(lambda: counters, app_id_for=names.get, state=StoreCounterState(store))
    assert restarted.collect(HOUR + timedelta(hours=2))[0].metrics == {
        "requests": 20,
        "bandwidth_bytes": 1_000,
    }
    counters["shop"] = FakeTraffic(4, 400)  # the edge host restarted: its counters began again from zero
    assert restarted.collect(HOUR + timedelta(hours=3))[0].metrics == {"requests": 4, "bandwidth_bytes": 400}
    counters["unknown"] = FakeTraffic(1, 1)
    assert [r.app_id for r in restarted.collect(HOUR + timedelta(hours=4))] == ["id-shop"]
