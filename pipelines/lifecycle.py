"""Lifecycle pipelines: suspend, resume, rollback, destroy, and the database-only routes.

Each is a short pipeline on the same runner as deployments, so it gets the same journal, lock (one
active operation per app), status view and undo.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from engine.apps import deployment_snapshot, succeeded_web_deployments
from engine.errors import InputError, NotFound, TerminalError
from engine.runner import NO_RETRY, Step, StepContext
from pipelines.providers import using_database, using_host
from pipelines.web import DB_TOKEN, DB_URL, engine_of, provision_database, set_app, undo_database


def _database_kind(ctx: StepContext) -> str | None:
    kind = ctx.app["database_provider"]
    return str(kind) if kind and kind != "byo" else None


def _require_live(ctx: StepContext) -> None:
    if ctx.app["status"] == "destroyed":
        raise TerminalError(f"{ctx.app_name} was destroyed; deploy it again to bring it back")


# -- suspend / resume -----------------------------------------------------------------------------------


def _cloud_host(ctx: StepContext) -> str | None:
    kind = ctx.app["hosting_provider"]
    return str(kind) if kind and kind != "local" else None


SUSPENDED_PAGE = (
    "<!doctype html><title>Suspended</title><h1>This app is suspended</h1>"
    "<p>Its owner can resume it from the Launchdeck console.</p>\n"
)


def suspend_hosting(ctx: StepContext) -> str:
    _require_live(ctx)
    kind = _cloud_host(ctx)
    if kind is None:
        engine_of(ctx).edge.suspend(ctx.app_name)
        return "answers 503 with a suspended page"
    # A cloud host has no "pause" in its published API: production is pointed at a one-page static
    # deployment, and resume points it back at the live deployment (nothing is rebuilt either way).
    with tempfile.TemporaryDirectory(prefix="launchdeck-suspended-") as folder:
        (Path(folder) / "index.html").write_text(SUSPENDED_PAGE)
        with using_host(engine_of(ctx), kind) as provider:
            page = provider.stage(ctx.app_name, Path(folder), {})
            provider.promote(ctx.app_name, page.id)
    return f"{kind} production serves the suspended page (deployment {page.id})"


def resume_hosting(ctx: StepContext) -> str:
    _require_live(ctx)
    kind = _cloud_host(ctx)
    if kind is None:
        engine_of(ctx).edge.resume(ctx.app_name)
        return "serving again"
    live = provider_deployment_of(ctx, str(ctx.app["live_deployment_id"]))
    with using_host(engine_of(ctx), kind) as provider:
        provider.promote(ctx.app_name, live)
    return f"{kind} production serves deployment {live} again"


def provider_deployment_of(ctx: StepContext, deployment_id: str) -> str:
    snapshot = deployment_snapshot(engine_of(ctx).store, deployment_id)
    if not snapshot.get("provider_deployment_id"):
        raise TerminalError(f"deployment {deployment_id} has no record of its cloud deployment")
    return str(snapshot["provider_deployment_id"])


def suspend_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    if kind is None:
        return "no managed database"
    with using_database(engine_of(ctx), kind, ctx.app_name) as provider:
        provider.suspend(ctx.app_name)
    return f"{kind} database refuses the app's credentials"


def resume_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    if kind is None:
        return "no managed database"
    with using_database(engine_of(ctx), kind, ctx.app_name) as provider:
        provider.resume(ctx.app_name)
    return f"{kind} database accepts the app's credentials again"


def mark(status: str) -> Any:
    def run(ctx: StepContext) -> str:
        set_app(ctx, status=status)
        return f"app is {status}"

    return run


def suspend(_: dict[str, Any]) -> list[Step]:
    return [
        Step("hosting", suspend_hosting, resume_hosting, timeout=60),
        Step("database", suspend_database, resume_database, timeout=300),
        Step("record", mark("suspended"), timeout=30),
    ]


def resume(_: dict[str, Any]) -> list[Step]:
    return [
        Step("database", resume_database, suspend_database, timeout=300),
        Step("hosting", resume_hosting, suspend_hosting, timeout=60),
        Step("record", mark("active"), timeout=30),
    ]


# -- rollback -------------------------------------------------------------------------------------------


def rollback_target(ctx: StepContext) -> dict[str, Any]:
    engine = engine_of(ctx)
    rows = succeeded_web_deployments(engine.store, ctx.app_id)
    cloud = _cloud_host(ctx) is not None
    staged = set() if cloud else {info.deployment_id for info in engine.edge.deployments(ctx.app_name)}
    live = str(ctx.app["live_deployment_id"]) if ctx.app["live_deployment_id"] else None
    wanted = ctx.params.get("to")
    for row in rows:
        candidate = str(row["id"])
        if wanted and not candidate.startswith(wanted):
            continue
        if not wanted and candidate == live:
            continue
        if cloud and not wanted and not _served_by(row, str(ctx.app["hosting_provider"])):
            continue  # an earlier deployment on another host cannot be promoted on this one
        if not cloud and candidate not in staged:
            raise TerminalError(f"deployment {candidate} is no longer kept on the edge host")
        return row
    raise NotFound(
        f"no earlier successful deployment of {ctx.app_name} to roll back to"
        if not wanted
        else f"{ctx.app_name} has no successful deployment {wanted}"
    )


def _served_by(row: dict[str, Any], host: str) -> bool:
    snapshot = json.loads(row["config_snapshot"]) if row["config_snapshot"] else {}
    return bool(snapshot.get("provider_deployment_id")) and snapshot.get("params", {}).get("host") == host


def rollback_step(ctx: StepContext) -> str:
    _require_live(ctx)
    target = rollback_target(ctx)
    target_id = str(target["id"])
    ctx.state["previous_live"] = str(ctx.app["live_deployment_id"])
    # The target's environment (its configuration snapshot) comes back with it from the vault.
    point_production_at(ctx, target_id)
    set_app(ctx, live_deployment_id=target_id, deployment_url=target["url"], config=target["config_snapshot"])
    return f"live deployment is {target_id} again (database migrations are not reversed)"


def undo_rollback(ctx: StepContext) -> None:
    previous = ctx.state.get("previous_live")
    if previous:
        point_production_at(ctx, previous)
        set_app(ctx, live_deployment_id=previous)


def point_production_at(ctx: StepContext, deployment_id: str) -> None:
    kind = _cloud_host(ctx)
    if kind is None:
        engine_of(ctx).edge.rollback(ctx.app_name, deployment_id)
        return
    with using_host(engine_of(ctx), kind) as provider:
        provider.promote(ctx.app_name, provider_deployment_of(ctx, deployment_id))


def rollback(_: dict[str, Any]) -> list[Step]:
    return [Step("rollback", rollback_step, undo_rollback, timeout=120, retry=NO_RETRY)]


# -- destroy --------------------------------------------------------------------------------------------


def destroy_hosting(ctx: StepContext) -> str:
    engine = engine_of(ctx)
    kind = _cloud_host(ctx)
    if kind is not None:
        with using_host(engine, kind) as provider:
            provider.destroy(ctx.app_name)
        return f"{kind} project {ctx.app_name} and its deployments deleted"
    with contextlib.suppress(NotFound):
        engine.edge.remove_app(ctx.app_name)
    return "deployments, files and processes removed"


def destroy_domains(ctx: StepContext) -> str:
    from engine.domains import remove_app_domains

    removed = remove_app_domains(engine_of(ctx).store, ctx.app_name, router=engine_of(ctx).edge)
    return f"{len(removed)} domain(s) removed"


def destroy_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    engine = engine_of(ctx)
    if kind is not None:
        with using_database(engine, kind, ctx.app_name) as provider:
            provider.destroy(ctx.app_name)
    engine.vault.delete(ctx.app_id, DB_URL)
    engine.vault.delete(ctx.app_id, DB_TOKEN)
    set_app(ctx, database_provider=None, database_id=None)
    return f"{kind} database and its role dropped" if kind else "no managed database"


def destroy_secrets(ctx: StepContext) -> str:
    count = engine_of(ctx).vault.delete(ctx.app_id)
    return f"{count} secret(s) deleted"


def destroy_record(ctx: StepContext) -> str:
    set_app(ctx, status="destroyed", deployment_url=None, live_deployment_id=None, custom_domain=None)
    return "app marked destroyed (its cost history stays)"


def destroy(_: dict[str, Any]) -> list[Step]:
    return [
        Step("hosting", destroy_hosting, timeout=120),
        Step("domains", destroy_domains, timeout=60),
        Step("database", destroy_database, timeout=300),
        Step("secrets", destroy_secrets, timeout=30),
        Step("record", destroy_record, timeout=30),
    ]


def destroy_database_only(_: dict[str, Any]) -> list[Step]:
    return [Step("database", destroy_database, timeout=300)]


# -- database-only routes ---------------------------------------------------------------------------------


def database(params: dict[str, Any]) -> list[Step]:
    if params.get("db") not in ("local-libsql", "local-postgres", "turso", "neon", "byo"):
        raise InputError(f"unknown database choice {params.get('db')!r}")
    return [Step("database", provision_database, undo_database, timeout=1800)]


def migrate_data_step(ctx: StepContext) -> str:
    from engine.dbpath.importer import import_preview

    engine = engine_of(ctx)
    url = engine.vault.get_optional(ctx.app_id, DB_URL)
    if url is None:
        raise TerminalError(
            f"{ctx.app_name} has no database yet: deploy it or POST /api/deploy/database first"
        )
    token = engine.vault.get_optional(ctx.app_id, DB_TOKEN)
    target = f"{url}?authToken={token}" if token else url

    def progress(done: int, total: int, table: str) -> None:
        ctx.progress(done, total, "rows", f"importing {table}")

    scratch = engine.settings.workspace / "builds" / ctx.deployment_id
    report = import_preview(
        Path(ctx.params["schema_path"]),
        Path(ctx.params["preview"]),
        target,
        replace=bool(ctx.params.get("replace")),
        progress=progress,
        migrations_dir=scratch / "migrations",
    )
    ctx.state["report"] = json.loads(report.model_dump_json())
    if not report.ok:
        raise TerminalError(
            f"import failed and the database was left as it was: {len(report.rejected)} rejected"
        )
    rows = sum(t.imported_rows for t in report.tables.values())
    return f"{rows} rows transferred into {len(report.tables)} tables, verified"


def migrate_data(_: dict[str, Any]) -> list[Step]:
    return [Step("import", migrate_data_step, timeout=3600, retry=NO_RETRY)]


PIPELINES = {
    "suspend": suspend,
    "resume": resume,
    "rollback": rollback,
    "destroy": destroy,
    "destroy-database": destroy_database_only,
    "database": database,
    "migrate-data": migrate_data,
}
