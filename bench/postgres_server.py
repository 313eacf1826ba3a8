"""Benchmark: what Launchdeck's own PostgreSQL cluster (engine/pgcluster.py, issue 18) costs an engine's
start and a first `local-postgres` deployment, against a password-checking server that already runs.

Prints, in one run (each in a fresh workspace, so both first deploys install with a cold package store):
  * baseline: the operator's server (a cluster started before the clock, LAUNCHDECK_POSTGRES_SERVER=operator):
    engine start (the probe with a wrong password), the first deploy of the app and its database step;
  * own cluster (the host's trusting 127.0.0.1:5432 in `auto` mode, or `launchdeck` mode when it checks
    passwords): engine start (probe, initdb, start), the same first deploy, then a restart of the engine
    (the cluster started again, no initdb).

    .venv/bin/python bench/postgres_server.py [--app taskboard|PATH]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

from bench.deploy_local import Row, app_source, copy_app, deploy, print_table
from engine.client import EngineClient
from engine.config import Settings
from engine.pgcluster import Cluster, probe
from engine.service import Engine

HOST_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def started_engine(settings: Settings) -> tuple[Engine, EngineClient, float]:
    began = time.perf_counter()
    engine = Engine(settings)
    url = engine.start_in_thread()
    seconds = time.perf_counter() - began
    return engine, EngineClient(url, str(engine.first_token), timeout=120), seconds


def first_deploy(settings: Settings, source: Path, label: str) -> tuple[Row, float]:
    engine, client, start_s = started_engine(settings)
    try:
        row, _ = deploy(client, source, "bench-pg", "local-postgres", label)
    finally:
        client.close()
        engine.stop_thread()
    return row, start_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="taskboard", help="an example's name or an app folder")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    rows: list[Row] = []
    starts: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="launchdeck-bench-pg-", dir="/var/tmp") as scratch_name:
        scratch = Path(scratch_name)
        source = copy_app(app_source(args.app), scratch / "app")

        operators = Cluster(scratch / "operator")
        operators.workspace.mkdir()
        operator_url = operators.start(secrets.token_hex(16))
        try:
            settings = Settings(
                workspace=scratch / "baseline",
                edge_port=0,
                postgres_admin_url=operator_url,
                postgres_server="operator",
            )
            row, start_s = first_deploy(settings, source, "baseline: the operator's password-checking server")
            rows.append(row)
            starts.append(("engine start, operator's server (probe only)", start_s))
        finally:
            operators.stop()

        mode = "auto" if probe(HOST_SERVER)[0] == "trust" else "launchdeck"
        alone = Cluster(scratch / "alone")
        alone.workspace.mkdir()
        password = secrets.token_hex(16)
        for label, step in (
            ("probe of the host's server (a wrong password)", lambda: probe(HOST_SERVER)),
            ("own cluster alone: initdb + start", lambda: alone.start(password)),
            ("own cluster alone: fast shutdown", alone.stop),
            ("own cluster alone: start again", lambda: alone.start(password)),
            ("own cluster alone: adopt the running one", lambda: alone.start(password)),
        ):
            began = time.perf_counter()
            step()
            starts.append((label, time.perf_counter() - began))
        alone.stop()
        own = Settings(
            workspace=scratch / "own", edge_port=0, postgres_admin_url=HOST_SERVER, postgres_server=mode
        )
        row, start_s = first_deploy(
            own, source, f"own cluster ({mode} mode; the host's server trusts loopback)"
        )
        rows.append(row)
        starts.append(("engine start, own cluster: probe + initdb + start", start_s))
        engine, client, start_s = started_engine(own)
        client.close()
        engine.stop_thread()
        starts.append(("engine start, own cluster again (start, no initdb)", start_s))

    print_table(rows)
    print()
    for label, seconds in starts:
        print(f"{label:<55} {seconds:6.2f} s")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores shared: figures vary with load)")


if __name__ == "__main__":
    main()
