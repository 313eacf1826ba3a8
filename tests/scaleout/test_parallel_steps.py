"""Independent steps run side by side on Temporal (issue 20): the database and the install of the
``branches`` pipeline (the web pipeline's shape, with steps that wait instead of working), both on the
engine's control queue, so two steps of one run write the journal at once."""

from __future__ import annotations

from datetime import datetime

from tests.scaleout.conftest import Engine
from tests.scaleout.test_deploy_on_workers import database_exists, steps


def span(step: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(step["started_at"]), datetime.fromisoformat(step["finished_at"])


def test_the_database_and_the_install_overlap_and_the_build_waits_for_both(engine: Engine) -> None:
    deployment = engine.deploy("shop", "branches", database_seconds=2, install_seconds=2)
    status = engine.wait(deployment)
    assert status["deployment"]["status"] == "succeeded", status
    ran = steps(status)
    database, install, build = span(ran["database"]), span(ran["install"]), span(ran["build"])
    assert database[0] < install[1] and install[0] < database[1]  # they ran at the same time
    assert build[0] >= max(database[1], install[1])  # the build started when both had finished
    # Each kept its own time, and both outputs reached the build (neither overwrote the other's).
    assert ran["database"]["seconds"] >= 2 and ran["install"]["seconds"] >= 2
    assert ran["build"]["detail"] == f"built with shop_{deployment[:8]}_db, installed: True"
    assert engine.app("shop")["live_deployment_id"] == deployment


def test_a_failed_install_stops_the_database_and_undoes_it(engine: Engine) -> None:
    deployment = engine.deploy("shop", "branches", database_seconds=120, install_seconds=1, fail_install=True)
    status = engine.wait(deployment, timeout=60)  # the database step would wait 120 s if not stopped
    assert status["deployment"]["status"] == "failed", status
    assert "the install failed (as the test asked)" in status["deployment"]["error"]
    ran = steps(status)
    assert ran["install"]["status"] == "failed"
    assert ran["database"]["status"] == "undone"
    assert "stopped: step 'install' failed" in (ran["database"]["error"] or "")
    assert ran["build"]["status"] == "skipped" and ran["promote"]["status"] == "skipped"
    assert not database_exists(f"shop_{deployment[:8]}_db")
    assert engine.app("shop")["live_deployment_id"] is None
