"""The plan's deployment routes for the app-builder platform and the console. Long work is
asynchronous: 202 with a status URL, which also streams as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, SecretStr, field_validator

from engine.api.deps import AnyRole, Deployer, EngineDep
from engine.apps import audit, deployment_status, get_app, get_or_create_app, require_visible
from engine.auth import Principal
from engine.domains import normalize_domain
from engine.errors import InputError, LaunchdeckError
from engine.service import Engine

router = APIRouter(tags=["deploy"])

DatabaseChoice = Literal["local-libsql", "local-postgres", "turso", "neon", "byo"]
HostChoice = Literal["local", "cloudflare", "vercel"]
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
RESERVED_ENV = {"DATABASE_URL", "TURSO_DATABASE_URL", "TURSO_AUTH_TOKEN", "NEXTAUTH_SECRET", "NEXTAUTH_URL"}


class DeployWeb(BaseModel):
    app: str = Field(description="app name: becomes <app>.<edge host>; lower-case letters, digits, hyphens")
    source_path: str = Field(description="the generated app's folder, readable by the engine")
    db: DatabaseChoice = "local-libsql"
    database_url: SecretStr | None = Field(default=None, description="required with db=byo")
    host: HostChoice = "local"
    domain: str | None = None
    env: dict[str, SecretStr] = Field(default_factory=dict, description="the app's own variables")
    tier: str | None = None
    preview: str | None = Field(default=None, description="preview SQLite file or SQL dump to import")
    import_data: bool = True
    owner: str | None = Field(default=None, description="operators only: the owning user")

    @field_validator("env")
    @classmethod
    def env_names(cls, env: dict[str, SecretStr]) -> dict[str, SecretStr]:
        import re

        for name in env:
            if not re.match(ENV_NAME, name):
                raise ValueError(f"{name!r} is not a valid variable name (use A-Z, 0-9 and _)")
            if name in RESERVED_ENV:
                raise ValueError(f"{name} is set by Launchdeck for the chosen database and URL; remove it")
        return env


class DeployDatabase(BaseModel):
    app: str
    schema_path: str = Field(description="the app's prisma/schema.prisma")
    db: DatabaseChoice = "local-libsql"
    database_url: SecretStr | None = None
    preview: str | None = None
    owner: str | None = None


class MigrateData(BaseModel):
    app: str
    schema_path: str
    preview: str
    replace: bool = False


class RollbackRequest(BaseModel):
    to: str | None = Field(default=None, description="deployment id; default: the one before the live one")


def _owner(principal: Principal, requested: str | None) -> str:
    if principal.role == "platform":
        return principal.name
    return requested or "operator"


def _start(
    engine: Engine, principal: Principal, app: dict[str, Any], pipeline: str, params: dict[str, Any]
) -> dict[str, Any]:
    try:
        deployment_id = engine.runner.submit(
            str(app["id"]),
            pipeline,
            params,
            requested_by=principal.actor,
            lock_timeout=engine.settings.lock_timeout_seconds,
        )
    except LaunchdeckError:
        forget_if_never_deployed(engine, app)
        raise
    audit(engine.store, principal.actor, pipeline, app["name"], {"deployment": deployment_id})
    return {
        "deployment_id": deployment_id,
        "app": app["name"],
        "status_url": f"/api/deploy/status/{deployment_id}",
    }


def forget_if_never_deployed(engine: Engine, app: dict[str, Any]) -> None:
    """A refused first request must not leave an app stuck in 'provisioning' with its secrets."""
    runs = engine.store.scalar("SELECT count(*) FROM deployments WHERE app_id = ?", [app["id"]])
    if not runs and app["status"] == "provisioning":
        engine.vault.delete(str(app["id"]))
        engine.store.execute("DELETE FROM deployed_apps WHERE id = ?", [app["id"]])


def subscription_tier(engine: Engine, owner: str) -> str:
    tier = engine.store.scalar("SELECT tier FROM user_subscriptions WHERE user_id = ?", [owner])
    return str(tier) if tier else "free"


def _existing_path(value: str, what: str) -> str:
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise InputError(f"{what} {value} does not exist on the engine's machine")
    return str(path)


@router.post("/api/deploy/web", status_code=202)
def deploy_web(body: DeployWeb, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    source = _existing_path(body.source_path, "source_path")
    if not (Path(source) / "package.json").exists():
        raise InputError(f"source_path {source} has no package.json: point it at the generated app's folder")
    if body.db == "byo" and body.database_url is None:
        raise InputError("database_url is required when db is byo")
    app = get_or_create_app(
        engine.store, body.app, owner=_owner(principal, body.owner), tier=body.tier or "starter"
    )
    require_visible(principal, app)
    scope = str(app["id"])
    if body.database_url is not None:
        engine.vault.put(scope, "byo:DATABASE_URL", body.database_url.get_secret_value())
    for name, value in body.env.items():
        engine.vault.put(scope, f"user-env:{name}", value.get_secret_value())
    params = {
        "source_path": source,
        "db": body.db,
        "host": body.host,
        "domain": normalize_domain(body.domain, edge_hostname=engine.settings.edge_hostname)
        if body.domain
        else None,
        "env_names": sorted(body.env),
        "tier": body.tier,
        "preview": _existing_path(body.preview, "preview") if body.preview else None,
        "import_data": body.import_data,
    }
    return _start(engine, principal, app, "web", params)


@router.post("/api/deploy/database", status_code=202)
def deploy_database(body: DeployDatabase, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    app = get_or_create_app(engine.store, body.app, owner=_owner(principal, body.owner))
    require_visible(principal, app)
    if body.database_url is not None:
        engine.vault.put(str(app["id"]), "byo:DATABASE_URL", body.database_url.get_secret_value())
    params = {
        "schema_path": _existing_path(body.schema_path, "schema_path"),
        "db": body.db,
        "preview": _existing_path(body.preview, "preview") if body.preview else None,
    }
    return _start(engine, principal, app, "database", params)


@router.post("/api/deploy/migrate-data", status_code=202)
def migrate_data(body: MigrateData, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    app = require_visible(principal, get_app(engine.store, body.app))
    params = {
        "schema_path": _existing_path(body.schema_path, "schema_path"),
        "preview": _existing_path(body.preview, "preview"),
        "replace": body.replace,
    }
    return _start(engine, principal, app, "migrate-data", params)


@router.get("/api/deploy/status/{deployment_id}/events")
async def status_events(deployment_id: str, engine: EngineDep, principal: AnyRole) -> StreamingResponse:
    from engine.api.core import deployment as status_of

    status_of(deployment_id, engine, principal)  # 404 / visibility before the stream starts

    async def stream() -> AsyncIterator[str]:
        last = ""
        while True:
            status = await asyncio.to_thread(deployment_status, engine.store, deployment_id)
            text = json.dumps(status, default=str)
            if text != last:
                yield f"event: status\ndata: {text}\n\n"
                last = text
            if status["deployment"]["status"] in ("succeeded", "failed", "cancelled"):
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.post("/api/apps/{name}/suspend", status_code=202)
def suspend(name: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _start(engine, principal, require_visible(principal, get_app(engine.store, name)), "suspend", {})


@router.post("/api/apps/{name}/resume", status_code=202)
def resume(name: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _start(engine, principal, require_visible(principal, get_app(engine.store, name)), "resume", {})


@router.post("/api/apps/{name}/rollback", status_code=202)
def rollback(name: str, body: RollbackRequest, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    app = require_visible(principal, get_app(engine.store, name))
    return _start(engine, principal, app, "rollback", {"to": body.to})


@router.post("/api/apps/{name}/destroy", status_code=202)
def destroy(name: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _start(engine, principal, require_visible(principal, get_app(engine.store, name)), "destroy", {})


@router.get("/api/databases")
def databases(engine: EngineDep, principal: AnyRole) -> list[dict[str, Any]]:
    from engine.apps import list_apps

    return [
        {
            "id": app["database_id"],
            "app": app["name"],
            "provider": app["database_provider"],
            "status": app["status"],
        }
        for app in list_apps(engine.store, principal)
        if app["database_id"]
    ]


@router.delete("/api/databases/{database_id}", status_code=202)
def delete_database(database_id: str, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    row = engine.store.fetchone("SELECT name FROM deployed_apps WHERE database_id = ?", [database_id])
    if row is None:
        raise InputError(f"no app uses database {database_id}; GET /api/databases lists them")
    app = require_visible(principal, get_app(engine.store, row["name"]))
    return _start(engine, principal, app, "destroy-database", {})


class DeployNative(BaseModel):
    """Mobile and desktop builds: the pipeline's parameters (see `launchdeck mobile --help`); the
    credentials they name must already be in the app's vault scope (PUT /api/apps/{app}/secrets/...)."""

    app: str
    params: dict[str, Any] = Field(default_factory=dict)


def _native(
    engine: Engine, principal: Principal, body: DeployNative, pipeline: str, **extra: Any
) -> dict[str, Any]:
    app = require_visible(principal, get_app(engine.store, body.app))
    if not app["deployment_url"] and not body.params.get("server_url") and not body.params.get("web_dir"):
        raise InputError(
            f"{body.app} has no live URL yet: deploy its web app first, or give server_url or web_dir"
        )
    params = {"server_url": app["deployment_url"], **body.params, **extra}
    return _start(engine, principal, app, pipeline, params)


@router.post("/api/deploy/ios", status_code=202)
def deploy_ios(body: DeployNative, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _native(engine, principal, body, "mobile", platform="ios")


@router.post("/api/deploy/android", status_code=202)
def deploy_android(body: DeployNative, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _native(engine, principal, body, "mobile", platform="android")


@router.post("/api/deploy/desktop", status_code=202)
def deploy_desktop(body: DeployNative, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    return _native(engine, principal, body, "desktop")
