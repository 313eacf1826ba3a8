"""The web pipeline's build on worker processes that cannot see the engine's workspace (as on another
machine): the shop example is installed and built there, from the working copy the engine sent as
blobs, and goes live from the output the worker sent back; a worker killed with -9 in the middle of
the build hands the step to the other worker, once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.client import EngineClient
from tests.scaleout.conftest import wait_for, worker_process
from tests.servers.engine import engine_process, operator_token
from tests.web.test_deploy_e2e import EXAMPLES, browser_session

pytestmark = pytest.mark.slow


class Fleet:
    def __init__(self, url: str, workspace: Path) -> None:
        self.url, self.workspace = url, workspace
        self.client = EngineClient(url, operator_token(workspace), timeout=120)

    def worker_token(self, name: str) -> str:
        return str(self.client.issue_token_record(name, "worker")["token"])


@pytest.fixture
def fleet(tmp_path: Path, temporal: str) -> Iterator[Fleet]:
    workspace = tmp_path / "workspace"
    env = {
        "LAUNCHDECK_LOCAL_WORKER": "false",
        "LAUNCHDECK_TEMPORAL_ADDRESS": temporal,
    }
    with engine_process(workspace, extra_env=env) as (url, _):
        fleet = Fleet(url, workspace)
        yield fleet
        fleet.client.close()


def steps(status: Any) -> dict[str, Any]:
    return {step["name"]: step for step in status["steps"]}


def assert_serves_the_shop(fleet: Fleet, status: Any) -> None:
    assert status["deployment"]["status"] == "succeeded", status
    with browser_session(fleet.client.app("shop")["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200
        page = session.get("/")
        assert page.status_code == 200 and "</html>" in page.text


def test_the_shop_builds_on_a_worker_that_cannot_see_the_engines_workspace(
    fleet: Fleet, tmp_path: Path
) -> None:
    folder = tmp_path / "machine-a"
    with worker_process(fleet.url, fleet.worker_token("a"), folder, hide=fleet.workspace):
        started = fleet.client.deploy_web(str(EXAMPLES / "shop"), app="shop")
        status = fleet.client.wait(started["deployment_id"], timeout=900)
    assert_serves_the_shop(fleet, status)
    build = steps(status)["build"]
    assert "on worker machine-a" in build["detail"], build
    # The engine never installed or built: its copy never had node_modules; the worker's copy is gone
    # (source is not kept), its caches and the blobs it fetched stay for the next build.
    deployment = started["deployment_id"]
    assert not (fleet.workspace / "builds" / deployment / "app" / "node_modules").exists()
    assert not list((fleet.workspace / "logs").glob("*-build.log"))
    assert (folder / "logs" / f"{deployment}-build.log").is_file()
    assert any((folder / "blobs").rglob("*")) and any((folder / "deps-cache").iterdir())
    assert not (folder / "deployments" / deployment / "app").exists()


def test_a_worker_killed_mid_install_hands_install_and_build_to_the_other_once(
    fleet: Fleet, tmp_path: Path
) -> None:
    with (
        worker_process(fleet.url, fleet.worker_token("a"), tmp_path / "machine-a", hide=fleet.workspace) as a,
        worker_process(fleet.url, fleet.worker_token("b"), tmp_path / "machine-b", hide=fleet.workspace) as b,
    ):
        started = fleet.client.deploy_web(str(EXAMPLES / "shop"), app="shop")
        deployment = started["deployment_id"]

        def copy_of(worker: Any) -> Path:
            return Path(worker.folder) / "deployments" / deployment / "app" / "package.json"

        wait_for(
            lambda: copy_of(a).is_file() or copy_of(b).is_file(), "a worker to fetch the working copy", 300
        )
        victim, survivor = (a, b) if copy_of(a).is_file() else (b, a)
        time.sleep(3)  # the install is running
        assert fleet.client.status(deployment)["deployment"]["status"] == "running"
        victim.kill()
        status = fleet.client.wait(deployment, timeout=900)
    assert_serves_the_shop(fleet, status)
    # Killed mid-install: the install runs again on the other worker, and the build follows it there
    # (it attaches the node_modules that install kept on that machine), once.
    install, build = steps(status)["install"], steps(status)["build"]
    assert install["attempts"] == 2, install
    assert build["attempts"] == 1, build
    for step in (install, build):
        assert f"on worker {survivor.folder.name}" in step["detail"], step
    assert "reused node_modules" in build["detail"], build
    assert steps(status)["verify"]["attempts"] == 1
    assert fleet.client.app("shop")["live_deployment_id"] == deployment
