"""The pipeline runner on a real Temporal dev server (the control queue served in this process): undo
on terminal failure, retry on transient failure, timeouts, and one active deployment per app."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.apps import get_or_create_app
from engine.config import Settings
from engine.errors import LockTimeout
from engine.store import Store
from engine.temporal.runner import TemporalRunner
from tests.foundation.selftest_pipeline import PIPELINES


@pytest.fixture
def pg_table(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    table = f"selftest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (resource TEXT NOT NULL)")
    try:
        yield pg_admin_url, table
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def runner(tmp_path: Path, shared_temporal: str) -> Iterator[TemporalRunner]:
    store = Store(tmp_path / "store.duckdb")
    settings = Settings(workspace=tmp_path / "workspace", temporal_address=shared_temporal)
    runner = TemporalRunner(store, dict(PIPELINES), settings=settings)
    yield runner
    runner.shutdown()
    store.close()


def rows(pg: tuple[str, str]) -> list[str]:
    with psycopg.connect(pg[0]) as connection:
        return [r[0] for r in connection.execute(f"SELECT resource FROM {pg[1]}").fetchall()]


def start(
    runner: TemporalRunner, tmp_path: Path, pg: tuple[str, str], app: str = "shop", **params: Any
) -> str:
    app_row = get_or_create_app(runner.store, app, owner="operator")
    full = {"resource_dir": str(tmp_path / "resources"), "pg_url": pg[0], "table": pg[1], **params}
    return runner.submit(
        str(app_row.id), "selftest", full, requested_by="test", lock_timeout=params.get("lock", 0)
    )


def step_statuses(runner: TemporalRunner, deployment_id: str) -> dict[str, str]:
    found = runner.store.fetchall(
        "SELECT name, status FROM step_runs WHERE deployment_id = ? ORDER BY position", [deployment_id]
    )
    return {row["name"]: row["status"] for row in found}


def test_terminal_failure_undoes_earlier_steps_and_keeps_the_live_state(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    good = start(runner, tmp_path, pg_table)
    assert runner.wait(good)["status"] == "succeeded"
    live = (tmp_path / "resources" / "live").read_text()

    bad = start(runner, tmp_path, pg_table, fail_at="slow")
    result = runner.wait(bad)

    assert result["status"] == "failed"
    assert "slow: told to fail" in result["error"]
    assert step_statuses(runner, bad) == {
        "create-file": "undone",
        "insert-row": "undone",
        "slow": "failed",
        "promote": "skipped",
    }
    # What the failed run created is gone; what the good run created is untouched and still live.
    assert not any(
        bad[:8] in p.name for p in (tmp_path / "resources").iterdir() if not p.name.endswith("started")
    )
    assert rows(pg_table) == [f"shop-{good[:8]}-row"]
    assert (tmp_path / "resources" / "live").read_text() == live == good


def test_transient_failure_is_retried_then_succeeds(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    deployment = start(runner, tmp_path, pg_table, transient_at="insert-row", transient_failures=2)
    assert runner.wait(deployment)["status"] == "succeeded"
    attempts = runner.store.scalar(
        "SELECT attempts FROM step_runs WHERE deployment_id = ? AND name = 'insert-row'", [deployment]
    )
    assert attempts == 3
    assert rows(pg_table) == [f"shop-{deployment[:8]}-row"]  # retried, yet created once


def test_transient_failure_that_never_clears_fails_after_its_attempts(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    deployment = start(runner, tmp_path, pg_table, transient_at="create-file", transient_failures=99)
    result = runner.wait(deployment)
    assert result["status"] == "failed"
    assert "simulated 503" in result["error"]


def test_hanging_step_fails_at_its_timeout_and_releases_the_app(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    started = time.monotonic()
    hung = start(runner, tmp_path, pg_table, hang_at="slow", timeout=1.0)
    result = runner.wait(hung, timeout=30)
    assert result["status"] == "failed"
    assert "timeout of 1 s" in result["error"]
    assert time.monotonic() - started < 20
    # The app is free again: a new deployment starts at once and succeeds.
    again = start(runner, tmp_path, pg_table, lock=0)
    assert runner.wait(again)["status"] == "succeeded"


def test_second_deploy_waits_for_the_lock_then_names_the_holder(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    first = start(runner, tmp_path, pg_table, slow_ticks=60)  # about 6 s
    waited_from = time.monotonic()
    with pytest.raises(LockTimeout) as refused:
        start(runner, tmp_path, pg_table, lock=1.0)
    assert time.monotonic() - waited_from >= 1.0
    assert first in str(refused.value)
    assert refused.value.holder == first
    runner.cancel(first)
    assert runner.wait(first)["status"] == "cancelled"


def test_second_deploy_that_waits_long_enough_gets_the_app(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    first = start(runner, tmp_path, pg_table, slow_ticks=5)
    second = start(runner, tmp_path, pg_table, lock=30)
    assert runner.wait(first)["status"] == "succeeded"
    assert runner.wait(second)["status"] == "succeeded"


def test_cancel_undoes_and_marks_cancelled(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    deployment = start(runner, tmp_path, pg_table, slow_ticks=100)
    marker = tmp_path / "resources" / f"{deployment}.slow-started"
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.cancel(deployment)
    assert runner.wait(deployment)["status"] == "cancelled"
    assert rows(pg_table) == []


def test_progress_is_journaled_while_a_step_runs(
    runner: TemporalRunner, tmp_path: Path, pg_table: tuple[str, str]
) -> None:
    deployment = start(runner, tmp_path, pg_table, slow_ticks=20)
    seen: set[int] = set()
    stop = threading.Event()
    while not stop.is_set():
        row = runner.store.fetchone(
            "SELECT progress_done, progress_total FROM step_runs WHERE deployment_id = ? AND name = 'slow'",
            [deployment],
        )
        if row and row["progress_done"] is not None:
            assert row["progress_total"] == 20
            seen.add(row["progress_done"])
        if runner.wait(deployment, timeout=0)["status"] == "succeeded":
            stop.set()
        time.sleep(0.05)
    assert len(seen) >= 2


def test_a_pipeline_whose_step_needs_a_later_step_is_refused_at_submit(runner: TemporalRunner) -> None:
    from engine.runner import Step

    def noop(ctx: Any) -> None:
        return None

    runner.pipelines["tangled"] = lambda params: [
        Step("build", noop, needs=("install",)),
        Step("install", noop),
    ]
    app_row = get_or_create_app(runner.store, "shop", owner="operator")
    with pytest.raises(ValueError, match=r"step 'build' needs \['install'\], which are not earlier steps"):
        runner.submit(str(app_row.id), "tangled", {}, requested_by="test")
    assert runner.store.scalar("SELECT count(*) FROM deployments") == 0
