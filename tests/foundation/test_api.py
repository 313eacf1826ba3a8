"""The engine API's roles: no token, wrong role, and platform tokens seeing only their own apps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.apps import get_or_create_app
from engine.auth import issue_token
from engine.config import Settings
from engine.service import Engine


@pytest.fixture
def engine(workspace: Path) -> Iterator[Engine]:
    service = Engine(
        Settings(workspace=workspace, edge_port=0, extra_pipelines="tests.foundation.selftest_pipeline")
    )
    service.start_in_thread()
    yield service
    service.stop_thread()


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(engine.url)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_and_openapi_need_no_token(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    paths = http.get("/openapi.json").json()["paths"]
    assert "/api/apps" in paths and "/api/deploy/status/{deployment_id}" in paths


def test_no_token_is_401_with_a_message(http: httpx.Client) -> None:
    response = http.get("/api/apps")
    assert response.status_code == 401
    assert "missing engine token" in response.json()["error"]["message"]
    assert http.get("/api/apps", headers=bearer("ldk_wrong")).status_code == 401


def test_expired_token_is_401(engine: Engine, http: httpx.Client) -> None:
    from datetime import UTC, datetime, timedelta

    token = issue_token(
        engine.store,
        role="operator",
        principal="o",
        name="old",
        expires_at=datetime.now(UTC) - timedelta(days=1),
    )
    response = http.get("/api/apps", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_finance_cannot_start_a_deployment(engine: Engine, http: httpx.Client) -> None:
    token = issue_token(engine.store, role="finance", principal="finance", name="cfo")
    response = http.post(
        "/api/deployments", json={"app": "shop", "pipeline": "selftest"}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert "finance token may not" in response.json()["error"]["message"]
    assert http.get("/api/apps", headers=bearer(token)).status_code == 200


def test_platform_token_sees_only_its_own_apps(engine: Engine, http: httpx.Client) -> None:
    get_or_create_app(engine.store, "alpha-app", owner="builder-a")
    get_or_create_app(engine.store, "beta-app", owner="builder-b")
    token_a = issue_token(engine.store, role="platform", principal="builder-a", name="a")

    listed = http.get("/api/apps", headers=bearer(token_a)).json()
    assert [app["name"] for app in listed] == ["alpha-app"]
    assert http.get("/api/apps/beta-app", headers=bearer(token_a)).status_code == 404
    operator = str(engine.first_token)
    assert {a["name"] for a in http.get("/api/apps", headers=bearer(operator)).json()} == {
        "alpha-app",
        "beta-app",
    }


def test_platform_token_cannot_deploy_into_another_owners_app(engine: Engine, http: httpx.Client) -> None:
    get_or_create_app(engine.store, "beta-app", owner="builder-b")
    token_a = issue_token(engine.store, role="platform", principal="builder-a", name="a")
    response = http.post(
        "/api/deployments", json={"app": "beta-app", "pipeline": "selftest"}, headers=bearer(token_a)
    )
    assert response.status_code == 403


def test_bad_body_names_the_field(engine: Engine, http: httpx.Client) -> None:
    operator = str(engine.first_token)
    response = http.post("/api/deployments", json={"pipeline": "selftest"}, headers=bearer(operator))
    assert response.status_code == 422
    assert "app" in response.json()["error"]["message"]


def test_secrets_are_never_returned(engine: Engine, http: httpx.Client) -> None:
    operator = bearer(str(engine.first_token))
    get_or_create_app(engine.store, "shop", owner="operator")
    assert (
        http.put(
            "/api/apps/shop/secrets/STRIPE_SECRET_KEY", json={"value": "sk_live_123456"}, headers=operator
        ).status_code
        == 204
    )
    detail = http.get("/api/apps/shop", headers=operator)
    assert detail.json()["secrets"] == ["STRIPE_SECRET_KEY"]
    assert "sk_live_123456" not in detail.text
    assert "sk_live_123456" not in http.get("/api/audit", headers=operator).text
