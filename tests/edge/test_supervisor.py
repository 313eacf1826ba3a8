"""The supervisor on its own: a server that keeps crashing is retried with growing pauses, then reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.edge.supervisor import BACKOFF_FIRST, GIVE_UP_AFTER, ServerProcess, State
from engine.edge.usage import ServerStart
from engine.errors import TerminalError


def test_a_crashing_server_is_retried_with_backoff_then_reported(tmp_path: Path) -> None:
    starts: list[ServerStart] = []
    server = ServerProcess(
        "app",
        "d1",
        ["node", "-e", "console.log('starting'); process.exit(7)"],
        tmp_path,
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "server.log",
        on_start=lambda app, start: starts.append(start),
    )
    began = time.monotonic()
    try:
        with pytest.raises(
            TerminalError, match=f"failed {GIVE_UP_AFTER} times in a row: server exited with code 7"
        ):
            server.acquire(timeout=60)
        waited = time.monotonic() - began
    finally:
        server.stop()
    # pauses of 0.5 s then 1 s between the three attempts: at least their sum, whatever the machine's speed
    assert waited >= BACKOFF_FIRST * (1 + 2)
    log = (tmp_path / "server.log").read_text()
    assert log.count("starting\n") == GIVE_UP_AFTER
    assert log.count("exited with code 7") == GIVE_UP_AFTER
    assert starts == [] and server.state == State.STOPPED
