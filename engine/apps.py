"""Repository for apps (``deployed_apps``), deployments, step runs and the audit log."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from typing import Any

from engine.auth import Principal
from engine.edge.names import check_app_name
from engine.errors import Forbidden, NotFound
from engine.store import Store


def validate_app_name(name: str) -> str:
    """An app name becomes a host name (`<app>.localhost`): the edge host's rule is the one rule."""
    return check_app_name(name)


def audit(
    store: Store, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    store.execute(
        "INSERT INTO audit_log (actor, action, target, detail) VALUES (?, ?, ?, ?)",
        [actor, action, target, json.dumps(detail or {})],
    )


def get_or_create_app(store: Store, name: str, *, owner: str, tier: str = "starter") -> dict[str, Any]:
    validate_app_name(name)
    with store.transaction() as connection:
        row = connection.execute("SELECT id FROM deployed_apps WHERE name = ?", [name]).fetchone()
        if row is None:
            connection.execute(
                "INSERT INTO deployed_apps (name, user_id, tier, status) VALUES (?, ?, ?, 'provisioning')",
                [name, owner, tier],
            )
    app = get_app(store, name)
    if app["user_id"] != owner and owner != "operator":
        raise Forbidden(f"app {name!r} belongs to another owner")
    return app


def get_app(store: Store, name_or_id: str) -> dict[str, Any]:
    row = store.fetchone(
        "SELECT * FROM deployed_apps WHERE name = ? OR CAST(id AS TEXT) = ?", [name_or_id, name_or_id]
    )
    if row is None:
        raise NotFound(f"no app named {name_or_id!r}; `launchdeck apps` lists them")
    return row


def visible_to(principal: Principal, app: dict[str, Any]) -> bool:
    return principal.role != "platform" or app["user_id"] == principal.name


def require_visible(principal: Principal, app: dict[str, Any]) -> dict[str, Any]:
    if not visible_to(principal, app):  # same answer as a missing app: don't reveal other owners' names
        raise NotFound(f"no app named {app['name']!r}; `launchdeck apps` lists them")
    return app


def list_apps(store: Store, principal: Principal) -> list[dict[str, Any]]:
    if principal.role == "platform":
        return store.fetchall("SELECT * FROM deployed_apps WHERE user_id = ? ORDER BY name", [principal.name])
    return store.fetchall("SELECT * FROM deployed_apps ORDER BY name")


def deployment_status(store: Store, deployment_id: str, *, log_lines: int = 20) -> dict[str, Any]:
    deployment = store.fetchone("SELECT * FROM deployments WHERE CAST(id AS TEXT) = ?", [deployment_id])
    if deployment is None:
        raise NotFound(f"no deployment {deployment_id}")
    steps = store.fetchall(
        "SELECT position, name, status, attempts, started_at, finished_at, detail, progress_done,"
        " progress_total, progress_unit, error FROM step_runs WHERE deployment_id = ? ORDER BY position",
        [deployment_id],
    )
    logs = store.fetchall(
        "SELECT logged_at, step, line FROM deployment_log WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
        [deployment_id, log_lines],
    )
    now = datetime.now(UTC)
    for step in steps:
        start, end = step["started_at"], step["finished_at"]
        step["seconds"] = (
            round(((end or now) - start).total_seconds(), 2)
            if start and step["status"] != "pending"
            else None
        )
    return {
        "deployment": deployment,
        "steps": steps,
        "eta_seconds": estimate_remaining(store, deployment, steps)
        if deployment["status"] in ("pending", "running")
        else 0,
        "log": list(reversed(logs)),
    }


def estimate_remaining(store: Store, deployment: dict[str, Any], steps: list[dict[str, Any]]) -> float | None:
    """Median duration of each unfinished step over this pipeline's recent successful runs, less the
    part of the running step already done. None when there is no history to go by."""
    history = store.fetchall(
        "SELECT s.name, epoch(s.finished_at) - epoch(s.started_at) AS seconds FROM step_runs s"
        " JOIN deployments d ON d.id = s.deployment_id"
        " WHERE d.pipeline = ? AND d.status = 'succeeded' AND s.status = 'succeeded'"
        " ORDER BY d.created_at DESC LIMIT 500",
        [deployment["pipeline"]],
    )
    by_step: dict[str, list[float]] = {}
    for row in history:
        by_step.setdefault(row["name"], []).append(float(row["seconds"]))
    if not by_step:
        return None
    remaining = 0.0
    for step in steps:
        if step["status"] in ("succeeded", "skipped", "undone", "failed", "cancelled"):
            continue
        typical = statistics.median(by_step.get(step["name"], [0.0]))
        if step["status"] == "running":
            if step["progress_total"]:
                typical *= 1 - min(1.0, (step["progress_done"] or 0) / step["progress_total"])
            else:
                typical = max(0.0, typical - (step["seconds"] or 0.0))
        remaining += typical
    return round(remaining, 1)
