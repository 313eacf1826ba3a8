"""Read-only routes for the console's finance pages: usage series, price sheets, tiers, cost estimates,
costs, margins and the pricing what-if. Every figure comes from the cost engine (``engine.costs``);
this module only shapes it for JSON. Operators and finance may read; platform tokens may not."""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from fastapi import APIRouter, BackgroundTasks, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import AnyRole, EngineDep, Reader, visible_owner
from engine.api.models import (
    ERRORS,
    DeployEstimate,
    FleetPage,
    ProviderHeadroom,
    TierInfo,
    UsageReport,
    Whoami,
    WorkspaceSummary,
)
from engine.apps import latest_deployments
from engine.costs.ledger import usage_series
from engine.costs.margins import margins_for
from engine.costs.model import AppUsage, cost_provider
from engine.costs.rollup import MonthCosts, cost_month, parse_month
from engine.costs.sheets import default_catalog, list_versions
from engine.costs.simulate import (
    ARCHITECTURES,
    DOCUMENTED_CPU_MS_PER_REQUEST,
    Scenario,
    measured_cpu_ms_per_request,
    simulate,
)
from engine.costs.tiers import default_tiers
from engine.costs.usage import GAUGES, METRICS
from engine.errors import InputError
from engine.records import RecentDeployment
from engine.rules import DATABASE_KINDS, HOST_KINDS

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger("launchdeck.api.analytics")
router = APIRouter(tags=["analytics"], responses=ERRORS)
T = TypeVar("T")

DEMO_PREFIX = "demo-"


@router.get("/api/whoami", tags=["engine"], response_model=Whoami)
def whoami(engine: EngineDep, principal: AnyRole, background: BackgroundTasks) -> dict[str, str]:
    """Who the token belongs to. A console signing in will open the fleet and cost pages next, so their
    figures are computed now, after this answer is sent (cheap when nothing changed since the last time)."""
    if principal.role in ("operator", "finance"):
        background.add_task(warm_caches_quietly, engine)
    return {"role": principal.role, "principal": principal.name}


@router.get("/api/console/deployments", tags=["deployments"], response_model=list[RecentDeployment])
def recent_deployments(engine: EngineDep, principal: Reader, limit: int = 50) -> list[RecentDeployment]:
    """The latest deployments across the fleet, newest first (the Status page's picker)."""
    return latest_deployments(engine.store, min(max(limit, 1), 500))


FLEET_FIELDS = ("id", "name", "user_id", "tier", "status", "deployment_url", "custom_domain", "database_provider",
                "hosting_provider", "last_deployed_at")  # fmt: skip
FLEET_LIMIT = 100_000


@router.get(
    "/api/console/fleet",
    tags=["apps"],
    response_class=Response,
    responses={200: {"model": FleetPage, "description": "the fleet, as columns and rows"}},
)
def fleet(
    engine: EngineDep,
    principal: Reader,
    owner: str | None = None,
    contains: str | None = None,
    limit: int = Query(default=FLEET_LIMIT, ge=1, le=FLEET_LIMIT),
) -> Response:
    """The fleet for the console, with each app's cost in the latest month (None: no usage costed), as
    columns (``{"columns": [...], "rows": [[...], ...], "total": n}``), the compact form for thousands of apps.
    The whole fleet (what the Apps page opens with) is kept until the apps or their usage change."""
    if owner or contains:  # small answers, each for one question: not worth keeping
        body = fleet_body(engine, owner, contains, limit)
    else:
        body = cached(engine, ("fleet", limit), lambda: fleet_body(engine, None, None, limit))
    return Response(body, media_type="application/json")


def fleet_body(engine: Engine, owner: str | None, contains: str | None, limit: int) -> bytes:
    filters, params = [], []
    if owner:
        filters.append("user_id = ?")
        params.append(owner)
    if contains:
        filters.append("contains(name, ?)")
        params.append(contains)
    where = f" WHERE {' AND '.join(filters)}" if filters else ""
    with engine.store.connection() as connection:
        total = connection.execute(f"SELECT count(*) FROM deployed_apps{where}", params).fetchone()
        rows = connection.execute(
            f"SELECT {', '.join(FLEET_FIELDS)} FROM deployed_apps{where} ORDER BY name LIMIT ?",
            [*params, limit],
        ).fetchall()
    app_cents = month_costs(engine, latest_month(engine)).app_cents() if engine.store.scalar(
        "SELECT count(*) > 0 FROM usage_ledger") else {}  # fmt: skip
    body = {
        "columns": [*FLEET_FIELDS, "cost_cents"],
        "rows": [[*row, app_cents.get(str(row[0]))] for row in rows],
        "total": int(total[0]) if total else 0,
    }
    # json.dumps directly: FastAPI's generic encoder takes most of a second for 10,000 apps.
    return json.dumps(body, default=str).encode()


@router.get("/api/analytics/workspace", response_model=WorkspaceSummary)
def workspace(engine: EngineDep, principal: Reader) -> dict[str, Any]:
    """Fleet counts and whether demo data is present (the console labels it on every page)."""
    row = engine.store.fetchone(
        "SELECT count(*) AS apps, count(*) FILTER (WHERE starts_with(name, ?)) AS demo_apps,"
        " count(*) FILTER (WHERE status = 'active') AS active FROM deployed_apps",
        [DEMO_PREFIX],
    )
    span = engine.store.fetchone("SELECT min(hour_start) AS first, max(hour_start) AS last FROM usage_ledger")
    return {**(row or {}), "usage_from": span and span["first"], "usage_to": span and span["last"]}


@router.get("/api/analytics/tiers", response_model=dict[str, TierInfo])
def tiers(principal: Reader) -> dict[str, Any]:
    """The tiers with their prices, limits and monthly quotas, in order from free to enterprise."""
    return {name: tier.model_dump() for name, tier in default_tiers().tiers.items()}


# Costing an open month reads the whole month of the ledger (seconds for 10,000 apps). Results are kept until
# the data under them changes: the ledger, the fleet, the subscriptions, revenue or a month's closing. Checking
# that costs a few cheap aggregates, so a page only pays for a computation once per change.
CACHE_MAX_AGE_SECONDS = 900.0
_cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], float, Any]] = {}
_cache_lock = threading.Lock()
_computing: dict[tuple[Any, ...], threading.Lock] = {}


def data_version(engine: Engine) -> tuple[Any, ...]:
    """What the cached figures depend on. Apps and subscriptions by a checksum of every row's last update:
    an update committed late with an older timestamp than the newest changes it too, which a maximum misses."""
    row = engine.store.fetchone(
        "SELECT (SELECT count(*) FROM usage_ledger) AS readings, (SELECT max(recorded_at) FROM usage_ledger) AS read_at,"
        " (SELECT count(*) FROM deployed_apps) AS apps, (SELECT sum(hash(id, updated_at)) FROM deployed_apps) AS apps_at,"
        " (SELECT count(*) FROM user_subscriptions) AS users,"
        " (SELECT sum(hash(user_id, updated_at)) FROM user_subscriptions) AS users_at,"
        " (SELECT count(*) FROM closed_months) AS closed, (SELECT count(*) FROM revenue) AS revenue"
    )
    return tuple((row or {}).values())


def cached(engine: Engine, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or its earlier result if the data has not changed since. One computation per key at a
    time: a second request for the same key waits for the first instead of doing the work twice."""
    full_key = (id(engine), *key)
    with _cache_lock:
        lock = _computing.setdefault(full_key, threading.Lock())
    with lock:
        version = data_version(engine)
        hit = _cache.get(full_key)
        if hit and hit[0] == version and time.monotonic() - hit[1] < CACHE_MAX_AGE_SECONDS:
            value: T = hit[2]
            return value
        value = compute()
        _cache[full_key] = (version, time.monotonic(), value)
        return value


def month_costs(engine: Engine, month: date, method: str | None = None) -> MonthCosts:
    return cached(engine, ("costs", month, method), lambda: cost_month(engine.store, month, method=method))


# The pages' opening requests, as the console makes them: the Deploy estimate for the default tier, the
# Pricing page's three months and its least profitable apps, and the Usage page's 90 days of the fleet.
CONSOLE_LEAST_PROFITABLE = 15
_warmed_at: dict[int, datetime] = {}


def warm_caches(engine: Engine) -> None:
    """Compute what the console's pages open with, so the first person to open them does not wait.
    Cheap when nothing changed; meant to run as a periodic engine job (at start, then every minute)."""
    month = latest_month(engine)
    month_costs(engine, month)
    cached(engine, ("estimate", "starter", None), lambda: estimate_for(engine, "starter", None))
    cached(engine, ("history", 3), lambda: history_for(engine, 3))
    margins_payload(engine, month, CONSOLE_LEAST_PROFITABLE)
    start, end = usage_window(engine, 90)
    cached(engine, ("fleet-usage", start, end, None), lambda: fleet_usage(engine, start, end, None))
    cached(engine, ("fleet", FLEET_LIMIT), lambda: fleet_body(engine, None, None, FLEET_LIMIT))
    _warmed_at[id(engine)] = datetime.now(UTC)


@router.get("/api/console/caches", tags=["engine"])
def caches(engine: EngineDep, principal: Reader) -> dict[str, Any]:
    """Whether the console's figures have been computed since the engine started (``warmed_at``: when they
    last were). Until the first warm-up ends, a page's first visit computes what it shows itself."""
    warmed = _warmed_at.get(id(engine))
    return {"warm": warmed is not None, "warmed_at": warmed.isoformat() if warmed else None}


def warm_caches_quietly(engine: Engine) -> None:
    try:
        warm_caches(engine)
    except Exception:  # a warm-up is an optimisation: the page computes what it needs if this failed
        log.exception("warming the console's caches failed")


def latest_month(engine: Engine) -> date:
    """The month of the newest usage reading (this month when the ledger is empty)."""
    last = engine.store.scalar("SELECT max(hour_start) FROM usage_ledger")
    return (last.date() if last else date.today()).replace(day=1)


def month_or_latest(engine: Engine, month: str | None) -> date:
    return parse_month(month) if month else latest_month(engine)


def typical_usage(costs: MonthCosts, tier: str, provider: str) -> dict[str, int]:
    """Median monthly usage of one provider by the apps of ``tier`` (every app when the tier has none)."""
    samples = [
        per_provider[provider]
        for app_id, per_provider in costs.usage.items()
        if provider in per_provider and app_id in costs.apps and costs.apps[app_id].tier == tier
    ] or [per_provider[provider] for per_provider in costs.usage.values() if provider in per_provider]
    metrics = {name for sample in samples for name in sample}
    return {m: int(statistics.median([s.get(m) or 0 for s in samples])) for m in sorted(metrics)}


@router.get("/api/analytics/estimate", response_model=DeployEstimate)
def estimate(
    engine: EngineDep,
    principal: Reader,
    tier: str = "starter",
    storage_bytes: int | None = Query(default=None, ge=0),
) -> dict[str, Any]:
    """Estimated monthly cost of one more app on each database and hosting choice, from the price sheets
    in force: the app's share of the provider's bill when it joins the apps already there, every one of
    them using the median monthly usage of the apps of its tier in the latest month of the ledger."""
    default_tiers().get(tier)
    return cached(
        engine, ("estimate", tier, storage_bytes), lambda: estimate_for(engine, tier, storage_bytes)
    )


def estimate_for(engine: Engine, tier: str, storage_bytes: int | None) -> dict[str, Any]:
    catalog = default_catalog()
    costs = month_costs(engine, latest_month(engine))
    sharing: dict[str, int] = {}
    for info in costs.apps.values():
        for provider in info.providers:
            sharing[provider] = sharing.get(provider, 0) + 1
    choices: dict[str, dict[str, Any]] = {}
    for choice in (*DATABASE_KINDS, *HOST_KINDS):
        costed_as = catalog.costed_as(choice)
        if costed_as is None:
            choices[choice] = {"costed_as": None, "plan": None, "plan_base_cents": 0, "app_cents": 0}
            continue
        version, plan = catalog.plan_for(costed_as, costs.month)
        usage = typical_usage(costs, tier, costed_as)
        if storage_bytes is not None and any(m.metric.startswith("db_storage") for m in plan.meters):
            usage["db_storage_bytes_peak"] = max(usage.get("db_storage_bytes_peak", 0), storage_bytes)
        peers = sharing.get(costed_as, 0)
        usages = [AppUsage(f"app-{i:06d}", usage) for i in range(peers + 1)]
        bill = cost_provider(costed_as, plan, usages, method=catalog.allocation)
        choices[choice] = {
            "costed_as": costed_as,
            "plan": plan.name,
            "sheet_effective_from": version.effective_from.isoformat(),
            "plan_base_cents": bill.components.get("base_fee", 0),
            "apps_sharing": peers + 1,
            "app_cents": bill.by_app().get(usages[-1].app_id, 0),
            "typical_usage": usage,
            "source": version.source,
        }
    return {"month": costs.month.isoformat(), "tier": tier, "choices": choices}


@router.get("/api/analytics/costs")
def costs(
    engine: EngineDep,
    principal: Reader,
    month: str | None = None,
    by: Literal["app", "provider", "tier"] = "app",
    method: str | None = None,
) -> dict[str, Any]:
    """The month's costs in cents (the latest month with usage when none is named), by app, provider or tier."""
    chosen = month_or_latest(engine, month)
    return cached(engine, ("costs-by", chosen, by, method), lambda: costs_by(engine, chosen, by, method))


def costs_by(engine: Engine, month: date, by: str, method: str | None) -> dict[str, Any]:
    result = month_costs(engine, month, method)
    rows = result.by(by)
    if by == "app":  # the per-app usage detail is the Usage page's business; keep this answer small
        rows = [{k: v for k, v in row.items() if k != "usage"} for row in rows]
    return {
        "month": result.month.isoformat(),
        "closed": result.closed,
        "method": result.method,
        "total_cents": result.total_cents(),
        "idle_cents": result.idle_cents(),
        "rows": rows,
    }


def margins_payload(engine: Engine, month: date, least: int = 20) -> dict[str, Any]:
    return cached(engine, ("margins", month, least), lambda: margins_uncached(engine, month, least))


def margins_uncached(engine: Engine, month: date, least: int) -> dict[str, Any]:
    result = margins_for(engine.store, month_costs(engine, month))
    return {
        "month": month.isoformat(),
        "revenue_source": result.revenue_source,
        "tiers": result.tiers,
        "totals": result.totals(),
        "idle_cents": result.idle_cents,
        "railway_baseline_cents": sum(a["railway_baseline_cents"] for a in result.apps),
        # measured where the app ran on this machine, the reserved size for the others (apps_measured says how many)
        "railway_measured_cents": sum(t["railway_measured_cents"] for t in result.tiers),
        "apps_measured": sum(t["apps_measured"] for t in result.tiers),
        "apps": len(result.apps),
        "least_profitable": result.least_profitable(least),
    }


@router.get("/api/analytics/margins")
def margins(
    engine: EngineDep, principal: Reader, month: str | None = None, least: int = 20
) -> dict[str, Any]:
    """Revenue, cost and margin per tier for a month, the least profitable apps and the Railway baseline."""
    return margins_payload(engine, month_or_latest(engine, month), min(max(least, 1), 200))


@router.get("/api/analytics/margins/history")
def margin_history(
    engine: EngineDep, principal: Reader, months: int = Query(default=3, ge=1, le=24)
) -> dict[str, Any]:
    """Per-tier margins for each of the last ``months`` months that have usage, oldest first."""
    return cached(engine, ("history", months), lambda: history_for(engine, months))


def history_for(engine: Engine, months: int) -> dict[str, Any]:
    first = engine.store.scalar("SELECT min(hour_start) FROM usage_ledger")
    newest = latest_month(engine)
    found: list[date] = []
    current = newest
    while len(found) < months and (first is None or current >= first.date().replace(day=1)):
        found.append(current)
        current = (current - timedelta(days=1)).replace(day=1)
        if first is None:
            break
    return {"months": [margins_payload(engine, m, least=1) for m in reversed(found)]}


class SimulateRequest(BaseModel):
    """The what-if of ``launchdeck pricing simulate``; every field defaults to ``engine.costs.simulate.Scenario``."""

    model_config = ConfigDict(extra="forbid")

    apps: int = Field(default=Scenario.apps, ge=1, le=1_000_000)
    active_share: float = Field(default=Scenario.active_share, ge=0, le=1)
    reads_per_active_app: int = Field(default=Scenario.reads_per_active_app, ge=0)
    writes_per_active_app: int = Field(default=Scenario.writes_per_active_app, ge=0)
    requests_per_active_app: int = Field(default=Scenario.requests_per_active_app, ge=0)
    bytes_per_request: int = Field(default=Scenario.bytes_per_request, ge=0)
    storage_bytes_per_app: int = Field(default=Scenario.storage_bytes_per_app, ge=0)
    active_hours_per_active_app: int = Field(default=Scenario.active_hours_per_active_app, ge=0, le=744)
    idle_requests_per_app: int = Field(default=Scenario.idle_requests_per_app, ge=0)
    # None: the fleet's measured median CPU time per request, else the documented figure
    cpu_ms_per_request: Decimal | None = Field(default=None, ge=0, le=300_000, decimal_places=3)
    tier_mix: dict[str, float] | None = None
    architecture: str = Scenario.architecture
    plans: dict[str, str] = Field(default_factory=dict)


@router.post("/api/analytics/simulate")
def simulate_pricing(body: SimulateRequest, engine: EngineDep, principal: Reader) -> dict[str, Any]:
    """Cost a synthetic fleet on one architecture with the sheets in force, and its margin from a tier mix.
    CPU time per request defaults to the fleet's measured median (else a documented figure); the answer's
    ``cpu_ms_per_request_basis`` says which."""
    fields = body.model_dump(exclude_none=True)
    basis = "given"
    if body.cpu_ms_per_request is None:
        measured = measured_cpu_ms_per_request(engine.store)
        fields["cpu_ms_per_request"] = measured if measured is not None else DOCUMENTED_CPU_MS_PER_REQUEST
        basis = "the fleet's measured median" if measured is not None else "documented"
    return {**simulate(Scenario(**fields)), "cpu_ms_per_request_basis": basis}


@router.get("/api/analytics/cpu-per-request")
def cpu_per_request(engine: EngineDep, principal: Reader) -> dict[str, Any]:
    """The fleet's measured median CPU milliseconds per request (None: not measured yet) and the documented
    figure simulate falls back to (the Cost model page's slider starts at whichever applies)."""
    measured = measured_cpu_ms_per_request(engine.store)
    return {
        "measured_median": None if measured is None else str(measured),
        "documented": str(DOCUMENTED_CPU_MS_PER_REQUEST),
    }


@router.get("/api/analytics/simulate/architectures")
def architectures(principal: Reader) -> list[str]:
    return list(ARCHITECTURES)


def usage_window(engine: Engine, days: int) -> tuple[datetime, datetime]:
    """The last ``days`` days up to the newest reading (or now, when the ledger is empty)."""
    last = engine.store.scalar("SELECT max(hour_start) FROM usage_ledger")
    end = (last or datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)) + timedelta(
        hours=1
    )
    return end - timedelta(days=days), end


@router.get("/api/analytics/usage")
def usage(
    engine: EngineDep,
    principal: Reader,
    app: str | None = None,
    provider: str | None = None,
    days: int = Query(default=90, ge=1, le=400),
) -> dict[str, Any]:
    """Daily usage: for one app (``app``: name or id), else summed per provider for the fleet."""
    start, end = usage_window(engine, days)
    if app:
        found = engine.store.fetchone(
            "SELECT CAST(id AS TEXT) AS id, name, tier FROM deployed_apps WHERE name = ? OR CAST(id AS TEXT) = ?",
            [app, app],
        )
        if found is None:
            raise InputError(f"no app named {app!r}")
        rows = usage_series(engine.store, start=start, end=end, app_id=found["id"], grain="day")
        return {"app": found["name"], "tier": found["tier"], "grain": "day", "metrics": METRICS, "rows": rows}
    return cached(
        engine, ("fleet-usage", start, end, provider), lambda: fleet_usage(engine, start, end, provider)
    )


def fleet_usage(engine: Engine, start: datetime, end: datetime, provider: str | None) -> dict[str, Any]:
    """Daily usage summed per provider. Storage and memory are gauges: the fleet's in an hour is the sum of
    the apps' readings in that hour, and a day's figure is the largest hourly one."""
    where = "hour_start >= ? AND hour_start < ?" + (" AND provider = ?" if provider else "")
    params: list[Any] = [start, end, *([provider] if provider else [])]
    counters = [m for m in METRICS if m not in GAUGES]
    gauges = ", ".join(f"max({m}) AS {m}" for m in METRICS if m in GAUGES)
    rows = engine.store.fetchall(
        f"SELECT provider, date_trunc('day', hour_start) AS period, {', '.join(f'sum({m}) AS {m}' for m in counters)},"
        f" {gauges} FROM ("
        f" SELECT provider, hour_start, {', '.join(f'sum({m}) AS {m}' for m in METRICS)}"
        f" FROM usage_ledger WHERE {where} GROUP BY provider, hour_start"
        ") GROUP BY ALL ORDER BY period, provider",
        params,
    )
    return {"app": None, "tier": None, "grain": "day", "metrics": METRICS, "rows": rows}


@router.get("/api/analytics/price-sheets")
def price_sheets(engine: EngineDep, principal: Reader) -> list[dict[str, Any]]:
    """Every price sheet version, with the one in force this month marked."""
    catalog = default_catalog()
    month = date.today().replace(day=1)
    recorded = {(r["provider"], r["effective_from"]): r for r in list_versions(engine.store)}
    result = []
    for sheet in catalog.sheets.values():
        in_force = (
            sheet.version_for(month).effective_from if sheet.versions[0].effective_from <= month else None
        )
        for version in sheet.versions:
            plan = version.plans.get(catalog.account.get(sheet.provider, sheet.default_plan))
            result.append(
                {
                    "provider": sheet.provider,
                    "display_name": sheet.display_name,
                    "kind": sheet.kind,
                    "effective_from": version.effective_from.isoformat(),
                    "in_force": version.effective_from == in_force,
                    "account_plan": plan.name if plan else None,
                    "base_fee": str(plan.base_fee) if plan else None,
                    "source": version.source,
                    "differs_from_plan": version.differs_from_plan,
                    "recorded": (sheet.provider, version.effective_from) in recorded,
                    "content_hash": version.content_hash,
                }
            )
    return result


USAGE_STATS = (
    "requests",
    "bandwidth_bytes",
    "db_rows_read",
    "db_rows_written",
    "db_storage_bytes_peak",
    "cpu_ms",
)


@router.get("/api/usage/apps", tags=["usage"], response_model=UsageReport)
def app_usage_stats(
    engine: EngineDep, principal: AnyRole, month: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """The plan's UsageStats panel: each app's usage and cost in a month (the latest with usage when none is
    named), against its tier's monthly quotas. A platform token sees its own apps only; operators and finance
    see every app, or one owner's."""
    if owner is not None:
        visible_owner(principal, owner)
    chosen = month_or_latest(engine, month)
    result = month_costs(engine, chosen)
    tiers = default_tiers()
    app_cents = result.app_cents()
    apps = []
    for app_id, info in sorted(result.apps.items(), key=lambda kv: kv[1].name):
        if not principal.may_see_owner(info.user_id) or (owner is not None and info.user_id != owner):
            continue
        totals: dict[str, int] = {}
        for metrics in result.usage.get(app_id, {}).values():
            for name in USAGE_STATS:
                value = metrics.get(name)
                if value is not None:
                    totals[name] = (
                        max(totals.get(name, 0), value)
                        if name.endswith("_peak")
                        else totals.get(name, 0) + value
                    )
        tier = tiers.tiers.get(info.tier)
        quotas = {
            name: {
                "used": totals.get(name, 0),
                "limit": limit,
                "percent": round(100 * totals.get(name, 0) / limit, 1),
            }
            for name, limit in (tier.quotas.items() if tier else [])
            if limit > 0
        }
        apps.append(
            {
                "app": info.name,
                "tier": info.tier,
                "cost_cents": app_cents.get(app_id, 0),
                "usage": totals,
                "quotas": quotas,
                "railway_reserved_cents": result.railway_cents.get(app_id, 0),
                "railway_measured_cents": result.railway_measured.get(app_id),
            }
        )
    return {"month": chosen.isoformat(), "closed": result.closed, "owner": owner, "apps": apps}


@router.get("/api/providers/headroom", tags=["apps"], response_model=list[ProviderHeadroom])
def provider_headroom(engine: EngineDep, principal: Reader) -> list[dict[str, Any]]:
    """Each provider account's plan limit for one more app (Turso databases, Neon projects, Workers, user
    Workers), what Launchdeck's apps use, what is left, and what lifts it."""
    from engine.costs.limits import headroom

    return [row.as_dict() for row in headroom(engine.store)]
