"""Turso client against the emulator: real SQLite files, idempotent provisioning, mapped errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from engine.errors import ProviderError, ProviderUnavailable
from engine.providers.base import DatabaseProvider
from engine.providers.turso import Turso
from tests.emulators.turso import TursoEmulator
from tests.providers.conftest import FAST_RETRY
from tests.providers.contract import check


def test_provision_creates_a_real_sqlite_file_and_adopts_it_on_resume(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    assert isinstance(turso, DatabaseProvider)
    first = turso.provision("app-1-prod")
    again = turso.provision("app-1-prod")  # a resumed pipeline runs the step again
    assert again.id == first.id and emulator.creates == 1
    assert first.token and first.token != again.token
    assert first.url.startswith("http://127.0.0.1:") and first.url.endswith("/_db/app-1-prod-acme/")
    with sqlite3.connect(emulator.path_of("app-1-prod")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert turso.find("app-1-prod") is not None and turso.find("nope") is None
    assert "token" not in repr(first) and first.token not in repr(first)


def test_suspend_blocks_reads_and_writes_and_resume_lifts_it(turso: Turso) -> None:
    turso.provision("app-2")
    turso.suspend("app-2")
    database = turso.get("app-2")
    assert database is not None and database.block_reads and database.block_writes
    turso.resume("app-2")
    database = turso.get("app-2")
    assert database is not None and not database.block_reads and not database.block_writes


def test_destroy_removes_the_file_and_is_idempotent(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    turso.provision("app-3")
    turso.destroy("app-3")
    turso.destroy("app-3")
    assert not emulator.path_of("app-3").exists() and turso.find("app-3") is None


def test_seed_upload_replaces_the_database_with_the_given_file(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = turso_emulator
    seed = tmp_path / "seed.db"
    with sqlite3.connect(seed) as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com'), ('b@example.com')")
    conn.close()
    turso.provision("app-4", seed_file=seed)
    with sqlite3.connect(emulator.path_of("app-4")) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2


def test_a_bad_seed_file_is_refused_with_turso_own_message(turso: Turso, tmp_path: Path) -> None:
    seed = tmp_path / "seed.db"
    seed.write_bytes(b"not a database at all" * 10)
    with pytest.raises(ProviderError, match="not a SQLite database") as caught:
        turso.provision("app-5", seed_file=seed)
    assert caught.value.status == 400


def test_wrong_api_token_is_terminal_and_never_printed(turso_emulator: tuple[TursoEmulator, str]) -> None:
    emulator, url = turso_emulator
    secret = "wrong-token-abcdef123456"
    client = Turso(emulator.org, secret, base_url=url, retry=FAST_RETRY)
    with pytest.raises(ProviderError) as caught:
        client.provision("app-6")
    assert caught.value.status == 401 and "Unauthorized" in str(caught.value)
    assert secret not in str(caught.value)
    client.close()


def test_429_and_5xx_are_retried_with_retry_after(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    emulator.faults.add(429, retry_after=0.2, method="POST", path="/databases$")
    emulator.faults.add(503, method="POST", path="/databases$")
    handle = turso.provision("app-7")
    creates = [e for e in emulator.recorder.matching("POST", "/databases$")]
    assert [e.status for e in creates] == [429, 503, 200]
    assert creates[1].at - creates[0].at >= 0.2  # Retry-After honoured
    assert turso.find("app-7") is not None and handle.name == "app-7"


def test_a_create_that_timed_out_but_happened_is_adopted_not_duplicated(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, url = turso_emulator
    # The first create is slow: the client times out, but the emulator still creates it.
    emulator.faults.add(None, delay=0.6, method="POST", path="/databases$")
    client = Turso(emulator.org, emulator.api_token, base_url=url, retry=FAST_RETRY)
    client.http._http.timeout = __import__("httpx").Timeout(0.3)
    handle = client.provision("app-8")
    assert emulator.creates == 1 and handle.name == "app-8"
    client.close()


def test_persistent_outage_surfaces_as_unavailable(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    emulator.faults.add(502, times=100, body={"error": "upstream is down"})
    with pytest.raises(ProviderUnavailable, match="upstream is down"):
        turso.list()
    assert len(emulator.recorder.exchanges) == FAST_RETRY.attempts


def test_every_exchange_follows_the_turso_spec(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    turso.provision("contract-db")
    turso.suspend("contract-db")
    turso.usage("contract-db")
    turso.list()
    turso.find("missing-db")
    turso.destroy("contract-db")
    checked, uncovered = check("turso/openapi.json", emulator.recorder.exchanges)
    assert checked >= 9
    assert uncovered == []


def _pipeline(url: str, token: str, *sql: str) -> httpx.Response:
    requests = [{"type": "execute", "stmt": {"sql": s}} for s in sql] + [{"type": "close"}]
    # Resolved relative to the URL, as the libSQL clients do (hrana-client: new URL("v3/pipeline", url)).
    return httpx.post(
        httpx.URL(url).join("v3/pipeline"),
        json={"baton": None, "requests": requests},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_the_handle_url_and_token_reach_the_database_over_hrana(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    emulator, _ = turso_emulator
    handle = turso.provision("app-9")
    assert handle.token is not None
    answer = _pipeline(
        handle.url,
        handle.token,
        "CREATE TABLE t (x INTEGER)",
        "INSERT INTO t VALUES (41), (1)",
        "SELECT sum(x) FROM t",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][2]["response"]["result"]["rows"] == [[{"type": "integer", "value": "42"}]]
    with sqlite3.connect(emulator.path_of("app-9")) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    conn.close()
    assert _pipeline(handle.url, "not-a-token", "SELECT 1").status_code == 401
    turso.suspend("app-9")
    assert _pipeline(handle.url, handle.token, "SELECT 1").status_code == 403


def test_the_contract_check_catches_a_response_that_breaks_the_spec(
    turso: Turso, turso_emulator: tuple[TursoEmulator, str]
) -> None:
    import dataclasses
    import json

    emulator, _ = turso_emulator
    turso.provision("checked")
    turso.get("checked")
    exchange = emulator.recorder.matching("GET", "/databases/checked$")[-1]
    assert exchange.status == 200
    body = exchange.response_json
    body["database"]["block_reads"] = "no"  # the spec says boolean
    broken = dataclasses.replace(exchange, response_body=json.dumps(body).encode())
    with pytest.raises(AssertionError, match=r"response .* violates"):
        check("turso/openapi.json", [broken])
    request = emulator.recorder.matching("POST", "/databases$")[-1]
    bad_request = dataclasses.replace(request, request_body=json.dumps({"name": 42}).encode())
    with pytest.raises(AssertionError, match="violates"):
        check("turso/openapi.json", [bad_request])
