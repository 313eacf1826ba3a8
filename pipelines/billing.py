"""Billing jobs (run daily by the engine's APScheduler): Stripe revenue, overage meter events, month close.

Without Stripe configured these do nothing Stripe-side: revenue is each tier's list price.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from engine.billing.stripe_billing import StripeBilling
from engine.config import Settings
from engine.costs.closing import close_month
from engine.costs.rollup import cost_month, is_closed
from engine.costs.tiers import default_tiers
from engine.store import Store


def _this_month(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).date().replace(day=1)


def previous_month(now: datetime | None = None) -> date:
    first = _this_month(now)
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def sync_revenue(store: Store, settings: Settings, *, month: date | None = None) -> dict[str, Any]:
    billing = StripeBilling.from_settings(settings)
    month = month or _this_month()
    if billing is None:
        return {"month": str(month), "source": "list_price", "users": 0}
    billing.ensure_tier_prices(store)
    return {"month": str(month), "source": "stripe", "users": billing.sync_revenue(store, month)}


def report_overages(store: Store, settings: Settings, *, month: date | None = None) -> dict[str, Any]:
    """Send paid-tier usage over quota to Stripe as meter events (only the increase since the last report)."""
    billing = StripeBilling.from_settings(settings)
    month = month or _this_month()
    if billing is None:
        return {"month": str(month), "sent": 0, "stripe": False}
    billing.ensure_meter()
    tiers = default_tiers()
    costs = cost_month(store, month)
    sent = 0
    for app_id, info in costs.apps.items():
        tier = tiers.tiers.get(info.tier)
        if tier is None or tier.price_cents == 0:
            continue
        totals: dict[str, int] = {}
        for metrics in costs.usage.get(app_id, {}).values():
            for name, value in metrics.items():
                if value is not None and name in tier.quotas:
                    totals[name] = totals.get(name, 0) + value
        for metric, limit in tier.quotas.items():
            if totals.get(metric, 0) > limit:
                sent += billing.report_overage(
                    store, month, info.user_id, app_id, metric, totals[metric] - limit
                )
    return {"month": str(month), "sent": sent, "stripe": True}


def close_previous_month(
    store: Store, settings: Settings, *, now: datetime | None = None, grace_days: int = 2
) -> dict[str, Any]:
    """Freeze last month once ``grace_days`` have passed since it ended: late readings (a provider's usage API
    lags by hours) are accepted until then, refused after."""
    now = now or datetime.now(UTC)
    month = previous_month(now)
    if is_closed(store, month):
        return {"month": str(month), "closed": False, "reason": "already closed"}
    if (now.date() - _this_month(now)).days < grace_days:
        return {
            "month": str(month),
            "closed": False,
            "reason": f"waiting {grace_days} days for late readings",
        }
    sync_revenue(store, settings, month=month)
    costs = close_month(store, month, actor="scheduler", now=now)
    return {"month": str(month), "closed": True, "total_cents": costs.total_cents()}
