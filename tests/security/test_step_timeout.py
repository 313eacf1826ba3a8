"""M2(b): a step that passes its timeout has its processes killed before the runner goes on to undo."""

from __future__ import annotations

import subprocess
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import StepTimeout
from engine.procs import tracked
from engine.runner import Runner


def test_a_timed_out_step_has_its_processes_killed_before_undo() -> None:
    started: dict[str, subprocess.Popen[bytes]] = {}

    def run(ctx: Any) -> str:
        process = subprocess.Popen(["/usr/bin/sleep", "60"], start_new_session=True)
        started["process"] = process
        with tracked(process.pid):
            process.wait()  # a build that would otherwise outlive its step
        return "done"

    step = SimpleNamespace(name="build", timeout=0.5, run=run)
    ctx = SimpleNamespace(cancelled=threading.Event())
    with pytest.raises(StepTimeout):
        Runner._call_with_timeout(ctx, step)  # type: ignore[arg-type]
    # when _call_with_timeout returns (and undo would start), the process is already gone
    assert started["process"].poll() is not None
