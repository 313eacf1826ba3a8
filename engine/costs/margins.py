"""Revenue and margins: what each user pays against what their apps cost, by app and tier, per month.

Revenue per user is Stripe's invoiced amount when Stripe revenue was recorded for the month, else the list
price of the user's tier. A user's revenue and Stripe's fee on it are split evenly over that user's apps
(largest remainder, so the parts add up). Idle cost belongs to no tier and is reported on its own line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.costs.model import payment_fee_cents
from engine.costs.money import largest_remainder
from engine.costs.rollup import MonthCosts, cost_month, parse_month
from engine.costs.sheets import Catalog, default_catalog
from engine.costs.tiers import TierTable, default_tiers
from engine.store import Store


@dataclass
class Margins:
    month: date
    revenue_source: str  # stripe | list_price
    users: list[dict[str, Any]]
    apps: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    idle_cents: int

    def least_profitable(self, n: int = 10) -> list[dict[str, Any]]:
        return sorted(self.apps, key=lambda a: (a["margin_cents"], a["app_id"]))[:n]

    def totals(self) -> dict[str, int]:
        revenue = sum(u["revenue_cents"] for u in self.users)
        fees = sum(u["payment_fee_cents"] for u in self.users)
        cost = sum(a["cost_cents"] for a in self.apps) + self.idle_cents
        return {
            "revenue_cents": revenue,
            "payment_fee_cents": fees,
            "cost_cents": cost,
            "margin_cents": revenue - fees - cost,
        }


def revenue_by_user(
    store: Store, month: date, costs: MonthCosts, tiers: TierTable
) -> tuple[str, dict[str, tuple[str, int]]]:
    """(source, user -> (tier, cents)) for the month."""
    recorded = store.fetchall(
        "SELECT user_id, tier, amount_cents, source FROM revenue WHERE month = ?", [month]
    )
    if recorded:
        source = "stripe" if any(r["source"] == "stripe" for r in recorded) else "list_price"
        by_user = {
            r["user_id"]: (r["tier"], int(r["amount_cents"])) for r in recorded if r["source"] == source
        }
        for info in costs.apps.values():
            by_user.setdefault(info.user_id, (info.tier, 0))
        return source, by_user
    by_user = {}
    for row in store.fetchall("SELECT user_id, tier FROM user_subscriptions WHERE status <> 'canceled'"):
        by_user[row["user_id"]] = (row["tier"], tiers.get(row["tier"]).price_cents)
    for info in costs.apps.values():
        if info.user_id not in by_user:
            tier = tiers.tiers.get(info.tier)
            by_user[info.user_id] = (info.tier, tier.price_cents if tier else 0)
    return "list_price", by_user


def margins_for(
    store: Store, costs: MonthCosts, *, catalog: Catalog | None = None, tiers: TierTable | None = None
) -> Margins:
    catalog = catalog or default_catalog()
    tiers = tiers or default_tiers()
    _, stripe_plan = catalog.plan_for("stripe", costs.month)
    source, by_user = revenue_by_user(store, costs.month, costs, tiers)
    apps_of: dict[str, list[str]] = defaultdict(list)
    for app_id in sorted(costs.apps):
        apps_of[costs.apps[app_id].user_id].append(app_id)
    app_cents = costs.app_cents()
    users: list[dict[str, Any]] = []
    apps: list[dict[str, Any]] = []
    for user_id, (tier, revenue) in sorted(by_user.items()):
        fee = payment_fee_cents(stripe_plan, revenue)
        users.append(
            {
                "user_id": user_id,
                "tier": tier,
                "revenue_cents": revenue,
                "payment_fee_cents": fee,
                "apps": len(apps_of.get(user_id, [])),
            }
        )
        owned = apps_of.get(user_id, [])
        if not owned:
            continue
        weights = [(app_id, 1) for app_id in owned]
        revenue_parts = largest_remainder(revenue, weights)
        fee_parts = largest_remainder(fee, weights)
        for app_id in owned:
            cost = app_cents.get(app_id, 0)
            share, fee_share = revenue_parts[app_id], fee_parts[app_id]
            apps.append(
                {
                    "app_id": app_id,
                    "name": costs.apps[app_id].name,
                    "user_id": user_id,
                    "tier": tier,
                    "revenue_cents": share,
                    "payment_fee_cents": fee_share,
                    "cost_cents": cost,
                    "margin_cents": share - fee_share - cost,
                    "railway_baseline_cents": costs.railway_cents.get(app_id, 0),
                    "railway_measured_cents": costs.railway_measured.get(app_id),
                }
            )
    per_tier: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for user in users:
        row = per_tier[user["tier"]]
        row["users"] += 1
        row["revenue_cents"] += user["revenue_cents"]
        row["payment_fee_cents"] += user["payment_fee_cents"]
    for app in apps:
        row = per_tier[app["tier"]]
        row["apps"] += 1
        row["cost_cents"] += app["cost_cents"]
        row["railway_baseline_cents"] += app["railway_baseline_cents"]
        row["railway_measured_cents"] += costs.railway_measured_or_reserved(app["app_id"])
        row["apps_measured"] += app["railway_measured_cents"] is not None
    tier_rows = []
    order = list(tiers.tiers)
    for tier_name, values in sorted(
        per_tier.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
    ):
        margin = values["revenue_cents"] - values["payment_fee_cents"] - values["cost_cents"]
        tier_rows.append(
            {
                "tier": tier_name,
                "users": values["users"],
                "apps": values["apps"],
                "revenue_cents": values["revenue_cents"],
                "payment_fee_cents": values["payment_fee_cents"],
                "cost_cents": values["cost_cents"],
                "margin_cents": margin,
                "margin_percent": round(100 * margin / values["revenue_cents"], 1)
                if values["revenue_cents"]
                else None,
                "railway_baseline_cents": values["railway_baseline_cents"],
                # Measured where the app ran here, the reserved size for the apps that did not.
                "railway_measured_cents": values["railway_measured_cents"],
                "apps_measured": values["apps_measured"],
            }
        )
    return Margins(costs.month, source, users, apps, tier_rows, costs.idle_cents())


def margins_month(store: Store, month: str | date, *, method: str | None = None) -> Margins:
    costs = cost_month(store, parse_month(month), method=method)
    return margins_for(store, costs)


def export_month(
    store: Store, month: str | date, directory: Path, *, method: str | None = None
) -> list[Path]:
    """Write the month's cost lines, per-app margins and per-tier margins as Parquet and CSV for finance."""
    costs = cost_month(store, parse_month(month), method=method)
    margins = margins_for(store, costs)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{costs.month:%Y-%m}"
    tables = {
        "cost_lines": pl.DataFrame(
            [
                {
                    "provider": line.provider,
                    "app_id": line.app_id,
                    "component": line.component,
                    "cents": line.cents,
                }
                for line in costs.lines()
            ],
            schema={"provider": pl.String, "app_id": pl.String, "component": pl.String, "cents": pl.Int64},
        ),
        "app_margins": pl.DataFrame(margins.apps) if margins.apps else pl.DataFrame(),
        "tier_margins": pl.DataFrame(margins.tiers) if margins.tiers else pl.DataFrame(),
    }
    written = []
    for name, frame in tables.items():
        parquet, csv = directory / f"{name}_{stem}.parquet", directory / f"{name}_{stem}.csv"
        frame.write_parquet(parquet)
        frame.write_csv(csv)
        written += [parquet, csv]
    return written
