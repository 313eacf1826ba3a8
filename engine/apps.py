"""Repository for apps (``deployed_apps``), deployments, step runs and the audit log."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from engine.auth import Principal
from engine.errors import NotFound
from engine.records import (
    App,
    Deployment,
    DeploymentSnapshot,
    DeploymentStatus,
    DeploymentSummary,
    LiveDeployment,
    LogLine,
    RecentDeployment,
    StepRun,
)
from engine.rules import check_app_name
from engine.store import Store


def audit(
    store: Store, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    store.execute(
        "INSERT INTO audit_log (actor, action, target, detail) VALUES (?, ?, ?, ?)",
        [actor, action, target, json.dumps(detail or {})],
    )


# The app's tier is its owner's subscription tier, read through (a subscription changed by Stripe or
# an operator shows at once); `free` without one.
APP_SELECT = (
    "SELECT a.* REPLACE (coalesce(s.tier, 'free') AS tier) FROM deployed_apps a"
    " LEFT JOIN user_subscriptions s ON s.user_id = a.user_id AND s.status <> 'canceled'"
)
APP_STATES = ("provisioning", "deploying", "active", "failed", "suspended", "destroyed")


def name_unavailable(name: str) -> NotFound:
    return NotFound(f"no app named {name!r} that this token can use; choose another app name")


def get_or_create_app(
    store: Store, name: str, *, owner: str, principal: Principal | None = None, check_slot: bool = False
) -> App:
    """The app named ``name``, created for ``owner`` when new. A name another tenant holds answers 404,
    as a missing app does. With ``check_slot``, a new app must fit the owner's tier; the count and the
    insert are one transaction, so concurrent first deploys cannot all squeeze in."""
    from engine.costs.tiers import check_app_slot, subscription_tier

    check_app_name(name)
    with store.transaction() as connection:
        row = connection.execute("SELECT user_id FROM deployed_apps WHERE name = ?", [name]).fetchone()
        if row is None:
            tier = check_app_slot(connection, owner) if check_slot else subscription_tier(connection, owner)
            connection.execute(
                "INSERT INTO deployed_apps (name, user_id, tier, status) VALUES (?, ?, ?, 'provisioning')",
                [name, owner, tier],
            )
        elif (principal is not None and not principal.may_see_owner(str(row[0]))) or (
            principal is None and row[0] != owner and owner != "operator"
        ):
            raise name_unavailable(name)
    return get_app(store, name)


def get_app(store: Store, name_or_id: str) -> App:
    row = store.fetchone(f"{APP_SELECT} WHERE a.name = ? OR CAST(a.id AS TEXT) = ?", [name_or_id, name_or_id])
    if row is None:
        raise NotFound(f"no app named {name_or_id!r}; `launchdeck apps` lists them")
    return App.model_validate(row)


def visible_to(principal: Principal, app: App) -> bool:
    return principal.may_see_owner(str(app.user_id))


def require_visible(principal: Principal, app: App) -> App:
    if not visible_to(principal, app):  # same answer as a missing app: don't reveal other owners' names
        raise NotFound(f"no app named {app.name!r}; `launchdeck apps` lists them")
    return app


def visible_app(store: Store, principal: Principal, name: str) -> App:
    """The app, or the same 404 whether it is missing or another tenant's."""
    try:
        app = get_app(store, name)
    except NotFound:
        raise NotFound(f"no app named {name!r}; `launchdeck apps` lists them") from None
    return require_visible(principal, app)


def owner_filter(principal: Principal) -> tuple[str, list[Any]]:
    """A WHERE clause (on ``deployed_apps a``) for the apps a principal may see."""
    if principal.role != "platform":
        return "TRUE", []
    if principal.users is not None:
        owners = [principal.owner_for(user) for user in principal.users]
        return f"a.user_id IN ({', '.join('?' for _ in owners)})", owners
    return "(a.user_id = ? OR starts_with(a.user_id, ?))", [principal.name, principal.name + "/"]


def list_apps(store: Store, principal: Principal, status: str | None = None) -> list[App]:
    clause, params = owner_filter(principal)
    if status is not None:
        clause += " AND a.status = ?"
        params.append(status)
    return [
        App.model_validate(row)
        for row in store.fetchall(f"{APP_SELECT} WHERE {clause} ORDER BY a.name", params)
    ]


def track_app_states(store: Store, forget_secrets: Any) -> Any:
    """A runner listener: an app that has never been live is ``deploying`` while its web deployment
    runs and ``failed`` when it fails, which frees its tier slot and its secrets. An app that is live
    keeps the state of what it serves."""

    def on_event(event: str, deployment: dict[str, Any]) -> None:
        if deployment.get("pipeline") != "web" or not deployment.get("app_id"):
            return
        app = store.fetchone(
            "SELECT status, live_deployment_id FROM deployed_apps WHERE id = ?", [deployment["app_id"]]
        )
        if app is None or app["live_deployment_id"] is not None:
            return
        if event == "started" and app["status"] in ("provisioning", "failed"):
            store.execute(
                "UPDATE deployed_apps SET status = 'deploying', updated_at = now() WHERE id = ?",
                [deployment["app_id"]],
            )
        elif event in ("failed", "cancelled") and app["status"] in ("provisioning", "deploying"):
            store.execute(
                "UPDATE deployed_apps SET status = 'failed', updated_at = now() WHERE id = ?",
                [deployment["app_id"]],
            )
            forget_secrets(str(deployment["app_id"]))

    return on_event


def deployment_status(store: Store, deployment_id: str, *, log_lines: int = 20) -> DeploymentStatus:
    row = store.fetchone("SELECT * FROM deployments WHERE CAST(id AS TEXT) = ?", [deployment_id])
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    deployment = Deployment.model_validate(row)
    rows = store.fetchall(
        "SELECT position, name, status, attempts, started_at, finished_at, detail, progress_done,"
        " progress_total, progress_unit, error FROM step_runs WHERE deployment_id = ? ORDER BY position",
        [deployment_id],
    )
    logs = store.fetchall(
        "SELECT logged_at, step, line FROM deployment_log WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
        [deployment_id, log_lines],
    )
    now = datetime.now(UTC)
    steps = []
    for step in rows:
        start, end = step["started_at"], step["finished_at"]
        seconds = (
            round(((end or now) - start).total_seconds(), 2)
            if start and step["status"] != "pending"
            else None
        )
        steps.append(StepRun.model_validate({**step, "seconds": seconds}))
    return DeploymentStatus(
        deployment=deployment,
        steps=steps,
        eta_seconds=estimate_remaining(store, deployment.pipeline, steps)
        if deployment.status in ("pending", "running")
        else 0,
        log=[LogLine.model_validate(line) for line in reversed(logs)],
    )


def estimate_remaining(store: Store, pipeline: str, steps: list[StepRun]) -> float | None:
    """Median duration of each unfinished step over this pipeline's recent successful runs, less the
    part of the running step already done. None when there is no history to go by."""
    history = store.fetchall(
        "SELECT s.name, epoch(s.finished_at) - epoch(s.started_at) AS seconds FROM step_runs s"
        " JOIN deployments d ON d.id = s.deployment_id"
        " WHERE d.pipeline = ? AND d.status = 'succeeded' AND s.status = 'succeeded'"
        " ORDER BY d.created_at DESC LIMIT 500",
        [pipeline],
    )
    by_step: dict[str, list[float]] = {}
    for row in history:
        by_step.setdefault(row["name"], []).append(float(row["seconds"]))
    if not by_step:
        return None
    remaining = 0.0
    for step in steps:
        if step.status in ("succeeded", "skipped", "undone", "failed", "cancelled"):
            continue
        typical = statistics.median(by_step.get(step.name, [0.0]))
        if step.status == "running":
            if step.progress_total:
                typical *= 1 - min(1.0, (step.progress_done or 0) / step.progress_total)
            else:
                typical = max(0.0, typical - (step.seconds or 0.0))
        remaining += typical
    return round(remaining, 1)


# -- questions the API and the service ask about apps, deployments and the audit log --------------------


def owner_of(store: Store, name: str) -> str | None:
    """The user an app name belongs to, or None when no app has it."""
    owner = store.scalar("SELECT user_id FROM deployed_apps WHERE name = ?", [name])
    return None if owner is None else str(owner)


def app_name(store: Store, app_id: str) -> str | None:
    name = store.scalar("SELECT name FROM deployed_apps WHERE id = ?", [app_id])
    return None if name is None else str(name)


def app_id(store: Store, name: str) -> str | None:
    found = store.scalar("SELECT id FROM deployed_apps WHERE name = ?", [name])
    return None if found is None else str(found)


def latest_deployments(store: Store, limit: int) -> list[RecentDeployment]:
    """The latest deployments across the fleet, newest first."""
    rows = store.fetchall(
        "SELECT d.id, a.name AS app, d.pipeline, d.status, d.created_at, d.finished_at, d.url"
        " FROM deployments d JOIN deployed_apps a ON a.id = d.app_id"
        " ORDER BY d.created_at DESC LIMIT ?",
        [limit],
    )
    return [RecentDeployment.model_validate(row) for row in rows]


def deployment_history(store: Store, app_id: str, limit: int = 50) -> list[DeploymentSummary]:
    """An app's deployments, newest first."""
    rows = store.fetchall(
        "SELECT id, pipeline, status, url, error, created_at, finished_at FROM deployments"
        " WHERE app_id = ? ORDER BY created_at DESC LIMIT ?",
        [app_id, limit],
    )
    return [DeploymentSummary.model_validate(row) for row in rows]


def forget_if_never_deployed(store: Store, app: App, forget_secrets: Callable[[str], Any]) -> None:
    """Delete an app (and its secrets) that a refused first request created: no deployment ever ran."""
    runs = store.scalar("SELECT count(*) FROM deployments WHERE app_id = ?", [app.id])
    if not runs and app.status == "provisioning":
        forget_secrets(str(app.id))
        store.execute("DELETE FROM deployed_apps WHERE id = ?", [app.id])


def live_app_count(store: Store, user_id: str, live_statuses: tuple[str, ...]) -> int:
    marks = ", ".join("?" for _ in live_statuses)
    return int(
        store.scalar(
            f"SELECT count(*) FROM deployed_apps WHERE user_id = ? AND status IN ({marks})",
            [user_id, *live_statuses],
        )
    )


def recent_audit(store: Store, limit: int) -> list[dict[str, Any]]:
    return store.fetchall("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", [limit])


def deployment_snapshot(store: Store, deployment_id: str) -> DeploymentSnapshot:
    """What a deployment recorded when it went live (its cloud deployment id); empty if nothing."""
    snapshot = store.scalar("SELECT config_snapshot FROM deployments WHERE id = ?", [deployment_id])
    return DeploymentSnapshot.model_validate_json(snapshot) if snapshot else DeploymentSnapshot()


def succeeded_web_deployments(store: Store, app_id: str) -> list[LiveDeployment]:
    """An app's web deployments that went live, newest first: what a rollback may return to."""
    rows = store.fetchall(
        "SELECT id, url, config_snapshot FROM deployments WHERE app_id = ? AND pipeline = 'web'"
        " AND status = 'succeeded' ORDER BY created_at DESC",
        [app_id],
    )
    return [LiveDeployment.model_validate(row) for row in rows]


# -- what metering reads: the apps it meters, by the provider they run on ---------------------------------

METERED_STATUSES = ("active", "suspended", "deploying")


def metered_databases(store: Store, provider: str) -> dict[str, str]:
    """App id -> database id (name, file or project) of the metered apps whose database ``provider`` holds."""
    marks = ", ".join("?" for _ in METERED_STATUSES)
    rows = store.fetchall(
        f"SELECT CAST(id AS TEXT) AS app_id, database_id FROM deployed_apps"
        f" WHERE database_provider = ? AND database_id IS NOT NULL AND status IN ({marks})",
        [provider, *METERED_STATUSES],
    )
    return {r["app_id"]: r["database_id"] for r in rows}


def metered_hosting(store: Store, host: str) -> list[dict[str, Any]]:
    """The metered apps hosted on ``host``: app_id, name and the host's project id (may be None)."""
    marks = ", ".join("?" for _ in METERED_STATUSES)
    return store.fetchall(
        f"SELECT CAST(id AS TEXT) AS app_id, name, hosting_project_id AS project FROM deployed_apps"
        f" WHERE hosting_provider = ? AND status IN ({marks})",
        [host, *METERED_STATUSES],
    )


def platform_app_ids(store: Store) -> list[str]:
    """The apps hosted as user Workers in the Workers for Platforms dispatch namespace."""
    rows = store.fetchall(
        "SELECT CAST(a.id AS TEXT) AS app_id FROM deployed_apps a JOIN cloudflare_hosting h ON h.app = a.name"
        " WHERE a.hosting_provider = 'cloudflare' AND h.mode = 'platforms'"
    )
    return [r["app_id"] for r in rows]


def database_kind(store: Store, app: str) -> str | None:
    """The kind of database the engine provisioned for ``app`` (its record, never its URL)."""
    kind = store.scalar("SELECT database_provider FROM deployed_apps WHERE name = ?", [app])
    return None if kind is None else str(kind)
