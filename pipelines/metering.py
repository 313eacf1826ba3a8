"""Metering jobs (run hourly by the engine's APScheduler): collect usage, ingest it, act on quotas.

Plain functions taking a ``Store`` and ``Settings``. Contract with the database providers, through
``deployed_apps.database_id``: for ``local-postgres`` the database name on ``LAUNCHDECK_POSTGRES_ADMIN_URL``; for
``local-libsql`` the database file (a path or ``file:`` URL, relative to the workspace); for ``turso`` the
database name; for ``neon`` the project id. A Worker (``hosting_provider = 'cloudflare'``) is metered by its
script name, ``deployed_apps.hosting_project_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.apps import app_id, metered_databases, metered_hosting, platform_app_ids
from engine.config import Settings
from engine.costs.ledger import IngestResult, ingest
from engine.costs.rollup import cost_month
from engine.costs.sources import (
    EdgeResourceSource,
    EdgeTrafficSource,
    PostgresUsageSource,
    SqliteFileUsageSource,
)
from engine.costs.sources.builds import LocalBuildSource, MobileCostSource
from engine.costs.sources.cloud import (
    CloudflareWorkersUsageSource,
    NeonUsageSource,
    TursoUsageSource,
    VercelUsageSource,
)
from engine.costs.tiers import QuotaAction, over_quota, record_action
from engine.costs.usage import Reading, StoreCounterState, UsageSource, previous_hour, registered_sources
from engine.errors import LaunchdeckError, TransientError
from engine.store import Store

log = logging.getLogger(__name__)


class EdgeCounters(Protocol):
    """The edge host as metering reads it; ``resource_hour(hour_start)`` (CPU and memory per app) is optional."""

    def usage_counters(self) -> dict[str, Any]: ...


def _workers(store: Store) -> dict[str, str]:
    """App id -> Worker script name, for the apps hosted on Cloudflare Workers."""
    return {a["app_id"]: a["project"] for a in metered_hosting(store, "cloudflare") if a["project"]}


def sqlite_path(database_id: str, workspace: Path) -> Path:
    path = Path(database_id.removeprefix("file://").removeprefix("file:"))
    return path if path.is_absolute() else workspace / path


def cloud_sources(store: Store, settings: Settings) -> list[UsageSource]:
    """Turso, Neon, Cloudflare Workers and Vercel usage for the apps on them, when their credentials are set."""
    found: list[UsageSource] = []
    if settings.turso_org_id and settings.turso_api_token:
        from engine.providers.turso import Turso

        turso = Turso(
            settings.turso_org_id,
            settings.turso_api_token.get_secret_value(),
            base_url=settings.turso_api_url,
        )
        found.append(TursoUsageSource(turso, lambda: metered_databases(store, "turso")))
    if settings.neon_api_key:
        from engine.providers.neon import Neon

        neon = Neon(settings.neon_api_key.get_secret_value(), base_url=settings.neon_api_url)
        found.append(NeonUsageSource(neon, lambda: metered_databases(store, "neon")))
    if settings.cloudflare_account_id and settings.cloudflare_api_token:
        from engine.providers.cloudflare_workers import CloudflareWorkers

        workers = CloudflareWorkers(
            settings.cloudflare_account_id,
            settings.cloudflare_api_token.get_secret_value(),
            base_url=settings.cloudflare_api_url,
        )
        found.append(
            CloudflareWorkersUsageSource(
                workers,
                lambda: _workers(store),
                lambda: dict.fromkeys(platform_app_ids(store), "cloudflare-platforms"),
            )
        )
    if settings.vercel_token:
        from engine.providers.vercel import Vercel

        vercel = Vercel(settings.vercel_token.get_secret_value(), base_url=settings.vercel_api_url)
        found.append(
            VercelUsageSource(
                vercel, lambda: {a["app_id"]: a["name"] for a in metered_hosting(store, "vercel")}
            )
        )
    return found


def local_sources(store: Store, settings: Settings, *, edge: EdgeCounters | None = None) -> list[UsageSource]:
    """The usage sources of this machine, the configured cloud ones, and every registered source."""
    state = StoreCounterState(store)
    sources: list[UsageSource] = [
        LocalBuildSource(store),
        MobileCostSource(store),
        PostgresUsageSource(
            settings.postgres_admin_url,
            lambda: metered_databases(store, "local-postgres"),
            state=state,
        ),
        SqliteFileUsageSource(
            lambda: {
                app: sqlite_path(database, settings.workspace)
                for app, database in metered_databases(store, "local-libsql").items()
            }
        ),
    ]
    if edge is not None:

        def app_id_for(name: str) -> str | None:
            return app_id(store, name)

        sources.append(EdgeTrafficSource(edge.usage_counters, app_id_for=app_id_for, state=state))
        resource_hour = getattr(edge, "resource_hour", None)
        if resource_hour is not None:
            sources.append(EdgeResourceSource(resource_hour, app_id_for=app_id_for))
    return sources + cloud_sources(store, settings) + registered_sources(store, settings)


@dataclass
class CollectResult:
    hour_start: datetime
    ingested: IngestResult
    errors: dict[str, str] = field(default_factory=dict)


def collect_hour(
    store: Store,
    settings: Settings,
    *,
    hour_start: datetime | None = None,
    sources: list[UsageSource] | None = None,
    edge: EdgeCounters | None = None,
) -> CollectResult:
    """Collect one hour from every source and append it to the ledger. A failing source does not stop the others;
    its error is reported and its hour can be collected again later (the ledger ignores what it already has)."""
    hour = hour_start or previous_hour()
    readings: list[Reading] = []
    errors: dict[str, str] = {}
    built_here = sources is None
    for source in sources if sources is not None else local_sources(store, settings, edge=edge):
        try:
            readings.extend(source.collect(hour))
        except (TransientError, LaunchdeckError) as exc:
            errors[source.name] = str(exc)
            log.warning("usage source %s failed for %s: %s", source.name, hour, exc)
        finally:
            close = getattr(source, "close", None)
            if built_here and close is not None:
                close()  # sources built for this hour (a cloud source's HTTP pool) end with it
    return CollectResult(hour, ingest(store, readings), errors)


Notify = Callable[[QuotaAction], None]
Suspend = Callable[[str, str], None]  # (app_id, reason)


def enforce_quotas(
    store: Store,
    *,
    month: date | None = None,
    notify: Notify | None = None,
    suspend: Suspend | None = None,
) -> list[QuotaAction]:
    """Run over-quota checks for the month; call the callbacks; record each action once it succeeded.

    Suspending is the lifecycle pipeline's: pass its entry point as ``suspend``. An action whose callback is
    missing is returned but not recorded, so it is offered again next hour.
    """
    month = month or datetime.now(UTC).date().replace(day=1)
    costs = cost_month(store, month)
    actions = over_quota(store, month, costs.usage, costs.apps, costs.app_cents())
    for action in actions:
        callback_done = False
        if action.action == "notify" and notify is not None:
            notify(action)
            callback_done = True
        elif action.action == "suspend" and suspend is not None:
            suspend(action.app_id, action.reason)
            callback_done = True
        if callback_done:
            record_action(store, month, action)
    return actions


def run_hourly(
    store: Store,
    settings: Settings,
    *,
    edge: EdgeCounters | None = None,
    notify: Notify | None = None,
    suspend: Suspend | None = None,
) -> dict[str, Any]:
    """The APScheduler job: collect the last hour, then enforce quotas for the current month."""
    collected = collect_hour(store, settings, edge=edge)
    actions = enforce_quotas(store, notify=notify, suspend=suspend)
    return {
        "hour": collected.hour_start.isoformat(),
        "added": collected.ingested.added,
        "duplicates": collected.ingested.duplicates,
        "errors": collected.errors,
        "actions": [a.__dict__ for a in actions],
    }
