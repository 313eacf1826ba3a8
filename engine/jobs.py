"""The engine's periodic jobs (APScheduler) and event hooks: metering, billing, month close, domain
and certificate polling, upload retention, and deploy-event webhooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger("launchdeck.jobs")


@dataclass
class PeriodicJob:
    name: str
    function: Callable[[Engine], Any]
    seconds: float
    run_at_start: bool = False  # also once as soon as the engine starts, not only after the first interval


# Deploy events as the webhook receiver sees them: (pipeline, runner event) -> event name.
EVENT_NAMES = {
    ("web", "started"): "deployment.started",
    ("web", "succeeded"): "deployment.live",
    ("web", "failed"): "deployment.failed",
    ("web", "cancelled"): "deployment.cancelled",
    ("rollback", "succeeded"): "deployment.rolled_back",
    ("suspend", "succeeded"): "app.suspended",
    ("resume", "succeeded"): "app.resumed",
    ("destroy", "succeeded"): "app.destroyed",
}


def metering(engine: Engine) -> dict[str, Any]:
    from pipelines.metering import run_hourly

    def suspend(app_id: str, reason: str) -> None:
        engine.runner.submit(app_id, "suspend", {"reason": reason}, requested_by="metering", lock_timeout=0)

    notify = None
    if engine.webhooks is not None:
        sender = engine.webhooks

        def notify(action: Any) -> None:
            sender.send("usage.over_quota", dict(action.__dict__))

    result = run_hourly(engine.store, engine.settings, edge=engine.edge, notify=notify, suspend=suspend)
    log.info("metering: %s", result)
    return result


def billing(engine: Engine) -> None:
    from pipelines.billing import close_previous_month, report_overages, sync_revenue

    sync_revenue(engine.store, engine.settings)
    report_overages(engine.store, engine.settings)
    close_previous_month(engine.store, engine.settings)


def domains(engine: Engine) -> None:
    from engine import domains as domain_checks

    domain_checks.check_pending(
        engine.store,
        resolvers=domain_checks.parse_resolvers(engine.settings.dns_resolvers),
        router=engine.edge,
        edge_hostname=engine.settings.edge_hostname,
    )


def uploads(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from engine import uploads as stored

    retention = timedelta(hours=engine.settings.upload_retention_hours)
    forgotten = stored.prune(
        engine.store, engine.settings.workspace, older_than=retention, now=datetime.now(UTC)
    )
    if forgotten:
        log.info("uploads: forgot %d older than %s", len(forgotten), retention)
    from engine.temporal.blobs import engine_blobs

    # Blobs workers sent or fetched: a blob in use is marked each time a worker asks for it.
    pruned = engine_blobs(engine.settings.workspace).prune(retention.total_seconds())
    if pruned:
        log.info("uploads: deleted %d worker blobs unused for %s", pruned, retention)


def console_caches(engine: Engine) -> None:
    """Keep the console's figures computed, so a first page visit does not wait for them."""
    from engine.api import analytics

    analytics.warm_caches_quietly(engine)


def install(engine: Engine) -> None:
    engine.extensions.jobs += [
        PeriodicJob("metering", metering, seconds=3600),
        PeriodicJob("billing", billing, seconds=6 * 3600),
        PeriodicJob("domains", domains, seconds=300),
        PeriodicJob("uploads", uploads, seconds=3600),
        PeriodicJob("console-caches", console_caches, seconds=60, run_at_start=True),
    ]
    if engine.webhooks is not None:
        sender = engine.webhooks

        def on_event(event: str, deployment: dict[str, Any]) -> None:
            name = EVENT_NAMES.get((str(deployment.get("pipeline")), event))
            if name:
                sender.send(name, {k: deployment.get(k) for k in ("id", "app_id", "status", "url", "error")})

        engine.runner.on_event(on_event)
