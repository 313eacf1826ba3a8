"""Benchmark: one-click deployment of an example app on the embedded default, and what the dependency
caches save (issue 20).

Prints, in one run:
  * the bare baseline: `npm ci && prisma generate && next build` in a copy of the app, on this machine,
    outside the engine (once with an empty npm cache: the cold install; once with it warm);
  * deployments through a running engine (a fresh workspace: nothing cached at the start):
      first deploy (package store cold), redeploy with nothing changed, redeploy with one page changed,
      redeploy with one dependency added, first deploy of the same app under another name (package store
      warm, no node_modules for that app), first deploy of a second app sharing most dependencies;
  * per run: each stage's own time (the install is its own step, beside the database and environment
    steps), the app's build inside the build stage, the sum of all steps' times (what the deployment
    would take one step after another) and the deployment's own time;
  * the cold start after scale to zero, N times, and (sandbox on) for the same staged server run without
    one (single-tenant mode): what the sandbox adds to a cold start.

    .venv/bin/python bench/deploy_local.py [--app shop|PATH] [--second taskboard|PATH]
        [--db local-libsql|local-postgres] [--skip-bare] [--deploys N] [--cold-starts N]

Targets (issue 20): redeploy with an unchanged lockfile: build stage <= app build + 3 s; first deploy
with the package store warm: install step + build stage <= 1.1 x the bare warm baseline; second app:
install <= 1/4 of the cold install; the deployment well under all its steps added up (the database
and environment steps run beside the install).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
ADDED_DEPENDENCY = "ms@2.1.3"
_DETAIL = re.compile(
    r"^(?P<install>.*?) (?P<install_s>[\d.]+) s \+ (?:OpenNext )?build (?P<build_s>[\d.]+) s"
)
_INSTALL = re.compile(r"^(?P<install>.*?) (?P<install_s>[\d.]+) s in a ")


@dataclass
class Row:
    label: str
    install: str = ""
    install_s: float | None = None
    build_s: float | None = None
    stage_s: float | None = None  # the whole build stage (attach node_modules + build + the engine's work)
    database_s: float | None = None
    install_step_s: float | None = None  # the install step (beside database and environment)
    steps_sum_s: float | None = None  # every step's own time added up: the deployment, one step at a time
    total_s: float | None = None


def app_source(name: str) -> Path:
    path = Path(name)
    return path if path.is_dir() else EXAMPLES / name


def copy_app(source: Path, destination: Path) -> Path:
    ignore = shutil.ignore_patterns("node_modules", ".next")
    shutil.copytree(source, destination, ignore=ignore)
    return destination


def bare_build(work: Path, npm_cache: Path) -> tuple[float, float]:
    """`npm ci` then the app's build script (prisma generate && next build) on the host; seconds of each."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(work.parent),
        "CI": "1",
        "NEXT_TELEMETRY_DISABLED": "1",
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
        "PRISMA_SCHEMA_ENGINE_BINARY": "/usr/bin/true",
        "CHECKPOINT_DISABLE": "1",
        "npm_config_cache": str(npm_cache),
        "npm_config_prefer_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "DATABASE_URL": f"file:{work / 'preview.sqlite'}",
        "NEXTAUTH_SECRET": "bench-secret-bench-secret",
    }
    shutil.rmtree(work / "node_modules", ignore_errors=True)
    shutil.rmtree(work / ".next", ignore_errors=True)
    times = []
    for argv in (["npm", "ci"], ["npm", "run", "build"]):
        began = time.perf_counter()
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"bare `{' '.join(argv)}` failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return times[0], times[1]


def deploy(client: EngineClient, source: Path, app: str, db: str, label: str) -> tuple[Row, Any]:
    began = time.perf_counter()
    deployment = client.deploy_web(str(source), app=app, db=db)
    status = client.wait(deployment["deployment_id"], timeout=1800)
    wall = time.perf_counter() - began
    steps = {s["name"]: s for s in status["steps"]}
    print(f"\n{label}: {status['deployment']['status']} in {wall:.1f} s")
    for step in status["steps"]:
        print(
            f"  {step['name']:<12} {step['seconds'] or 0:>7.2f} s  {(step['detail'] or step['error'] or '')[:100]}"
        )
    if status["deployment"]["status"] != "succeeded":
        raise SystemExit(f"{label} failed: {status['deployment'].get('error')}")
    build = steps["build"]
    match = _DETAIL.match(build["detail"] or "")
    row = Row(
        label,
        stage_s=build["seconds"],
        database_s=steps["database"]["seconds"],
        install_step_s=steps["install"]["seconds"] if "install" in steps else None,
        steps_sum_s=sum(step["seconds"] or 0.0 for step in status["steps"]),
        total_s=wall,
    )
    if match:
        row.install, row.install_s, row.build_s = (
            match["install"],
            float(match["install_s"]),
            float(match["build_s"]),
        )
    installed = _INSTALL.match(steps["install"]["detail"] or "") if "install" in steps else None
    if installed:  # the install step did the install; the build stage attached what it kept
        row.install, row.install_s = installed["install"], float(installed["install_s"])
    return row, status


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


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_row(r: Row) -> str:
    return (
        f"| {r.label} | {r.install or '-'} | {fmt(r.install_s)} | {fmt(r.install_step_s)} | {fmt(r.database_s)} "
        f"| {fmt(r.build_s)} | {fmt(r.stage_s)} | {fmt(r.steps_sum_s)} | {fmt(r.total_s)} |"
    )


def print_table(rows: list[Row]) -> None:
    print(
        "\n| run | install | install s | install step s | database s | app build s | build stage s "
        "| all steps added s | deployment s |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(table_row(r))


def change_a_page(work: Path) -> None:
    page = work / "app" / "page.tsx"
    text = page.read_text(encoding="utf-8")
    page.write_text(text + "\n// changed by bench/deploy_local.py\n", encoding="utf-8")


def add_a_dependency(work: Path) -> None:
    """What a builder does: `npm install <package>` updates package.json and the lockfile."""
    done = subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", ADDED_DEPENDENCY],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"could not add {ADDED_DEPENDENCY}: {done.stderr[-2000:]}")


def measure_cold_starts(engine: Engine, app: str, scratch: Path, runs: int) -> None:
    sandboxed = cold_starts(engine.edge, app, runs)
    print(f"\ncold start after scale to zero, {runs} runs (sandbox: {engine.edge.sandbox}):")
    print_cold("first response (GET /api/health)", [c[0] for c in sandboxed])
    print_cold("server start recorded by the edge host", [c[1] for c in sandboxed])
    if engine.edge.sandbox == "bwrap":  # the same staged server without a sandbox, in this run
        from engine.edge import EdgeHost, ServerSpec

        live = engine.edge.live(app)
        assert live is not None
        manifest = engine.edge.manifest(app, live)
        env = engine.deployment_env(app, live)
        plain = EdgeHost(scratch / "plain", 0, idle_seconds=2.0, sandbox="none", single_tenant=True)
        plain.start()
        try:
            spec = ServerSpec(list(manifest.command or []), manifest.server_dir, env, link_files=True)
            plain.stage(app, live, None, spec)
            plain.promote(app, live)
            unsandboxed = cold_starts(plain, app, runs)
        finally:
            plain.stop()
        print("  the same server without a sandbox (single-tenant mode):")
        print_cold("first response (GET /api/health)", [c[0] for c in unsandboxed])
        print_cold("server start recorded by the edge host", [c[1] for c in unsandboxed])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="shop", help="an example's name or an app folder")
    parser.add_argument("--second", default="taskboard", help="a second app sharing most dependencies")
    parser.add_argument("--db", default="local-libsql", choices=["local-libsql", "local-postgres"])
    parser.add_argument("--skip-bare", action="store_true", help="no bare baseline (saves two installs)")
    parser.add_argument("--cold-starts", type=int, default=5, help="0: none")
    parser.add_argument(
        "--deploys",
        type=int,
        default=5,
        help="only the first N deployments of the app (1-5); 5: and the second app",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="launchdeck-bench-", dir="/var/tmp") as scratch_name:
        scratch = Path(scratch_name)
        source = app_source(args.app)
        if not args.skip_bare:
            bare = copy_app(source, scratch / "bare")
            cold_install, cold_build = bare_build(bare, scratch / "bare-npm-cache")
            rows.append(
                Row("bare, npm cache empty", "npm ci", cold_install, cold_build, cold_install + cold_build)
            )
            warm_install, warm_build = bare_build(bare, scratch / "bare-npm-cache")
            rows.append(
                Row("bare, npm cache warm", "npm ci", warm_install, warm_build, warm_install + warm_build)
            )
            print(table_row(rows[-2]), table_row(rows[-1]), sep="\n", flush=True)
            shutil.rmtree(bare, ignore_errors=True)

        settings = Settings(workspace=scratch / "workspace", edge_port=0, edge_idle_seconds=2.0)
        engine = Engine(settings)
        url = engine.start_in_thread()
        client = EngineClient(url, str(engine.first_token), timeout=120)
        work = copy_app(source, scratch / "app")
        app = "bench-app"
        try:
            plan = [
                ("first deploy (package store cold)", None, app),
                ("redeploy, nothing changed", None, app),
                ("redeploy, one page changed", change_a_page, app),
                (f"redeploy, one dependency added ({ADDED_DEPENDENCY})", add_a_dependency, app),
                ("first deploy, same app, new name (store warm)", None, "bench-app-two"),
            ]
            for label, change, name in plan[: args.deploys]:
                if change is not None:
                    change(work)
                row, _ = deploy(client, work, name, args.db, label)
                rows.append(row)
                print(table_row(row), flush=True)
            if args.deploys >= len(plan):
                second = copy_app(app_source(args.second), scratch / app_source(args.second).name)
                row, _ = deploy(
                    client,
                    second,
                    "bench-second",
                    args.db,
                    f"first deploy of a second app, {second.name}, sharing most dependencies",
                )
                rows.append(row)
                print(table_row(row), flush=True)
            if args.cold_starts:
                measure_cold_starts(engine, app, scratch, args.cold_starts)
        finally:
            client.close()
            engine.stop_thread()
    print_table(rows)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores shared: figures vary with load)")


if __name__ == "__main__":
    main()
