"""Benchmark: one-click deployment of an example app on the embedded default.

Prints, for a first deployment and for a redeploy with the build caches warm: total time, build time
(`npm ci` + the app's build, the baseline any deploy tool pays), and the engine's own time (total minus
build) per stage; then the cold start after scale to zero. Target: engine's own time at most 5 s.

    .venv/bin/python bench/deploy_local.py [--app shop|taskboard] [--db local-libsql|local-postgres]
"""

from __future__ import annotations

import argparse
import re
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="shop", choices=["shop", "taskboard"])
    parser.add_argument("--db", default="local-libsql", choices=["local-libsql", "local-postgres"])
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
            app_url = httpx.URL(status["deployment"]["url"])
            time.sleep(settings.edge_idle_seconds + 3)  # idle: the app's server is stopped
            began = time.perf_counter()
            response = httpx.get(
                f"http://127.0.0.1:{app_url.port}/api/health",
                headers={"Host": app_url.netloc.decode()},
                timeout=60,
            )
            first_response = time.perf_counter() - began
            print(
                f"\ncold start after scale to zero: first response {first_response:.2f} s (HTTP {response.status_code});"
                f" server start recorded by the edge host {engine.edge.last_cold_start(f'bench-{args.app}') or 0:.2f} s"
            )
        finally:
            client.close()
            engine.stop_thread()


if __name__ == "__main__":
    main()
