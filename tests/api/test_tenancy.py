"""Two platforms on one engine: neither can read, change or delete the other's apps, domains, secrets,
databases, deployments, uploads, usage or tokens through any route; a platform never picks its tier;
tier slots hold under concurrent first deploys and come back when a first deploy fails."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from engine import domains
from engine.apps import get_or_create_app
from engine.auth import issue_token
from engine.errors import LaunchdeckError
from engine.service import Engine
from tests.api.conftest import bearer, operator, platform_token


def tiny_app(marker: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        data = json.dumps({"name": marker}).encode()
        info = tarfile.TarInfo("package.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class Tenant:
    def __init__(self, engine: Engine, http: httpx.Client, name: str) -> None:
        self.name, self.http = name, http
        token = issue_token(engine.store, role="platform", principal=name, name=name)
        self.headers = bearer(token)
        self.token_id = str(
            engine.store.scalar("SELECT CAST(id AS TEXT) FROM api_tokens WHERE name = ?", [name])
        )
        self.app = f"{name}-app"
        # On a tier with room for apps and domains, so that no tier limit can stand in for an ownership check.
        engine.store.execute("INSERT INTO user_subscriptions (user_id, tier) VALUES (?, 'business')", [name])
        app = get_or_create_app(engine.store, self.app, owner=name)
        engine.store.execute(
            "UPDATE deployed_apps SET status = 'active', database_provider = 'local-libsql', database_id = ?"
            " WHERE id = ?",
            [f"databases/{self.app}/{self.app}.db", app.id],
        )
        engine.vault.put(str(app.id), "expo_token", f"secret-of-{name}")
        self.domain = f"shop.{name}.example.com"
        domains.add(engine.store, self.app, self.domain)
        self.deployment = engine.runner.submit(
            str(app.id), "selftest", {"resource_dir": str(engine.settings.workspace / "res" / name), "fail_at": "create-file"},
            requested_by=f"platform:{name}",
        )  # fmt: skip
        engine.runner.wait(self.deployment, timeout=60)
        upload = http.post("/api/uploads", content=tiny_app(name), headers=self.headers)
        assert upload.status_code == 201, upload.text
        self.upload_id = upload.json()["upload_id"]

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self.headers, **kwargs)


@pytest.fixture(scope="module")
def tenants(engine: Engine, http: httpx.Client) -> tuple[Tenant, Tenant]:
    return Tenant(engine, http, "alpha"), Tenant(engine, http, "beta")


def snapshot(engine: Engine, tenant: Tenant) -> dict[str, Any]:
    app = engine.store.fetchone("SELECT * FROM deployed_apps WHERE name = ?", [tenant.app])
    assert app is not None
    return {
        "app": {k: app[k] for k in ("status", "user_id", "database_id", "live_deployment_id", "tier")},
        "secret": engine.vault.get_optional(str(app["id"]), "expo_token"),
        "domain": domains.get(engine.store, tenant.domain),
        "deployments": engine.store.scalar("SELECT count(*) FROM deployments WHERE app_id = ?", [app["id"]]),
        "token_revoked": engine.store.scalar(
            "SELECT revoked_at FROM api_tokens WHERE CAST(id AS TEXT) = ?", [tenant.token_id]
        ),
    }


def attempts(victim: Tenant, thief: Tenant) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Every route a platform token may call, aimed at the victim's things, with the answer expected:
    404 where the victim's thing is named (the same as for a missing one), 403 for what no platform may
    do, 409 for a domain another tenant holds."""
    app, dep = victim.app, victim.deployment
    web = {"app": app, "upload_id": thief.upload_id}
    native = {"app": app, "params": {"bundle_id": "com.x.y"}}
    database = f"databases/{app}/{app}.db"
    return [
        (404, "GET", f"/api/apps/{app}", {}),
        (404, "POST", f"/api/apps/{app}/suspend", {}),
        (404, "POST", f"/api/apps/{app}/resume", {}),
        (404, "POST", f"/api/apps/{app}/rollback", {"json": {}}),
        (404, "POST", f"/api/apps/{app}/destroy", {}),
        (404, "PUT", f"/api/apps/{app}/secrets/expo_token", {"json": {"value": "stolen"}}),
        (404, "POST", "/api/deploy/web", {"json": web}),
        (404, "POST", "/api/deploy/web", {"json": {"app": thief.app, "upload_id": victim.upload_id}}),
        (404, "POST", "/api/deploy/database", {"json": web}),
        (404, "POST", "/api/deploy/migrate-data", {"json": {**web, "preview_upload_id": thief.upload_id}}),
        (404, "POST", "/api/deploy/ios", {"json": native}),
        (404, "POST", "/api/deploy/android", {"json": native}),
        (404, "POST", "/api/deploy/desktop", {"json": native}),
        (404, "GET", f"/api/deploy/status/{dep}", {}),
        (404, "GET", f"/api/deploy/status/{dep}/events", {}),
        (404, "POST", f"/api/deployments/{dep}/cancel", {}),
        (404, "POST", "/api/domains/configure", {"json": {"app": app, "domain": "new.example.com"}}),
        (404, "POST", "/api/domains/check", {"json": {"app": app, "domain": victim.domain}}),
        (404, "DELETE", f"/api/domains/{victim.domain}", {"params": {"app": app}}),
        (409, "POST", "/api/domains/configure", {"json": {"app": thief.app, "domain": victim.domain}}),
        (404, "DELETE", f"/api/databases/{database}", {}),
        (404, "DELETE", f"/api/turso/databases/{database}", {}),
        (404, "DELETE", f"/api/tokens/{victim.token_id}", {}),
        (404, "GET", f"/api/subscriptions/{victim.name}", {}),
        (403, "GET", "/api/analytics/usage", {"params": {"app": app}}),
        (403, "GET", "/api/analytics/costs", {}),
        (403, "POST", "/api/deployments", {"json": {"app": app, "pipeline": "selftest"}}),
    ]


def test_two_platforms_cannot_reach_each_other(engine: Engine, tenants: tuple[Tenant, Tenant]) -> None:
    for victim, thief in (tenants, tenants[::-1]):
        before = snapshot(engine, victim)
        for expected, method, path, kwargs in attempts(victim, thief):
            response = thief.call(method, path, **kwargs)
            assert response.status_code == expected, (
                method,
                path,
                response.status_code,
                response.text,
            )
            assert response.json()["error"]["message"]
            assert f"secret-of-{victim.name}" not in response.text
        assert snapshot(engine, victim) == before, "the victim's app, secret, domain, runs or token changed"


def test_lists_show_only_the_callers_own(engine: Engine, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, beta = tenants
    for me in (alpha, beta):
        assert [a["name"] for a in me.call("GET", "/api/apps").json()] == [me.app]
        assert [d["domain"] for d in me.call("GET", "/api/domains").json()] == [me.domain]
        assert [d["app"] for d in me.call("GET", "/api/databases").json()] == [me.app]
        assert [d["app"] for d in me.call("GET", "/api/turso/databases").json()] == [me.app]
        assert {t["principal"] for t in me.call("GET", "/api/tokens").json()} == {me.name}
        assert {u["upload_id"] for u in me.call("GET", "/api/uploads").json()} == {me.upload_id}
        assert me.call("GET", "/api/audit").status_code == 403


def test_a_name_held_by_another_tenant_answers_404(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, beta = tenants
    taken = beta.call("POST", "/api/deploy/web", json={"app": alpha.app, "upload_id": beta.upload_id})
    missing = beta.call("GET", "/api/apps/no-such-app")
    assert taken.status_code == missing.status_code == 404


def test_a_platform_never_picks_its_tier_or_owner(engine: Engine, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = tenants
    body = {"app": "tiered", "upload_id": alpha.upload_id}
    picked = alpha.call("POST", "/api/deploy/web", json={**body, "tier": "enterprise"})
    assert picked.status_code == 403 and "never chooses the tier" in picked.json()["error"]["message"]
    owner = alpha.call("POST", "/api/deploy/web", json={**body, "owner": "beta"})
    assert owner.status_code == 403 and "owner is for operators" in owner.json()["error"]["message"]
    path = alpha.call("POST", "/api/deploy/web", json={"app": "tiered", "source_path": "/etc"})
    assert path.status_code == 403 and "for operators only" in path.json()["error"]["message"]
    assert (
        alpha.call("PUT", "/api/subscriptions/alpha/tier", json={"tier": "pro", "reason": "x"}).status_code
        == 403
    )
    resolvers = alpha.call(
        "POST",
        "/api/domains/check",
        json={"app": alpha.app, "domain": alpha.domain, "resolvers": ["1.2.3.4"]},
    )
    assert resolvers.status_code == 403 and "operators only" in resolvers.json()["error"]["message"]
    remote = alpha.call(
        "POST", "/api/deploy/desktop",
        json={"app": alpha.app, "params": {"git_remote": "https://attacker.example/r.git"}},
    )  # fmt: skip
    assert remote.status_code == 422 and "git_remote" in remote.json()["error"]["message"]
    owner_param = alpha.call("POST", "/api/deploy/ios", json={"app": alpha.app, "params": {"owner": "beta"}})
    assert owner_param.status_code == 422 and "params.owner" in owner_param.json()["error"]["message"]
    assert engine.store.scalar("SELECT count(*) FROM deployed_apps WHERE name = 'tiered'") == 0


def test_the_operator_overrides_a_tier_with_an_audit_entry(engine: Engine, http: httpx.Client) -> None:
    response = http.put(
        "/api/subscriptions/delta/tier",
        json={"tier": "pro", "reason": "pilot customer"},
        headers=operator(engine),
    )
    assert response.json() == {"user_id": "delta", "tier": "pro", "previous_tier": "free"}, response.text
    entry = engine.store.fetchone(
        "SELECT * FROM audit_log WHERE action = 'override tier' AND target = 'delta'"
    )
    assert entry is not None and "pilot customer" in entry["detail"] and entry["actor"] == "operator:operator"
    assert http.get("/api/subscriptions/delta", headers=operator(engine)).json()["tier"] == "pro"


def test_concurrent_first_deploys_cannot_exceed_the_tier(engine: Engine) -> None:
    created: list[str] = []
    refused: list[str] = []

    def create(index: int) -> None:
        try:
            get_or_create_app(engine.store, f"race-{index}", owner="racer", check_slot=True)
            created.append(f"race-{index}")
        except LaunchdeckError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1 and len(refused) == 7  # free: one deployed app
    assert "the free tier allows 1 deployed app(s)" in refused[0]


def test_a_failed_first_deploy_frees_its_slot_and_secrets(engine: Engine, http: httpx.Client) -> None:
    headers = platform_token(engine, "epsilon")
    upload = http.post("/api/uploads", content=tiny_app("epsilon"), headers=headers).json()["upload_id"]
    started = http.post(
        "/api/deploy/web",
        json={"app": "eps-one", "upload_id": upload, "env": {"API_KEY": "s3cret"}},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    engine.runner.wait(started.json()["deployment_id"], timeout=120)
    app = http.get("/api/apps/eps-one", headers=headers).json()
    assert app["status"] == "failed" and app["tier"] == "free" and app["secrets"] == []
    failed = http.get("/api/apps", params={"status": "failed"}, headers=headers).json()
    assert [a["name"] for a in failed] == ["eps-one"]
    second = http.post("/api/deploy/web", json={"app": "eps-two", "upload_id": upload}, headers=headers)
    assert second.status_code == 202, second.text  # the failed app no longer holds the free tier's one slot
    engine.runner.wait(second.json()["deployment_id"], timeout=120)
    third = http.post("/api/deploy/web", json={"app": "eps-three", "upload_id": upload}, headers=headers)
    assert third.status_code == 202  # eps-two failed too, so its slot is free again


def test_a_quota_suspension_is_lifted_by_an_operator_or_a_tier_change(
    engine: Engine, http: httpx.Client
) -> None:
    headers = platform_token(engine, "zeta")
    app = get_or_create_app(engine.store, "zeta-app", owner="zeta")
    engine.store.execute("UPDATE deployed_apps SET status = 'suspended' WHERE id = ?", [app.id])
    engine.store.execute(
        "INSERT INTO deployments (id, app_id, pipeline, status, params, requested_by, created_at)"
        " VALUES (?, ?, 'suspend', 'succeeded', ?, 'metering', now())",
        [
            str(uuid.uuid4()),
            app.id,
            '{"reason": "over the free tier\'s monthly quota: requests 200,000 > 100,000"}',
        ],
    )
    refused = http.post("/api/apps/zeta-app/resume", headers=headers)
    assert refused.status_code == 403 and "over quota" in refused.json()["error"]["message"], refused.text
    redeploy = http.post("/api/deploy/web", json={"app": "zeta-app", "upload_id": "x"}, headers=headers)
    assert redeploy.status_code in (403, 404)
    http.put(
        "/api/subscriptions/zeta/tier",
        json={"tier": "starter", "reason": "upgraded"},
        headers=operator(engine),
    )
    lifted = http.post("/api/apps/zeta-app/resume", headers=headers)
    assert lifted.status_code == 202, lifted.text
    assert date.today().day >= 1


def test_a_token_limited_to_users_sees_only_their_apps(engine: Engine, http: httpx.Client) -> None:
    get_or_create_app(engine.store, "theta-one", owner="theta/u1")
    get_or_create_app(engine.store, "theta-two", owner="theta/u2")
    limited = platform_token(engine, "theta", users=["u1"])
    full = platform_token(engine, "theta")
    assert [a["name"] for a in http.get("/api/apps", headers=limited).json()] == ["theta-one"]
    assert {a["name"] for a in http.get("/api/apps", headers=full).json()} == {"theta-one", "theta-two"}
    assert http.get("/api/apps/theta-two", headers=limited).status_code == 404
    upload = http.post("/api/uploads", content=tiny_app("theta"), headers=limited).json()["upload_id"]
    other_user = http.post(
        "/api/deploy/web", json={"app": "theta-3", "upload_id": upload, "user": "u2"}, headers=limited
    )
    assert other_user.status_code == 422 and "limited to u1" in other_user.json()["error"]["message"]


def test_tokens_are_listed_revoked_and_expire_through_the_api(engine: Engine, http: httpx.Client) -> None:
    issued = http.post(
        "/api/tokens",
        json={"name": "iota", "role": "platform", "expires_in_days": 1},
        headers=operator(engine),
    ).json()
    assert issued["token"].startswith("ldk_") and issued["expires_at"]
    headers = bearer(issued["token"])
    assert http.get("/api/apps", headers=headers).status_code == 200
    listed = http.get("/api/tokens", headers=operator(engine)).json()
    assert any(t["id"] == issued["id"] for t in listed) and all("token" not in t for t in listed)
    revoked = http.delete(f"/api/tokens/{issued['id']}", headers=headers)  # a platform revokes its own
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = http.get("/api/apps", headers=headers)
    assert after.status_code == 401 and "revoked" in after.json()["error"]["message"]
    past = http.post(
        "/api/tokens", json={"name": "kappa", "role": "platform", "expires_at": "2001-01-01T00:00:00Z"},
        headers=operator(engine),
    )  # fmt: skip
    assert past.status_code == 422 and "expires_at" in past.json()["error"]["message"]


def test_rate_limits_answer_429_with_retry_after(engine: Engine, http: httpx.Client) -> None:
    from engine.api.limits import parse

    rates = app_state(engine).rate_limits
    saved = rates.rate
    rates.rate = parse("3/minute")
    try:
        headers = platform_token(engine, "lambda")
        answers = [http.get("/api/apps", headers=headers) for _ in range(4)]
    finally:
        rates.rate = saved
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert (
        int(answers[-1].headers["Retry-After"]) >= 1
        and "rate limit" in answers[-1].json()["error"]["message"]
    )


def app_state(engine: Engine) -> Any:
    """The FastAPI app's state (rate limits, stream slots) of the engine under test."""
    server = engine._server
    assert server is not None
    layer: Any = server.config.loaded_app
    while not hasattr(layer, "state"):
        layer = layer.app
    return layer.state


def test_status_streams_are_capped_per_token(
    engine: Engine, http: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = tenants
    with httpx.Client(base_url=str(engine.url), timeout=30) as client:
        response = client.get(f"/api/deploy/status/{alpha.deployment}/events", headers=alpha.headers)
        assert response.status_code == 200 and "event: status" in response.text  # a finished run: one event
    slots = app_state(engine).stream_slots
    saved = slots.per_token
    slots.per_token = 0
    try:
        capped = http.get(f"/api/deploy/status/{alpha.deployment}/events", headers=alpha.headers)
    finally:
        slots.per_token = saved
    assert capped.status_code == 429 and capped.headers["Retry-After"]
