"""Each database with each host, built from settings the way the pipeline builds them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import settings
from engine.errors import ConfigError, InputError
from engine.providers.cloud import database_provider, hosting_provider
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.neon import NeonEmulator
from tests.emulators.turso import TursoEmulator
from tests.emulators.vercel import VercelEmulator
from tests.providers.conftest import fetch, write_site
from tests.servers.asgi import serve


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    turso, neon, cf, vercel = TursoEmulator(tmp_path / "turso"), NeonEmulator(), CloudflareEmulator(), VercelEmulator()
    try:
        with serve(turso.app) as t, serve(neon.app) as n, serve(cf.app) as c, serve(vercel.app) as v:
            for key, value in {
                "LAUNCHDECK_TURSO_API_URL": t, "TURSO_ORG_ID": turso.org, "TURSO_API_TOKEN": turso.api_token,
                "LAUNCHDECK_NEON_API_URL": n + "/api/v2", "NEON_API_KEY": neon.api_key,
                "LAUNCHDECK_CLOUDFLARE_API_URL": c + "/client/v4", "CLOUDFLARE_ACCOUNT_ID": cf.account_id,
                "CLOUDFLARE_API_TOKEN": cf.api_token, "LAUNCHDECK_VERCEL_API_URL": v, "VERCEL_TOKEN": vercel.token,
            }.items():
                monkeypatch.setenv(key, value)
            settings.cache_clear()
            yield {"turso": turso, "neon": neon, "cloudflare": cf, "vercel": vercel}
    finally:
        settings.cache_clear()
        turso.close()
        neon.drop_all()


@pytest.mark.parametrize("db_name", ["turso", "neon"])
@pytest.mark.parametrize("host_name", ["cloudflare", "vercel"])
def test_provision_then_deploy_with_the_database_url(
    cloud: dict[str, object], db_name: str, host_name: str, tmp_path: Path
) -> None:
    db = database_provider(db_name)
    host = hosting_provider(host_name, poll_interval=0.01)
    handle = db.provision(f"app-7-{db_name}")
    env = {"DATABASE_URL": handle.url, **({"DATABASE_AUTH_TOKEN": handle.token} if handle.token else {})}
    deployment = host.deploy(f"app-7-{host_name}", write_site(tmp_path / "out", {"index.html": "live"}), env)
    assert fetch(deployment.url).text == "live"
    assert db.find(f"app-7-{db_name}") is not None
    db.destroy(f"app-7-{db_name}")
    host.destroy(f"app-7-{host_name}")
    assert db.find(f"app-7-{db_name}") is None
    for client in (db, host):
        client.close()  # type: ignore[union-attr]  # cloud clients hold a connection pool


def test_unknown_names_and_missing_credentials_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="choose one of turso, neon"):
        database_provider("mongo")
    with pytest.raises(InputError, match="choose one of cloudflare, vercel"):
        hosting_provider("netlify")
    monkeypatch.delenv("VERCEL_TOKEN", raising=False)
    settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="VERCEL_TOKEN"):
            hosting_provider("vercel")
    finally:
        settings.cache_clear()
