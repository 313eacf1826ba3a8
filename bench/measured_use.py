"""Benchmark: what a real example app uses, against what the Railway baselines assume.

Deploys an example app on the embedded default (local-libsql, the edge host), loads it with a bounded number
of requests, lets it idle, and reads what metering records for the hour: the server's CPU time and memory
(peak, hourly average). Prints CPU per request (against the 7 ms documented default of ``pricing simulate``),
and for a month of such hours both Railway baselines (the reserved 0.5 vCPU + 0.5 GB, the named baseline; and
the measured one at Railway's per-minute prices) beside the app's allocated actual cost.

    .venv/bin/python bench/measured_use.py [--app shop] [--requests 400] [--idle 60]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from engine.client import EngineClient
from engine.config import Settings
from engine.costs.ledger import ingest
from engine.costs.model import railway_baseline_cents, railway_measured_cents
from engine.costs.money import cents_to_dollars
from engine.costs.rollup import cost_month
from engine.costs.sheets import default_catalog
from engine.costs.simulate import DOCUMENTED_CPU_MS_PER_REQUEST
from engine.costs.usage import Reading
from engine.service import Engine

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
PATHS = ("/", "/api/products", "/api/health")
HOURS_PER_MONTH = 730


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="shop")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--idle", type=float, default=60.0, help="seconds idle after the load, still measured"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launchdeck-bench-") as scratch:
        source = Path(scratch) / args.app
        shutil.copytree(EXAMPLES / args.app, source, ignore=shutil.ignore_patterns("node_modules", ".next"))
        settings = Settings(workspace=Path(scratch) / "workspace", edge_port=0, edge_idle_seconds=0)
        engine = Engine(settings)
        url = engine.start_in_thread()
        client = EngineClient(url, str(engine.first_token))
        try:
            started = client.deploy_web(str(source), app=args.app, db="local-libsql")
            status = client.wait(started["deployment_id"], timeout=1800)
            assert status["deployment"]["status"] == "succeeded", status["deployment"].get("error")
            base = f"http://127.0.0.1:{engine.edge.port}"
            host = {"Host": f"{args.app}.localhost:{engine.edge.port}"}
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
            before = engine.edge.resource_hour(hour.isoformat()).get(args.app)
            load_started = time.monotonic()
            with httpx.Client(trust_env=False, timeout=60) as http, ThreadPoolExecutor(4) as pool:
                codes = list(
                    pool.map(
                        lambda i: http.get(base + PATHS[i % len(PATHS)], headers=host).status_code,
                        range(args.requests),
                    )
                )
            load_seconds = time.monotonic() - load_started
            time.sleep(6)  # a sample after the load
            loaded = engine.edge.resource_hour(hour.isoformat())[args.app]
            time.sleep(args.idle)
            idle = engine.edge.resource_hour(hour.isoformat())[args.app]
        finally:
            client.close()
            engine.stop_thread()
    cpu_before = before.cpu_ms if before else 0
    load_cpu = loaded.cpu_ms - cpu_before
    idle_cpu_per_second = (idle.cpu_ms - loaded.cpu_ms) / args.idle
    memory_while_up = idle.memory_peak_bytes
    ok = sum(1 for c in codes if c == 200)
    print(f"{args.app}: {ok}/{len(codes)} requests answered 200 in {load_seconds:.1f} s (4 at a time)")
    print(f"  server CPU for the load: {load_cpu} ms = {load_cpu / len(codes):.2f} ms per request "
          f"(pricing simulate's documented default: {DOCUMENTED_CPU_MS_PER_REQUEST} ms)")  # fmt: skip
    print(f"  idle server: {idle_cpu_per_second:.2f} ms CPU per second; memory peak {idle.memory_peak_bytes / 1e6:.0f} MB, "
          f"hour average so far {idle.memory_avg_bytes / 1e6:.1f} MB")  # fmt: skip

    # A month of such hours, two profiles: always up (a Railway service without sleeping, the plan's
    # assumption) and up only in busy hours (scale to zero / app sleeping), 2 busy hours a day at this load.
    _, plan = default_catalog().plan_for("railway", hour.date().replace(day=1))
    assert plan.baseline is not None
    reserved = railway_baseline_cents(plan.baseline, 0, 0)
    busy_cpu = load_cpu + round(idle_cpu_per_second * (3600 - load_seconds))
    profiles = {
        "always up, idle": (
            round(idle_cpu_per_second * 3600) * HOURS_PER_MONTH,
            memory_while_up * HOURS_PER_MONTH,
        ),
        "always up, this load every hour": (busy_cpu * HOURS_PER_MONTH, memory_while_up * HOURS_PER_MONTH),
        "up 2 busy hours a day (asleep otherwise)": (busy_cpu * 60, memory_while_up * 60),
    }
    print(f"\n  a month ({HOURS_PER_MONTH} h), Railway at {plan.baseline.vcpu_minute}/vCPU-min, "
          f"{plan.baseline.memory_gb_minute}/GB-min:")  # fmt: skip
    print(f"    {'profile':<44} {'reserved (baseline)':>20} {'measured':>10}")
    for name, (cpu_ms, byte_hours) in profiles.items():
        measured = railway_measured_cents(plan.baseline, cpu_ms, byte_hours, 0, 0)
        print(f"    {name:<44} {cents_to_dollars(reserved):>20} {cents_to_dollars(measured):>10}")

    # The actual cost, as the cost engine allocates it, for a month with this app's measured hour repeated.
    from engine.store import Store

    store = Store(":memory:")
    store.execute(
        "INSERT INTO deployed_apps (name, user_id, tier, database_provider, hosting_provider, status, created_at,"
        " live_deployment_id) VALUES (?, 'bench', 'starter', 'local-libsql', 'local', 'active', TIMESTAMP"
        " '2026-01-01', uuid())",
        [args.app],
    )
    app_id = str(store.scalar("SELECT CAST(id AS TEXT) FROM deployed_apps"))
    month = hour.replace(day=1, hour=0)
    hours = [month + timedelta(hours=h) for h in range(HOURS_PER_MONTH)]
    requests_per_hour = len(codes)
    ingest(
        store,
        [
            Reading(
                app_id,
                "local",
                "bench",
                h,
                {
                    "requests": requests_per_hour,
                    "cpu_ms": busy_cpu,
                    "memory_peak_bytes": memory_while_up,
                    "memory_avg_bytes": memory_while_up,
                },
            )
            for h in hours
        ],
    )
    costs = cost_month(store, month.date())
    (row,) = [r for r in costs.by("app") if r["app_id"] == app_id]
    print(f"\n  this load every hour of a month ({requests_per_hour * HOURS_PER_MONTH:,} requests), costed as on "
          f"Turso + Cloudflare (one app alone on the plans): actual {cents_to_dollars(row['cost_cents'])}, "
          f"Railway reserved {cents_to_dollars(row['railway_baseline_cents'])}, "
          f"Railway measured {cents_to_dollars(row['railway_measured_cents'] or 0)}")  # fmt: skip


if __name__ == "__main__":
    main()
