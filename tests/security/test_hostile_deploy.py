"""The review's confirmation, as a test: one hostile app, deployed once through the real engine. Its
install script (npm postinstall), its build script (npm prebuild) and its API route each try the escapes
at the top of issue 18: /etc/shadow, the workspace (vault key, store), another tenant's database,
PostgreSQL as `postgres` on 127.0.0.1:5432, the engine API and the edge on loopback, the internet, and
capabilities. The build writes its findings into `public/` (served by the edge); the route answers
with them at run time. Everything must be refused, and the app must still work (its own database)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from engine.client import EngineClient
from engine.jail import bwrap_works
from engine.service import postgres_target
from tests.servers.asgi import free_port
from tests.servers.engine import engine_process, operator_token

SHOP = Path(__file__).resolve().parents[2] / "data" / "examples" / "shop"
PROBE_JS = Path(__file__).with_name("hostile") / "probe.js"
ROUTE = """import { NextResponse } from "next/server";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { probe } = require("../../../probe/probe.js");

export const dynamic = "force-dynamic";

export async function GET() {
  return NextResponse.json(await probe());
}
"""

# The app's own public origin from its server, by the host name the request came in on (what Clerk's
# middleware does with x-forwarded-host), through the engine's own-origin forwarder.
OWN_ORIGIN_ROUTE = """export const dynamic = "force-dynamic";

export async function GET(request: Request) {
  const host = request.headers.get("x-forwarded-host") ?? request.headers.get("host");
  const response = await fetch(`http://${host}/api/health`, { cache: "no-store" });
  return Response.json({ status: response.status, body: await response.json() });
}
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here"),
]


def hostile_app(root: Path, targets: dict[str, str]) -> Path:
    app = root / "hostile"
    shutil.copytree(SHOP, app, ignore=shutil.ignore_patterns("node_modules", ".next"))
    (app / "probe").mkdir()
    shutil.copy(PROBE_JS, app / "probe" / "probe.js")
    # The targets are in the app's own files too: its install runs without the app's variables.
    (app / "probe" / "targets.json").write_text(json.dumps(targets))
    (app / "app" / "api" / "probe").mkdir(parents=True)
    (app / "app" / "api" / "probe" / "route.ts").write_text(ROUTE)
    (app / "app" / "api" / "own-origin").mkdir(parents=True)
    (app / "app" / "api" / "own-origin" / "route.ts").write_text(OWN_ORIGIN_ROUTE)
    package = json.loads((app / "package.json").read_text())
    # The install step runs the postinstall without the app's variables, the build again with them.
    first = "node_modules/.probe/first-install.json"
    package["scripts"]["postinstall"] = f"node probe/probe.js public/install-probe.json {first}"
    package["scripts"]["prebuild"] = (
        f"node probe/probe.js public/build-probe.json && cp {first} public/first-install-probe.json"
    )
    (app / "package.json").write_text(json.dumps(package, indent=2))
    return app


def test_a_hostile_app_and_its_build_reach_nothing(tmp_path: Path, pg_admin_url: str) -> None:
    workspace = tmp_path / "workspace"
    victim = workspace / "databases" / "victim"
    victim.mkdir(parents=True)
    (victim / "victim.db").write_text("another tenant's data")
    edge_port = free_port()
    env = {"LAUNCHDECK_EDGE_PORT": str(edge_port), "LAUNCHDECK_POSTGRES_ADMIN_URL": pg_admin_url}
    with engine_process(workspace, extra_env=env) as (url, _):
        client = EngineClient(url, operator_token(workspace), timeout=120)
        probe_env = {
            "PROBE_WORKSPACE": str(workspace.resolve()),
            "PROBE_ENGINE_PORT": str(httpx.URL(url).port),
            "PROBE_EDGE_PORT": str(edge_port),
            "PROBE_PG_PORT": str(postgres_target(pg_admin_url)[1]),
        }
        started = client.deploy_web(str(hostile_app(tmp_path, probe_env)), app="hostile", env=probe_env)
        status = client.wait(started["deployment_id"], timeout=900)
        deployment = status["deployment"]
        assert deployment["status"] == "succeeded", json.dumps(status, default=str)[:3000]
        app_url = httpx.URL(str(deployment["url"]))
        with httpx.Client(
            base_url=f"http://127.0.0.1:{app_url.port}", headers={"Host": app_url.netloc.decode()}, timeout=60
        ) as http:
            findings = {
                "install": http.get("/first-install-probe.json").json(),
                "install again, with the app's variables": http.get("/install-probe.json").json(),
                "build": http.get("/build-probe.json").json(),
                "runtime": http.get("/api/probe").json(),
            }
            assert http.get("/api/health").json()["database"] == "ok"  # its own database works
            # its server reaches its own origin: the live host name and its deployment's preview host
            preview = f"{started['deployment_id']}.{app_url.netloc.decode()}"
            for host in (app_url.netloc.decode(), preview):
                own = http.get("/api/own-origin", headers={"Host": host})
                assert own.status_code == 200 and own.json()["status"] == 200, (host, own.text)
                assert own.json()["body"]["database"] == "ok"
        client.close()
    reached = {
        f"{stage}.{name}": why
        for stage, results in findings.items()
        for name, why in results.items()
        if not why.startswith("refused")
    }
    assert reached == {}, json.dumps(findings, indent=1)
    assert set(findings["runtime"]) >= {
        "postgres_as_postgres",
        "engine_postgres_as_postgres",
        "vault_key",
        "engine_api",
        "etc_shadow",
    }
