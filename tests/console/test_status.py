"""The Status page against real pipeline runs: steps with durations and details, progress, ETA, log, cancel."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine.client import EngineClient
from tests.console.conftest import RunningEngine
from tests.console.test_pages import no_exception, signed_in, texts

pytestmark = pytest.mark.usefixtures("engine_url")


def wait_for_step(client: EngineClient, deployment_id: str, name: str, status: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        steps = {s["name"]: s for s in client.status(deployment_id)["steps"]}
        if steps[name]["status"] == status and steps[name]["progress_total"]:
            return
        time.sleep(0.05)
    raise TimeoutError(f"step {name} never reached {status}")


def status_page(running_engine: RunningEngine, deployment_id: str) -> AppTest:
    at = signed_in(running_engine.operator)
    assert at.session_state["role"] == "operator", texts(at, "error")
    at.session_state["deployment_id"] = deployment_id
    at.switch_page("pages/status.py").run()
    no_exception(at)
    return at


def test_a_finished_deployment_shows_each_step_with_its_detail(running_engine: RunningEngine) -> None:
    with EngineClient(running_engine.url, running_engine.operator) as client:
        finished = client.wait(client.start_pipeline("status-finished", "console-steps", {}), timeout=30)
    assert finished["deployment"]["status"] == "succeeded"
    at = status_page(running_engine, str(finished["deployment"]["id"]))
    page = texts(at, "markdown") + texts(at, "caption")
    for expected in (
        "Database provisioned",
        "Data imported",
        "142 rows transferred from preview",
        "47 files (2.3 MB)",
    ):
        assert expected in page
    assert at.progress[0].value == 100
    assert "deployment finished" in at.code[0].value
    assert not [b for b in at.button if b.label == "Cancel deployment"]


def test_a_running_deployment_shows_progress_eta_and_can_be_cancelled(running_engine: RunningEngine) -> None:
    with EngineClient(running_engine.url, running_engine.operator) as client:
        client.wait(
            client.start_pipeline("status-history", "console-steps", {}), timeout=30
        )  # history for the ETA
        deployment_id = client.start_pipeline("status-running", "console-steps", {"hold": True})
        try:
            wait_for_step(client, deployment_id, "Deploying", "running")
            at = status_page(running_engine, deployment_id)
            assert "status-running: running" in texts(at, "subheader")
            assert "32 / 47 files" in [p.proto.text for p in at.progress][1]
            assert "Uploading 47 files (2.3 MB)" in texts(at, "caption")
            assert "Estimated time remaining:** ~" in texts(at, "markdown")
            assert "uploaded 32 of 47 files" in at.code[0].value
            cancel = next(b for b in at.button if b.label == "Cancel deployment")
            cancel.click().run()
            assert client.wait(deployment_id, timeout=30)["deployment"]["status"] == "cancelled"
        finally:
            client.cancel(deployment_id)
    at.run()
    assert "status-running: cancelled" in texts(at, "subheader")
