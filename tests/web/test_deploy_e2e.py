"""One-click web deployment end to end, on the embedded default: a real engine process, real builds of
the example apps, a real libSQL file and a real PostgreSQL database, the app used through its URL.

The tests in this module run in order and share one engine (each build costs about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from engine.client import EngineClient
from engine.providers.local_postgres import identifier_for
from tests.servers.engine import engine_process, operator_token

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
pytestmark = pytest.mark.slow


class Fleet:
    def __init__(self, url: str, workspace: Path) -> None:
        self.workspace = workspace
        self.client = EngineClient(url, operator_token(workspace), timeout=120)

    def deploy(self, source: Path, app: str, **options: Any) -> dict[str, Any]:
        started = self.client.deploy_web(str(source), app=app, **options)
        return self.client.wait(started["deployment_id"], timeout=900)

    def run(self, started: dict[str, Any]) -> dict[str, Any]:
        return self.client.wait(started["deployment_id"], timeout=300)

    def app(self, name: str) -> dict[str, Any]:
        return self.client.app(name)


def drop_leftover_database(admin_url: str, app: str) -> None:
    """The PostgreSQL server outlives test runs: a run killed midway leaves the app's database behind,
    which the engine rightly refuses to overwrite for a new app of that name."""
    ident = sql.Identifier(identifier_for(app))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> Iterator[Fleet]:
    workspace = tmp_path_factory.mktemp("e2e") / "workspace"
    drop_leftover_database(pg_admin_url, "taskboard")
    env = {"LAUNCHDECK_POSTGRES_ADMIN_URL": pg_admin_url}
    with engine_process(workspace, extra_env=env) as (url, _):
        fleet = Fleet(url, workspace)
        yield fleet
        fleet.client.close()


@contextmanager
def browser_session(app_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for ``http://<app>.localhost:<port>/``: Python does not resolve *.localhost, so
    it connects to loopback and sends the app's Host header, as curl and Chromium do."""
    parsed = httpx.URL(app_url)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{parsed.port}", headers={"Host": parsed.netloc.decode()}, timeout=60
    ) as client:
        yield client


def login(session: httpx.Client, email: str) -> None:
    csrf = session.get("/api/auth/csrf").json()["csrfToken"]
    session.post(
        "/api/auth/callback/credentials",
        data={"csrfToken": csrf, "email": email, "password": "preview123", "json": "true"},
    )
    assert session.get("/api/auth/session").json()["user"]["email"] == email


def assert_live(status: dict[str, Any]) -> str:
    deployment = status["deployment"]
    assert deployment["status"] == "succeeded", json.dumps(status, default=str)[:3000]
    assert {s["status"] for s in status["steps"]} == {"succeeded"}
    return str(deployment["url"])


def test_deploy_shop_on_libsql_serves_pages_preview_rows_and_login(fleet: Fleet) -> None:
    status = fleet.deploy(EXAMPLES / "shop", "shop")
    url = assert_live(status)
    details = {s["name"]: s["detail"] for s in status["steps"]}
    assert "rows transferred from preview" in details["database"]
    with browser_session(url) as session:
        health = session.get("/api/health")
        assert health.status_code == 200, health.text
        assert session.get("/").status_code == 200
        products = session.get("/api/products").json()
        preview = sqlite3.connect(EXAMPLES / "shop" / "preview.sqlite")
        active = {row[0] for row in preview.execute("SELECT sku FROM products WHERE active = 1")}
        preview.close()
        assert {p["sku"] for p in products} == active
        # Preview data arrived typed right: a Decimal price and Json attributes, as the app reads them.
        assert all(isinstance(p["name"], str) and p["price"] is not None for p in products)
        assert session.post("/api/orders", json={}).status_code in (401, 403)  # role checks are live
        login(session, "admin@shop.test")
    assert fleet.app("shop")["status"] == "active"
    assert not (EXAMPLES / "shop" / "node_modules").exists()  # the app's own folder was not touched


def test_failed_redeploy_leaves_the_live_version_serving(fleet: Fleet, tmp_path: Path) -> None:
    live_before = fleet.app("shop")["live_deployment_id"]
    broken = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", broken)
    (broken / "app" / "page.tsx").write_text(
        "export default function Home() { return <main>{oops</main>; }\n"
    )

    status = fleet.deploy(broken, "shop")

    assert status["deployment"]["status"] == "failed"
    assert status["deployment"]["error"].startswith("build:")
    assert fleet.app("shop")["live_deployment_id"] == live_before
    with browser_session(fleet.app("shop")["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200


def test_suspend_answers_503_and_resume_loses_nothing(fleet: Fleet) -> None:
    url = fleet.app("shop")["deployment_url"]
    with browser_session(url) as session:
        before = session.get("/api/products").json()
    assert fleet.run(fleet.client.suspend("shop"))["deployment"]["status"] == "succeeded"
    with browser_session(url) as session:
        page = session.get("/")
        assert page.status_code == 503 and "suspended" in page.text.lower()
    assert not (fleet.workspace / "databases" / "shop" / "shop.db").exists()  # the database is closed too
    assert fleet.run(fleet.client.resume("shop"))["deployment"]["status"] == "succeeded"
    with browser_session(url) as session:
        assert session.get("/api/products").json() == before


def test_killed_app_server_comes_back(fleet: Fleet) -> None:
    url = fleet.app("shop")["deployment_url"]
    with browser_session(url) as session:
        assert session.get("/api/health").status_code == 200
    pid_files = list((fleet.workspace / "edge" / "run").glob("shop--*.json"))
    assert pid_files, "no running server recorded for shop"
    pid = int(json.loads(pid_files[0].read_text())["pid"])
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with browser_session(url) as session:
                if session.get("/api/health").status_code == 200:
                    break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the app server did not come back"
        time.sleep(0.5)
    hosting = fleet.app("shop")["hosting"]
    assert hosting["server_state"] == "running" and hosting["server_pid"] != pid


def pg_database_exists(pg_admin_url: str, app: str) -> bool:
    with psycopg.connect(pg_admin_url) as connection:
        found = connection.execute(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = %s) + "
            "(SELECT count(*) FROM pg_roles WHERE rolname = %s)",
            [identifier_for(app), identifier_for(app)],
        ).fetchone()
    return bool(found and found[0])


def test_taskboard_on_postgres_redeploy_rollback_and_destroy(fleet: Fleet, pg_admin_url: str) -> None:
    first = fleet.deploy(EXAMPLES / "taskboard", "taskboard", db="local-postgres")
    url = assert_live(first)
    with browser_session(url) as session:
        tasks = session.get("/api/tasks").json()
        assert len(tasks) >= 1
        login(session, "mo@taskboard.test")
        created = session.post("/api/projects", json={"name": "Made in production"})
        assert created.status_code == 201

    second = fleet.deploy(EXAMPLES / "taskboard", "taskboard", db="local-postgres", env={"BANNER": "v2"})
    assert_live(second)
    assert "existing local-postgres database" in {s["name"]: s["detail"] for s in second["steps"]}["database"]
    assert fleet.app("taskboard")["live_deployment_id"] == second["deployment"]["id"]

    rolled = fleet.run(fleet.client.rollback("taskboard"))
    assert rolled["deployment"]["status"] == "succeeded"
    app = fleet.app("taskboard")
    assert app["live_deployment_id"] == first["deployment"]["id"]
    with browser_session(url) as session:
        names = [p["name"] for p in session.get("/api/projects").json()]
        assert "Made in production" in names  # data written in production survives redeploy and rollback

    assert pg_database_exists(pg_admin_url, "taskboard")
    assert fleet.run(fleet.client.destroy("taskboard"))["deployment"]["status"] == "succeeded"
    assert not pg_database_exists(pg_admin_url, "taskboard")
    assert not (fleet.workspace / "edge" / "apps" / "taskboard").exists()
    assert not list((fleet.workspace / "edge" / "run").glob("taskboard--*"))
    assert fleet.app("taskboard")["secrets"] == []
    assert fleet.app("taskboard")["status"] == "destroyed"
    with browser_session(url) as session:
        assert session.get("/").status_code == 404
