"""Cloud usage sources: adapters from the provider clients' usage APIs to hourly ledger readings.

The clients (``engine.providers.turso``, ``engine.providers.neon``, ``engine.providers.cloudflare_workers``) own
the HTTP calls and error mapping; these adapters only ask for one hour and translate the answer. Which cloud
resource belongs to which app comes from ``deployed_apps``: for ``turso`` the database name, for ``neon`` the
project id, both in ``database_id``; for a Worker (``hosting_provider = 'cloudflare'``) the script name in
``hosting_project_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from engine.costs.usage import Reading


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


class Closable(Protocol):
    def close(self) -> None: ...


class TursoUsageClient(Closable, Protocol):
    def usage(self, name: str, *, start: str | None = None, end: str | None = None) -> dict[str, Any]: ...


class NeonUsageClient(Closable, Protocol):
    def consumption(
        self, project_ids: list[str], *, start: str, end: str, granularity: str = "daily"
    ) -> list[dict[str, Any]]: ...


class VercelChargesClient(Closable, Protocol):
    def charges(self, start: str, end: str) -> list[dict[str, Any]]: ...


class WorkersAnalyticsClient(Closable, Protocol):
    def invocations(self, scripts: list[str], start: str, end: str) -> dict[str, dict[str, int | None]]: ...


Databases = Mapping[str, str] | Callable[[], Mapping[str, str]]


def _resolve(databases: Databases) -> Mapping[str, str]:
    return databases() if callable(databases) else databases


class _ClientSource:
    """A source that holds a provider client: ``close`` releases its HTTP pool."""

    client: Closable

    def close(self) -> None:
        self.client.close()


class TursoUsageSource(_ClientSource):
    """Rows read and written and storage per database, from Turso's usage endpoint for the hour's window."""

    name = "turso-usage"

    client: TursoUsageClient

    def __init__(self, client: TursoUsageClient, databases: Databases) -> None:
        self.client = client
        self.databases = databases

    def collect(self, hour_start: datetime) -> list[Reading]:
        start, end = _iso(hour_start), _iso(hour_start + timedelta(hours=1))
        readings = []
        for app_id, name in sorted(_resolve(self.databases).items()):
            usage = self.client.usage(name, start=start, end=end).get("usage") or {}
            readings.append(
                Reading(
                    app_id=app_id,
                    provider="turso",
                    source=self.name,
                    hour_start=hour_start,
                    metrics={
                        "db_rows_read": usage.get("rows_read"),
                        "db_rows_written": usage.get("rows_written"),
                        "db_storage_bytes": usage.get("storage_bytes"),
                    },
                )
            )
        return readings


class NeonUsageSource(_ClientSource):
    """Compute (CU-seconds) and storage per project from Neon's hourly consumption history (Scale plans)."""

    name = "neon-consumption"

    client: NeonUsageClient

    def __init__(self, client: NeonUsageClient, projects: Databases) -> None:
        self.client = client
        self.projects = projects

    def collect(self, hour_start: datetime) -> list[Reading]:
        by_project = {project: app for app, project in _resolve(self.projects).items()}
        if not by_project:
            return []
        history = self.client.consumption(
            sorted(by_project),
            start=_iso(hour_start),
            end=_iso(hour_start + timedelta(hours=1)),
            granularity="hourly",
        )
        readings = []
        for project in history:
            app_id = by_project.get(project.get("project_id", ""))
            if app_id is None:
                continue
            frames = [f for period in project.get("periods", []) for f in period.get("consumption", [])]
            if not frames:
                continue
            compute = sum(int(f.get("compute_time_seconds") or 0) for f in frames)
            storage = max((int(f.get("synthetic_storage_size_bytes") or 0) for f in frames), default=0)
            readings.append(
                Reading(
                    app_id=app_id,
                    provider="neon",
                    source=self.name,
                    hour_start=hour_start,
                    metrics={"compute_ms": compute * 1000, "db_storage_bytes": storage},
                )
            )
        return readings


class CloudflareWorkersUsageSource(_ClientSource):
    """Requests and CPU time per Worker script from Cloudflare's GraphQL Analytics (``workersInvocationsAdaptive``),
    in the price sheet's metrics: ``requests`` and ``compute_ms`` (CPU milliseconds, from ``cpuTimeUs``)."""

    name = "cloudflare-analytics"

    client: WorkersAnalyticsClient

    def __init__(
        self,
        client: WorkersAnalyticsClient,
        scripts: Databases,
        providers: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.client = client
        self.scripts = scripts
        # app -> the sheet its Worker is billed on ("cloudflare-platforms" for a user Worker); default cloudflare
        self.providers = providers

    def collect(self, hour_start: datetime) -> list[Reading]:
        start, end = _iso(hour_start), _iso(hour_start + timedelta(hours=1))
        readings = []
        scripts = dict(sorted(_resolve(self.scripts).items()))
        if not scripts:
            return []
        by_script = self.client.invocations(sorted(set(scripts.values())), start, end)  # one query per chunk
        providers = self.providers()
        for app_id, script in scripts.items():
            totals = by_script[script]
            requests, cpu_us = totals.get("requests"), totals.get("cpuTimeUs")
            readings.append(
                Reading(
                    app_id=app_id,
                    provider=providers.get(app_id, "cloudflare"),
                    source=self.name,
                    hour_start=hour_start,
                    metrics={
                        "requests": None if requests is None else int(requests),
                        "compute_ms": None if cpu_us is None else (int(cpu_us) + 500) // 1000,
                    },
                )
            )
        return readings


# FOCUS charge (ServiceName, lower case) -> (ledger metric, factor from ConsumedQuantity in its ConsumedUnit)
VERCEL_SERVICES = {
    "edge requests": ("requests", 1),
    "fast data transfer": ("bandwidth_bytes", 1_000_000_000),  # GB
    "fluid active cpu": ("compute_ms", 3_600_000),  # CPU hours
    "active cpu": ("compute_ms", 3_600_000),
}


class VercelUsageSource(_ClientSource):
    """Requests, data transfer and Active CPU per project from Vercel's FOCUS billing charges.

    Vercel reports days, not hours: a day's usage is one reading at the day's first hour, collected from the
    day after it (any hour of it; collecting again adds nothing, the ledger's key is source, app and hour).
    ``projects`` maps app id to the Vercel project name (the app's name)."""

    name = "vercel-usage"

    client: VercelChargesClient

    def __init__(self, client: VercelChargesClient, projects: Databases) -> None:
        self.client = client
        self.projects = projects

    def collect(self, hour_start: datetime) -> list[Reading]:
        day = hour_start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        by_project = {project: app for app, project in _resolve(self.projects).items()}
        if not by_project:
            return []
        totals: dict[str, dict[str, int]] = {}
        for charge in self.client.charges(_iso(day), _iso(day + timedelta(days=1))):
            app_id = by_project.get(str(charge.get("ResourceName")))
            service = VERCEL_SERVICES.get(str(charge.get("ServiceName", "")).lower())
            if app_id is None or service is None:
                continue
            metric, factor = service
            quantity = round(float(charge.get("ConsumedQuantity") or 0) * factor)
            totals.setdefault(app_id, {})[metric] = totals.get(app_id, {}).get(metric, 0) + quantity
        return [
            Reading(app_id=app_id, provider="vercel", source=self.name, hour_start=day, metrics=metrics)
            for app_id, metrics in sorted(totals.items())
        ]
