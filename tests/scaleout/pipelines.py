"""A pipeline plugin for the scale-out tests (LAUNCHDECK_EXTRA_PIPELINES=tests.scaleout.pipelines), the
shape of the web pipeline with real parts: a PostgreSQL database (control), a build that runs a real
process on a worker and sends its output back as blobs (build queue), stage (control: the output is
put together from the engine's blobs, checked) and promote (control: the app's live deployment).

The build writes a ledger in the worker's own folder: ``start``/``done`` lines with the deployment id,
the build process's pid and times, so tests can see which worker ran what, and how often.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from engine.errors import Cancelled, TerminalError
from engine.retry import RetryPolicy
from engine.runner import NO_RETRY, Step, StepContext
from engine.temporal.blobs import BlobStore


def pg_url() -> str:
    """The test run's server (read when used: the session fixture sets it after this module loads)."""
    return os.environ.get("LAUNCHDECK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


BUILD_SCRIPT = """
import os, sys, time
ledger, deployment, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def note(what):
    with open(ledger, "a") as f:
        f.write(f"{what} {deployment} {os.getpid()} {time.time():.3f}\\n")
note("start")
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    time.sleep(0.05)
os.makedirs(os.path.join(out, "assets"), exist_ok=True)
with open(os.path.join(out, "index.html"), "w") as f:
    f.write(f"<h1>built by {deployment}</h1>")
with open(os.path.join(out, "assets", "shared.js"), "w") as f:
    f.write("console.log('the same in every build');")
note("built")
"""


def database_name(ctx: Any) -> str:
    return re.sub(r"[^a-z0-9_]", "_", ctx.resource_name("db").lower())


def create_database(ctx: StepContext) -> str:
    name = database_name(ctx)
    with psycopg.connect(pg_url(), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:  # a re-run adopts what an earlier attempt made
            connection.execute(f'CREATE DATABASE "{name}"')
    ctx.state["database"] = name
    return f"database {name}"


def drop_database(ctx: StepContext) -> None:
    with psycopg.connect(pg_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database_name(ctx)}" WITH (FORCE)')


def build(ctx: Any) -> str:
    from engine.temporal.worker import run_process

    out = ctx.workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    ledger = ctx.workdir.parent.parent / "ledger.txt"
    code = run_process(
        ctx,
        [
            sys.executable,
            "-c",
            BUILD_SCRIPT,
            str(ledger),
            ctx.deployment_id,
            str(ctx.params.get("build_seconds", 0)),
            str(out),
        ],
        cwd=ctx.workdir,
    )
    if code != 0:
        raise TerminalError(f"the build exited with {code}")
    if ctx.params.get("fail_build"):
        raise TerminalError("the build failed (as the test asked)")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    digests = ctx.upload(files)
    ctx.state["build"] = {str(p.relative_to(out)): digests[str(p)] for p in files}
    with ledger.open("a") as handle:
        handle.write(f"done {ctx.deployment_id} {os.getpid()} {time.time():.3f}\n")
    return f"{len(files)} files built"


def remove_build(ctx: Any) -> None:
    shutil.rmtree(ctx.workdir, ignore_errors=True)


def site_dir(ctx: StepContext) -> Path:
    return Path(ctx.services.settings.workspace) / "sites" / ctx.deployment_id


def stage(ctx: StepContext) -> str:
    blobs = BlobStore(ctx.services.settings.workspace / "blobs")
    target = site_dir(ctx)
    for relative, digest in ctx.state["build"].items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blobs.open(digest), path)
    return f"{len(ctx.state['build'])} files staged"


def unstage(ctx: StepContext) -> None:
    shutil.rmtree(site_dir(ctx), ignore_errors=True)


def promote(ctx: StepContext) -> str:
    engine = ctx.services
    engine.store.execute(
        "UPDATE deployed_apps SET live_deployment_id = ?, status = 'active' WHERE id = ?",
        [ctx.deployment_id, ctx.app_id],
    )
    with (Path(engine.settings.workspace) / "promotions.txt").open("a") as handle:
        handle.write(json.dumps({"app": ctx.app_name, "deployment": ctx.deployment_id}) + "\n")
    return "live"


def scaleout(params: dict[str, Any]) -> list[Step]:
    return [
        Step("database", create_database, drop_database, timeout=60),
        Step(
            "build", build, remove_build, timeout=300, retry=RetryPolicy(max_attempts=2), queue="build",
            needs=("database",),
        ),
        Step("stage", stage, unstage, timeout=60),
        Step("promote", promote, timeout=60, retry=NO_RETRY),
    ]  # fmt: skip


def wait_or_stop(ctx: StepContext, seconds: float) -> None:
    if ctx.cancelled.wait(seconds):
        raise Cancelled("the deployment was cancelled")


def slow_database(ctx: StepContext) -> str:
    detail = create_database(ctx)
    wait_or_stop(ctx, float(ctx.params.get("database_seconds", 0)))
    return detail


def install(ctx: StepContext) -> str:
    wait_or_stop(ctx, float(ctx.params.get("install_seconds", 0)))
    if ctx.params.get("fail_install"):
        raise TerminalError("the install failed (as the test asked)")
    ctx.state["installed"] = True
    return "installed"


def build_after_both(ctx: StepContext) -> str:
    return f"built with {ctx.state['database']}, installed: {ctx.state.get('installed', False)}"


def branches(params: dict[str, Any]) -> list[Step]:
    """The web pipeline's shape: the database and the install side by side, then a build needing both."""
    return [
        Step("preflight", lambda ctx: "ready", timeout=60),
        Step("database", slow_database, drop_database, timeout=120),
        Step("install", install, timeout=120, retry=NO_RETRY, needs=("preflight",)),
        Step("build", build_after_both, timeout=60, needs=("database", "install")),
        Step("promote", promote, timeout=60, retry=NO_RETRY),
    ]


def build_here(ctx: Any) -> str:
    """The build without sending its output: what it leaves in this worker's folder, ``send`` sends."""
    from engine.temporal.worker import run_process

    out = ctx.workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    ledger = ctx.workdir.parent.parent / "ledger.txt"
    argv = [sys.executable, "-c", BUILD_SCRIPT, str(ledger), ctx.deployment_id, "0", str(out)]
    if run_process(ctx, argv, cwd=ctx.workdir) != 0:
        raise TerminalError("the build failed")
    return "built"


def send(ctx: Any) -> str:
    """Needs the build's folder: runs on the build's machine (``same_machine_as``)."""
    from engine.temporal.worker import run_process

    ledger = ctx.workdir.parent.parent / "ledger.txt"
    with ledger.open("a") as handle:
        handle.write(f"sending {ctx.deployment_id}\n")
    # The test holds the send while this file exists (to kill the machine in the middle of it).
    hold = (
        f"import os, time\nwhile os.path.exists({str(ctx.params.get('hold_while', ''))!r}): time.sleep(0.1)"
    )
    if run_process(ctx, [sys.executable, "-c", hold], cwd=ctx.workdir) != 0:
        raise TerminalError("the send failed")
    out = ctx.workdir / "out"
    files = sorted(p for p in out.rglob("*") if p.is_file())  # absent on any other machine
    if not files:
        raise TerminalError(f"no build output in {out}: this is not the machine that built")
    digests = ctx.upload(files)
    ctx.state["build"] = {str(p.relative_to(out)): digests[str(p)] for p in files}
    with ledger.open("a") as handle:
        handle.write(f"sent {ctx.deployment_id}\n")
    return f"{len(files)} files sent"


def split(params: dict[str, Any]) -> list[Step]:
    """The build and the sending of its output as two steps on one machine."""
    return [
        Step("database", create_database, drop_database, timeout=60),
        Step("build", build_here, remove_build, timeout=300, queue="build"),
        Step("send", send, timeout=300, queue="build", same_machine_as="build"),
        Step("stage", stage, unstage, timeout=60),
        Step("promote", promote, timeout=60, retry=NO_RETRY),
    ]


PIPELINES = {"branches": branches, "scaleout": scaleout, "scaleout-split": split}
