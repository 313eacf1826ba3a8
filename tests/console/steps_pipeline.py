"""A small pipeline for the Status page's tests: it reports details, progress and log lines like a real
deployment, and can hold its last step until it is cancelled. Loaded with LAUNCHDECK_EXTRA_PIPELINES."""

from __future__ import annotations

import time
from typing import Any

from engine.runner import NO_RETRY, Step, StepContext

ROWS = 142


def create_database(ctx: StepContext) -> str:
    ctx.log("creating the database")
    return f"database created: {ctx.resource_name('db')}"


def copy_rows(ctx: StepContext) -> str:
    for done in range(0, ROWS + 1, 71):
        ctx.progress(done, ROWS, "rows")
        time.sleep(0.05)
    return f"{ROWS} rows transferred from preview"


def upload(ctx: StepContext) -> str:
    """Holds at 32 of 47 files until cancelled when ``hold`` is set."""
    time.sleep(0.3)  # the runner journals at most four progress updates a second
    ctx.progress(32, 47, "files", detail="Uploading 47 files (2.3 MB)")
    ctx.log("uploaded 32 of 47 files")
    deadline = time.monotonic() + 120
    while ctx.params.get("hold") and time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.05)
    return "47 files (2.3 MB)"


def steps(params: dict[str, Any]) -> list[Step]:
    return [
        Step("Database provisioned", create_database, retry=NO_RETRY),
        Step("Data imported", copy_rows, retry=NO_RETRY),
        Step("Deploying", upload, retry=NO_RETRY, timeout=150),
    ]


PIPELINES = {"console-steps": steps}
