"""Deploying to a cloud host, end to end against the emulators, so every check here reaches the app (its
health route, its preview rows in the Turso or Neon database, its login):

- Vercel: the emulator installs and builds the uploaded source for real and serves the deployment through
  the app's own server.
- Cloudflare: the app is built here with OpenNext into a Worker; the emulator runs the uploaded Worker on
  workerd (wrangler's local runtime).

The tests in this module run in order and share one engine and one set of emulators.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.neon import NeonEmulator
from tests.emulators.turso import TursoEmulator
from tests.emulators.vercel import VercelEmulator
from tests.providers.conftest import fetch
from tests.servers.asgi import serve
from tests.web.test_deploy_e2e import browser_session, login

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
pytestmark = pytest.mark.slow


@dataclass
class Cloud:
    turso: TursoEmulator
    neon: NeonEmulator
    vercel: VercelEmulator
    cloudflare: CloudflareEmulator
    client: EngineClient
    engine: Engine

    def deploy(self, source: Path, app: str, host: str = "vercel", **options: Any) -> dict[str, Any]:
        started = self.client.deploy_web(str(source), app=app, host=host, **options)
        return self.client.wait(started["deployment_id"], timeout=900)

    def run(self, action: str, app: str) -> dict[str, Any]:
        """suspend, resume, rollback or destroy, to the end."""
        started = getattr(self.client, action)(app)
        return self.client.wait(started["deployment_id"], timeout=300)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("cloud-hosting")
    turso, neon, vercel = TursoEmulator(root / "turso"), NeonEmulator(), VercelEmulator()
    cloudflare = CloudflareEmulator()
    try:
        with (
            serve(turso.app) as turso_url,
            serve(neon.app) as neon_url,
            serve(vercel.app) as vercel_url,
            serve(cloudflare.app) as cloudflare_url,
        ):
            settings = Settings(
                workspace=root / "workspace",
                edge_port=0,
                turso_api_url=turso_url,
                neon_api_url=neon_url + "/api/v2",
                vercel_api_url=vercel_url,
                cloudflare_api_url=cloudflare_url + "/client/v4",
                TURSO_ORG_ID=turso.org,
                TURSO_API_TOKEN=turso.api_token,
                NEON_API_KEY=neon.api_key,
                VERCEL_TOKEN=vercel.token,
                CLOUDFLARE_ACCOUNT_ID=cloudflare.account_id,
                CLOUDFLARE_API_TOKEN=cloudflare.api_token,
            )
            engine = Engine(settings)
            client = EngineClient(engine.start_in_thread(), str(engine.first_token))
            try:
                yield Cloud(turso, neon, vercel, cloudflare, client, engine)
            finally:
                client.close()
                engine.stop_thread()
    finally:
        cloudflare.close()
        vercel.close()
        turso.close()
        neon.drop_all()


def succeeded(status: dict[str, Any]) -> dict[str, str]:
    assert status["deployment"]["status"] == "succeeded", status["deployment"].get("error") or status
    return {s["name"]: s["detail"] for s in status["steps"]}


def active_skus() -> set[str]:
    with sqlite3.connect(EXAMPLES / "shop" / "preview.sqlite") as preview:
        return {row[0] for row in preview.execute("SELECT sku FROM products WHERE active = 1")}


def test_shop_on_turso_and_vercel_serves_its_preview_rows_through_a_storm_of_429s(cloud: Cloud) -> None:
    # Vercel answers 429 with Retry-After to the first uploads and env writes: the deploy waits and goes on.
    cloud.vercel.faults.add(429, method="POST", path="^/v2/files$", times=3, retry_after=1)
    cloud.vercel.faults.add(429, method="POST", path="/env$", times=1, retry_after=1)

    steps = succeeded(cloud.deploy(EXAMPLES / "shop", "shop", db="turso"))

    assert list(steps) == ["preflight", "transform", "database", "environment", "host", "verify"]
    app = cloud.client.app("shop")
    assert app["hosting_provider"] == "vercel" and app["database_provider"] == "turso"
    assert app["deployment_url"].startswith("http://shop.vercel.localhost:")  # the production alias
    with browser_session(app["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200
        assert {p["sku"] for p in session.get("/api/products").json()} == active_skus()
        login(session, "admin@shop.test")  # NextAuth works on the host's own URL
    # The app's secrets went to Vercel as encrypted project variables; the retried requests waited.
    project_env = cloud.vercel.projects["shop"].env
    assert project_env["TURSO_AUTH_TOKEN"]["type"] == "encrypted" and "NEXTAUTH_URL" not in project_env
    uploads = [e for e in cloud.vercel.recorder.exchanges if e.path == "/v2/files"]
    rejected = [e for e in uploads if e.status == 429]
    assert len(rejected) == 3
    for refused in rejected:
        retries = [e for e in uploads if e.at > refused.at and e.request_body == refused.request_body]
        assert retries and retries[0].at - refused.at >= 0.9  # Retry-After: 1 honoured


def test_failed_redeploy_keeps_production_serving(cloud: Cloud, tmp_path: Path) -> None:
    live = cloud.client.app("shop")
    broken = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", broken, ignore=shutil.ignore_patterns("node_modules", ".next"))
    (broken / "app" / "page.tsx").write_text(
        "export default function Home() { return <main>{oops</main>; }\n"
    )
    production_before = cloud.vercel.projects["shop"].production

    status = cloud.deploy(broken, "shop", db="turso")

    assert status["deployment"]["status"] == "failed"
    assert "host" in status["deployment"]["error"] and "npm run build" in status["deployment"]["error"]
    # The failed build stays in Vercel's list as ERROR (as Vercel keeps it); production never moved.
    assert cloud.vercel.projects["shop"].production == production_before
    assert [d.state for d in cloud.vercel.deployments.values()].count("ERROR") == 1
    assert cloud.client.app("shop")["live_deployment_id"] == live["live_deployment_id"]
    with browser_session(live["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200


def test_rollback_suspend_resume_and_destroy_on_the_cloud_host(cloud: Cloud) -> None:
    first = cloud.client.app("shop")
    succeeded(cloud.deploy(EXAMPLES / "shop", "shop", db="turso"))  # a second good deployment
    second = cloud.client.app("shop")
    assert second["live_deployment_id"] != first["live_deployment_id"]
    production = second["deployment_url"]
    production_of = lambda: cloud.vercel.projects["shop"].production  # noqa: E731

    serving_second = production_of()
    succeeded(cloud.run("rollback", "shop"))
    assert production_of() != serving_second
    assert cloud.client.app("shop")["live_deployment_id"] == first["live_deployment_id"]
    with browser_session(production) as session:
        assert session.get("/api/health").status_code == 200

    succeeded(cloud.run("suspend", "shop"))
    assert "suspended" in fetch(production).text
    succeeded(cloud.run("resume", "shop"))
    with browser_session(production) as session:
        assert session.get("/api/health").status_code == 200

    succeeded(cloud.run("destroy", "shop"))
    assert "shop" not in cloud.vercel.projects and "shop" not in cloud.turso.databases
    assert fetch(production).status_code == 404


def test_taskboard_on_neon_and_vercel(cloud: Cloud) -> None:
    steps = succeeded(cloud.deploy(EXAMPLES / "taskboard", "taskboard", db="neon"))
    assert "Prisma 6" in steps["transform"] and "rows transferred from preview" in steps["database"]
    app = cloud.client.app("taskboard")
    with browser_session(app["deployment_url"]) as session:
        health = session.get("/api/health")
        assert health.status_code == 200, health.text
    (project,) = cloud.neon.projects.values()
    assert app["database_id"] == project.id


def test_hosting_that_fails_terminally_undoes_the_database_it_created(cloud: Cloud) -> None:
    cloud.vercel.faults.add(
        403,
        method="POST",
        path="^/v13/deployments$",
        body={"error": {"code": "forbidden", "message": "plan limit"}},
    )
    creates = cloud.turso.creates

    status = cloud.deploy(EXAMPLES / "shop", "orphan-check", db="turso")

    assert status["deployment"]["status"] == "failed" and "plan limit" in status["deployment"]["error"]
    assert cloud.turso.creates == creates + 1 and "orphan-check" not in cloud.turso.databases
    assert "orphan-check" not in cloud.vercel.projects  # the project this first deploy created, too


def test_a_project_that_was_there_before_is_kept_when_the_first_deploy_fails(cloud: Cloud) -> None:
    from engine.providers.vercel import Vercel

    owner = Vercel(cloud.vercel.token, base_url=cloud.engine.settings.vercel_api_url)
    owner.ensure_project("preexisting")  # made by hand in the Vercel account, before Launchdeck
    owner.close()
    cloud.vercel.faults.add(
        403,
        method="POST",
        path="^/v13/deployments$",
        body={"error": {"code": "forbidden", "message": "plan limit"}},
    )

    status = cloud.deploy(EXAMPLES / "shop", "preexisting", db="turso")

    assert status["deployment"]["status"] == "failed"
    assert "preexisting" in cloud.vercel.projects  # not this run's to delete
    assert "preexisting" not in cloud.turso.databases  # the database this run created is undone


def test_a_local_database_cannot_be_used_from_a_cloud_host(cloud: Cloud) -> None:
    status = cloud.deploy(EXAMPLES / "shop", "misplaced", db="local-libsql")
    assert status["deployment"]["status"] == "failed"
    assert "choose --db turso, neon or byo" in status["deployment"]["error"]
    assert cloud.client.app("misplaced")["database_provider"] is None


def test_shop_on_turso_and_cloudflare_workers(cloud: Cloud) -> None:
    steps = succeeded(cloud.deploy(EXAMPLES / "shop", "edge-shop", host="cloudflare", db="turso"))

    assert list(steps) == [
        "preflight",
        "transform",
        "database",
        "environment",
        "install",
        "build",
        "host",
        "verify",
    ]
    assert "OpenNext build" in steps["build"] and "Worker bundle" in steps["build"]
    app = cloud.client.app("edge-shop")
    assert app["hosting_provider"] == "cloudflare" and ".workers.localhost:" in app["deployment_url"]
    assert "edge-shop" in cloud.cloudflare.workers.scripts
    with browser_session(app["deployment_url"]) as session:
        health = session.get("/api/health")
        assert health.status_code == 200, health.text
        assert {p["sku"] for p in session.get("/api/products").json()} == active_skus()
        login(session, "admin@shop.test")

    succeeded(cloud.run("suspend", "edge-shop"))
    assert "suspended" in fetch(app["deployment_url"]).text
    succeeded(cloud.run("resume", "edge-shop"))
    with browser_session(app["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200

    succeeded(cloud.run("destroy", "edge-shop"))
    assert "edge-shop" not in cloud.turso.databases and "edge-shop" not in cloud.cloudflare.workers.scripts


def test_shop_on_neon_and_cloudflare_workers(cloud: Cloud) -> None:
    # PostgreSQL from a Worker: a socket per request (workerd forbids reusing one across requests).
    steps = succeeded(cloud.deploy(EXAMPLES / "shop", "edge-pg", host="cloudflare", db="neon"))
    assert (
        steps["database"].startswith("neon database") and "rows transferred from preview" in steps["database"]
    )
    app = cloud.client.app("edge-pg")
    with browser_session(app["deployment_url"]) as session:
        for _ in range(3):  # more than one request: each gets its own client
            health = session.get("/api/health")
            assert health.status_code == 200, health.text
        assert {p["sku"] for p in session.get("/api/products").json()} == active_skus()
        login(session, "admin@shop.test")


def test_prisma_client_js_on_workers_is_refused_before_anything_is_created(cloud: Cloud) -> None:
    status = cloud.deploy(EXAMPLES / "taskboard", "js-on-workers", host="cloudflare", db="turso")
    assert status["deployment"]["status"] == "failed"
    assert 'need Prisma\'s "prisma-client" generator' in status["deployment"]["error"]
    assert cloud.client.app("js-on-workers")["database_provider"] is None
