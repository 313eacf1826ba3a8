"""Closing a month: the use case above costing (``rollup``) and margins (``margins``), which freezes both.

A closed month's costs, usage and margins are written once here and read back by ``rollup.cost_month``
whatever happens to the sheets or the ledger later.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import polars as pl

from engine.costs.margins import margins_for
from engine.costs.rollup import (
    MonthCosts,
    cost_month,
    deployment_usage_frame,
    is_closed,
    month_end,
    parse_month,
)
from engine.costs.sheets import Catalog, default_catalog
from engine.errors import Conflict, InputError
from engine.store import Store


def close_month(
    store: Store,
    month: str | date,
    *,
    actor: str = "operator",
    method: str | None = None,
    catalog: Catalog | None = None,
    now: datetime | None = None,
) -> MonthCosts:
    """Freeze a finished month: its costs and margins are written once and never recomputed."""
    month = parse_month(month)
    today = (now or datetime.now()).date()
    if month_end(month) > today:
        raise InputError(f"{month:%Y-%m} has not ended yet; a month can be closed from {month_end(month)}")
    if is_closed(store, month):
        raise Conflict(f"{month:%Y-%m} is already closed")
    costs = cost_month(store, month, method=method, catalog=catalog)
    margins = margins_for(store, costs, catalog=catalog)
    bills = {bill.provider: bill for bill in costs.bills}
    lines = costs.lines()
    cost_lines = pl.DataFrame(
        {
            "provider": [line.provider for line in lines],
            "plan": [bills[line.provider].plan for line in lines],
            "sheet_effective_from": [bills[line.provider].effective_from for line in lines],
            "app_id": [line.app_id for line in lines],
            "component": [line.component for line in lines],
            "cents": [line.cents for line in lines],
        },
        schema={
            "provider": pl.String,
            "plan": pl.String,
            "sheet_effective_from": pl.String,
            "app_id": pl.String,
            "component": pl.String,
            "cents": pl.Int64,
        },
    )
    app_usage = pl.DataFrame(
        [
            (app_id, provider, json.dumps(metrics))
            for app_id, per_provider in costs.usage.items()
            for provider, metrics in per_provider.items()
        ],
        schema={"app_id": pl.String, "provider": pl.String, "metrics": pl.String},
        orient="row",
    )
    margin_columns = (
        "app_id",
        "user_id",
        "tier",
        "revenue_cents",
        "payment_fee_cents",
        "cost_cents",
        "railway_baseline_cents",
        "railway_measured_cents",
    )
    app_margins = pl.DataFrame(
        [[r[c] for c in margin_columns] for r in margins.apps],
        schema={c: pl.String if c in ("app_id", "user_id", "tier") else pl.Int64 for c in margin_columns},
        orient="row",
    )
    # Freeze list-price revenue too, so a later price change in tiers.toml leaves the month alone.
    list_revenue = pl.DataFrame(
        [
            (u["user_id"], u["tier"], u["revenue_cents"])
            for u in margins.users
            if margins.revenue_source == "list_price"
        ],
        schema={"user_id": pl.String, "tier": pl.String, "amount_cents": pl.Int64},
        orient="row",
    )
    # One set-based statement per table, each frame read once through Arrow.
    statements = {
        "close_cost_lines": "INSERT INTO monthly_cost_lines SELECT $month, provider, plan,"
        " CAST(sheet_effective_from AS DATE), app_id, component, cents FROM close_cost_lines",
        "close_app_usage": "INSERT INTO monthly_app_usage SELECT $month, app_id, provider, metrics FROM close_app_usage",
        "close_margins": f"INSERT INTO monthly_margins SELECT $month, {', '.join(margin_columns)} FROM close_margins",
        "close_revenue": "INSERT OR IGNORE INTO revenue (month, user_id, tier, amount_cents, source)"
        " SELECT $month, user_id, tier, amount_cents, 'list_price' FROM close_revenue",
        "close_deployment_usage": "INSERT INTO deployment_usage (deployed_app_id, period_start, period_end,"
        " db_reads, db_writes, db_storage_bytes, requests, bandwidth_bytes, compute_ms, database_cost_cents,"
        " hosting_cost_cents, total_cost_cents) SELECT CAST(app_id AS UUID), $month, $end, db_reads, db_writes,"
        " db_storage_bytes, requests, bandwidth_bytes, compute_ms, database_cost_cents, hosting_cost_cents,"
        " total_cost_cents FROM close_deployment_usage",
    }
    frames = {
        "close_cost_lines": cost_lines,
        "close_app_usage": app_usage,
        "close_margins": app_margins,
        "close_revenue": list_revenue,
        "close_deployment_usage": deployment_usage_frame(costs, catalog or default_catalog()),
    }
    with store.transaction() as connection:
        try:
            for name, frame in frames.items():
                connection.register(name, frame.to_arrow())
                params: dict[str, Any] = {"month": month}
                if "$end" in statements[name]:
                    params["end"] = month_end(month)
                connection.execute(statements[name], params)
        finally:
            for name in frames:
                connection.unregister(name)
        connection.execute(
            "INSERT INTO closed_months (month, closed_by, method) VALUES (?, ?, ?)",
            [month, actor, costs.method],
        )
    return cost_month(store, month, catalog=catalog)
