"""M2(b): a step that passes its timeout has its processes killed before the runner goes on to undo."""

from __future__ import annotations

import asyncio
import subprocess
import threading

import pytest
from temporalio.exceptions import ApplicationError

from engine.procs import tracked
from engine.temporal.activities import run_heartbeating


def test_a_timed_out_step_has_its_processes_killed_before_undo() -> None:
    started: dict[str, subprocess.Popen[bytes]] = {}

    def run() -> str:
        process = subprocess.Popen(["/usr/bin/sleep", "60"], start_new_session=True)
        started["process"] = process
        with tracked(process.pid):
            process.wait()  # a build that would otherwise outlive its step
        return "done"

    with pytest.raises(ApplicationError, match="did not finish within its timeout") as failure:
        asyncio.run(run_heartbeating(run, threading.Event(), 0.5, "build"))
    assert failure.value.non_retryable
    # when the step's activity fails (and the workflow would start its undo), the process is already gone
    assert started["process"].poll() is not None
