"""Core routes: health, apps, deployments (generic pipeline runs), tokens and the vault."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from engine.api.deps import AnyRole, Deployer, EngineDep, Operator
from engine.apps import audit, deployment_status, get_app, get_or_create_app, list_apps, require_visible
from engine.auth import issue_token
from engine.errors import Forbidden, NotFound

router = APIRouter()

PUBLIC_APP_FIELDS = (
    "id",
    "name",
    "user_id",
    "platform",
    "status",
    "deployment_url",
    "custom_domain",
    "database_provider",
    "database_id",
    "hosting_provider",
    "hosting_project_id",
    "tier",
    "live_deployment_id",
    "created_at",
    "updated_at",
    "last_deployed_at",
)


def public_app(row: dict[str, Any]) -> dict[str, Any]:
    """An app as the API shows it: never the encrypted database URL."""
    return {key: row[key] for key in PUBLIC_APP_FIELDS}


@router.get("/healthz", tags=["engine"])
def healthz(engine: EngineDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "workspace": str(engine.settings.workspace),
        "pipelines": sorted(engine.runner.pipelines),
    }


@router.get("/api/apps", tags=["apps"])
def apps(engine: EngineDep, principal: AnyRole) -> list[dict[str, Any]]:
    return [public_app(row) for row in list_apps(engine.store, principal)]


@router.get("/api/apps/{name}", tags=["apps"])
def app_detail(name: str, engine: EngineDep, principal: AnyRole) -> dict[str, Any]:
    app = require_visible(principal, get_app(engine.store, name))
    history = engine.store.fetchall(
        "SELECT id, pipeline, status, url, error, created_at, finished_at FROM deployments"
        " WHERE app_id = ? ORDER BY created_at DESC LIMIT 50",
        [app["id"]],
    )
    hosting: dict[str, Any] | None = None
    if app["hosting_provider"] == "local":
        with contextlib.suppress(NotFound):
            hosting = dataclasses.asdict(engine.edge.status(app["name"]))  # server state, cold start, traffic
    return {
        **public_app(app),
        "deployments": history,
        "secrets": engine.vault.names(str(app["id"])),
        "hosting": hosting,
    }


class PipelineRun(BaseModel):
    app: str = Field(description="app name: lower-case letters, digits and hyphens")
    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict)
    lock_timeout: float | None = Field(default=None, ge=0, le=3600)


@router.post("/api/deployments", status_code=202, tags=["deployments"])
def start_pipeline(body: PipelineRun, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    owner = principal.name if principal.role == "platform" else body.params.get("owner", "operator")
    app = get_or_create_app(engine.store, body.app, owner=str(owner))
    require_visible(principal, app)
    lock_timeout = engine.settings.lock_timeout_seconds if body.lock_timeout is None else body.lock_timeout
    deployment_id = engine.runner.submit(
        str(app["id"]), body.pipeline, body.params, requested_by=principal.actor, lock_timeout=lock_timeout
    )
    audit(engine.store, principal.actor, f"start {body.pipeline}", body.app, {"deployment": deployment_id})
    return {"deployment_id": deployment_id, "status_url": f"/api/deploy/status/{deployment_id}"}


def _visible_deployment(engine: EngineDep, principal: AnyRole, deployment_id: str) -> dict[str, Any]:
    status = deployment_status(engine.store, deployment_id)
    app = engine.store.fetchone("SELECT * FROM deployed_apps WHERE id = ?", [status["deployment"]["app_id"]])
    if app is not None:
        require_visible(principal, app)
        status["app"] = app["name"]
    return status


@router.get("/api/deploy/status/{deployment_id}", tags=["deployments"])
def deployment(deployment_id: str, engine: EngineDep, principal: AnyRole) -> dict[str, Any]:
    return _visible_deployment(engine, principal, deployment_id)


@router.post("/api/deployments/{deployment_id}/cancel", tags=["deployments"])
def cancel(deployment_id: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    _visible_deployment(engine, principal, deployment_id)
    cancelled = engine.runner.cancel(deployment_id)
    audit(engine.store, principal.actor, "cancel", deployment_id, {"accepted": cancelled})
    return {"deployment_id": deployment_id, "cancel_requested": cancelled}


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["operator", "finance", "platform"]
    principal: str | None = Field(default=None, description="for platform tokens: the owner of its apps")
    expires_at: datetime | None = None


@router.post("/api/tokens", status_code=201, tags=["engine"])
def new_token(body: TokenRequest, engine: EngineDep, principal: Operator) -> dict[str, Any]:
    owner = body.principal or body.name
    token = issue_token(
        engine.store, role=body.role, principal=owner, name=body.name, expires_at=body.expires_at
    )
    audit(engine.store, principal.actor, "issue token", body.name, {"role": body.role, "principal": owner})
    return {"token": token, "role": body.role, "principal": owner}


@router.post("/api/vault/rotate", tags=["engine"])
def rotate_vault(engine: EngineDep, principal: Operator) -> dict[str, Any]:
    result = engine.vault.rotate()
    audit(engine.store, principal.actor, "rotate vault key", None, {"secrets": result.secrets})
    return {
        "secrets": result.secrets,
        "old_key_id": result.old_key_id,
        "new_key_id": result.new_key_id,
        "new_key_path": str(result.new_key_path) if result.new_key_path else None,
    }


class SecretValue(BaseModel):
    value: str = Field(min_length=1)


@router.put("/api/apps/{name}/secrets/{secret}", status_code=204, tags=["apps"])
def put_secret(name: str, secret: str, body: SecretValue, engine: EngineDep, principal: Deployer) -> None:
    app = require_visible(principal, get_app(engine.store, name))
    engine.vault.put(str(app["id"]), secret, body.value)
    audit(engine.store, principal.actor, "set secret", name, {"secret": secret})


@router.get("/api/audit", tags=["engine"])
def audit_log(engine: EngineDep, principal: AnyRole, limit: int = 100) -> list[dict[str, Any]]:
    if principal.role == "platform":
        raise Forbidden("a platform token may not read the audit log")
    return engine.store.fetchall("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", [min(limit, 1000)])
