"""Fixtures shared by every test area."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engine.providers.cloudflare_workers import CloudflareWorkers
from engine.providers.http import RateLimiter, RequestRetry
from tests.emulators.cloudflare import CloudflareEmulator
from tests.servers.asgi import serve


@pytest.fixture(scope="session", autouse=True)
def shared_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Temporal dev server for the whole test run, as a cluster is shared by engines: every engine
    a test starts (in-process or as a process) uses it through LAUNCHDECK_TEMPORAL_ADDRESS, on task
    queues of its own (prefixed per workspace), instead of starting a server of its own."""
    from engine.temporal.server import DevServer

    if os.environ.get("LAUNCHDECK_TEMPORAL_ADDRESS"):
        yield os.environ["LAUNCHDECK_TEMPORAL_ADDRESS"]
        return
    folder = tmp_path_factory.mktemp("temporal")
    server = DevServer(folder / "temporal.db", folder / "temporal.log")
    os.environ["LAUNCHDECK_TEMPORAL_ADDRESS"] = server.start()
    try:
        yield os.environ["LAUNCHDECK_TEMPORAL_ADDRESS"]
    finally:
        os.environ.pop("LAUNCHDECK_TEMPORAL_ADDRESS", None)
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def shared_package_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One package store for the run's deployments, as the engine and workers of one machine share it:
    a tarball downloaded by one test's install is not downloaded again by the next (each checks it)."""
    store = tmp_path_factory.mktemp("package-store")
    previous = os.environ.get("LAUNCHDECK_PACKAGE_STORE")
    os.environ["LAUNCHDECK_PACKAGE_STORE"] = str(store)
    yield store
    if previous is None:
        os.environ.pop("LAUNCHDECK_PACKAGE_STORE", None)
    else:
        os.environ["LAUNCHDECK_PACKAGE_STORE"] = previous


@pytest.fixture(scope="session", autouse=True)
def shared_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One password-only PostgreSQL cluster for the whole run (``engine.pgcluster``, the one an engine
    runs when the host's server trusts loopback, as here), initialised once: every engine a test starts
    takes it as the operator's server (LAUNCHDECK_POSTGRES_ADMIN_URL, LAUNCHDECK_POSTGRES_SERVER=operator,
    so an engine pointed at a trusting server fails instead of running initdb of its own).
    LAUNCHDECK_TEST_PG names another server to use instead."""
    from engine.config import settings
    from engine.pgcluster import Cluster

    names = ("LAUNCHDECK_TEST_PG", "LAUNCHDECK_POSTGRES_ADMIN_URL", "LAUNCHDECK_POSTGRES_SERVER")
    if os.environ.get("LAUNCHDECK_TEST_PG"):
        os.environ["LAUNCHDECK_POSTGRES_ADMIN_URL"] = os.environ["LAUNCHDECK_TEST_PG"]
        yield os.environ["LAUNCHDECK_TEST_PG"]
        return
    cluster = Cluster(tmp_path_factory.mktemp("postgres"))
    url = cluster.start(secrets.token_hex(16))
    os.environ.update(dict(zip(names, (url, url, "operator"), strict=True)))
    settings.cache_clear()
    try:
        yield url
    finally:
        for name in names:
            os.environ.pop(name, None)
        settings.cache_clear()
        cluster.stop()


@pytest.fixture(scope="session")
def pg_admin_url(shared_postgres: str) -> str:
    try:
        with psycopg.connect(shared_postgres, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not answering at the test run's server: {exc}")
    return shared_postgres


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh Launchdeck workspace, selected through the environment as a user would."""
    path = tmp_path / "workspace"
    monkeypatch.setenv("LAUNCHDECK_WORKSPACE", str(path))
    monkeypatch.setenv("LAUNCHDECK_EDGE_PORT", "0")  # a free port: tests never share the edge host's
    for name in ("CREDENTIALS_ENCRYPTION_KEY", "LAUNCHDECK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield path


@pytest.fixture
def workers_emulator(tmp_path: Path) -> Iterator[tuple[CloudflareEmulator, str]]:
    """The Cloudflare emulator (it runs uploaded Workers on workerd) and its API base URL."""
    cf = CloudflareEmulator(work_dir=tmp_path / "workerd")
    try:
        with serve(cf.app) as url:
            yield cf, url + "/client/v4"
    finally:
        cf.close()


@pytest.fixture
def workers(workers_emulator: tuple[CloudflareEmulator, str]) -> Iterator[CloudflareWorkers]:
    cf, url = workers_emulator
    client = CloudflareWorkers(
        cf.account_id,
        cf.api_token,
        base_url=url,
        retry=RequestRetry(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=5.0),
        limiter=RateLimiter(1200, 300),
    )
    yield client
    client.close()
