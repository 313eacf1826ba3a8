"""`launchdeck domains add/check` over the real HTTP API router (engine.api.domains), a real DNS
server on loopback and the real edge host. The engine's own assembly is tested by the foundation; here
the router is mounted on a minimal FastAPI app with the engine's error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

import engine.cli.common
from engine import domains, errors
from engine.api import STATUS_BY_ERROR, error_body
from engine.api import domains as domain_routes
from engine.auth import issue_token
from engine.cli import domains as domains_cli
from engine.client import EngineClient
from engine.config import Settings
from engine.edge import EdgeHost
from engine.store import Store
from tests.edge.conftest import fetch, static_site
from tests.edge.dns_server import ZoneResolver, dns_server
from tests.servers.asgi import serve


@pytest.fixture
def api(
    edge: EdgeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Store, ZoneResolver]]:
    store = Store(tmp_path / "store.duckdb")
    try:
        store.execute("INSERT INTO deployed_apps (name, user_id) VALUES ('shop', 'owner-1')")
        # A custom domain needs a tier that includes one (the free tier has none).
        store.execute("INSERT INTO user_subscriptions (user_id, tier) VALUES ('owner-1', 'pro')")
        token = issue_token(store, role="operator", principal="ops", name="test")
        with dns_server() as (zone, (address, port)):
            settings = Settings(workspace=tmp_path / "workspace", dns_resolvers=f"{address}:{port}")
            app = FastAPI()
            app.state.engine = SimpleNamespace(store=store, settings=settings, edge=edge)

            @app.exception_handler(errors.LaunchdeckError)
            async def mapped(_: Request, exc: errors.LaunchdeckError) -> JSONResponse:
                status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
                return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status)

            app.include_router(domain_routes.router)
            with serve(app) as url:

                @contextmanager
                def client() -> Iterator[EngineClient]:
                    with EngineClient(url, token) as engine_client:
                        try:
                            yield engine_client
                        except errors.LaunchdeckError as exc:
                            engine.cli.common.fail(str(exc))

                monkeypatch.setattr(engine.cli.common, "engine_client", client)
                yield store, zone
    finally:
        store.close()


def test_add_then_check_until_the_domain_serves_the_app(
    api: tuple[Store, ZoneResolver], edge: EdgeHost, tmp_path: Path
) -> None:
    store, zone = api
    edge.stage("shop", "d1", static_site(tmp_path / "s", {"index.html": "the shop"}))
    edge.promote("shop", "d1")
    runner = CliRunner()

    added = runner.invoke(domains_cli.app, ["add", "shop", "Shop.Example.com"])
    assert added.exit_code == 0, added.output
    assert "CNAME  shop.example.com" in added.output and "shop.localhost" in added.output
    record = domains.get(store, "shop.example.com")
    assert record is not None and "TXT    _launchdeck.shop.example.com" in added.output
    assert record.txt_value in added.output

    pending = runner.invoke(domains_cli.app, ["check", "shop", "shop.example.com"])
    assert pending.exit_code == 1 and "dns: pending" in pending.output

    zone.records[("shop.example.com", "CNAME")] = ["shop.localhost"]
    zone.records[("_launchdeck.shop.example.com", "TXT")] = [record.txt_value]
    valid = runner.invoke(domains_cli.app, ["check", "shop", "shop.example.com"])
    assert valid.exit_code == 0, valid.output
    assert "dns: valid   certificate: issued" in valid.output
    with httpx.Client(trust_env=False) as client:
        assert fetch(client, edge, "shop.example.com").text == "the shop"


def test_a_bad_domain_gets_a_message_and_a_failing_exit_code(api: tuple[Store, ZoneResolver]) -> None:
    result = CliRunner().invoke(domains_cli.app, ["add", "shop", "shop_1.example.com"])
    assert result.exit_code == 1
    assert "may contain only letters, digits and hyphens" in result.output
