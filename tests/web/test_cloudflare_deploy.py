"""`--db turso --host cloudflare` end to end: the app is built here with OpenNext into a Worker, its
assets and script are uploaded to the Cloudflare emulator, which runs the uploaded Worker on workerd
(wrangler's local runtime), so the health check, the pages and the login reach the app for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.turso import TursoEmulator
from tests.providers.conftest import fetch
from tests.servers.asgi import serve
from tests.web.test_cloud_hosting import active_skus, succeeded
from tests.web.test_deploy_e2e import browser_session, login

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
pytestmark = pytest.mark.slow

Cloud = tuple[TursoEmulator, CloudflareEmulator, EngineClient]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("cloudflare-deploy")
    turso, cloudflare = TursoEmulator(root / "turso"), CloudflareEmulator()
    try:
        with serve(turso.app) as turso_url, serve(cloudflare.app) as cloudflare_url:
            settings = Settings(
                workspace=root / "workspace",
                edge_port=0,
                turso_api_url=turso_url,
                cloudflare_api_url=cloudflare_url + "/client/v4",
                TURSO_ORG_ID=turso.org,
                TURSO_API_TOKEN=turso.api_token,
                CLOUDFLARE_ACCOUNT_ID=cloudflare.account_id,
                CLOUDFLARE_API_TOKEN=cloudflare.api_token,
            )
            engine = Engine(settings)
            client = EngineClient(engine.start_in_thread(), settings.operator_token_path.read_text().strip())
            try:
                yield turso, cloudflare, client
            finally:
                client.close()
                engine.stop_thread()
    finally:
        cloudflare.close()
        turso.close()


def deploy(client: EngineClient, app: str, db: str, source: Path = EXAMPLES / "shop") -> dict[str, object]:
    started = client.deploy_web(str(source), app=app, db=db, host="cloudflare")
    return client.wait(started["deployment_id"], timeout=900)


def test_shop_on_turso_and_cloudflare_workers(cloud: Cloud) -> None:
    turso, cloudflare, client = cloud

    steps = succeeded(deploy(client, "shop", "turso"))

    assert list(steps) == ["preflight", "database", "environment", "transform", "build", "host", "verify"]
    assert "OpenNext build" in steps["build"] and "Worker bundle" in steps["build"]
    app = client.app("shop")
    assert app["hosting_provider"] == "cloudflare" and ".workers.localhost:" in app["deployment_url"]
    assert "shop" in cloudflare.workers.scripts
    with browser_session(app["deployment_url"]) as session:
        health = session.get("/api/health")
        assert health.status_code == 200, health.text
        assert {p["sku"] for p in session.get("/api/products").json()} == active_skus()
        login(session, "admin@shop.test")

    started = client.suspend("shop")
    succeeded(client.wait(started["deployment_id"], timeout=300))
    assert "suspended" in fetch(app["deployment_url"]).text
    started = client.resume("shop")
    succeeded(client.wait(started["deployment_id"], timeout=300))
    with browser_session(app["deployment_url"]) as session:
        assert session.get("/api/health").status_code == 200

    started = client.destroy("shop")
    succeeded(client.wait(started["deployment_id"], timeout=300))
    assert "shop" not in turso.databases and "shop" not in cloudflare.workers.scripts


def test_neon_on_workers_is_refused_before_anything_is_created(cloud: Cloud) -> None:
    _, _, client = cloud
    status = deploy(client, "pg-on-workers", "neon")
    assert status["deployment"]["status"] == "failed"  # type: ignore[index]
    assert "use --db turso with --host cloudflare" in str(status["deployment"]["error"])  # type: ignore[index]
    assert client.app("pg-on-workers")["database_provider"] is None
