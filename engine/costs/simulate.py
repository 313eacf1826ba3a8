"""What-if pricing: a synthetic fleet costed with the same model and sheets as real months.

``simulate`` builds one month of usage for ``apps`` apps (a share of them active, the rest idle), costs it on
one architecture, and adds revenue from a tier mix. The notebooks, ``launchdeck pricing simulate`` and the
console all call this function.

CPU time per request is what Workers, Workers for Platforms and Vercel Functions bill beside requests. Its
default is the fleet's measured median where the ledger has one (``measured_cpu_ms_per_request``), otherwise
``DOCUMENTED_CPU_MS_PER_REQUEST``: 7 ms, the average Cloudflare's Workers pricing page uses in its examples
(developers.cloudflare.com/workers/platform/pricing, examples 1 and 4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.costs.model import (
    AppUsage,
    cost_provider,
    payment_fee_cents,
    railway_baseline_cents,
    railway_measured_cents,
)
from engine.costs.money import largest_remainder, to_cents
from engine.costs.sheets import Catalog, default_catalog
from engine.costs.tiers import TierTable, default_tiers
from engine.errors import InputError
from engine.store import Store

ARCHITECTURES = {
    # name -> (database sheet, hosting sheet, shared database?)
    "turso+cloudflare": ("turso", "cloudflare", False),
    "turso+cloudflare-platforms": ("turso", "cloudflare-platforms", False),
    "neon+cloudflare": ("neon", "cloudflare", False),
    "shared-db+cloudflare": ("neon", "cloudflare", True),
    "turso+vercel": ("turso", "vercel", False),
    "railway": ("railway", None, False),  # the plan's baseline: every app reserves 0.5 vCPU and 0.5 GB
    "railway-measured": ("railway-measured", None, False),  # billed per minute of use, asleep when idle
}
HOURS_PER_MONTH = 730
DATABASE_METRICS = frozenset(
    {"db_rows_read", "db_rows_written", "db_storage_bytes_peak", "db_storage_bytes_avg", "db_active_hours"}
)
HOSTING_METRICS = frozenset({"requests", "bandwidth_bytes", "compute_ms", "scripts"})
DOCUMENTED_CPU_MS_PER_REQUEST = Decimal(7)
# What a Next.js example app's server holds and burns while up, measured by bench/measured_use.py on
# data/examples/shop (2026-12-07): 240 MB resident at its peak; idle, under the 10 ms tick of CPU accounting.
SERVER_MEMORY_MB = 240
SERVER_IDLE_CPU_MS_PER_HOUR = 0


@dataclass(frozen=True)
class Scenario:
    apps: int = 500
    active_share: float = 0.2
    reads_per_active_app: int = 1_000_000
    writes_per_active_app: int = 20_000
    requests_per_active_app: int = 30_000
    bytes_per_request: int = 30_000
    storage_bytes_per_app: int = 20_000_000
    active_hours_per_active_app: int = 120
    idle_requests_per_app: int = 0
    cpu_ms_per_request: Decimal = DOCUMENTED_CPU_MS_PER_REQUEST
    # A container platform billed by use (Railway, measured): a server is up in an active app's active hours
    # (asleep otherwise, as with app sleeping), holding this much memory and using this CPU while idle.
    server_memory_mb: int = SERVER_MEMORY_MB
    server_idle_cpu_ms_per_hour: int = SERVER_IDLE_CPU_MS_PER_HOUR
    tier_mix: dict[str, float] = field(
        default_factory=lambda: {"starter": 0.7, "pro": 0.25, "business": 0.05}
    )
    architecture: str = "turso+cloudflare"
    plans: dict[str, str] = field(default_factory=dict)  # provider -> plan, overriding providers.toml
    month: date = field(default_factory=lambda: date.today().replace(day=1))

    def validate(self) -> None:
        if self.apps < 1:
            raise InputError("apps must be at least 1")
        if not 0 <= self.active_share <= 1:
            raise InputError("active share must be between 0 and 1 (for example 0.2)")
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"architecture {self.architecture!r} is not one of: {', '.join(ARCHITECTURES)}")
        if abs(sum(self.tier_mix.values()) - 1) > 1e-6 or any(v < 0 for v in self.tier_mix.values()):
            raise InputError(f"the tier mix must be non-negative shares adding up to 1, got {self.tier_mix}")
        for name, value in asdict(self).items():
            if isinstance(value, int | Decimal) and value < 0:
                raise InputError(f"{name} must not be negative")
        if (Decimal(self.cpu_ms_per_request) * 1000) % 1:
            raise InputError("CPU time per request is counted to the microsecond: at most 3 decimals")


def _fleet_usage(s: Scenario) -> list[dict[str, int]]:
    active = round(s.apps * s.active_share)
    usage = []
    for index in range(s.apps):
        is_active = index < active
        requests = s.requests_per_active_app if is_active else s.idle_requests_per_app
        usage.append(
            {
                # CPU milliseconds the host bills; rounded per app, as a month of invocations is summed
                "compute_ms": int(
                    (requests * Decimal(s.cpu_ms_per_request)).to_integral_value(ROUND_HALF_UP)
                ),
                "scripts": 1,  # one Worker (or user Worker) per app
                "db_rows_read": s.reads_per_active_app if is_active else 0,
                "db_rows_written": s.writes_per_active_app if is_active else 0,
                "db_storage_bytes_peak": s.storage_bytes_per_app,
                "db_storage_bytes_avg": s.storage_bytes_per_app,
                "db_active_hours": s.active_hours_per_active_app if is_active else 0,
                "requests": requests,
                "bandwidth_bytes": requests * s.bytes_per_request,
            }
        )
    return usage


def simulate(
    scenario: Scenario, *, catalog: Catalog | None = None, tiers: TierTable | None = None
) -> dict[str, Any]:
    scenario.validate()
    catalog = catalog or default_catalog()
    tiers = tiers or default_tiers()
    database, hosting, shared = ARCHITECTURES[scenario.architecture]
    fleet = _fleet_usage(scenario)
    ids = [f"app-{i:06d}" for i in range(scenario.apps)]
    bills: dict[str, int] = {}
    per_app = dict.fromkeys(ids, 0)
    if database in ("railway", "railway-measured"):
        _, plan = catalog.plan_for("railway", scenario.month, scenario.plans.get("railway"))
        assert plan.baseline is not None
        for app_id, usage in zip(ids, fleet, strict=True):
            if database == "railway":
                per_app[app_id] = railway_baseline_cents(
                    plan.baseline, usage["bandwidth_bytes"], usage["db_storage_bytes_peak"]
                )
                continue
            awake = usage["db_active_hours"]  # the app's server is up in its active hours only
            cpu = usage["compute_ms"] + awake * scenario.server_idle_cpu_ms_per_hour
            per_app[app_id] = railway_measured_cents(
                plan.baseline,
                cpu,
                awake * scenario.server_memory_mb * 1_000_000,
                usage["bandwidth_bytes"],
                usage["db_storage_bytes_peak"],
            )
        # Hobby is a minimum usage commitment: the account pays at least its base fee (it covers that much usage).
        bills[database] = max(sum(per_app.values()), to_cents(plan.base_fee))
    else:
        for provider in (database, hosting):
            if provider is None:
                continue
            _, plan = catalog.plan_for(provider, scenario.month, scenario.plans.get(provider))
            # A database is billed on database metrics, a host on request metrics (both sheets may meter a
            # "compute_ms": Neon's are CU-milliseconds, a host's CPU milliseconds).
            wanted = DATABASE_METRICS if provider == database else HOSTING_METRICS
            usages = [{k: v for k, v in u.items() if k in wanted} for u in fleet]
            if shared and provider == database:
                # One multi-tenant database for the whole fleet: its compute runs whenever any app is active.
                any_active = scenario.active_share > 0 and scenario.active_hours_per_active_app > 0
                totals = {k: sum(u[k] for u in usages) for k in usages[0]}
                totals["db_active_hours"] = HOURS_PER_MONTH if any_active else 0
                bill = cost_provider(provider, plan, [AppUsage("shared", totals)], method="even")
                shares = largest_remainder(bill.bill_cents, [(a, 1) for a in ids]) if bill.bill_cents else {}
                for app_id in ids:
                    per_app[app_id] += shares.get(app_id, 0)
            else:
                bill = cost_provider(
                    provider, plan, [AppUsage(a, u) for a, u in zip(ids, usages, strict=True)]
                )
                for owner, cents in bill.by_app().items():
                    if owner is not None:
                        per_app[owner] += cents
            bills[provider] = bill.bill_cents
    total = sum(bills.values())
    _, stripe_plan = catalog.plan_for("stripe", scenario.month)
    revenue = fees = 0
    counts = largest_remainder(
        scenario.apps, [(t, round(share * 1_000_000)) for t, share in scenario.tier_mix.items()]
    )
    for tier_name, count in counts.items():
        price = tiers.get(tier_name).price_cents
        revenue += price * count
        fees += payment_fee_cents(stripe_plan, price) * count
    values = sorted(per_app.values())
    return {
        "scenario": {
            **asdict(scenario),
            "month": str(scenario.month),
            "cpu_ms_per_request": str(scenario.cpu_ms_per_request),
        },
        "provider_bills_cents": bills,
        "total_cents": total,
        "per_app_cents": {"mean": Decimal(total) / scenario.apps, "min": values[0], "max": values[-1]},
        "revenue_cents": revenue,
        "payment_fee_cents": fees,
        "margin_cents": revenue - fees - total,
        "margin_percent": round(100 * (revenue - fees - total) / revenue, 1) if revenue else None,
    }


def measured_cpu_ms_per_request(store: Store, *, months: int = 1) -> Decimal | None:
    """The median, over the apps that served requests in the last ``months`` months of the ledger, of each app's
    server CPU milliseconds per request (3 decimals). None: no app has both readings yet."""
    row = store.fetchone(
        "WITH recent AS (SELECT max(day) AS last FROM daily_usage),"
        " per_app AS (SELECT app_id, sum(cpu_ms) AS cpu, sum(requests) AS requests FROM daily_usage, recent"
        " WHERE day > recent.last - to_days(?) GROUP BY app_id)"
        " SELECT median(cpu / requests) AS median FROM per_app WHERE requests > 0 AND cpu IS NOT NULL",
        [30 * months],
    )
    if row is None or row["median"] is None:
        return None
    return Decimal(str(row["median"])).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
