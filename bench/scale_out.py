"""Benchmark: pipelines on Temporal against the same steps run in-process, and deploys on one worker or two.

1. Per-step overhead: a pipeline of 20 steps that do nothing, run in-process (``InProcess`` below: each
   step in turn, journaled as the engine journals a step: its attempt, then its outputs and success)
   and by Temporal (steps on the engine's control queue, and on a worker process's build queue), same
   run, median of --runs. Overhead per step = (Temporal - in-process) / 20. Target: <= 50 ms.
2. Deploys: --deploys runs of the scale-out pipeline (PostgreSQL database, a build process of
   --build-seconds on a worker whose output comes back as blobs, stage, promote), one app each, all
   submitted at once, with one worker process (concurrency 2) against two (concurrency 2 each). The
   builds wait rather than compute, as an install waiting on the registry does; CPU-bound builds on
   this 2-core machine would show the second worker's coordination cost and little else.
3. Transfer: a build output of --transfer-files files (30 KB each) sent to the engine as blobs, one
   request per blob against one pack (what workers do), and again once the engine has them all.

    .venv/bin/python bench/scale_out.py [--runs 5] [--deploys 20] [--build-seconds 2] [--skip-deploys]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.auth import issue_token  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.runner import Runner, StepContext  # noqa: E402
from engine.service import Engine  # noqa: E402
from engine.store import Store  # noqa: E402
from tests.scaleout.conftest import worker_process  # noqa: E402

PLUGINS = "bench.scale_out_pipelines,tests.scaleout.pipelines"
STEPS = 20


class InProcess(Runner):
    """The baseline: a run's steps one after the other on the submitting thread, each journaled as on
    Temporal (its attempt, then its outputs and success: two store transactions), with no retries,
    timeouts or undo (steps that do nothing need none)."""

    def _start(self, deployment_id: str, pipeline: str, params: dict[str, Any]) -> None:
        deployment = self.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        assert deployment is not None
        app = self.store.fetchone("SELECT * FROM deployed_apps WHERE id = ?", [deployment["app_id"]])
        assert app is not None
        self._set_deployment(deployment_id, status="running", started_at="now()")
        ctx = StepContext(self, deployment, app)
        for position, step in enumerate(self.pipelines[pipeline](params)):
            ctx.step_name, ctx.step_position = step.name, position
            self.start_attempt(deployment_id, position)
            began = time.monotonic()
            detail = step.run(ctx)
            self.record_success(deployment_id, position, detail, ctx.state, time.monotonic() - began)
        self._set_deployment(deployment_id, status="succeeded", finished_at="now()")


def in_process_run(scratch: Path, runs: int) -> float:
    from bench.scale_out_pipelines import PIPELINES
    from engine.apps import get_or_create_app

    runner = InProcess(Store(scratch / "in-process.duckdb"), dict(PIPELINES))
    app = get_or_create_app(runner.store, "bench-local", owner="operator").id
    try:
        timed_run(runner, app, "noop", {})
        return statistics.median(timed_run(runner, app, "noop", {}) for _ in range(runs))
    finally:
        runner.store.close()


@contextmanager
def engine(scratch: Path) -> Iterator[Engine]:
    os.environ.pop("LAUNCHDECK_TEMPORAL_ADDRESS", None)  # the embedded default
    settings = Settings(
        workspace=scratch / "workspace-temporal",
        edge_port=0,
        extra_pipelines=PLUGINS,
        workers=8,
        rate_limit="100000/minute",  # the transfer figure's one-request-per-blob side
        local_worker=False,  # the worker processes measured are the only ones
    )
    started = Engine(settings)
    started.start_in_thread()
    try:
        yield started
    finally:
        started.stop_thread()


def new_app(started: Engine, name: str) -> str:
    from engine.apps import get_or_create_app

    return get_or_create_app(started.store, name, owner="operator", principal=None).id


def timed_run(runner: Runner, app_id: str, pipeline: str, params: dict[str, Any]) -> float:
    began = time.perf_counter()
    deployment = runner.submit(app_id, pipeline, params, requested_by="bench")
    row = runner.wait(deployment, timeout=600)
    assert row["status"] == "succeeded", row
    return time.perf_counter() - began


def overhead(scratch: Path, runs: int) -> None:
    print(f"\n1. per-step overhead: {STEPS} steps that do nothing, median of {runs} runs (after one warm-up)")
    results = {"in-process": in_process_run(scratch, runs)}
    with engine(scratch) as temporal:
        app = new_app(temporal, "bench-temporal")
        timed_run(temporal.runner, app, "noop", {})
        results["Temporal, control queue (engine)"] = statistics.median(
            timed_run(temporal.runner, app, "noop", {}) for _ in range(runs)
        )
        token = issue_token(temporal.store, role="worker", principal="bench", name="bench worker")
        assert temporal.url is not None
        with worker_process(temporal.url, token, scratch / "worker-overhead"):
            timed_run(temporal.runner, app, "noop", {"queue": "build"})
            results["Temporal, build queue (worker process)"] = statistics.median(
                timed_run(temporal.runner, app, "noop", {"queue": "build"}) for _ in range(runs)
            )
    base = results["in-process"]
    print(f"  {'runner':<40} {'run (s)':>8} {'per step (ms)':>14} {'overhead/step (ms)':>19}")
    for label, seconds in results.items():
        extra = (seconds - base) / STEPS * 1000
        verdict = (
            ""
            if label == "in-process"
            else ("  target <= 50 ms: met" if extra <= 50 else "  target <= 50 ms: NOT met")
        )
        print(f"  {label:<40} {seconds:>8.2f} {seconds / STEPS * 1000:>14.1f} {extra:>19.1f}{verdict}")


def deploys(scratch: Path, count: int, build_seconds: float) -> None:
    print(f"\n2. {count} deploys (build {build_seconds:g} s each on a worker), all submitted at once")
    for workers in (1, 2):
        with engine(scratch / f"deploys-{workers}") as temporal, ExitStack() as stack:
            token = issue_token(temporal.store, role="worker", principal="bench", name="bench worker")
            assert temporal.url is not None
            for index in range(workers):
                stack.enter_context(
                    worker_process(temporal.url, token, scratch / f"deploys-{workers}" / f"machine-{index}")
                )
            apps = [new_app(temporal, f"bench-{workers}-{i}") for i in range(count)]
            began = time.perf_counter()
            started = [
                temporal.runner.submit(
                    app, "scaleout", {"build_seconds": build_seconds}, requested_by="bench"
                )
                for app in apps
            ]
            statuses = [temporal.runner.wait(d, timeout=1800)["status"] for d in started]
            wall = time.perf_counter() - began
            ok = statuses.count("succeeded")
            ideal = count * build_seconds / (2 * workers)
            print(
                f"  {workers} worker(s) x concurrency 2: {ok}/{count} live in {wall:.1f} s "
                f"({wall / count:.2f} s per deploy; builds alone would take {ideal:.1f} s)"
            )


def transfer(scratch: Path, files: int, kilobytes: int) -> None:
    """A build output sent to the engine as blobs: one request per blob (the route a single file takes)
    against one pack for all, and again once the engine has them all (a redeploy with nothing changed)."""
    import secrets

    from engine.temporal.blobs import file_digest
    from engine.temporal.worker import EngineApi

    print(f"\n3. a build output of {files} files x {kilobytes} KB sent to the engine as blobs")
    tree = scratch / "output"
    for index in range(files):
        path = tree / f"d{index % 40}" / f"f{index}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(kilobytes * 1024))
    paths = sorted(tree.rglob("*.js"))
    with engine(scratch / "transfer") as temporal:
        token = issue_token(temporal.store, role="worker", principal="bench", name="bench worker")
        api = EngineApi(str(temporal.url), token)
        began = time.perf_counter()
        for path in paths:  # one request per blob
            with path.open("rb") as handle:
                api.client.put(
                    f"/api/worker/blobs/{file_digest(path)}", content=handle.read()
                ).raise_for_status()
        single = time.perf_counter() - began
        shutil.rmtree(temporal.settings.workspace / "blobs")
        began = time.perf_counter()
        api.send_tree(tree, scratch / "sent")
        pack = time.perf_counter() - began
        began = time.perf_counter()
        api.send_tree(tree, scratch / "sent")
        again = time.perf_counter() - began
    print(f"  one request per blob: {single:.2f} s (and the API's rate limit, 1200/minute, refuses past it)")
    print(f"  one pack (send_tree): {pack:.2f} s")
    print(f"  again, engine has all: {again:.2f} s (hashing and one blob-check)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deploys", type=int, default=20)
    parser.add_argument("--build-seconds", type=float, default=2.0)
    parser.add_argument("--skip-deploys", action="store_true", help="only the per-step overhead")
    parser.add_argument("--transfer-files", type=int, default=1000, help="files of the blob transfer")
    args = parser.parse_args()
    os.chdir(ROOT)  # worker processes import the pipeline plugins from here
    with tempfile.TemporaryDirectory(prefix="launchdeck-bench-") as scratch:
        overhead(Path(scratch), args.runs)
        if not args.skip_deploys:
            deploys(Path(scratch), args.deploys, args.build_seconds)
        transfer(Path(scratch), args.transfer_files, 30)


if __name__ == "__main__":
    main()
