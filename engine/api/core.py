"""Core routes: health, apps, deployments (status, cancel, the operators' generic pipeline run),
tokens, tiers and the vault."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, SecretStr, field_validator

from engine.api.deps import AnyRole, Deployer, EngineDep, Operator, PathApp, visible_app
from engine.api.models import (
    ERRORS,
    AppDetail,
    AuditEntry,
    CancelResult,
    Health,
    IssuedToken,
    Started,
    Subscription,
    TierOverride,
    VaultRotation,
)
from engine.apps import (
    APP_STATES,
    app_name,
    audit,
    deployment_history,
    deployment_status,
    get_or_create_app,
    list_apps,
    live_app_count,
    recent_audit,
)
from engine.auth import Principal, issue_token, list_tokens, revoke_token, token_info
from engine.costs.tiers import (
    LIVE_STATUSES,
    default_tiers,
    override_tier,
    subscription_row,
    subscription_tier,
)
from engine.errors import Forbidden, InputError, NotFound
from engine.records import App, DeploymentStatus, TokenInfo
from engine.rules import HOST_KINDS, capabilities_of

router = APIRouter(responses=ERRORS)


@router.get("/healthz", tags=["engine"], response_model=Health)
def healthz() -> dict[str, Any]:
    return {"status": "ok"}  # nothing else: no path or version for an unauthenticated caller


@router.get("/api/apps", tags=["apps"], response_model=list[App])
def apps(
    engine: EngineDep,
    principal: AnyRole,
    status: Literal[APP_STATES] | None = Query(default=None, description="only apps in this state"),  # type: ignore[valid-type]
) -> list[App]:
    return list_apps(engine.store, principal, status)  # the record holds no secret (the URL is in the vault)


@router.get("/api/apps/{name}", tags=["apps"], response_model=AppDetail)
def app_detail(app: PathApp, engine: EngineDep) -> AppDetail:
    history = deployment_history(engine.store, app.id)
    hosting: dict[str, Any] | None = None
    if app.hosting_provider in HOST_KINDS and capabilities_of(app.hosting_provider).own_origin:
        with contextlib.suppress(NotFound):
            hosting = dataclasses.asdict(engine.edge.status(app.name))  # server state, cold start, traffic
    return AppDetail(
        **app.model_dump(), deployments=history, secrets=engine.vault.names(app.id), hosting=hosting
    )


class PipelineRun(BaseModel):
    app: str = Field(description="app name: lower-case letters, digits and hyphens")
    pipeline: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="owner of a new app (default: operator)")
    lock_timeout: float | None = Field(default=None, ge=0, le=30)


@router.post("/api/deployments", status_code=202, tags=["deployments"], response_model=Started)
def start_pipeline(body: PipelineRun, engine: EngineDep, principal: Operator) -> Started:
    """Any registered pipeline with raw parameters: operators only (platforms use /api/deploy/*)."""
    if body.pipeline not in engine.runner.pipelines:
        raise InputError(
            f"pipeline: no pipeline named {body.pipeline[:60]!r}; known: {', '.join(sorted(engine.runner.pipelines))}"
        )
    app = get_or_create_app(engine.store, body.app, owner=body.owner or "operator", principal=principal)
    lock_timeout = (
        min(30.0, engine.settings.lock_timeout_seconds) if body.lock_timeout is None else body.lock_timeout
    )
    deployment_id = engine.runner.submit(
        str(app.id), body.pipeline, body.params, requested_by=principal.actor, lock_timeout=lock_timeout
    )
    audit(engine.store, principal.actor, f"start {body.pipeline}", body.app, {"deployment": deployment_id})
    return Started.run(deployment_id, app.name)


def visible_deployment(engine: Any, principal: Principal, deployment_id: str) -> DeploymentStatus:
    """A deployment's status if the caller may see its app; 404 otherwise (also when the app is gone)."""
    status = deployment_status(engine.store, deployment_id)
    name = app_name(engine.store, status.deployment.app_id)
    if name is None:
        if principal.role == "platform":
            raise NotFound(f"no deployment {deployment_id}")
        return status
    try:
        visible_app(engine, principal, name)
    except NotFound:
        raise NotFound(f"no deployment {deployment_id}") from None
    status.app = name
    return status


@router.get("/api/deploy/status/{deployment_id}", tags=["deployments"], response_model=DeploymentStatus)
def deployment(deployment_id: str, engine: EngineDep, principal: AnyRole) -> DeploymentStatus:
    return visible_deployment(engine, principal, deployment_id)


@router.post("/api/deployments/{deployment_id}/cancel", tags=["deployments"], response_model=CancelResult)
def cancel(deployment_id: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    visible_deployment(engine, principal, deployment_id)
    cancelled = engine.runner.cancel(deployment_id)
    audit(engine.store, principal.actor, "cancel", deployment_id, {"accepted": cancelled})
    return {"deployment_id": deployment_id, "cancel_requested": cancelled}


# -- tokens -----------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="who the token is for")
    role: Literal["operator", "finance", "platform", "worker"]
    principal: str | None = Field(
        default=None, description="for platform tokens: the platform (default: name)"
    )
    users: list[str] | None = Field(
        default=None, max_length=1000, description="platform tokens: only these users' apps (default: all)"
    )
    expires_at: datetime | None = Field(default=None, description="when it stops working (default: never)")
    expires_in_days: float | None = Field(default=None, gt=0, le=3650, description="or: days from now")


@router.post("/api/tokens", status_code=201, tags=["tokens"], response_model=IssuedToken)
def new_token(body: TokenRequest, engine: EngineDep, principal: Operator) -> IssuedToken:
    owner = body.principal or body.name
    if body.expires_at is not None and body.expires_in_days is not None:
        raise InputError("expires_at, expires_in_days: give one of the two")
    expires = body.expires_at
    if body.expires_in_days is not None:
        expires = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= datetime.now(
        UTC
    ):
        raise InputError("expires_at: the time is in the past; give a future time")
    token = issue_token(
        engine.store, role=body.role, principal=owner, name=body.name, expires_at=expires, users=body.users
    )
    issued = token_info(engine.store, token)
    audit(engine.store, principal.actor, "issue token", body.name,
          {"role": body.role, "principal": owner, "users": body.users, "id": issued.id})  # fmt: skip
    return IssuedToken(**issued.model_dump(), token=token)


@router.get("/api/tokens", tags=["tokens"], response_model=list[TokenInfo])
def tokens(engine: EngineDep, principal: AnyRole) -> list[TokenInfo]:
    """Every token for operators; a platform's own tokens for a platform (never the token itself)."""
    if principal.role == "finance":
        raise Forbidden("a finance token may not list tokens; it needs an operator or platform token")
    return list_tokens(engine.store, principal)


@router.delete("/api/tokens/{token_id}", tags=["tokens"], response_model=TokenInfo)
def revoke(token_id: str, engine: EngineDep, principal: Deployer) -> TokenInfo:
    """Revoke a token at once (operators: any; a platform: its own)."""
    revoked = revoke_token(engine.store, principal, token_id)
    audit(engine.store, principal.actor, "revoke token", revoked.name, {"id": token_id})
    return revoked


# -- tiers ------------------------------------------------------------------------------------------


def subscription_of(engine: Any, user_id: str) -> dict[str, Any]:
    row = subscription_row(engine.store, user_id)
    tier = default_tiers().get(subscription_tier(engine.store, user_id))
    return {
        "user_id": user_id,
        "status": row["status"] if row else "none",
        "tier": tier.name,
        "max_deployed_apps": tier.max_deployed_apps,
        "max_custom_domains": tier.max_custom_domains,
        "apps": live_app_count(engine.store, user_id, LIVE_STATUSES),
    }


@router.get("/api/subscriptions/{user_id}", tags=["tiers"], response_model=Subscription)
def subscription(user_id: str, engine: EngineDep, principal: AnyRole) -> dict[str, Any]:
    """A user's tier and limits (from their subscription; free without one)."""
    if not principal.may_see_owner(user_id):
        raise NotFound(f"no user {user_id!r} this token can see")
    return subscription_of(engine, user_id)


class TierChange(BaseModel):
    tier: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=1, max_length=500, description="kept in the audit log")


@router.put("/api/subscriptions/{user_id}/tier", tags=["tiers"], response_model=TierOverride)
def set_tier(user_id: str, body: TierChange, engine: EngineDep, principal: Operator) -> dict[str, Any]:
    """Operators override a user's tier (outside Stripe); audited with the reason and the tier before."""
    return override_tier(engine.store, user_id, body.tier, actor=principal.actor, reason=body.reason)


# -- vault and secrets --------------------------------------------------------------------------------


@router.post("/api/vault/rotate", tags=["engine"], response_model=VaultRotation)
def rotate_vault(engine: EngineDep, principal: Operator) -> dict[str, Any]:
    result = engine.vault.rotate()
    audit(engine.store, principal.actor, "rotate vault key", None, {"secrets": result.secrets})
    return {
        "secrets": result.secrets,
        "old_key_id": result.old_key_id,
        "new_key_id": result.new_key_id,
        "new_key_path": str(result.new_key_path) if result.new_key_path else None,
    }


SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
ENGINE_KEPT = ("NEXTAUTH_SECRET", "tauri_updater_")


def check_secret_name(name: str) -> str:
    """Credentials a pipeline reads (expo_token, github_token, ...). Names the engine keeps itself (database
    URLs, a deployment's environment, generated keys) cannot be written through the API."""
    if not SECRET_NAME.match(name):
        raise InputError(f"secret: {name[:60]!r} is not a secret name (a letter, then letters, digits and _)")
    if name.startswith(ENGINE_KEPT):
        raise InputError(f"secret: {name} is kept by Launchdeck itself and cannot be set through the API")
    return name


class SecretValue(BaseModel):
    value: SecretStr = Field(min_length=1, max_length=65536)

    @field_validator("value")
    @classmethod
    def not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the value is blank")
        return value


@router.put("/api/apps/{name}/secrets/{secret}", status_code=204, tags=["apps"])
def put_secret(app: PathApp, secret: str, body: SecretValue, engine: EngineDep, principal: Deployer) -> None:
    engine.vault.put(str(app.id), check_secret_name(secret), body.value.get_secret_value())
    audit(engine.store, principal.actor, "set secret", app.name, {"secret": secret})


@router.get("/api/audit", tags=["engine"], response_model=list[AuditEntry])
def audit_log(
    engine: EngineDep, principal: AnyRole, limit: int = Query(default=100, ge=1, le=1000)
) -> list[dict[str, Any]]:
    if principal.role == "platform":
        raise Forbidden("a platform token may not read the audit log")
    return recent_audit(engine.store, limit)
