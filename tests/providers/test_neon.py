"""Neon client against the emulator: real PostgreSQL databases and roles, 423 handling, adoption."""

from __future__ import annotations

import psycopg
import pytest

from engine.errors import ProviderError, ProviderUnavailable
from engine.providers.base import DatabaseProvider
from engine.providers.neon import Neon
from tests.emulators.neon import NeonEmulator
from tests.providers.contract import check


def test_provision_returns_a_uri_that_connects_and_is_adopted_on_rerun(
    neon: Neon, neon_emulator: tuple[NeonEmulator, str]
) -> None:
    emulator, _ = neon_emulator
    assert isinstance(neon, DatabaseProvider)
    handle = neon.provision("app-1-prod")
    with psycopg.connect(handle.url) as conn:
        conn.execute("CREATE TABLE posts (id serial PRIMARY KEY, title text)")
        conn.execute("INSERT INTO posts (title) VALUES ('hello')")
        owner = conn.execute("SELECT current_user").fetchone()
    again = neon.provision("app-1-prod")
    assert again.id == handle.id and emulator.creates == 1
    with psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT title FROM posts").fetchall() == [("hello",)]
        assert conn.execute("SELECT current_user").fetchone() == owner
    assert handle.url not in repr(handle)


def test_destroy_drops_the_real_database_and_role(
    neon: Neon, neon_emulator: tuple[NeonEmulator, str]
) -> None:
    emulator, _ = neon_emulator
    handle = neon.provision("app-2")
    project = emulator.projects[handle.id]
    neon.destroy("app-2")
    neon.destroy("app-2")  # already gone: fine
    with psycopg.connect(emulator.admin_dsn) as admin:
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [project.pg_database]).fetchone()
            is None
        )
        assert (
            admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [project.pg_role]).fetchone() is None
        )
    assert neon.find("app-2") is None


def test_suspend_drops_connections_and_resume_starts_the_endpoint(
    neon: Neon, neon_emulator: tuple[NeonEmulator, str]
) -> None:
    emulator, _ = neon_emulator
    handle = neon.provision("app-3")
    conn = psycopg.connect(handle.url)
    neon.suspend("app-3")
    assert emulator.projects[handle.id].endpoint_state == "idle"
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    neon.resume("app-3")
    assert emulator.projects[handle.id].endpoint_state == "active"


def test_423_operations_in_progress_is_waited_out_even_on_post(
    neon: Neon, neon_emulator: tuple[NeonEmulator, str]
) -> None:
    emulator, _ = neon_emulator
    handle = neon.provision("app-4")
    emulator.faults.add(423, times=2, method="POST", path="/suspend$")
    neon.suspend("app-4")
    suspends = emulator.recorder.matching("POST", "/suspend$")
    assert [e.status for e in suspends] == [423, 423, 200]
    assert emulator.projects[handle.id].endpoint_state == "idle"


def test_a_500_on_create_is_not_retried_blind(neon: Neon, neon_emulator: tuple[NeonEmulator, str]) -> None:
    emulator, _ = neon_emulator
    emulator.faults.add(500, method="POST", path="/projects$", body={"code": "", "message": "internal error"})
    with pytest.raises(ProviderUnavailable, match="internal error"):
        neon.provision("app-5")
    assert len(emulator.recorder.matching("POST", "/projects$")) == 1
    assert emulator.creates == 0
    neon.provision("app-5")  # the pipeline's own retry of the step
    assert emulator.creates == 1


def test_a_create_that_timed_out_but_happened_is_adopted(neon_emulator: tuple[NeonEmulator, str]) -> None:
    import httpx

    from tests.providers.conftest import FAST_NEON_RETRY

    emulator, url = neon_emulator
    emulator.faults.add(None, delay=0.8, method="POST", path="/projects$")
    client = Neon(emulator.api_key, base_url=url, retry=FAST_NEON_RETRY)
    client.http._http.timeout = httpx.Timeout(0.4)
    handle = client.provision("app-6")
    client.close()
    assert emulator.creates == 1
    with psycopg.connect(handle.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_bad_key_is_terminal_with_neons_message(neon_emulator: tuple[NeonEmulator, str]) -> None:
    _, url = neon_emulator
    client = Neon("wrong-key-0123456789abc", base_url=url)
    with pytest.raises(ProviderError, match="authentication required") as caught:
        client.provision("app-7")
    assert caught.value.status == 401 and "wrong-key-0123456789abc" not in str(caught.value)
    client.close()


def test_every_exchange_follows_the_neon_spec(neon: Neon, neon_emulator: tuple[NeonEmulator, str]) -> None:
    emulator, _ = neon_emulator
    handle = neon.provision("contract-app")
    neon.provision("contract-app")
    neon.suspend("contract-app")
    neon.resume("contract-app")
    usage = neon.consumption([handle.id], start="2026-11-01T00:00:00Z", end="2026-11-02T00:00:00Z")
    assert usage[0]["project_id"] == handle.id
    assert usage[0]["periods"][0]["consumption"][0]["synthetic_storage_size_bytes"] > 1_000_000
    neon.destroy("contract-app")
    checked, uncovered = check("neon/openAPIDefinition.json", emulator.recorder.exchanges, prefix="/api/v2")
    assert checked >= 10 and uncovered == []
