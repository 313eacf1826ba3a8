"""A user's own domain is attached and validated before production points at a deployment: through the web
pipeline's verify step, a custom hostname (Cloudflare for SaaS) that is still pending or that fails leaves the
live deployment serving; once its TXT records are published it goes active and the deploy is promoted. Vercel's
domain verification is polled the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.apps import get_app
from engine.config import Settings
from engine.providers import cloudflare_platforms
from engine.providers.vercel import Vercel
from engine.service import Engine
from pipelines import providers
from tests.emulators.cloudflare import WRANGLER, CloudflareEmulator
from tests.emulators.vercel import VercelEmulator
from tests.providers.conftest import FAST_RETRY
from tests.providers.test_fleet import Fleet, bundle, get
from tests.servers.asgi import serve

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="npm ci in tests/emulators/node first")
ZONE = "apps.localhost"
ACCOUNT = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Fleet]:
    emulator = CloudflareEmulator(account_id=ACCOUNT, zones=(ZONE,))
    cloudflare_platforms._ready.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(providers, "DOMAIN_WAIT_SECONDS", 1.0)  # a pending domain fails the deploy quickly
        patch.setattr(providers, "DOMAIN_POLL_SECONDS", 0.1)
        try:
            with serve(emulator.app) as url:
                engine = Engine(
                    Settings(
                        workspace=tmp_path / "workspace",
                        edge_port=0,
                        extra_pipelines="tests.providers.fleet_pipeline",
                        cloudflare_api_url=url + "/client/v4",
                        cloudflare_mode="platforms",
                        cloudflare_apps_zone=ZONE,
                        CLOUDFLARE_ACCOUNT_ID=ACCOUNT,
                        CLOUDFLARE_API_TOKEN=emulator.api_token,
                    )
                )
                try:
                    yield Fleet(emulator, engine, bundle(tmp_path / "bundle"))
                finally:
                    engine.close()
        finally:
            emulator.close()


def live_text(cloud: Fleet, host: str | None = None) -> str:
    url = str(get_app(cloud.engine.store, "shop").deployment_url)
    if host is not None:
        url = f"http://{host}:{httpx.URL(url).port}/"
    return get(url).text


def last_error(cloud: Fleet) -> str:
    return str(
        cloud.engine.store.scalar(
            "SELECT error FROM deployments WHERE status = 'failed' ORDER BY created_at DESC LIMIT 1"
        )
    )


def test_a_custom_hostnames_life_pending_active_failed_before_promote(cloud: Fleet) -> None:
    store, saas = cloud.engine.store, cloud.cf.workers.platforms
    saas.validation_reads = 10_000  # Cloudflare keeps retrying validation for days (its backoff schedule)
    assert cloud.deploy(["shop"], greeting="v1") == {"shop": "succeeded"}
    live = get_app(store, "shop").live_deployment_id

    # Pending: nobody has published the TXT records yet. The deploy fails with the records to publish;
    # production still serves v1 and the app's live deployment is unchanged.
    assert cloud.deploy(["shop"], greeting="v2", domain="shop.example.org") == {"shop": "failed"}
    error = last_error(cloud)
    assert "not validated yet" in error and "Production was not changed" in error
    assert "_cf-custom-hostname.shop.example.org" in error and "_acme-challenge.shop.example.org" in error
    assert live_text(cloud) == "v1 from shop" and get_app(store, "shop").live_deployment_id == live
    row = store.fetchone(
        "SELECT status, certificate_status, records FROM cloud_domains WHERE domain = 'shop.example.org'"
    )
    assert row is not None and (row["status"], row["certificate_status"]) == ("pending", "pending")
    assert "TXT _cf-custom-hostname.shop.example.org" in json.loads(row["records"])
    assert get_app(store, "shop").custom_domain is None

    # Active: the owner publishes the records; the next deploy finds the hostname validated, then promotes.
    hostname = saas.hostnames["shop.example.org"]
    saas.publish(hostname.ownership_name, hostname.ownership)
    saas.publish(hostname.certificate_name, hostname.certificate)
    assert cloud.deploy(["shop"], greeting="v3", domain="shop.example.org") == {"shop": "succeeded"}
    assert live_text(cloud) == "v3 from shop" and live_text(cloud, "shop.example.org") == "v3 from shop"
    assert get_app(store, "shop").custom_domain == "shop.example.org"
    row = store.fetchone(
        "SELECT status, certificate_status FROM cloud_domains WHERE domain = 'shop.example.org'"
    )
    assert row == {"status": "active", "certificate_status": "issued"}

    # Failed: a hostname Cloudflare blocks. It is removed, the deploy fails, production keeps serving v3.
    live = get_app(store, "shop").live_deployment_id
    saas.block("blocked.example.org")
    assert cloud.deploy(["shop"], greeting="v4", domain="blocked.example.org") == {"shop": "failed"}
    assert "failed validation" in last_error(cloud) and "it was removed" in last_error(cloud)
    assert "blocked.example.org" not in saas.hostnames
    assert live_text(cloud) == "v3 from shop" and get_app(store, "shop").live_deployment_id == live

    # Destroyed: the app's custom hostname goes with it (it is the zone's, not the user Worker's).
    destroyed = cloud.engine.runner.submit(str(get_app(store, "shop").id), "destroy", {}, requested_by="test")
    assert cloud.engine.runner.wait(destroyed, timeout=120)["status"] == "succeeded"
    assert "shop.example.org" not in saas.hostnames
    assert store.scalar("SELECT count(*) FROM cloud_domains WHERE app = 'shop'") == 0


def test_vercel_domain_is_verified_before_it_is_reported_active(tmp_path: Path) -> None:
    emulator = VercelEmulator(polls_to_ready=6)  # each status read is a read, a verify and a read again
    try:
        with serve(emulator.app) as url:
            vercel = Vercel(emulator.token, base_url=url, retry=FAST_RETRY, poll_interval=0.01)
            vercel.ensure_project("shop")
            added = vercel.add_domain("shop", "shop.example.net")
            assert added.status == "pending"
            assert any(k.startswith("TXT") for k in added.verification)
            states = [vercel.domain_status("shop", "shop.example.net").status for _ in range(2)]
            assert states == ["pending", "verified"]
            vercel.remove_domain("shop", "shop.example.net")
            assert "shop.example.net" not in emulator.projects["shop"].domains
            vercel.close()
    finally:
        emulator.close()
