"""The plan's scale on Cloudflare: a fleet past the 500-Worker cap of Workers Paid deploys through the pipeline
runner as user Workers in a Workers for Platforms dispatch namespace, each served through the dispatch Worker, and
its month is costed to the cent; a deploy that would pass the plain Workers cap is refused in preflight.

Fast on purpose: a pre-built tiny Worker bundle stands in for the Next build (tests/providers/fleet_pipeline.py
runs the web pipeline's own preflight-limits, host and verify steps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from engine.apps import get_or_create_app, platform_app_ids
from engine.config import Settings
from engine.costs.ledger import ingest
from engine.costs.rollup import cost_month
from engine.costs.sources.cloud import CloudflareWorkersUsageSource
from engine.costs.usage import hour_floor
from engine.providers import cloudflare_platforms, cloudflare_workers
from engine.service import Engine
from pipelines.metering import _workers
from tests.emulators.cloudflare import WRANGLER, CloudflareEmulator
from tests.providers.conftest import write_site
from tests.servers.asgi import serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # 600 deploys: about 3 minutes on an idle machine, several on a busy one
    pytest.mark.skipif(not WRANGLER.exists(), reason="npm ci in tests/emulators/node first"),
]
FLEET = 600
ZONE = "apps.localhost"
ACCOUNT = "f1ee7f1ee7f1ee7f1ee7f1ee7f1ee700"


@dataclass
class Fleet:
    cf: CloudflareEmulator
    engine: Engine
    bundle: Path

    def deploy(self, names: list[str], **params: str) -> dict[str, str]:
        runner, store = self.engine.runner, self.engine.store
        started = {}
        for name in names:
            app = get_or_create_app(store, name, owner="operator")
            started[name] = runner.submit(
                str(app.id),
                "web-prebuilt",
                {"host": "cloudflare", "db": "none", "bundle": str(self.bundle), **params},
                requested_by="fleet-test",
                lock_timeout=5,
            )
        return {
            name: str(runner.wait(deployment, timeout=900)["status"]) for name, deployment in started.items()
        }


def bundle(root: Path) -> Path:
    return write_site(
        root,
        {
            "worker.json": json.dumps({"main_module": "worker.js", "compatibility_date": "2026-04-01"}),
            "modules/worker.js": "export default { fetch: (request, env) => new Response(`${env.GREETING} from ${env.APP_NAME}`) };\n",
            "assets/api/health": '{"ok": true}',
        },
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    emulator = CloudflareEmulator(account_id=ACCOUNT, zones=(ZONE,), rate_limit=1_000_000)
    cloudflare_platforms._ready.clear()
    with pytest.MonkeyPatch.context() as patch:
        # Cloudflare's API allows 1,200 requests per 5 minutes; a real fleet deploy of this size waits for it
        # (about 15 minutes). The emulator is told to allow more, and the client's limiter follows it.
        patch.setattr(cloudflare_workers, "RATE_LIMIT", 1_000_000)
        try:
            with serve(emulator.app) as url:
                settings = Settings(
                    workspace=root / "workspace",
                    edge_port=0,
                    workers=4,
                    extra_pipelines="tests.providers.fleet_pipeline",
                    cloudflare_api_url=url + "/client/v4",
                    cloudflare_mode="platforms",
                    cloudflare_apps_zone=ZONE,
                    CLOUDFLARE_ACCOUNT_ID=ACCOUNT,
                    CLOUDFLARE_API_TOKEN=emulator.api_token,
                )
                engine = Engine(settings)
                try:
                    yield Fleet(emulator, engine, bundle(root / "bundle"))
                finally:
                    engine.close()
        finally:
            emulator.close()


def get(url: str, path: str = "/") -> httpx.Response:
    parsed = httpx.URL(url)
    return httpx.get(
        f"http://127.0.0.1:{parsed.port}{path}",
        headers={"Host": parsed.netloc.decode()},
        timeout=60,
        trust_env=False,
    )


def test_600_apps_deploy_as_user_workers_and_their_month_is_costed_to_the_cent(fleet: Fleet) -> None:
    names = [f"fleet-{i:03d}" for i in range(FLEET)]
    statuses = fleet.deploy(names)

    assert [n for n, s in statuses.items() if s != "succeeded"] == []
    namespace = fleet.cf.workers.platforms.namespaces["launchdeck"]
    assert len(namespace.scripts) == FLEET
    assert set(fleet.cf.workers.scripts) == {cloudflare_platforms.DISPATCH_SCRIPT}  # far under the cap of 500
    store = fleet.engine.store
    assert store.scalar("SELECT count(*) FROM cloudflare_hosting WHERE mode = 'platforms'") == FLEET
    apps = {r["name"]: r for r in store.fetchall("SELECT * FROM deployed_apps")}
    for name in (names[0], names[299], names[-1]):  # each through the one dispatch Worker, by hostname
        assert apps[name]["status"] == "active"
        assert apps[name]["deployment_url"].startswith(f"http://{name}.{ZONE}:")
        assert get(apps[name]["deployment_url"]).text == f"hello from {name}"

    # The month: what the emulator's analytics saw (the requests above), on the Workers for Platforms sheet.
    hour = hour_floor(datetime.now(UTC))
    source = CloudflareWorkersUsageSource(
        cloudflare_workers.CloudflareWorkers(
            ACCOUNT, fleet.cf.api_token, base_url=fleet.engine.settings.cloudflare_api_url
        ),
        lambda: _workers(store),
        lambda: dict.fromkeys(platform_app_ids(store), "cloudflare-platforms"),
    )
    readings = source.collect(hour)
    source.close()
    assert len(readings) == FLEET and {r.provider for r in readings} == {"cloudflare-platforms"}
    assert sum(r.metrics["requests"] or 0 for r in readings) == 3
    ingest(store, readings)
    costs = cost_month(store, hour.date().replace(day=1))
    (bill,) = [b for b in costs.bills if b.provider == "cloudflare-platforms"]
    # $25 with 20M requests, 60M CPU-ms and 1,000 scripts included: 600 scripts and 3 requests add nothing.
    assert bill.bill_cents == 2500 and bill.components == {
        "base_fee": 2500,
        "requests": 0,
        "compute_ms": 0,
        "scripts": 0,
    }
    by_app = bill.by_app()
    # Shared by use (the default): the three apps' 3 requests out of 20M included leave every cent to the idle
    # line, what the plan costs whether or not anyone uses it.
    assert by_app == {None: 2500}
    assert costs.total_cents() == sum(line.cents for line in costs.lines()) == 2500
    # Shared evenly: 2,500 cents over 600 apps is 4 cents each and 100 apps a fifth, every cent placed.
    even = [
        b
        for b in cost_month(store, hour.date().replace(day=1), method="even").bills
        if b.provider == bill.provider
    ]
    shares = even[0].by_app()
    assert None not in shares and len(shares) == FLEET and sum(shares.values()) == 2500
    assert sorted(set(shares.values())) == [4, 5] and list(shares.values()).count(5) == 100


def test_a_deploy_past_the_plain_workers_cap_is_refused_before_anything_is_created(fleet: Fleet) -> None:
    store = fleet.engine.store
    # 499 apps already hosted as plain Workers (recorded as the hosting step records them), plus the
    # dispatch Worker: the account is at Workers Paid's 500.
    for i in range(499):
        app = get_or_create_app(store, f"plain-{i:03d}", owner="operator")
        store.execute("UPDATE deployed_apps SET status = 'active' WHERE id = ?", [app.id])
        store.execute("INSERT INTO cloudflare_hosting (app, mode) VALUES (?, 'workers')", [f"plain-{i:03d}"])
    fleet.engine.settings.cloudflare_mode = "workers"
    try:
        before = len(fleet.cf.recorder.exchanges)
        statuses = fleet.deploy(["one-too-many"])
        assert statuses == {"one-too-many": "failed"}
        error = store.scalar(
            "SELECT error FROM deployments WHERE status = 'failed' ORDER BY created_at DESC LIMIT 1"
        )
        assert "workers-paid plan allows 500 scripts" in error and "Launchdeck's apps use 500" in error
        assert "Workers for Platforms" in error and "LAUNCHDECK_CLOUDFLARE_MODE=platforms" in error
        assert len(fleet.cf.recorder.exchanges) == before  # nothing reached Cloudflare
        assert "one-too-many" not in fleet.cf.workers.scripts

        fleet.engine.settings.cloudflare_mode = (
            "auto"  # past 90% of the cap: the next app goes to the namespace
        )
        assert fleet.deploy(["one-more"]) == {"one-more": "succeeded"}
        assert "one-more" in fleet.cf.workers.platforms.namespaces["launchdeck"].scripts
    finally:
        fleet.engine.settings.cloudflare_mode = "platforms"
