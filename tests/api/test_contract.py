"""The API's contract: every route answers a typed model, the client's types are generated from the
OpenAPI document and are current, and the plan's route names answer."""

from __future__ import annotations

from typing import Any

import pytest

from engine.contract import TYPES_FILE, client_types, openapi_document

# Routes whose answers are not typed here: the costs engineer's (analytics, billing) and the status stream.
UNTYPED = (  # the console's own cost views; a platform's routes, and what the wizard and Status pages read, are typed
    "/api/analytics/costs",
    "/api/analytics/margins",
    "/api/analytics/simulate",
    "/api/analytics/cpu-per-request",
    "/api/analytics/usage",
    "/api/analytics/price-sheets",
    "/api/console/caches",
    "/api/stripe/webhook",
    "/api/worker/blobs/",  # a blob is bytes both ways
    "/api/deploy/status/{deployment_id}/events",
)
PLAN_ROUTES = [
    ("post", "/api/deploy/web"), ("post", "/api/deploy/database"), ("post", "/api/deploy/ios"),
    ("post", "/api/deploy/android"), ("post", "/api/deploy/desktop"), ("get", "/api/deploy/status/{deployment_id}"),
    ("post", "/api/deploy/migrate-data"), ("post", "/api/domains/check"), ("post", "/api/domains/configure"),
    ("get", "/api/turso/databases"), ("delete", "/api/turso/databases/{database_id}"),
]  # fmt: skip


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def test_the_committed_client_types_are_generated_from_the_current_document(document: dict[str, Any]) -> None:
    assert TYPES_FILE.read_text() == client_types(document), (
        "engine/api_types.py is stale: run `.venv/bin/python -m engine.contract` and commit it"
    )


def test_every_route_answers_a_typed_model(document: dict[str, Any]) -> None:
    untyped = []
    for path, methods in document["paths"].items():
        if path.startswith(UNTYPED):
            continue
        for method, operation in methods.items():
            success = next(
                (operation["responses"][c] for c in ("200", "201", "202") if c in operation["responses"]),
                None,
            )
            if success is None:
                assert "204" in operation["responses"], f"{method} {path} has no success answer"
                continue
            schema = success.get("content", {}).get("application/json", {}).get("schema", {})
            values = schema.get("additionalProperties")  # a mapping of names to models (the tiers)
            if not (
                schema.get("$ref")
                or schema.get("items", {}).get("$ref")
                or (isinstance(values, dict) and values.get("$ref"))
            ):
                untyped.append(f"{method.upper()} {path}")
            assert "422" in operation["responses"] and "404" in operation["responses"], (
                f"{method} {path}: errors"
            )
    assert untyped == []


def test_the_plans_route_names_answer(document: dict[str, Any]) -> None:
    missing = [f"{m.upper()} {p}" for m, p in PLAN_ROUTES if m not in document["paths"].get(p, {})]
    assert missing == []
