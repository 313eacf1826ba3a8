"""Start and stop a real `launchdeck engine` process for a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers.asgi import free_port


def token_file(workspace: Path) -> Path:
    return workspace.parent / f"{workspace.name}-operator.token"


def operator_token(workspace: Path) -> str:
    """The first operator token of an engine started by ``engine_process`` on ``workspace``."""
    return token_file(workspace).read_text().strip()


@contextmanager
def engine_process(
    workspace: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    # The first operator token is written only where asked: beside the workspace (operator_token()).
    env = {
        **os.environ,
        "LAUNCHDECK_WORKSPACE": str(workspace),
        "LAUNCHDECK_OPERATOR_TOKEN_FILE": str(token_file(workspace)),
        # A free edge port unless the test pins one: engines of concurrent runs never collide on 8472.
        "LAUNCHDECK_EDGE_PORT": "0",
        **(extra_env or {}),
    }
    log = (workspace.parent / f"engine-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "engine", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"engine did not start: {(workspace.parent / f'engine-{port}.log').read_text()}"
                )
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
