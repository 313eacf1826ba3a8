"""A real engine process is killed with SIGKILL in the middle of a step; a new engine on the same
workspace finishes the pipeline from its journal, and every resource exists exactly once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import psycopg

from engine.client import EngineClient
from tests.servers.engine import engine_process, operator_token

PLUGIN = {"LAUNCHDECK_EXTRA_PIPELINES": "tests.foundation.selftest_pipeline"}


def test_killed_engine_resumes_and_creates_each_resource_once(workspace: Path, pg_admin_url: str) -> None:
    table = f"selftest_{uuid.uuid4().hex[:10]}"
    resources = workspace.parent / "resources"
    with psycopg.connect(pg_admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (resource TEXT NOT NULL)")
    try:
        with engine_process(workspace, extra_env=PLUGIN) as (url, process):
            token = operator_token(workspace)
            with EngineClient(url, token) as client:
                deployment = client.start_pipeline(
                    "crashy",
                    "selftest",
                    {
                        "resource_dir": str(resources),
                        "pg_url": pg_admin_url,
                        "table": table,
                        "slow_ticks": 40,
                    },
                )
                marker = resources / f"{deployment}.slow-started"
                deadline = time.monotonic() + 30
                while not marker.exists():
                    assert time.monotonic() < deadline, "the slow step never started"
                    time.sleep(0.02)
                running = client.status(deployment)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert [s["status"] for s in running["steps"]][:3] == ["succeeded", "succeeded", "running"]

        with engine_process(workspace, extra_env=PLUGIN) as (url, _), EngineClient(url, token) as client:
            finished = client.wait(deployment, timeout=60)
        assert finished["deployment"]["status"] == "succeeded", finished
        assert [s["status"] for s in finished["steps"]] == ["succeeded"] * 4

        with psycopg.connect(pg_admin_url) as connection:
            created = [r[0] for r in connection.execute(f"SELECT resource FROM {table}").fetchall()]
        assert created == [f"crashy-{deployment[:8]}-row"]
        files = sorted(p.name for p in resources.iterdir() if p.name.startswith("crashy-"))
        assert files == [f"crashy-{deployment[:8]}-file"]
        assert (resources / "live").read_text() == deployment
        # Finished steps ran once; only the interrupted one ran again.
        assert [s["attempts"] for s in finished["steps"]] == [1, 1, 2, 1]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
