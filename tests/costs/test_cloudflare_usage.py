"""Cloudflare Workers usage from the GraphQL Analytics API, against the emulator, which answers from the requests
its workerd processes really served: N requests to a Worker become N requests in the ledger, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.config import Settings
from engine.costs.rollup import cost_month
from engine.costs.sources.cloud import CloudflareWorkersUsageSource
from engine.costs.usage import UsageSource, hour_floor
from engine.errors import ProviderError
from engine.providers.cloudflare_workers import CloudflareWorkers
from engine.store import Store
from pipelines.metering import cloud_sources, collect_hour
from tests.costs.conftest import add_app
from tests.emulators.cloudflare import WRANGLER, CloudflareEmulator
from tests.providers.conftest import FAST_RETRY, fetch, write_site

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="npm ci in tests/emulators/node first")
REQUESTS = 7


def hello_worker(root: Path) -> Path:
    return write_site(
        root,
        {
            "worker.json": json.dumps({"main_module": "worker.js", "compatibility_date": "2026-04-01"}),
            "modules/worker.js": 'export default { fetch: () => new Response("hello") };\n',
        },
    )


def test_requests_served_by_a_worker_land_in_the_ledger_once(
    store: Store, workers_emulator: tuple[CloudflareEmulator, str], workers: CloudflareWorkers, tmp_path: Path
) -> None:
    cf, url = workers_emulator
    app_id = add_app(store, "hello", database_provider=None, hosting_provider="cloudflare")
    store.execute(
        "UPDATE deployed_apps SET hosting_project_id = 'hello' WHERE CAST(id AS TEXT) = ?", [app_id]
    )
    quiet_id = add_app(store, "quiet", database_provider=None, hosting_provider="cloudflare")
    store.execute(
        "UPDATE deployed_apps SET hosting_project_id = 'quiet' WHERE CAST(id AS TEXT) = ?", [quiet_id]
    )
    workers.stage("quiet", hello_worker(tmp_path / "quiet"), {})  # deployed, never visited
    live = workers.stage("hello", hello_worker(tmp_path / "bundle"), {})
    before = hour_floor(datetime.now(UTC))
    assert all(fetch(live.url + "/").text == "hello" for _ in range(REQUESTS))
    hours = sorted({before, hour_floor(datetime.now(UTC))})  # the requests may straddle an hour

    # Wired as metering wires it: from the Cloudflare credentials and deployed_apps.hosting_project_id.
    settings = Settings(
        cloudflare_account_id=cf.account_id, cloudflare_api_token=cf.api_token, cloudflare_api_url=url
    )
    sources: list[UsageSource] = [
        s for s in cloud_sources(store, settings) if isinstance(s, CloudflareWorkersUsageSource)
    ]
    assert len(sources) == 1
    cf.faults.add(503, path="/graphql")  # a transient failure is retried by the client
    try:
        first = [collect_hour(store, settings, hour_start=hour, sources=sources) for hour in hours]
        again = [collect_hour(store, settings, hour_start=hour, sources=sources) for hour in hours]
    finally:
        sources[0].close()  # type: ignore[attr-defined]
    assert all(r.errors == {} for r in first + again)
    assert sum(r.ingested.added for r in first) == 2 * len(hours)  # one reading per app and hour
    assert sum(r.ingested.added for r in again) == 0  # the same hour twice adds nothing
    assert cf.faults.injected == 1
    # One query per hour for the whole fleet (scriptName_in), plus the retried 503.
    assert len(cf.recorder.matching("POST", "/graphql$")) == 2 * len(hours) + 1

    requests = 0
    for month in sorted({h.strftime("%Y-%m") for h in hours}):
        rows = {row["name"]: row for row in cost_month(store, month).by("app")}
        usage = rows["hello"]["usage"]["cloudflare"]
        requests += usage["requests"]
        assert usage["compute_ms"] is not None  # workerd's CPU time, measured by the emulator
    assert requests == REQUESTS
    quiet = {row["name"]: row for row in cost_month(store, hours[-1].strftime("%Y-%m")).by("app")}["quiet"]
    assert quiet["usage"]["cloudflare"]["requests"] == 0  # no traffic is zero, not "not measured"


def test_an_analytics_error_is_reported_with_its_message(
    workers_emulator: tuple[CloudflareEmulator, str], workers: CloudflareWorkers
) -> None:
    cf, url = workers_emulator
    stranger = CloudflareWorkers("f" * 32, cf.api_token, base_url=url, retry=FAST_RETRY)
    try:
        with pytest.raises(ProviderError, match="does not have access to the path"):
            CloudflareWorkersUsageSource(stranger, {"app-1": "hello"}).collect(datetime(2026, 10, 5, 13))
    finally:
        stranger.close()
    # An hour without traffic is zero requests, measured (not "not measured").
    [reading] = CloudflareWorkersUsageSource(workers, {"app-1": "hello"}).collect(datetime(2026, 10, 5, 13))
    assert reading.metrics == {"requests": 0, "compute_ms": 0}
