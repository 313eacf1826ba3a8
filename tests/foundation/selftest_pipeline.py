"""A pipeline plugin for the runner tests (loaded through LAUNCHDECK_EXTRA_PIPELINES).

Its steps create real files and real PostgreSQL rows, named after the app and deployment so that a
re-run adopts what a killed run created, and each step can be told to fail, hang or be slow.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from engine.errors import TerminalError, TransientError
from engine.procs import tracked
from engine.retry import RetryPolicy
from engine.runner import Step, StepContext


def _resources(ctx: StepContext) -> Path:
    path = Path(ctx.params["resource_dir"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _maybe_misbehave(ctx: StepContext, step: str) -> None:
    if ctx.params.get("fail_at") == step:
        raise TerminalError(f"{step}: told to fail")
    if ctx.params.get("transient_at") == step:
        counter = _resources(ctx) / f"{ctx.deployment_id}-{step}.attempts"
        attempts = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(attempts + 1))
        if attempts < int(ctx.params.get("transient_failures", 1)):
            raise TransientError(f"{step}: simulated 503", retry_after=0.05)
    if (
        ctx.params.get("hang_at") == step
    ):  # a process that never ends (a stuck `npm ci`): the timeout stops it
        with subprocess.Popen(["sleep", "3600"], start_new_session=True) as process, tracked(process.pid):
            process.wait()
        raise TerminalError(f"{step}: its process was stopped")


def create_file(ctx: StepContext) -> str:
    path = _resources(ctx) / ctx.resource_name("file")
    _maybe_misbehave(ctx, "create-file")
    if not path.exists():  # adopt what a killed run created
        path.write_text(ctx.deployment_id)
    ctx.state["file"] = str(path)
    return f"file {path.name}"


def remove_file(ctx: StepContext) -> None:
    Path(_resources(ctx) / ctx.resource_name("file")).unlink(missing_ok=True)


def insert_row(ctx: StepContext) -> str:
    name = ctx.resource_name("row")
    with psycopg.connect(ctx.params["pg_url"], autocommit=True) as connection:
        found = connection.execute(
            f"SELECT count(*) FROM {ctx.params['table']} WHERE resource = %s", [name]
        ).fetchone()
        if found is None or found[0] == 0:
            connection.execute(f"INSERT INTO {ctx.params['table']} (resource) VALUES (%s)", [name])
    _maybe_misbehave(ctx, "insert-row")
    return f"row {name}"


def delete_row(ctx: StepContext) -> None:
    with psycopg.connect(ctx.params["pg_url"], autocommit=True) as connection:
        connection.execute(
            f"DELETE FROM {ctx.params['table']} WHERE resource = %s", [ctx.resource_name("row")]
        )


def slow(ctx: StepContext) -> str:
    marker = _resources(ctx) / f"{ctx.deployment_id}.slow-started"
    marker.write_text("started")
    _maybe_misbehave(ctx, "slow")
    for done in range(int(ctx.params.get("slow_ticks", 0))):
        ctx.check_cancelled()
        ctx.progress(done, int(ctx.params["slow_ticks"]), "ticks")
        time.sleep(0.1)
    return "waited"


def promote(ctx: StepContext) -> str:
    _maybe_misbehave(ctx, "promote")
    (_resources(ctx) / "live").write_text(ctx.deployment_id)
    return "live"


def selftest(params: dict[str, Any]) -> list[Step]:
    fast = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    timeout = float(params.get("timeout", 60))
    return [
        Step("create-file", create_file, remove_file, timeout=timeout, retry=fast),
        Step("insert-row", insert_row, delete_row, timeout=timeout, retry=fast),
        Step("slow", slow, timeout=timeout, retry=fast),
        Step("promote", promote, timeout=timeout, retry=fast),
    ]


PIPELINES = {"selftest": selftest}
