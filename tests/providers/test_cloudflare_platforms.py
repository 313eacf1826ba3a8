"""Workers for Platforms against the emulator: user Workers in a dispatch namespace, served through one dispatch
Worker (Launchdeck's, running on workerd) that routes by hostname, applies per-app limits and reaches a staged
version only with the platform's preview token; custom hostnames (Cloudflare for SaaS) and the Workers cap.

The shared specs have no Workers for Platforms, KV, routes or custom hostname paths: every exchange is checked
against JSON schemas written from the sources named in tests/emulators/SOURCES.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from engine.errors import PlanLimitReached, ProviderError
from engine.providers import cloudflare_platforms
from engine.providers.base import HostingProvider
from engine.providers.cloudflare_platforms import CloudflarePlatforms, _hostname_status
from engine.providers.cloudflare_workers import CloudflareWorkers
from engine.providers.http import RateLimiter
from tests.emulators.cloudflare import WRANGLER, CloudflareEmulator
from tests.providers.conftest import FAST_RETRY, write_site
from tests.servers.asgi import serve

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="npm ci in tests/emulators/node first")
ZONE = "apps.localhost"

USER_WORKER = """\
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/burn") {
      let x = 0;
      for (let i = 0; i < 60_000_000; i++) x += Math.sqrt(i);  // well over 50 ms of CPU
      return new Response("burnt " + x);
    }
    return new Response(`${env.VERSION} at ${url.host}`);
  },
};
"""


def user_bundle(root: Path, version: str) -> Path:
    return write_site(
        root,
        {
            "worker.json": json.dumps({"main_module": "worker.js", "compatibility_date": "2026-04-01"}),
            "modules/worker.js": USER_WORKER.replace("env.VERSION", json.dumps(version)),
            "assets/api/health": json.dumps({"ok": True, "version": version}),
        },
    )


@pytest.fixture
def platform() -> Iterator[tuple[CloudflareEmulator, CloudflarePlatforms, str]]:
    emulator = CloudflareEmulator(zones=("example.com", ZONE))
    cloudflare_platforms._ready.clear()  # a new emulator: set the platform up again
    try:
        with serve(emulator.app) as url:
            client = CloudflarePlatforms(
                emulator.account_id,
                emulator.api_token,
                namespace="launchdeck",
                apps_zone=ZONE,
                limits={"cpuMs": 50, "subRequests": 10},
                base_url=url + "/client/v4",
                retry=FAST_RETRY,
                limiter=RateLimiter(1200, 300),
            )
            try:
                yield emulator, client, url
            finally:
                client.close()
    finally:
        emulator.close()


def get(url: str, path: str = "/", headers: dict[str, str] | None = None) -> httpx.Response:
    """A request to an app's URL (``*.localhost``: loopback plus the Host header)."""
    parsed = httpx.URL(url)
    return httpx.get(
        f"http://127.0.0.1:{parsed.port}{path}",
        headers={"Host": parsed.netloc.decode(), **(headers or {})},
        timeout=60,
        trust_env=False,
    )


def test_user_workers_are_staged_promoted_and_rolled_back_through_the_dispatch_worker(
    platform: tuple[CloudflareEmulator, CloudflarePlatforms, str], tmp_path: Path
) -> None:
    cf, client, _ = platform
    assert isinstance(client, HostingProvider)
    first = client.stage("shop", user_bundle(tmp_path / "v1", "v1"), {"SECRET": "s3cret"})
    production = client.production_url("shop")
    assert production.startswith(f"http://shop.{ZONE}:")
    # A new user Worker is live at once; its static health file is served without running it.
    assert get(production, "/api/health").json() == {"ok": True, "version": "v1"}
    assert get(production).text == f"v1 at shop.{ZONE}:{httpx.URL(production).port}"

    second = client.stage("shop", user_bundle(tmp_path / "v2", "v2"), {"SECRET": "s3cret"})
    assert get(production).text.startswith("v1")  # staged beside production at 0%
    preview = client.preview_headers("shop", second.id)
    assert get(production, headers=preview).text.startswith("v2")
    forged = {**preview, "X-Launchdeck-Preview": "guess"}
    assert get(production, headers=forged).text.startswith("v1")  # no token, no override
    direct = {"Cloudflare-Workers-Version-Overrides": f'shop="{second.id}"'}
    assert get(production, headers=direct).text.startswith("v1")  # the dispatcher strips it

    client.promote("shop", second.id)
    assert get(production).text.startswith("v2")
    client.promote("shop", first.id)  # rollback
    assert get(production).text.startswith("v1")
    # Every user Worker lives in the namespace; the account holds only the dispatch Worker.
    assert set(cf.workers.platforms.namespaces["launchdeck"].scripts) == {"shop"}
    assert set(cf.workers.scripts) == {cloudflare_platforms.DISPATCH_SCRIPT}

    client.destroy("shop")
    assert get(production).status_code == 404
    assert "shop" not in cf.workers.platforms.namespaces["launchdeck"].scripts


def test_the_dispatch_worker_applies_each_apps_cpu_limit(
    platform: tuple[CloudflareEmulator, CloudflarePlatforms, str], tmp_path: Path
) -> None:
    cf, client, _ = platform
    client.stage("busy", user_bundle(tmp_path / "v1", "v1"), {})
    production = client.production_url("busy")
    assert get(production).status_code == 200
    burnt = get(production, "/burn")  # far more CPU than the 50 ms limit
    assert burnt.status_code == 503 and burnt.text == "CPU limit exceeded", [
        (i.status, i.cpu_us) for i in cf.workers.invocations
    ]
    statuses = [i.status for i in cf.workers.invocations if i.script == "busy"]
    assert statuses[-1] == "exceededResources"
    assert get(production).status_code == 200  # the next request runs again


def test_custom_hostname_life_pending_active_failed(
    platform: tuple[CloudflareEmulator, CloudflarePlatforms, str], tmp_path: Path
) -> None:
    cf, client, _ = platform
    cf.workers.platforms.validation_reads = 5
    client.stage("shop", user_bundle(tmp_path / "v1", "v1"), {})

    pending = client.add_domain("shop", "shop.example.org")
    assert pending.status == "pending"
    txt = {k.removeprefix("TXT "): v for k, v in pending.verification.items() if k.startswith("TXT ")}
    assert set(txt) == {"_cf-custom-hostname.shop.example.org", "_acme-challenge.shop.example.org"}
    assert pending.verification["CNAME shop.example.org"] == ZONE
    assert client.domain_status("shop", "shop.example.org").status == "pending"
    for name, value in txt.items():
        cf.workers.platforms.publish(name, value)
    assert client.domain_status("shop", "shop.example.org").status == "active"
    # Active: the dispatch Worker serves the user's own domain, mapped in KV.
    port = httpx.URL(client.production_url("shop")).port
    assert get(f"http://shop.example.org:{port}").text.startswith("v1")

    failing = client.add_domain("shop", "never.example.org")  # nobody publishes its records
    states = [client.domain_status("shop", "never.example.org").status for _ in range(5)]
    assert states[0] == "pending" and states[-1] == "failed"
    assert "validation timed out" in client.domain_status("shop", "never.example.org").verification["errors"]
    cf.workers.platforms.block("blocked.example.org")
    assert client.add_domain("shop", "blocked.example.org").status in ("pending", "failed")
    assert client.domain_status("shop", "blocked.example.org").status == "failed"
    client.remove_domain("shop", "never.example.org")
    assert "never.example.org" not in cf.workers.platforms.hostnames
    assert failing.status == "pending"


def test_custom_hostnames_stop_at_the_zones_cap_before_anything_is_created(
    platform: tuple[CloudflareEmulator, CloudflarePlatforms, str], tmp_path: Path
) -> None:
    cf, client, _ = platform
    cf.workers.platforms.hostname_cap = 1
    client.stage("shop", user_bundle(tmp_path / "v1", "v1"), {})
    client.add_domain("shop", "one.example.org")
    with pytest.raises(PlanLimitReached, match="holds 1 custom hostnames, its cap"):
        client.add_domain("shop", "two.example.org")
    assert set(cf.workers.platforms.hostnames) == {"one.example.org"}
    assert client.add_domain("shop", "one.example.org").name == "one.example.org"  # adopting is no new one


def test_plain_workers_stop_at_the_accounts_cap(tmp_path: Path) -> None:
    emulator = CloudflareEmulator(max_scripts=3)
    try:
        with serve(emulator.app) as url:
            workers = CloudflareWorkers(
                emulator.account_id, emulator.api_token, base_url=url + "/client/v4", retry=FAST_RETRY
            )
            site = write_site(tmp_path / "site", {"index.html": "hi"})
            for name in ("a", "b", "c"):
                workers.stage(name, site, {})
            with pytest.raises(ProviderError, match="limit of 3 Workers"):
                workers.stage("d", site, {})
            workers.stage("a", site, {})  # a new version of an existing Worker is not a new Worker
            workers.close()
    finally:
        emulator.close()


def test_hostname_status_words() -> None:
    base: dict[str, Any] = {"hostname": "x.example.org", "ssl": {}}
    assert (
        _hostname_status({**base, "status": "active", "ssl": {"status": "active"}}, ZONE).status == "active"
    )
    assert _hostname_status({**base, "status": "pending"}, ZONE).status == "pending"
    assert _hostname_status({**base, "status": "moved"}, ZONE).status == "failed"
    timed_out = {**base, "status": "pending", "ssl": {"status": "validation_timed_out"}}
    assert _hostname_status(timed_out, ZONE).status == "failed"


def _envelope(result: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["success", "result"], "properties": {"result": result}}


NAMESPACE = {"type": "object", "required": ["namespace_id", "namespace_name", "script_count"]}
HOSTNAME = {
    "type": "object",
    "required": ["id", "hostname", "status", "ownership_verification", "ssl"],
    "properties": {
        "ownership_verification": {"type": "object", "required": ["type", "name", "value"]},
        "ssl": {"type": "object", "required": ["status", "method", "type"]},
    },
}
# (method, path suffix) -> (request schema or None, response schema)
SHAPES: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any]]] = {
    ("GET", "/dispatch/namespaces/launchdeck"): (None, _envelope(NAMESPACE)),
    ("POST", "/dispatch/namespaces"): (
        {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}},
        },
        _envelope(NAMESPACE),
    ),
    ("GET", "/storage/kv/namespaces"): (None, _envelope({"type": "array"})),
    ("POST", "/storage/kv/namespaces"): (
        {
            "type": "object",
            "required": ["title"],
            "additionalProperties": False,
            "properties": {"title": {"type": "string"}},
        },
        _envelope({"type": "object", "required": ["id", "title"]}),
    ),
    ("PUT", "/scripts/launchdeck-dispatch"): (None, _envelope({"type": "object", "required": ["id"]})),
    ("GET", "/workers/routes"): (None, _envelope({"type": "array"})),
    ("POST", "/workers/routes"): (
        {
            "type": "object",
            "required": ["pattern", "script"],
            "additionalProperties": False,
            "properties": {"pattern": {"type": "string"}, "script": {"type": "string"}},
        },
        _envelope({"type": "object", "required": ["id", "pattern"]}),
    ),
    ("GET", "/zones"): (None, _envelope({"type": "array"})),
    ("GET", "/custom_hostnames"): (None, _envelope({"type": "array", "items": HOSTNAME})),
    ("GET", "/custom_hostnames/quota"): (
        None,
        _envelope({"type": "object", "required": ["allocated", "used", "hard_cap", "exceeded"]}),
    ),
    ("POST", "/custom_hostnames"): (
        {
            "type": "object",
            "required": ["hostname", "ssl"],
            "additionalProperties": False,
            "properties": {
                "hostname": {"type": "string"},
                "ssl": {"type": "object", "required": ["method", "type"]},
            },
        },
        _envelope(HOSTNAME),
    ),
}


def test_every_platforms_exchange_has_the_documented_shape(
    platform: tuple[CloudflareEmulator, CloudflarePlatforms, str], tmp_path: Path
) -> None:
    cf, client, _ = platform
    first = client.stage("contract", user_bundle(tmp_path / "v1", "v1"), {"A": "b"})
    second = client.stage("contract", user_bundle(tmp_path / "v2", "v2"), {"A": "b"})
    client.promote("contract", second.id)
    client.promote("contract", first.id)
    client.add_domain("contract", "contract.example.org")
    client.domain_status("contract", "contract.example.org")
    client.remove_domain("contract", "contract.example.org")
    client.destroy("contract")

    namespaced = "/workers/dispatch/namespaces/launchdeck/scripts/contract"
    seen = set()
    for exchange in cf.recorder.exchanges:
        path = exchange.path
        if (
            namespaced in path
        ):  # the Workers script API, under the namespace: as test_cloudflare_workers checks
            assert path.split(namespaced)[1] in ("", "/versions", "/deployments", "/assets-upload-session")
            seen.add("namespaced " + path.split(namespaced)[1])
            continue
        if "/storage/kv/namespaces/" in path and "/values/" in path:
            assert exchange.method in ("PUT", "DELETE") and exchange.status < 300
            if exchange.method == "PUT":
                assert exchange.request_headers["content-type"].startswith("multipart/form-data")
            seen.add(f"{exchange.method} kv value")
            continue
        if path.endswith("/workers/assets/upload"):
            continue
        shape = next(
            (s for (m, suffix), s in SHAPES.items() if m == exchange.method and path.endswith(suffix)), None
        )
        if shape is None and exchange.method == "GET" and "/custom_hostnames/" in path:
            shape = (None, _envelope(HOSTNAME))
        if shape is None and exchange.method == "DELETE" and "/custom_hostnames/" in path:
            shape = (None, _envelope({"type": "object", "required": ["id"]}))
        assert shape is not None, f"no documented shape for {exchange.method} {path}"
        seen.add(f"{exchange.method} {path.rsplit('/', 1)[-1]}")
        if shape[0] is not None:
            jsonschema.validate(exchange.request_json, shape[0])
        if exchange.status < 300:
            jsonschema.validate(exchange.response_json, shape[1])
    assert {"namespaced ", "namespaced /versions", "namespaced /deployments", "PUT kv value"} <= seen
    assert {"POST custom_hostnames", "GET quota", "POST routes", "PUT launchdeck-dispatch"} <= seen
