"""Schemathesis over the engine's OpenAPI document, against a real engine (over HTTP, on a free port),
with an operator token: a bounded number of generated requests per route (FUZZ_EXAMPLES), and two
checks on every answer: never a server error, and every 4xx carries an error body whose message names
the field or the rule. The figures (routes, examples) go to test-output/schemathesis.json.

    .venv/bin/pytest tests/api/test_fuzz.py -q      (FUZZ_EXAMPLES=25 for a longer run)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from engine.config import Settings
from engine.service import Engine

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SUMMARY = Path(__file__).resolve().parents[2] / "test-output" / "schemathesis.json"
seen: Counter[str] = Counter()
statuses: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzzed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    service = Engine(
        Settings(
            workspace=tmp_path_factory.mktemp("fuzz") / "workspace",
            edge_port=0,
            rate_limit="1000000/minute",
            stripe_webhook_secret="whsec_fuzz",  # type: ignore[arg-type]
            upload_max_bytes=1_000_000,
            lock_timeout_seconds=0,
        )
    )
    service.start_in_thread()
    yield service
    service.stop_thread()
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(
        json.dumps(
            {
                "routes": len({key.split(" ", 1)[1] for key in seen}),
                "examples": sum(seen.values()),
                "statuses": dict(statuses),
                "per_route": dict(seen),
            },
            indent=2,
        )
    )


def check_error_body(response: Any, label: str) -> None:
    """A 4xx answers {"error": {"type", "message"}}; a refused body names the field it refuses."""
    if not 400 <= response.status_code < 500:
        return
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), (
        f"{label}: {response.status_code} without an error body: {response.text[:300]}"
    )
    message = str(error.get("message") or "")
    assert len(message) >= 10 and error.get("type"), f"{label}: an error message that says nothing: {body}"
    if response.status_code == 422 and message.startswith("bad request:"):
        field = message.removeprefix("bad request:").strip().split(":")[0]
        assert field, f"{label}: a validation error that names no field: {message}"


@pytest.mark.parametrize("role", ["operator", "platform"])
def test_no_server_error_and_every_refusal_says_why(fuzzed_engine: Engine, role: str) -> None:
    from engine.auth import issue_token

    token = (
        fuzzed_engine.first_token
        if role == "operator"
        else issue_token(fuzzed_engine.store, role="platform", principal="fuzzer", name="fuzzer")
    )
    assert token
    headers = {"Authorization": f"Bearer {token}", "role": role}
    api = schemathesis.openapi.from_url(f"{fuzzed_engine.url}/openapi.json")
    failures: list[str] = []
    for found in api.get_all_operations():
        operation = found.ok()
        try:
            fuzz(operation, fuzzed_engine, headers)
        except AssertionError as exc:
            failures.append(
                str(exc).splitlines()[0][:800] if str(exc) else f"{operation.method} {operation.path}"
            )
    assert not failures, "\n".join(failures)
    assert len([k for k in seen if k.startswith(role)]) >= 40, "fewer routes exercised than the API has"


def fuzz(operation: Any, engine: Engine, headers: dict[str, str]) -> None:
    """Valid requests and invalid ones (schemathesis' positive and negative modes)."""
    label = f"{headers['role']} {operation.method.upper()} {operation.path}"
    cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        response = case.call(
            base_url=str(engine.url), headers={"Authorization": headers["Authorization"]}, timeout=60
        )
        seen[label] += 1
        statuses[str(response.status_code)] += 1
        assert response.status_code < 500, (
            f"{label}: {response.status_code}: {response.text[:500]} :: {case.as_curl_command()}"
        )
        check_error_body(response, label)

    run()
