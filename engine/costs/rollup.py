"""Cost a month: aggregate the ledger per app and provider, price it with the sheets in force, allocate.

An open month is computed from the ledger on demand; a closed month is read back from the frozen tables
written when it was closed (``engine.costs.closing.close_month``), whatever happened to the sheets or the ledger since.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from engine.costs.model import (
    AppUsage,
    CostLine,
    ProviderBill,
    cost_provider,
    railway_baseline_cents,
    railway_measured_cents,
)
from engine.costs.sheets import Catalog, default_catalog, record_versions
from engine.errors import InputError
from engine.store import Store

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
RAILWAY_MEASURED = "measured"
RAILWAY_RESERVED_ONLY = "reserved size only: the app did not run on this machine this month"

# Monthly aggregates the price sheets can meter, from the daily rollup the ingest maintains.
MONTHLY_SQL = """
SELECT app_id, provider,
       sum(db_rows_read) AS db_rows_read,
       sum(db_rows_written) AS db_rows_written,
       max(db_storage_bytes_max) AS db_storage_bytes_peak,
       CAST(round(sum(db_storage_bytes_sum) / nullif(sum(db_storage_bytes_count), 0)) AS BIGINT)
           AS db_storage_bytes_avg,
       sum(db_active_hours) AS db_active_hours,
       sum(requests) AS requests,
       sum(bandwidth_bytes) AS bandwidth_bytes,
       sum(compute_ms) AS compute_ms,
       sum(cpu_ms) AS cpu_ms,
       max(memory_peak_bytes) AS memory_peak_bytes,
       sum(memory_byte_hours) AS memory_byte_hours,
       sum(build_ms) AS build_ms,
       sum(builds_android) AS builds_android,
       sum(builds_ios) AS builds_ios,
       sum(build_minutes) AS build_minutes,
       sum(fee_cents) AS fee_cents
FROM daily_usage
WHERE day >= ? AND day < ?
GROUP BY app_id, provider
"""
MONTHLY_METRICS = (
    "db_rows_read",
    "db_rows_written",
    "db_storage_bytes_peak",
    "db_storage_bytes_avg",
    "db_active_hours",
    "requests",
    "bandwidth_bytes",
    "compute_ms",
    "cpu_ms",
    "memory_peak_bytes",
    "memory_byte_hours",  # the sum of hourly memory averages: GB-hours x 1e9
    "build_ms",
    "builds_android",
    "builds_ios",
    "build_minutes",
    "fee_cents",
)
PEAKS = {"db_storage_bytes_peak", "db_storage_bytes_avg", "memory_peak_bytes"}


def parse_month(text: str | date) -> date:
    if isinstance(text, date):
        return text.replace(day=1)
    match = MONTH.match(text)
    if not match:
        raise InputError(f"month {text!r} is not YYYY-MM (for example 2026-11)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_end(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


@dataclass
class AppInfo:
    app_id: str
    name: str
    user_id: str
    tier: str
    providers: set[str] = field(default_factory=set)


@dataclass
class MonthCosts:
    month: date
    method: str
    closed: bool
    bills: list[ProviderBill]
    apps: dict[str, AppInfo]
    usage: dict[str, dict[str, dict[str, int | None]]]  # app -> provider -> metric -> value
    railway_cents: dict[str, int]  # the reserved-size baseline (0.5 vCPU, 0.5 GB always on)
    # The measured baseline: what each app used here, at Railway's per-minute prices. None: the app never
    # ran on this machine in the month, so only the reserved size can be said.
    railway_measured: dict[str, int | None] = field(default_factory=dict)

    def railway_measured_or_reserved(self, app_id: str) -> int:
        measured = self.railway_measured.get(app_id)
        return self.railway_cents.get(app_id, 0) if measured is None else measured

    def lines(self) -> list[CostLine]:
        return [line for bill in self.bills for line in bill.lines]

    def app_cents(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for line in self.lines():
            if line.app_id is not None:
                totals[line.app_id] += line.cents
        return dict(totals)

    def idle_cents(self) -> int:
        return sum(line.cents for line in self.lines() if line.app_id is None)

    def total_cents(self) -> int:
        return sum(bill.bill_cents for bill in self.bills)

    def by(self, dimension: str) -> list[dict[str, Any]]:
        """Rows for ``launchdeck costs --by app|provider|tier`` and the console's cost pages."""
        if dimension == "provider":
            return [
                {
                    "provider": b.provider,
                    "plan": b.plan,
                    "sheet_effective_from": b.effective_from,
                    "bill_cents": b.bill_cents,
                    "idle_cents": b.by_app().get(None, 0),
                    "apps": len({line.app_id for line in b.lines if line.app_id}),
                    "components": b.components,
                }
                for b in sorted(self.bills, key=lambda b: b.provider)
            ]
        if dimension == "app":
            per_app: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for line in self.lines():
                per_app[line.app_id][line.provider] += line.cents
            rows = []
            for app_id in sorted(self.apps):
                info = self.apps[app_id]
                providers = dict(per_app.get(app_id, {}))
                rows.append(
                    {
                        "app_id": app_id,
                        "name": info.name,
                        "user_id": info.user_id,
                        "tier": info.tier,
                        "cost_cents": sum(providers.values()),
                        "by_provider": providers,
                        "railway_baseline_cents": self.railway_cents.get(app_id, 0),
                        "railway_measured_cents": self.railway_measured.get(app_id),
                        "railway_basis": RAILWAY_MEASURED
                        if self.railway_measured.get(app_id) is not None
                        else RAILWAY_RESERVED_ONLY,
                        "usage": self.usage.get(app_id, {}),
                    }
                )
            if None in per_app:
                idle = dict(per_app[None])
                rows.append(
                    {"app_id": None, "name": "(idle)", "cost_cents": sum(idle.values()), "by_provider": idle}
                )
            return rows
        if dimension == "tier":
            per_tier: dict[str, dict[str, int]] = defaultdict(
                lambda: {
                    "apps": 0,
                    "cost_cents": 0,
                    "railway_baseline_cents": 0,
                    "railway_measured_cents": 0,
                    "apps_measured": 0,
                }
            )
            app_cents = self.app_cents()
            for app_id, info in self.apps.items():
                row = per_tier[info.tier]
                row["apps"] += 1
                row["cost_cents"] += app_cents.get(app_id, 0)
                row["railway_baseline_cents"] += self.railway_cents.get(app_id, 0)
                row["railway_measured_cents"] += self.railway_measured_or_reserved(app_id)
                row["apps_measured"] += self.railway_measured.get(app_id) is not None
            rows = [{"tier": tier, **values} for tier, values in sorted(per_tier.items())]
            rows.append(
                {
                    "tier": "(idle)",
                    "apps": 0,
                    "cost_cents": self.idle_cents(),
                    "railway_baseline_cents": 0,
                    "railway_measured_cents": 0,
                    "apps_measured": 0,
                }
            )
            return rows
        raise InputError(f"--by {dimension!r} is not one of: app, provider, tier")


def app_providers(app: dict[str, Any], catalog: Catalog) -> set[str]:
    """The price sheets an app's configuration puts it on."""
    found: set[str] = set()
    for provider in (app.get("database_provider"), app.get("hosting_provider")):
        mapped = catalog.costed_as(provider)
        if mapped in catalog.sheets:
            found.add(mapped)
    platform = app.get("platform") or "web"
    if platform in ("ios", "android"):
        found.add("eas")
    if platform in ("ios", "macos"):
        found.add("apple")
    if platform == "android":
        found.add("google")
    return found


def fleet(store: Store, month: date, catalog: Catalog) -> dict[str, AppInfo]:
    """Apps that were live during the month, with the tier their owner is on."""
    rows = store.fetchall(
        "SELECT CAST(a.id AS TEXT) AS app_id, a.name, a.user_id, coalesce(s.tier, a.tier) AS tier,"
        " a.database_provider, a.platform,"
        # an app hosted as a user Worker in the Workers for Platforms namespace is billed on that plan
        " CASE WHEN a.hosting_provider = 'cloudflare' AND h.mode = 'platforms' THEN 'cloudflare-platforms'"
        " ELSE a.hosting_provider END AS hosting_provider"
        " FROM deployed_apps a LEFT JOIN user_subscriptions s ON s.user_id = a.user_id"
        " LEFT JOIN cloudflare_hosting h ON h.app = a.name"
        " WHERE a.created_at < ? AND (a.status <> 'destroyed' OR a.updated_at >= ?)"
        # An app whose first deploy failed (or has not finished) never ran: it carries no cost and no revenue.
        " AND NOT (a.status IN ('provisioning', 'failed') AND a.live_deployment_id IS NULL)",
        [month_end(month), month],
    )
    return {
        row["app_id"]: AppInfo(
            row["app_id"], row["name"], row["user_id"], row["tier"], app_providers(row, catalog)
        )
        for row in rows
    }


def monthly_usage(store: Store, month: date, catalog: Catalog) -> dict[str, dict[str, dict[str, int | None]]]:
    """app -> costed provider -> monthly metric -> value (None: not measured)."""
    with store.connection() as connection:
        cursor = connection.execute(MONTHLY_SQL, [month, month_end(month)])
        rows = cursor.fetchall()
    usage: dict[str, dict[str, dict[str, int | None]]] = defaultdict(dict)
    for app_id, provider, *values in rows:
        costed = catalog.costed_as(provider)
        if costed is None:
            continue
        metrics = dict(zip(MONTHLY_METRICS, (None if v is None else int(v) for v in values), strict=True))
        existing = usage[app_id].get(costed)
        if existing is None:
            usage[app_id][costed] = metrics
            continue
        for (
            name,
            value,
        ) in metrics.items():  # two sources for one provider: add counters, keep the larger gauge
            if value is None:
                continue
            old = existing.get(name)
            existing[name] = value if old is None else max(old, value) if name in PEAKS else old + value
    return dict(usage)


def is_closed(store: Store, month: date) -> bool:
    return int(store.scalar("SELECT count(*) FROM closed_months WHERE month = ?", [month])) > 0


def cost_month(
    store: Store, month: str | date, *, method: str | None = None, catalog: Catalog | None = None
) -> MonthCosts:
    """The month's costs: frozen if the month is closed, else computed now from the ledger."""
    month = parse_month(month)
    catalog = catalog or default_catalog()
    if is_closed(store, month):
        return _frozen(store, month)
    method = method or catalog.allocation
    record_versions(store, catalog)
    apps = fleet(store, month, catalog)
    usage = monthly_usage(store, month, catalog)
    members: dict[str, set[str]] = defaultdict(set)
    for app_id, info in apps.items():
        for provider in info.providers:
            members[provider].add(app_id)
    for app_id, per_provider in usage.items():
        for provider in per_provider:
            if provider in catalog.sheets:
                members[provider].add(app_id)
    bills = []
    for provider in sorted(members):
        sheet = catalog.sheet(provider)
        if sheet.kind in ("baseline", "payments"):
            continue
        version, plan = catalog.plan_for(provider, month)
        usages = [
            AppUsage(app_id, usage.get(app_id, {}).get(provider, {})) for app_id in sorted(members[provider])
        ]
        if plan.meter("scripts") is not None:  # a per-script charge: one script per app live in the month
            usages = [AppUsage(u.app_id, {**u.metrics, "scripts": int(u.app_id in apps)}) for u in usages]
        bills.append(
            cost_provider(provider, plan, usages, method=method, effective_from=str(version.effective_from))
        )
    railway, measured_railway = railway_baselines(catalog, month, apps, usage)
    return MonthCosts(month, method, False, bills, apps, usage, railway, measured_railway)


def railway_baselines(
    catalog: Catalog,
    month: date,
    apps: dict[str, AppInfo],
    usage: dict[str, dict[str, dict[str, int | None]]],
) -> tuple[dict[str, int], dict[str, int | None]]:
    """Each app's Railway baseline at the reserved size, and at what it measured (None: not measured)."""
    _, plan = catalog.plan_for("railway", month)
    reserved: dict[str, int] = {}
    measured: dict[str, int | None] = {}
    baseline = plan.baseline
    if baseline is None:
        return reserved, measured
    for app_id in apps:
        metrics = list(usage.get(app_id, {}).values())
        bandwidth = sum(m.get("bandwidth_bytes") or 0 for m in metrics)
        storage = max((m.get("db_storage_bytes_peak") or 0 for m in metrics), default=0)
        reserved[app_id] = railway_baseline_cents(baseline, bandwidth, storage)
        memory = [m.get("memory_byte_hours") for m in metrics if m.get("memory_byte_hours") is not None]
        if not memory or baseline.vcpu_minute is None:
            measured[app_id] = None
            continue
        cpu = sum(m.get("cpu_ms") or 0 for m in metrics)
        measured[app_id] = railway_measured_cents(
            baseline, cpu, sum(v or 0 for v in memory), bandwidth, storage
        )
    return reserved, measured


def _frozen(store: Store, month: date) -> MonthCosts:
    closed = store.fetchone("SELECT method FROM closed_months WHERE month = ?", [month])
    assert closed is not None
    rows = store.fetchall(
        "SELECT provider, plan, sheet_effective_from, app_id, component, cents FROM monthly_cost_lines"
        " WHERE month = ? ORDER BY provider, app_id NULLS LAST, component",
        [month],
    )
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_provider[row["provider"]].append(row)
    bills = []
    for provider, lines in by_provider.items():
        components: dict[str, int] = defaultdict(int)
        for line in lines:
            components[line["component"]] += line["cents"]
        bills.append(
            ProviderBill(
                provider=provider,
                plan=lines[0]["plan"],
                effective_from=str(lines[0]["sheet_effective_from"]),
                method=closed["method"],
                bill_cents=sum(components.values()),
                components=dict(components),
                lines=tuple(
                    CostLine(provider, line["app_id"], line["component"], line["cents"]) for line in lines
                ),
                usage_totals={},
            )
        )
    apps: dict[str, AppInfo] = {}
    railway: dict[str, int] = {}
    measured: dict[str, int | None] = {}
    for row in store.fetchall(
        "SELECT m.app_id, coalesce(a.name, m.app_id) AS name, m.user_id, m.tier, m.railway_baseline_cents,"
        " m.railway_measured_cents"
        " FROM monthly_margins m LEFT JOIN deployed_apps a ON CAST(a.id AS TEXT) = m.app_id WHERE m.month = ?",
        [month],
    ):
        apps[row["app_id"]] = AppInfo(row["app_id"], row["name"], row["user_id"], row["tier"])
        railway[row["app_id"]] = row["railway_baseline_cents"]
        measured[row["app_id"]] = row["railway_measured_cents"]
    usage: dict[str, dict[str, dict[str, int | None]]] = defaultdict(dict)
    for row in store.fetchall(
        "SELECT app_id, provider, metrics FROM monthly_app_usage WHERE month = ?", [month]
    ):
        usage[row["app_id"]][row["provider"]] = json.loads(row["metrics"])
    return MonthCosts(month, closed["method"], True, bills, apps, dict(usage), railway, measured)


def deployment_usage_frame(costs: MonthCosts, catalog: Catalog) -> pl.DataFrame:
    """The plan's ``deployment_usage`` rows for a closed month: each app's usage summed over its providers and
    its cost split into database, hosting and total (cents), as the plan's table has them."""
    kinds = {provider: sheet.kind for provider, sheet in catalog.sheets.items()}
    cents: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in costs.lines():
        if line.app_id is not None:
            cents[line.app_id][kinds.get(line.provider, "other")] += line.cents
            cents[line.app_id]["total"] += line.cents
    rows = []
    for app_id in sorted(costs.apps):
        metrics = list(costs.usage.get(app_id, {}).values())

        def total(name: str, metrics: list[dict[str, int | None]] = metrics) -> int:
            return sum(m.get(name) or 0 for m in metrics)

        rows.append(
            {
                "app_id": app_id,
                "db_reads": total("db_rows_read"),
                "db_writes": total("db_rows_written"),
                "db_storage_bytes": max((m.get("db_storage_bytes_peak") or 0 for m in metrics), default=0),
                "requests": total("requests"),
                "bandwidth_bytes": total("bandwidth_bytes"),
                "compute_ms": total("compute_ms"),
                "database_cost_cents": cents[app_id]["database"],
                "hosting_cost_cents": cents[app_id]["hosting"],
                "total_cost_cents": cents[app_id]["total"],
            }
        )
    schema = {"app_id": pl.String} | {
        name: pl.Int64
        for name in (
            "db_reads",
            "db_writes",
            "db_storage_bytes",
            "requests",
            "bandwidth_bytes",
            "compute_ms",
            "database_cost_cents",
            "hosting_cost_cents",
            "total_cost_cents",
        )
    }
    return pl.DataFrame(rows, schema=schema)


DAILY_SQL = """
SELECT app_id, provider, day, db_rows_read, db_rows_written,
       CAST(round(db_storage_bytes_sum / nullif(db_storage_bytes_count, 0)) AS BIGINT) AS db_storage_bytes_peak,
       CAST(round(db_storage_bytes_sum / nullif(db_storage_bytes_count, 0)) AS BIGINT) AS db_storage_bytes_avg,
       db_active_hours, requests, bandwidth_bytes, compute_ms, cpu_ms, memory_peak_bytes, memory_byte_hours,
       build_ms, builds_android, builds_ios, build_minutes, fee_cents
FROM daily_usage
WHERE day >= ? AND day < ? {app_filter}
"""


def daily_costs(
    store: Store, month: str | date, *, app_id: str | None = None, method: str | None = None
) -> list[dict[str, Any]]:
    """Each app's monthly cost lines spread over the days of the month, in integer cents.

    A usage line is spread by that metric's daily usage, a fixed fee evenly over the month's days; each spread
    is largest-remainder rounded, so an app's days add up exactly to its month.
    """
    from engine.costs.money import largest_remainder

    costs = cost_month(store, month, method=method)
    catalog = default_catalog()
    first, end = costs.month, month_end(costs.month)
    days = [date.fromordinal(d) for d in range(first.toordinal(), end.toordinal())]
    filter_sql = "AND app_id = ?" if app_id else ""
    params: list[Any] = [first, end] + ([app_id] if app_id else [])
    with store.connection() as connection:
        rows = connection.execute(DAILY_SQL.format(app_filter=filter_sql), params).fetchall()
    weights: dict[tuple[str, str, str], dict[date, int]] = defaultdict(dict)
    for app, provider, day, *values in rows:
        costed = catalog.costed_as(provider)
        if costed is None:
            continue
        for name, value in zip(MONTHLY_METRICS, values, strict=True):
            if value:
                key = (app, costed, name)
                weights[key][day] = weights[key].get(day, 0) + int(value)
    totals: dict[tuple[str, date], int] = defaultdict(int)
    for line in costs.lines():
        if line.app_id is None or (app_id is not None and line.app_id != app_id):
            continue
        by_day = weights.get((line.app_id, line.provider, line.component))
        spread = [(d, by_day.get(d, 0)) for d in days] if by_day else [(d, 1) for d in days]
        for day, cents in largest_remainder(line.cents, spread).items():
            totals[(line.app_id, day)] += cents
    return [
        {"app_id": app, "day": day, "cost_cents": cents}
        for (app, day), cents in sorted(totals.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
