"""Lifecycle pipelines: suspend, resume, rollback, destroy, and the database-only routes.

Each is a short pipeline on the same runner as deployments, so it gets the same journal, lock (one
active operation per app), status view and undo.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.apps import deployment_snapshot, succeeded_web_deployments
from engine.errors import NotFound, TerminalError
from engine.providers.base import HostingProvider
from engine.records import LiveDeployment
from engine.rules import DEFAULT_HOST, database_kind
from engine.runner import NO_RETRY, Step, StepContext
from pipelines.providers import using_database, using_host
from pipelines.services import services_of
from pipelines.web import DB_TOKEN, DB_URL, provision_database, set_app, undo_database


def _database_kind(ctx: StepContext) -> str | None:
    kind = ctx.app.database_provider
    return str(kind) if kind and kind != "byo" else None


def _require_live(ctx: StepContext) -> None:
    if ctx.app.status == "destroyed":
        raise TerminalError(f"{ctx.app_name} was destroyed; deploy it again to bring it back")


@contextlib.contextmanager
def app_host(ctx: StepContext) -> Iterator[HostingProvider]:
    """The host that serves the app (this machine's edge host for an app never hosted anywhere)."""
    with using_host(services_of(ctx), str(ctx.app.hosting_provider or DEFAULT_HOST)) as host:
        yield host


def host_deployment_of(ctx: StepContext, host: HostingProvider, deployment_id: str) -> str:
    """The host's id of one of the app's deployments (recorded when it went live on a cloud host)."""
    if host.capabilities.deployments_named_by_engine:
        return deployment_id
    snapshot = deployment_snapshot(services_of(ctx).store, deployment_id)
    if not snapshot.provider_deployment_id:
        raise TerminalError(f"deployment {deployment_id} has no record of its cloud deployment")
    return snapshot.provider_deployment_id


# -- suspend / resume -----------------------------------------------------------------------------------


def suspend_hosting(ctx: StepContext) -> str:
    _require_live(ctx)
    with app_host(ctx) as host:
        return host.suspend(ctx.app_name)


def resume_hosting(ctx: StepContext) -> str:
    _require_live(ctx)
    with app_host(ctx) as host:
        return host.resume(ctx.app_name, host_deployment_of(ctx, host, str(ctx.app.live_deployment_id)))


def suspend_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    if kind is None:
        return "no managed database"
    with using_database(services_of(ctx), kind, ctx.app_name) as provider:
        provider.suspend(ctx.app_name)
    return f"{kind} database refuses the app's credentials"


def resume_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    if kind is None:
        return "no managed database"
    with using_database(services_of(ctx), kind, ctx.app_name) as provider:
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


def rollback_target(ctx: StepContext, host: HostingProvider) -> LiveDeployment:
    rows = succeeded_web_deployments(services_of(ctx).store, ctx.app_id)
    live = str(ctx.app.live_deployment_id) if ctx.app.live_deployment_id else None
    wanted = ctx.params.get("to")
    for row in rows:
        candidate = row.id
        if wanted and not candidate.startswith(wanted):
            continue
        if not wanted and candidate == live:
            continue
        if (
            not host.capabilities.deployments_named_by_engine
            and not wanted
            and not row.snapshot.served_by(host.name)
        ):
            continue  # an earlier deployment on another host cannot be promoted on this one
        return row  # (one the edge host no longer keeps is refused by its promote)
    raise NotFound(
        f"no earlier successful deployment of {ctx.app_name} to roll back to"
        if not wanted
        else f"{ctx.app_name} has no successful deployment {wanted}"
    )


def rollback_step(ctx: StepContext) -> str:
    _require_live(ctx)
    with app_host(ctx) as host:
        target = rollback_target(ctx, host)
        target_id = target.id
        ctx.state["previous_live"] = str(ctx.app.live_deployment_id)
        # The target's environment (its configuration snapshot) comes back with it from the vault.
        host.promote(ctx.app_name, host_deployment_of(ctx, host, target_id))
    set_app(ctx, live_deployment_id=target_id, deployment_url=target.url, config=target.config_snapshot)
    return f"live deployment is {target_id} again (database migrations are not reversed)"


def undo_rollback(ctx: StepContext) -> None:
    previous = ctx.state.get("previous_live")
    if previous:
        with app_host(ctx) as host:
            host.promote(ctx.app_name, host_deployment_of(ctx, host, previous))
        set_app(ctx, live_deployment_id=previous)


def rollback(_: dict[str, Any]) -> list[Step]:
    return [Step("rollback", rollback_step, undo_rollback, timeout=120, retry=NO_RETRY)]


# -- destroy --------------------------------------------------------------------------------------------


def destroy_hosting(ctx: StepContext) -> str:
    with app_host(ctx) as host:
        host.destroy(ctx.app_name)
    return f"{ctx.app_name} and its deployments removed from {host.name}"


def destroy_domains(ctx: StepContext) -> str:
    from engine.domains import remove_app_domains

    removed = remove_app_domains(services_of(ctx).store, ctx.app_name, router=services_of(ctx).edge)
    return f"{len(removed)} domain(s) removed"


def destroy_database(ctx: StepContext) -> str:
    kind = _database_kind(ctx)
    engine = services_of(ctx)
    if kind is not None:
        with using_database(engine, kind, ctx.app_name) as provider:
            provider.destroy(ctx.app_name)
    engine.vault.delete(ctx.app_id, DB_URL)
    engine.vault.delete(ctx.app_id, DB_TOKEN)
    set_app(ctx, database_provider=None, database_id=None)
    return f"{kind} database and its role dropped" if kind else "no managed database"


def destroy_secrets(ctx: StepContext) -> str:
    count = services_of(ctx).vault.delete(ctx.app_id)
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
    database_kind(str(params.get("db")))
    return [Step("database", provision_database, undo_database, timeout=1800)]


def migrate_data_step(ctx: StepContext) -> str:
    from engine.dbpath.importer import import_preview

    engine = services_of(ctx)
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
