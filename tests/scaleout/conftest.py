"""Scale-out fixtures: one real Temporal dev server for the module's tests, real engine processes
(`launchdeck engine`) and real worker processes (`launchdeck worker`), each worker in a folder of its own
as two machines would have."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.engine import engine_process, operator_token

# No local worker: these tests decide which worker processes serve the build queue.
PLUGIN = {"LAUNCHDECK_EXTRA_PIPELINES": "tests.scaleout.pipelines", "LAUNCHDECK_LOCAL_WORKER": "false"}


@pytest.fixture(scope="session")
def temporal(shared_temporal: str) -> str:
    """The Temporal dev server the test run shares (as engines share a cluster)."""
    return shared_temporal


class Engine:
    def __init__(self, url: str, process: subprocess.Popen[bytes], workspace: Path) -> None:
        self.url, self.process, self.workspace = url, process, workspace
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {operator_token(workspace)}"}, timeout=30
        )

    def worker_token(self, name: str = "test-worker") -> str:
        response = self.client.post("/api/tokens", json={"name": name, "role": "worker"})
        response.raise_for_status()
        return str(response.json()["token"])

    def deploy(self, app: str, pipeline: str = "scaleout", **params: Any) -> str:
        response = self.client.post(
            "/api/deployments", json={"app": app, "pipeline": pipeline, "params": params}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["deployment_id"])

    def status(self, deployment_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/deploy/status/{deployment_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait(self, deployment_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(deployment_id)
            if status["deployment"]["status"] in ("succeeded", "failed", "cancelled"):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"deployment {deployment_id} still {status['deployment']['status']}")
            time.sleep(0.2)

    def app(self, name: str) -> dict[str, Any]:
        response = self.client.get(f"/api/apps/{name}")
        response.raise_for_status()
        return dict(response.json())


@contextmanager
def running_engine(workspace: Path, temporal: str | None) -> Iterator[Engine]:
    # No address: the engine starts (or takes over) its embedded dev server in the workspace.
    env = {**PLUGIN, "LAUNCHDECK_TEMPORAL_ADDRESS": temporal or ""}
    with engine_process(workspace, extra_env=env) as (url, process):
        engine = Engine(url, process, workspace)
        try:
            yield engine
        finally:
            engine.client.close()


@pytest.fixture
def engine(tmp_path: Path, temporal: str) -> Iterator[Engine]:
    with running_engine(tmp_path / "workspace", temporal) as started:
        yield started


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], folder: Path, log: Path) -> None:
        self.process, self.folder, self.log = process, folder, log

    @property
    def ledger(self) -> list[list[str]]:
        path = self.folder / "ledger.txt"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


# As another machine would: the engine's workspace is an empty folder in the worker's mount namespace.
HIDE = 'mount -t tmpfs -o size=1m,mode=0500 launchdeck-elsewhere "$0" && exec "$@"'


@contextmanager
def worker_process(
    engine_url: str, token: str, folder: Path, *, concurrency: int = 2, hide: Path | None = None
) -> Iterator[Worker]:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"{folder.name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHDECK_")}
    env.update({"LAUNCHDECK_WORKER_TOKEN": token, "HOME": str(folder)})
    command = [sys.executable, "-m", "engine.cli", "worker", "--engine", engine_url, "--workdir", str(folder),
               "--concurrency", str(concurrency), "--name", folder.name]  # fmt: skip
    if hide is not None:
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            HIDE,
            str(hide),
            *command,
        ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process, folder, log)
    try:
        deadline = time.monotonic() + 60
        while "serving" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()}")
            time.sleep(0.1)
        yield worker
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
