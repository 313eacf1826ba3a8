"""Benchmark: one-click deployment of an example app on the embedded default.

Prints, for a first deployment and for a redeploy with the build caches warm: total time, build time
(`npm ci` + the app's build, the baseline any deploy tool pays), and the engine's own time (total minus
build) per stage; then the cold start after scale to zero. Target: engine's own time at most 5 s.

    .venv/bin/python bench/deploy_local.py [--app shop|taskboard] [--db local-libsql|local-postgres] [--cold-starts 5]

With the sandbox on, the cold starts are also measured for the same staged server run without one
(single-tenant mode), in the same run: what the sandbox adds to a cold start.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


def build_seconds(detail: str) -> float:
    """The build step's detail is 'npm ci 12.3 s + build 18.1 s in a bwrap sandbox'."""
    return sum(float(x) for x in re.findall(r"([\d.]+) s", detail))


def report(label: str, status: dict[str, Any], wall: float) -> float:
    steps = {s["name"]: s for s in status["steps"]}
    build = steps["build"]
    npm_and_build = build_seconds(build["detail"] or "")
    own = wall - npm_and_build
    print(f"\n{label}: {status['deployment']['status']} in {wall:.1f} s")
    print(f"  {'stage':<12} {'seconds':>8}  detail")
    for step in status["steps"]:
        print(
            f"  {step['name']:<12} {step['seconds'] or 0:>8.2f}  {(step['detail'] or step['error'] or '')[:90]}"
        )
    print(f"  build (npm + app build, baseline): {npm_and_build:.1f} s")
    print(
        f"  engine's own time (total - build): {own:.1f} s   target <= 5 s: {'met' if own <= 5 else 'NOT met'}"
    )
    return own


def cold_starts(edge: Any, app: str, runs: int) -> list[tuple[float, float]]:
    """(first response, recorded server start) for ``runs`` requests that each find the server stopped."""
    found = []
    for _ in range(runs):
        deadline = time.monotonic() + 60
        while edge.status(app).server_state != "stopped" and time.monotonic() < deadline:
            time.sleep(0.1)
        began = time.perf_counter()
        httpx.get(
            f"{edge.base_url}/api/health", headers={"Host": f"{app}.{edge.hostname}:{edge.port}"}, timeout=60
        )
        found.append((time.perf_counter() - began, edge.last_cold_start(app) or 0.0))
    return found


def print_cold(name: str, seconds: list[float]) -> None:
    print(f"  {name:<42} median {statistics.median(seconds):.3f} s   max {max(seconds):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="shop", choices=["shop", "taskboard"])
    parser.add_argument("--db", default="local-libsql", choices=["local-libsql", "local-postgres"])
    parser.add_argument("--cold-starts", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launchdeck-bench-") as scratch:
        settings = Settings(workspace=Path(scratch) / "workspace", edge_port=0, edge_idle_seconds=2.0)
        engine = Engine(settings)
        url = engine.start_in_thread()
        client = EngineClient(url, str(engine.first_token), timeout=120)
        try:
            for label in ("first deployment", "redeploy (npm and Next caches warm)"):
                started = time.perf_counter()
                deployment = client.deploy_web(str(EXAMPLES / args.app), app=f"bench-{args.app}", db=args.db)
                status = client.wait(deployment["deployment_id"], timeout=1800)
                report(label, status, time.perf_counter() - started)
                if status["deployment"]["status"] != "succeeded":
                    raise SystemExit(1)
            app = f"bench-{args.app}"
            sandboxed = cold_starts(engine.edge, app, args.cold_starts)
            print(
                f"\ncold start after scale to zero, {args.cold_starts} runs (sandbox: {engine.edge.sandbox}):"
            )
            print_cold("first response (GET /api/health)", [c[0] for c in sandboxed])
            print_cold("server start recorded by the edge host", [c[1] for c in sandboxed])
            if engine.edge.sandbox == "bwrap":  # the same staged server without a sandbox, in this run
                from engine.edge import EdgeHost, ServerSpec

                live = engine.edge.live(app)
                assert live is not None
                manifest = engine.edge.manifest(app, live)
                env = engine.deployment_env(app, live)
                plain = EdgeHost(
                    Path(scratch) / "plain", 0, idle_seconds=2.0, sandbox="none", single_tenant=True
                )
                plain.start()
                try:
                    spec = ServerSpec(list(manifest.command or []), manifest.server_dir, env, link_files=True)
                    plain.stage(app, live, None, spec)
                    plain.promote(app, live)
                    unsandboxed = cold_starts(plain, app, args.cold_starts)
                finally:
                    plain.stop()
                print("  the same server without a sandbox (single-tenant mode):")
                print_cold("first response (GET /api/health)", [c[0] for c in unsandboxed])
                print_cold("server start recorded by the edge host", [c[1] for c in unsandboxed])
        finally:
            client.close()
            engine.stop_thread()


if __name__ == "__main__":
    main()
