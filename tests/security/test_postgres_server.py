"""Issue 18, item 6: local-postgres never sits on a server that lets anyone in without a password. The host's
PostgreSQL trusts loopback here; an engine told to use it (operator mode) refuses to start and says what to
fix, and the engine's own cluster wants a SCRAM password, outlives a killed engine (adopted, not started
again) and stops with the engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from engine.pgcluster import VAULT_PASSWORD, VAULT_SCOPE, Cluster, PostgresServer, probe
from engine.store import Store
from engine.vault import Vault
from tests.servers.asgi import free_port
from tests.servers.engine import engine_process

HOST_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"  # Debian's cluster, trusting loopback here


def vault_of(workspace: Path) -> tuple[Store, Vault]:
    workspace.mkdir(parents=True, exist_ok=True)
    store = Store(workspace / "launchdeck.duckdb")
    return store, Vault(store, key_file=workspace / "vault.key")


def test_a_trusting_server_is_refused_in_operator_mode_and_replaced_in_auto_mode(tmp_path: Path) -> None:
    if probe(HOST_SERVER)[0] != "trust":
        pytest.skip("the host's PostgreSQL requires passwords here: nothing to refuse")
    workspace = tmp_path / "workspace"
    env = {
        **os.environ,
        "LAUNCHDECK_WORKSPACE": str(workspace),
        "LAUNCHDECK_POSTGRES_ADMIN_URL": HOST_SERVER,
        "LAUNCHDECK_POSTGRES_SERVER": "operator",
        "LAUNCHDECK_EDGE_PORT": "0",
    }
    started = subprocess.run(
        [sys.executable, "-m", "engine.cli", "engine", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = started.stdout + started.stderr
    assert started.returncode != 0, output
    assert "wrong password" in output and "scram-sha-256" in output, output
    assert "LAUNCHDECK_POSTGRES_SERVER" in output  # what to change to let Launchdeck run its own
    assert not (workspace / "postgres").exists()

    store, vault = vault_of(workspace)
    try:
        assert PostgresServer(HOST_SERVER, "auto", workspace, vault).own  # auto: the engine's own cluster
    finally:
        store.close()


def test_the_own_cluster_wants_a_password_outlives_a_killed_engine_and_stops_with_the_engine(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    cluster = Cluster(workspace)
    try:
        env = {"LAUNCHDECK_POSTGRES_SERVER": "launchdeck"}
        with engine_process(workspace, extra_env=env) as (_, engine):
            pid = cluster.pid()
            assert pid is not None
            initialised = (cluster.data / "PG_VERSION").stat().st_ino
            for password in ("", "postgres", "wrong"):
                with pytest.raises(psycopg.OperationalError, match="password"):
                    psycopg.connect(
                        f"postgresql://postgres:{password}@127.0.0.1:{cluster.port}/postgres",
                        connect_timeout=5,
                    ).close()
            os.killpg(engine.pid, signal.SIGKILL)
            engine.wait()
        assert cluster.pid() == pid  # its own session: the killed engine's group signal did not reach it

        store, vault = vault_of(workspace)
        try:
            password = vault.get(VAULT_SCOPE, VAULT_PASSWORD)
        finally:
            store.close()
        with psycopg.connect(cluster.url(password), autocommit=True) as admin:
            rules = admin.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()
            listens = admin.execute("SHOW listen_addresses").fetchone()
            admin.execute("CREATE DATABASE survives_the_crash")
        assert rules == [("scram-sha-256",)] and listens == ("127.0.0.1",)

        with engine_process(workspace, extra_env=env):
            assert cluster.pid() == pid  # adopted: neither initialised nor started again
            assert (cluster.data / "PG_VERSION").stat().st_ino == initialised
            with psycopg.connect(cluster.url(password)) as admin:
                row = admin.execute(
                    "SELECT 1 FROM pg_database WHERE datname = 'survives_the_crash'"
                ).fetchone()
                assert row is not None
        assert cluster.pid() is None  # a clean stop of the engine stops its cluster
    finally:
        cluster.stop()  # whatever failed above, no server outlives the test
