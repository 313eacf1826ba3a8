"""Pipelines on Temporal with real worker processes: deploy, a worker killed mid-build, cancel, a
failed run's undo, and an engine killed mid-run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psycopg

from tests.scaleout.conftest import Engine, running_engine, wait_for, worker_process
from tests.scaleout.pipelines import BUILD_SCRIPT  # noqa: F401  (the build the workers run)


def database_exists(name: str) -> bool:
    with psycopg.connect(os.environ["LAUNCHDECK_POSTGRES_ADMIN_URL"]) as connection:
        return (
            connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        )


def steps(status: dict) -> dict[str, dict]:
    return {step["name"]: step for step in status["steps"]}


def test_deploy_runs_the_build_on_a_worker_process(engine: Engine, tmp_path: Path) -> None:
    token = engine.worker_token()
    # A worker token calls the worker routes and nothing else.
    other = httpx.get(f"{engine.url}/api/apps", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403, other.text
    with worker_process(engine.url, token, tmp_path / "machine-a") as worker:
        deployment = engine.deploy("shop", build_seconds=0.2)
        status = engine.wait(deployment)
    assert status["deployment"]["status"] == "succeeded", status
    assert all(step["status"] == "succeeded" for step in status["steps"])
    logs = "\n".join(line["line"] for line in status["log"]) if "log" in status else ""
    state = engine.app("shop")
    assert state["live_deployment_id"] == deployment
    # The build ran in the worker's own folder, once, and its output came back through the API as blobs.
    assert [entry[0] for entry in worker.ledger] == ["start", "built", "done"]
    site = engine.workspace / "sites" / deployment
    assert (site / "index.html").read_text() == f"<h1>built by {deployment}</h1>"
    assert (site / "assets" / "shared.js").is_file()
    assert not (engine.workspace / "worker").exists()
    assert database_exists(f"shop_{deployment[:8]}_db")
    del logs


def test_worker_killed_mid_build_is_retried_on_the_other_worker_once(engine: Engine, tmp_path: Path) -> None:
    token = engine.worker_token()
    with (
        worker_process(engine.url, token, tmp_path / "machine-a") as first,
        worker_process(engine.url, token, tmp_path / "machine-b") as second,
    ):
        deployment = engine.deploy("shop", build_seconds=4)
        wait_for(
            lambda: any(entry[0] == "start" for entry in first.ledger + second.ledger), "the build to start"
        )
        victim, survivor = (first, second) if first.ledger else (second, first)
        victim.kill()
        status = engine.wait(deployment)
    assert status["deployment"]["status"] == "succeeded", status
    build = steps(status)["build"]
    assert build["status"] == "succeeded" and build["attempts"] == 2
    # Started on the killed worker, finished once, on the other one.
    assert [entry[0] for entry in victim.ledger] == ["start"]
    assert [entry[0] for entry in survivor.ledger] == ["start", "built", "done"]
    promotions = (engine.workspace / "promotions.txt").read_text().splitlines()
    assert len(promotions) == 1 and deployment in promotions[0]


def test_cancel_stops_a_running_build_and_undoes_the_database(engine: Engine, tmp_path: Path) -> None:
    with worker_process(engine.url, engine.worker_token(), tmp_path / "machine-a") as worker:
        deployment = engine.deploy("shop", build_seconds=600)
        wait_for(lambda: bool(worker.ledger), "the build to start")
        pid = int(worker.ledger[0][2])
        cancelled = engine.client.post(f"/api/deployments/{deployment}/cancel")
        assert cancelled.json()["cancel_requested"] is True
        status = engine.wait(deployment, timeout=60)
        assert status["deployment"]["status"] == "cancelled", status
        # The activity reports only after the build's process group was stopped.
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive
    assert steps(status)["build"]["status"] == "cancelled"
    assert steps(status)["database"]["status"] == "undone"
    assert not database_exists(f"shop_{deployment[:8]}_db")
    assert not (
        tmp_path / "machine-a" / "deployments" / deployment
    ).exists()  # the build's undo ran on the worker


def test_a_failed_build_undoes_the_database_and_leaves_the_live_deployment(
    engine: Engine, tmp_path: Path
) -> None:
    with worker_process(engine.url, engine.worker_token(), tmp_path / "machine-a"):
        live = engine.deploy("shop")
        assert engine.wait(live)["deployment"]["status"] == "succeeded"
        failed = engine.deploy("shop", fail_build=True)
        status = engine.wait(failed)
    assert status["deployment"]["status"] == "failed"
    assert "as the test asked" in status["deployment"]["error"]
    assert steps(status)["build"]["attempts"] == 1  # a terminal error is not retried
    assert steps(status)["database"]["status"] == "undone"
    assert not database_exists(f"shop_{failed[:8]}_db")
    assert database_exists(f"shop_{live[:8]}_db")
    assert engine.app("shop")["live_deployment_id"] == live
    assert (engine.workspace / "sites" / live / "index.html").is_file()


def test_a_run_finishes_after_the_engine_is_killed_and_restarted(tmp_path: Path) -> None:
    """On the embedded Temporal: the killed engine's dev server keeps the run's history, and the next
    engine takes that server over."""
    workspace = tmp_path / "workspace"
    with running_engine(workspace, None) as first:
        token = first.worker_token()
        url = first.url
        deployment = first.deploy("shop", build_seconds=3)
        os.killpg(first.process.pid, signal.SIGKILL)  # mid-run: the build is waiting for a worker
        first.process.wait()
    time.sleep(0.5)
    with running_engine(workspace, None) as second:
        with worker_process(second.url, token, tmp_path / "machine-a") as worker:
            status = second.wait(deployment)
        assert status["deployment"]["status"] == "succeeded", status
        assert [entry[0] for entry in worker.ledger] == ["start", "built", "done"]
        assert second.app("shop")["live_deployment_id"] == deployment
    del url
    # The engine stopped normally stops its server too.
    server = workspace / "temporal" / "temporal.server.json"
    assert not server.exists()


def overlapping(ledger: list[list[str]]) -> int:
    """The most builds this worker ran at once, from its ledger's start and built lines."""
    events = sorted(
        (float(entry[3]), 1 if entry[0] == "start" else -1)
        for entry in ledger
        if entry[0] in ("start", "built")
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_two_workers_with_their_own_folders_share_ten_deploys_within_their_limits(
    engine: Engine, tmp_path: Path
) -> None:
    token = engine.worker_token()
    with (
        worker_process(engine.url, token, tmp_path / "machine-a", concurrency=1) as first,
        worker_process(engine.url, token, tmp_path / "machine-b", concurrency=2) as second,
    ):
        started = [engine.deploy(f"app-{index}", build_seconds=1) for index in range(10)]
        statuses = [engine.wait(deployment)["deployment"]["status"] for deployment in started]
    assert statuses == ["succeeded"] * 10
    built = [entry[1] for entry in first.ledger + second.ledger if entry[0] == "done"]
    assert sorted(built) == sorted(started)  # each build once, on one of the two machines
    assert first.ledger and second.ledger  # both served
    assert overlapping(first.ledger) == 1
    assert 1 <= overlapping(second.ledger) <= 2


def test_a_step_that_needs_an_earlier_steps_machine_runs_there_or_both_run_again(
    engine: Engine, tmp_path: Path
) -> None:
    token = engine.worker_token()
    with (
        worker_process(engine.url, token, tmp_path / "machine-a", concurrency=1) as first,
        worker_process(engine.url, token, tmp_path / "machine-b", concurrency=1) as second,
    ):
        together = [engine.deploy(f"app-{index}", "scaleout-split") for index in range(4)]
        assert [engine.wait(d)["deployment"]["status"] for d in together] == ["succeeded"] * 4
        for worker in (first, second):  # each output was sent by the worker that built it
            built = {entry[1] for entry in worker.ledger if entry[0] == "built"}
            assert {entry[1] for entry in worker.ledger if entry[0] == "sent"} == built
        # The machine dies in the middle of the second step: it is taken for gone (after the workflow's
        # MACHINE_WAIT), and both steps run again on the other machine.
        hold = tmp_path / "hold"
        hold.touch()
        deployment = engine.deploy("shop", "scaleout-split", hold_while=str(hold))
        wait_for(lambda: ["sending", deployment] in first.ledger + second.ledger, "the output to be sending")
        victim, survivor = (first, second) if ["sending", deployment] in first.ledger else (second, first)
        victim.kill()
        hold.unlink()
        status = engine.wait(deployment, timeout=120)
    assert status["deployment"]["status"] == "succeeded", status
    assert steps(status)["build"]["attempts"] == 2 and steps(status)["send"]["attempts"] >= 2
    assert ["built", deployment] == survivor.ledger[-3][:2] and ["sent", deployment] == survivor.ledger[-1]
    assert engine.app("shop")["live_deployment_id"] == deployment
