"""The plan's deployment routes for the app-builder platform and the console. Long work is
asynchronous: 202 with a status URL, which also streams as server-sent events.

An app and its preview database arrive as uploads (``POST /api/uploads``) and are named by
``upload_id``; paths on the engine's machine (``source_path``, ``preview``, ``schema_path``) are for
operators only. An app's owner and tier are never the platform's choice: the owner is the platform (or
``platform/user``), the tier is the owner's subscription's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from engine import apps, uploads
from engine.api.deps import AnyRole, Deployer, EngineDep, PathApp, owner_clause, visible_app
from engine.api.models import ERRORS, DatabaseInfo, Started
from engine.apps import (
    APP_SELECT,
    audit,
    deployment_status,
    get_or_create_app,
    name_unavailable,
)
from engine.auth import Principal
from engine.costs.tiers import check_deploy_allowed, override_tier, resume_hold
from engine.domains import normalize_domain
from engine.errors import Conflict, Forbidden, InputError, LaunchdeckError, NotFound
from engine.records import App
from engine.rules import (
    DATABASE_FAMILIES,
    DEFAULT_DATABASE,
    DEFAULT_HOST,
    DatabaseKind,
    HostKind,
    env_name_problem,
)

if TYPE_CHECKING:
    from engine.service import Engine

router = APIRouter(tags=["deploy"], responses=ERRORS)

LIBSQL_FAMILY = tuple(kind for kind, family in DATABASE_FAMILIES.items() if family == "libsql")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppSource(Body):
    app: str = Field(
        min_length=1, max_length=63, description="app name: becomes <app>.<edge host>; a-z, 0-9, -"
    )
    user: str | None = Field(
        default=None,
        max_length=100,
        description="platforms: the end user the app belongs to (owner platform/user)",
    )
    owner: str | None = Field(
        default=None, max_length=200, description="operators only: the owner of a new app"
    )
    preview_upload_id: str | None = Field(
        default=None, max_length=64, description="a preview database upload (POST /api/uploads?kind=preview)"
    )
    preview: str | None = Field(
        default=None, max_length=4096, description="operators only: a preview file on the engine's machine"
    )


class DeployWeb(AppSource):
    upload_id: str | None = Field(
        default=None, max_length=64, description="the app's upload (POST /api/uploads?kind=app)"
    )
    source_path: str | None = Field(
        default=None, max_length=4096, description="operators only: the app's folder on the engine's machine"
    )
    root: str | None = Field(
        default=None,
        max_length=300,
        pattern=r"^[A-Za-z0-9_.@-]+(/[A-Za-z0-9_.@-]+)*$",
        description="the app's folder inside the uploaded (or given) repository, e.g. apps/web",
    )
    db: DatabaseKind = DEFAULT_DATABASE
    database_url: SecretStr | None = Field(default=None, description="required with db=byo")
    host: HostKind = DEFAULT_HOST
    domain: str | None = Field(default=None, max_length=300)
    env: dict[str, SecretStr] = Field(
        default_factory=dict, max_length=200, description="the app's own variables"
    )
    tier: str | None = Field(
        default=None, max_length=40,
        description="operators only: override the owner's tier (audited); platforms never choose it",
    )  # fmt: skip
    import_data: bool = True
    seed: bool = Field(
        default=False, description="run the app's seed script in the build, against the new database"
    )

    @field_validator("env")
    @classmethod
    def env_names(cls, env: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in env:
            problem = env_name_problem(name)
            if problem:
                raise ValueError(problem)
        return env


class DeployDatabase(AppSource):
    upload_id: str | None = Field(
        default=None, max_length=64, description="the app's upload: its Prisma schema"
    )
    schema_path: str | None = Field(
        default=None,
        max_length=4096,
        description="operators only: prisma/schema.prisma on the engine's machine",
    )
    db: DatabaseKind = DEFAULT_DATABASE
    database_url: SecretStr | None = None


class MigrateData(Body):
    app: str = Field(min_length=1, max_length=63)
    upload_id: str | None = Field(
        default=None, max_length=64, description="the app's upload: its Prisma schema"
    )
    schema_path: str | None = Field(default=None, max_length=4096, description="operators only")
    preview_upload_id: str | None = Field(default=None, max_length=64)
    preview: str | None = Field(default=None, max_length=4096, description="operators only")
    replace: bool = False


class RollbackRequest(Body):
    to: str | None = Field(
        default=None, max_length=64, description="deployment id; default: the one before the live one"
    )


# -- shared -----------------------------------------------------------------------------------------


def owner_of(principal: Principal, body: AppSource) -> str:
    if principal.role == "platform":
        if body.owner is not None:
            raise Forbidden("owner is for operators: a platform names its end user in 'user'")
        return principal.owner_for(body.user)
    if body.user is not None:
        raise InputError("user: operators give the full owner id in 'owner'")
    return body.owner or "operator"


def operator_path(principal: Principal, value: str, field: str) -> str:
    if principal.role != "operator":
        raise Forbidden(
            f"{field} is a path on the engine's machine, for operators only: upload the file with "
            f"POST /api/uploads and send its id instead"
        )
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise InputError(f"{field}: {value} does not exist on the engine's machine")
    return str(path)


def owned_upload(
    engine: Engine, principal: Principal, upload_id: str, kind: uploads.UploadKind
) -> uploads.Upload:
    upload = uploads.get(engine.store, upload_id, kind=kind)
    if principal.role != "operator" and upload.owner != principal.name:
        noun = "app" if kind == "app" else "preview database"
        raise NotFound(f"no {noun} upload {upload_id}: upload it first with POST /api/uploads?kind={kind}")
    return upload


def app_root(repository: Path, root: str | None) -> Path:
    """The app's folder: the repository itself, or ``root`` inside it (never outside)."""
    if not root:
        return repository
    folder = (repository / root).resolve()
    if ".." in Path(root).parts or not folder.is_relative_to(repository.resolve()):
        raise InputError(f"root: {root} leads outside the app's repository")
    if not (folder / "package.json").is_file():
        raise InputError(f"root: {root} has no package.json; give the app's folder inside the repository")
    return folder


def app_folder(
    engine: Engine,
    principal: Principal,
    upload_id: str | None,
    path: str | None,
    *,
    needs_package: bool = True,
) -> Path:
    if (upload_id is None) == (path is None):
        raise InputError("upload_id: give the app's upload_id (or, operators only, a source_path), not both")
    if upload_id is not None:
        return uploads.app_folder(
            engine.settings.workspace, owned_upload(engine, principal, upload_id, "app")
        )
    assert path is not None
    folder = Path(operator_path(principal, path, "source_path"))
    if needs_package and not (folder / "package.json").is_file():
        raise InputError(f"source_path: {folder} has no package.json; point it at the generated app's folder")
    return folder


def preview_of(engine: Engine, principal: Principal, upload_id: str | None, path: str | None) -> str | None:
    if upload_id is not None and path is not None:
        raise InputError("preview_upload_id, preview: give one of the two")
    if upload_id is not None:
        upload = owned_upload(engine, principal, upload_id, "preview")
        return str(uploads.preview_file(engine.settings.workspace, upload))
    return operator_path(principal, path, "preview") if path is not None else None


def schema_of(folder: Path) -> str:
    schema = folder / "prisma" / "schema.prisma"
    if not schema.is_file():
        raise InputError(
            "upload_id: the uploaded app has no prisma/schema.prisma; Launchdeck deploys Prisma apps"
        )
    return str(schema)


def refuse_held(engine: Engine, principal: Principal, app: App) -> None:
    if principal.role == "operator":
        return
    hold = resume_hold(engine.store, app)
    if hold:
        raise Forbidden(hold)


def check_byo_url(url: str) -> None:
    """A bring-your-own database is a network PostgreSQL server: never a file on this machine (its path
    would decide what the sandboxes mount), never the operator's local server as its admin."""
    if not url.startswith(("postgres://", "postgresql://")):
        raise InputError(
            "database_url: a bring-your-own database must be a postgresql:// URL (file: URLs are refused: "
            "use db=local-libsql for a database on this machine)"
        )
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # psycopg raises ProgrammingError for a malformed URL
        raise InputError("database_url: not a valid PostgreSQL URL") from None
    host = str(params.get("host") or "")
    if not host or host.startswith("/") or host in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        raise InputError(
            "database_url: a bring-your-own database must be on another host (this machine's PostgreSQL "
            "is the engine's: use db=local-postgres)"
        )


def _start(engine: Engine, principal: Principal, app: App, pipeline: str, params: dict[str, Any]) -> Started:
    try:
        deployment_id = engine.runner.submit(
            str(app.id),
            pipeline,
            params,
            requested_by=principal.actor,
            lock_timeout=min(engine.settings.lock_timeout_seconds, 30.0),
        )
    except LaunchdeckError:
        forget_if_never_deployed(engine, app)
        raise
    audit(engine.store, principal.actor, pipeline, app.name, {"deployment": deployment_id})
    return Started.run(deployment_id, app.name)


def forget_if_never_deployed(engine: Engine, app: App) -> None:
    """A refused first request must not leave an app stuck in 'provisioning' with its secrets."""
    apps.forget_if_never_deployed(engine.store, app, engine.vault.delete)


def refuse_taken(engine: Engine, principal: Principal, name: str) -> None:
    """Before anything else is looked at: a name another tenant holds answers 404, like a missing app."""
    owner = apps.owner_of(engine.store, name)
    if owner is not None and not principal.may_see_owner(owner):
        raise name_unavailable(name)


def new_or_owned_app(engine: Engine, principal: Principal, name: str, owner: str) -> App:
    app = get_or_create_app(engine.store, name, owner=owner, principal=principal, check_slot=True)
    if principal.role == "operator" and app.user_id != owner and owner != "operator":
        raise Conflict(f"app: {name} belongs to {app.user_id}, not {owner}")
    return app


# -- routes -----------------------------------------------------------------------------------------


@router.post("/api/deploy/web", status_code=202, response_model=Started)
def deploy_web(body: DeployWeb, engine: EngineDep, principal: Deployer) -> Started:
    """The one-click web deployment of an uploaded app (``upload_id``), with its preview data."""
    refuse_taken(engine, principal, body.app)
    owner = owner_of(principal, body)
    repository = app_folder(engine, principal, body.upload_id, body.source_path, needs_package=not body.root)
    source = app_root(repository, body.root)
    preview = preview_of(engine, principal, body.preview_upload_id, body.preview)
    if body.db == "byo" and body.database_url is None:
        raise InputError("database_url: required when db is byo")
    if body.database_url is not None:
        check_byo_url(body.database_url.get_secret_value())
    domain = (
        normalize_domain(body.domain, edge_hostname=engine.settings.edge_hostname) if body.domain else None
    )
    if body.tier is not None:
        if principal.role != "operator":
            raise Forbidden("tier: a platform never chooses the tier; it is the owner's subscription's")
        override_tier(engine.store, owner, body.tier, actor=principal.actor, reason=f"deploy of {body.app}")
    app = new_or_owned_app(engine, principal, body.app, owner)
    refuse_held(engine, principal, app)
    scope = str(app.id)
    if body.database_url is not None:
        engine.vault.put(scope, "byo:DATABASE_URL", body.database_url.get_secret_value())
    for name, value in body.env.items():
        engine.vault.put(scope, f"user-env:{name}", value.get_secret_value())
    params = {
        "source_path": str(source),
        "db": body.db,
        "host": body.host,
        "domain": domain,
        "env_names": sorted(body.env),
        "preview": preview,
        "import_data": body.import_data,
        "seed": body.seed,
        **({"repository_path": str(repository)} if body.root else {}),
        **({"upload_id": body.upload_id} if body.upload_id else {}),
    }
    return _start(engine, principal, app, "web", params)


@router.post("/api/deploy/database", status_code=202, response_model=Started)
def deploy_database(body: DeployDatabase, engine: EngineDep, principal: Deployer) -> Started:
    """Provision the app's database from its Prisma schema and import the preview data; no hosting."""
    refuse_taken(engine, principal, body.app)
    owner = owner_of(principal, body)
    if body.upload_id is not None:
        schema = schema_of(app_folder(engine, principal, body.upload_id, None))
    elif body.schema_path is not None:
        schema = operator_path(principal, body.schema_path, "schema_path")
    else:
        raise InputError("upload_id: give the app's upload_id (or, operators only, a schema_path)")
    preview = preview_of(engine, principal, body.preview_upload_id, body.preview)
    if body.db == "byo" and body.database_url is None:
        raise InputError("database_url: required when db is byo")
    if body.database_url is not None:
        check_byo_url(body.database_url.get_secret_value())
    app = new_or_owned_app(engine, principal, body.app, owner)
    try:
        check_deploy_allowed(engine.store, str(app.user_id), None, body.db, False, app_name=app.name)
    except LaunchdeckError:
        forget_if_never_deployed(engine, app)
        raise
    refuse_held(engine, principal, app)
    if body.database_url is not None:
        engine.vault.put(str(app.id), "byo:DATABASE_URL", body.database_url.get_secret_value())
    return _start(
        engine, principal, app, "database", {"schema_path": schema, "db": body.db, "preview": preview}
    )


@router.post("/api/deploy/migrate-data", status_code=202, response_model=Started)
def migrate_data(body: MigrateData, engine: EngineDep, principal: Deployer) -> Started:
    """Import preview data into the app's existing database."""
    app = visible_app(engine, principal, body.app)
    refuse_held(engine, principal, app)
    if body.upload_id is not None:
        schema = schema_of(app_folder(engine, principal, body.upload_id, None))
    elif body.schema_path is not None:
        schema = operator_path(principal, body.schema_path, "schema_path")
    else:
        raise InputError("upload_id: give the app's upload_id (or, operators only, a schema_path)")
    preview = preview_of(engine, principal, body.preview_upload_id, body.preview)
    if preview is None:
        raise InputError("preview_upload_id: give the preview database to import")
    params = {"schema_path": schema, "preview": preview, "replace": body.replace}
    return _start(engine, principal, app, "migrate-data", params)


@router.get(
    "/api/deploy/status/{deployment_id}/events",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}, "description": "status events until the end"}},
)
async def status_events(
    deployment_id: str, request: Request, engine: EngineDep, principal: AnyRole
) -> StreamingResponse | JSONResponse:
    """The deployment's status as server-sent events (``event: status``) until it ends; at most
    LAUNCHDECK_SSE_MAX_PER_TOKEN streams per token, each closed after LAUNCHDECK_SSE_MAX_SECONDS."""
    from engine.api.core import visible_deployment
    from engine.api.limits import StreamSlots, retry_headers

    await asyncio.to_thread(visible_deployment, engine, principal, deployment_id)  # 404 before streaming
    slots: StreamSlots = request.app.state.stream_slots
    key = principal.token_id or principal.actor
    if not slots.take(key):
        return JSONResponse(
            {"error": {"type": "RateLimited", "message": f"this token already has {slots.per_token} status "
                       "streams open (LAUNCHDECK_SSE_MAX_PER_TOKEN): close one, or poll /api/deploy/status"}},
            status_code=429, headers=retry_headers(5),
        )  # fmt: skip
    deadline = time.monotonic() + engine.settings.sse_max_seconds

    async def stream() -> AsyncIterator[str]:
        try:
            last = ""
            while True:
                status = await asyncio.to_thread(deployment_status, engine.store, deployment_id)
                text = status.model_dump_json()
                if text != last:
                    yield f"event: status\ndata: {text}\n\n"
                    last = text
                if status.deployment.status in ("succeeded", "failed", "cancelled"):
                    return
                if time.monotonic() > deadline:
                    yield "event: timeout\ndata: {}\n\n"
                    return
                await asyncio.sleep(1.0)
        finally:
            slots.give_back(key)

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.post("/api/apps/{name}/suspend", status_code=202, response_model=Started)
def suspend(app: PathApp, engine: EngineDep, principal: Deployer) -> Started:
    return _start(engine, principal, app, "suspend", {})


@router.post("/api/apps/{name}/resume", status_code=202, response_model=Started)
def resume(app: PathApp, engine: EngineDep, principal: Deployer) -> Started:
    """Resume a suspended app. One suspended for going over quota (or by an operator) is resumed by an
    operator, or once the quota is lifted (the owner's tier changed, or a new month began)."""
    refuse_held(engine, principal, app)
    return _start(engine, principal, app, "resume", {})


@router.post("/api/apps/{name}/rollback", status_code=202, response_model=Started)
def rollback(app: PathApp, body: RollbackRequest, engine: EngineDep, principal: Deployer) -> Started:
    refuse_held(engine, principal, app)
    return _start(engine, principal, app, "rollback", {"to": body.to})


@router.post("/api/apps/{name}/destroy", status_code=202, response_model=Started)
def destroy(app: PathApp, engine: EngineDep, principal: Deployer) -> Started:
    return _start(engine, principal, app, "destroy", {})


# -- databases (the plan's /api/turso/databases answers too) ----------------------------------------


def _databases(
    engine: Engine, principal: Principal, providers: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    clause, params = owner_clause(principal)
    if providers is not None:
        clause += f" AND a.database_provider IN ({', '.join('?' for _ in providers)})"
        params = [*params, *providers]
    rows = engine.store.fetchall(
        f"{APP_SELECT} WHERE {clause} AND a.database_id IS NOT NULL ORDER BY a.name", params
    )
    return [
        {
            "id": row["database_id"],
            "app": row["name"],
            "provider": row["database_provider"],
            "status": row["status"],
        }
        for row in rows
    ]


def _delete_database(
    engine: Engine,
    principal: Principal,
    database_id: str,
    app_name: str | None,
    providers: tuple[str, ...] | None,
) -> Started:
    matches = [d for d in _databases(engine, principal, providers) if d["id"] == database_id]
    if app_name is not None:
        matches = [d for d in matches if d["app"] == app_name]
    if not matches:
        raise NotFound(f"no database {database_id}: GET /api/databases lists them")
    if len(matches) > 1:
        raise Conflict(
            f"database id {database_id} is used by several apps ({', '.join(d['app'] for d in matches)}): "
            "name the app with ?app="
        )
    app = visible_app(engine, principal, matches[0]["app"])
    return _start(engine, principal, app, "destroy-database", {})


@router.get("/api/databases", response_model=list[DatabaseInfo])
def databases(engine: EngineDep, principal: AnyRole) -> list[dict[str, Any]]:
    """The databases of the caller's apps."""
    return _databases(engine, principal, None)


@router.get("/api/turso/databases", response_model=list[DatabaseInfo])
def turso_databases(engine: EngineDep, principal: AnyRole) -> list[dict[str, Any]]:
    """The plan's route: the caller's libSQL databases (Turso, or the local libSQL files standing in for it)."""
    return _databases(engine, principal, LIBSQL_FAMILY)


@router.delete("/api/databases/{database_id:path}", status_code=202, response_model=Started)
def delete_database(
    database_id: str,
    engine: EngineDep,
    principal: Deployer,
    app: str | None = Query(default=None, max_length=63, description="the app, when several share the id"),
) -> Started:
    return _delete_database(engine, principal, database_id, app, None)


@router.delete("/api/turso/databases/{database_id:path}", status_code=202, response_model=Started)
def delete_turso_database(
    database_id: str,
    engine: EngineDep,
    principal: Deployer,
    app: str | None = Query(default=None, max_length=63, description="the app, when several share the id"),
) -> Started:
    return _delete_database(engine, principal, database_id, app, LIBSQL_FAMILY)


# -- mobile and desktop --------------------------------------------------------------------------------

OPERATOR_PATH_PARAMS = ("web_dir", "icon", "app_dir")


class DeployNative(Body):
    """Mobile and desktop builds: the pipeline's parameters (see `launchdeck mobile --help`); the
    credentials they name must already be in the app's vault scope (PUT /api/apps/{app}/secrets/...).
    The owner whose store accounts and tokens are used is always the app's owner."""

    app: str = Field(min_length=1, max_length=63)
    params: dict[str, Any] = Field(default_factory=dict, max_length=50)


def check_native_params(engine: Engine, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    if "owner" in params:
        raise InputError("params.owner: the owner is always the app's owner; remove it")
    for name in OPERATOR_PATH_PARAMS:
        if params.get(name) is not None:
            if principal.role != "operator":
                raise Forbidden(f"params.{name} is a path on the engine's machine, for operators only")
            params[name] = operator_path(principal, str(params[name]), f"params.{name}")
    for name in ("server_url", "updater_endpoint"):
        value = params.get(name)
        if value is not None and (
            not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https")
        ):
            raise InputError(f"params.{name}: give an http(s) URL")
    remote = params.get("git_remote")
    if remote is not None:
        allowed = [h.strip().lower() for h in engine.settings.git_allowed_hosts.split(",") if h.strip()]
        parts = urlsplit(str(remote))
        if (
            parts.scheme != "https"
            or (parts.hostname or "").lower() not in allowed
            or parts.username
            or parts.password
        ):
            raise InputError(
                f"params.git_remote: must be an https URL on {', '.join(allowed)} (LAUNCHDECK_GIT_ALLOWED_HOSTS), "
                "without credentials"
            )
    return params


def _native(engine: Engine, principal: Principal, body: DeployNative, pipeline: str, **extra: Any) -> Started:
    app = visible_app(engine, principal, body.app)
    params = check_native_params(engine, principal, dict(body.params))
    if not app.deployment_url and not params.get("server_url") and not params.get("web_dir"):
        raise InputError(
            f"app: {body.app} has no live URL yet: deploy its web app first, or give params.server_url"
        )
    return _start(engine, principal, app, pipeline, {"server_url": app.deployment_url, **params, **extra})


@router.post("/api/deploy/ios", status_code=202, response_model=Started)
def deploy_ios(body: DeployNative, engine: EngineDep, principal: Deployer) -> Started:
    return _native(engine, principal, body, "mobile", platform="ios")


@router.post("/api/deploy/android", status_code=202, response_model=Started)
def deploy_android(body: DeployNative, engine: EngineDep, principal: Deployer) -> Started:
    return _native(engine, principal, body, "mobile", platform="android")


@router.post("/api/deploy/desktop", status_code=202, response_model=Started)
def deploy_desktop(body: DeployNative, engine: EngineDep, principal: Deployer) -> Started:
    return _native(engine, principal, body, "desktop")
