"""The Hrana 3 HTTP test server behaves as the spec says (it stands in for Turso's data plane)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.asgi import serve
from tests.servers.hrana import FaultPlan, create_app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[httpx.Client, FaultPlan, Path]]:
    database = tmp_path / "db.sqlite"
    sqlite3.connect(database).close()
    faults = FaultPlan()
    app = create_app(lambda _host: database, faults, authorize=lambda _h, token: token == "t0k")
    with serve(app) as url, httpx.Client(base_url=url, headers={"Authorization": "Bearer t0k"}) as client:
        yield client, faults, database
    app.state.streams.close_all()


def execute(sql: str, *args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "execute", "stmt": {"sql": sql, "args": list(args)}}


def pipeline(client: httpx.Client, baton: str | None, *requests: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v3/pipeline", json={"baton": baton, "requests": list(requests)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_values_round_trip_with_integers_as_strings_and_blobs_as_base64(
    server: tuple[httpx.Client, FaultPlan, Path],
) -> None:
    client, _, _ = server
    assert client.get("/v3").status_code == 200
    assert client.get("/v3-protobuf").status_code == 404  # JSON only: clients fall back
    body = pipeline(
        client,
        None,
        execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n)"),
        execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            {"type": "integer", "value": "9007199254740993"},
            {"type": "float", "value": 0.5},
            {"type": "text", "value": "é\ttab"},
            {"type": "blob", "base64": "AAH/"},
            {"type": "null"},
        ),
        execute("SELECT * FROM t"),
        {"type": "close"},
    )
    assert body["baton"] is None  # closed
    insert, select = body["results"][1]["response"]["result"], body["results"][2]["response"]["result"]
    assert insert["affected_row_count"] == 1 and insert["last_insert_rowid"] == "1"
    assert select["rows"] == [
        [
            {"type": "integer", "value": "9007199254740993"},
            {"type": "float", "value": 0.5},
            {"type": "text", "value": "é\ttab"},
            {"type": "blob", "base64": "AAH/"},
            {"type": "null"},
        ]
    ]
    assert [c["name"] for c in select["cols"]] == ["i", "f", "s", "b", "n"]


def test_batons_tie_a_transaction_together_and_are_single_use(
    server: tuple[httpx.Client, FaultPlan, Path],
) -> None:
    client, _, database = server
    first = pipeline(
        client, None, execute("CREATE TABLE t (v)"), execute("BEGIN"), execute("INSERT INTO t VALUES (1)")
    )
    baton = first["baton"]
    second = pipeline(client, baton, {"type": "get_autocommit"})
    assert second["results"][0]["response"]["is_autocommit"] is False
    assert second["baton"] != baton
    reused = client.post("/v3/pipeline", json={"baton": baton, "requests": []})
    assert reused.status_code == 400
    forged = client.post("/v3/pipeline", json={"baton": second["baton"][:-2] + "00", "requests": []})
    assert forged.status_code == 400
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)  # not committed yet
    pipeline(client, second["baton"], execute("COMMIT"), {"type": "close"})
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_errors_are_reported_in_results_and_batch_conditions_apply(
    server: tuple[httpx.Client, FaultPlan, Path],
) -> None:
    client, _, _ = server
    body = pipeline(
        client,
        None,
        execute("SELECT * FROM missing"),
        {
            "type": "batch",
            "batch": {
                "steps": [
                    {"stmt": {"sql": "CREATE TABLE u (v)"}},
                    {"stmt": {"sql": "INSERT INTO nope VALUES (1)"}, "condition": {"type": "ok", "step": 0}},
                    {"stmt": {"sql": "INSERT INTO u VALUES (1)"}, "condition": {"type": "error", "step": 1}},
                    {
                        "stmt": {"sql": "INSERT INTO u VALUES (2)"},
                        "condition": {"type": "not", "cond": {"type": "error", "step": 1}},
                    },
                    {
                        "stmt": {"sql": "SELECT count(*) FROM u"},
                        "condition": {
                            "type": "and",
                            "conds": [{"type": "ok", "step": 2}, {"type": "is_autocommit"}],
                        },
                    },
                ]
            },
        },
    )
    error = body["results"][0]
    assert error["type"] == "error" and "no such table: missing" in error["error"]["message"]
    batch = body["results"][1]["response"]["result"]
    assert batch["step_errors"][1]["message"].endswith("no such table: nope")
    assert batch["step_results"][3] is None and batch["step_errors"][3] is None  # skipped
    assert batch["step_results"][4]["rows"] == [[{"type": "integer", "value": "1"}]]


def test_faults_rate_limit_server_error_and_dropped_connection(
    server: tuple[httpx.Client, FaultPlan, Path],
) -> None:
    client, faults, _ = server
    faults.rate_limit(retry_after=3).server_error(502).drop()
    limited = client.post("/v3/pipeline", json={"baton": None, "requests": []})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert client.post("/v3/pipeline", json={"baton": None, "requests": []}).status_code == 502
    # The connection closes mid-answer: the client sees the body cut short or, when the close races the
    # request's last bytes, a reset. Either way no answer arrives (the import retries both).
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/v3/pipeline", json={"baton": None, "requests": []})
    assert pipeline(client, None, execute("SELECT 1"))["results"][0]["type"] == "ok"


def test_wrong_token_is_refused(server: tuple[httpx.Client, FaultPlan, Path]) -> None:
    client, _, _ = server
    response = client.post(
        "/v3/pipeline", json={"baton": None, "requests": []}, headers={"Authorization": "Bearer no"}
    )
    assert response.status_code == 401
