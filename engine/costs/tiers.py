"""User tiers from ``data/tiers.toml`` and their enforcement.

A user's tier is their subscription's (``user_subscriptions``; ``free`` without one or once canceled):
callers never choose it. Operators may override it (``override_tier``, audited).

``check_deploy_allowed`` is the deploy preflight: it refuses a deploy that would go over the owner's tier and
names the limit and the tier that lifts it. ``over_quota`` is what hourly metering runs: it finds apps over
their tier's monthly quotas (and users over their spend cap) and returns what to do; the caller's callbacks
notify and suspend (suspending is the lifecycle pipeline's job, not this module's).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.config import PROJECT_ROOT
from engine.errors import InputError, TierLimitExceeded
from engine.records import App
from engine.store import Store

TIERS_FILE = PROJECT_ROOT / "data" / "tiers.toml"
UNLIMITED = -1
LIVE_STATUSES = ("provisioning", "deploying", "active", "suspended")


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    price_cents: int = Field(ge=0)
    custom_price: bool = False
    max_deployed_apps: int = Field(ge=UNLIMITED)
    max_custom_domains: int = Field(ge=UNLIMITED)
    allowed_database_providers: list[str]
    over_quota: str = Field(pattern="^(notify|suspend)$")
    quotas: dict[str, int] = {}
    note: str | None = None

    def allows_count(self, limit: str, count: int) -> bool:
        maximum: int = getattr(self, limit)
        return maximum == UNLIMITED or count <= maximum


@dataclass(frozen=True)
class TierTable:
    tiers: dict[str, Tier]  # in file order: cheapest first

    def get(self, name: str) -> Tier:
        try:
            return self.tiers[name]
        except KeyError:
            raise InputError(f"unknown tier {name!r}; tiers: {', '.join(self.tiers)}") from None

    def lifting(self, current: str, accepts: Callable[[Tier], bool]) -> Tier | None:
        """The first tier after ``current`` (in file order) that ``accepts``."""
        names = list(self.tiers)
        start = names.index(current) + 1 if current in names else 0
        return next((self.tiers[n] for n in names[start:] if accepts(self.tiers[n])), None)


def load_tiers(path: Path = TIERS_FILE) -> TierTable:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    return TierTable({name: Tier(name=name, **body) for name, body in raw.get("tiers", {}).items()})


@lru_cache(maxsize=1)
def default_tiers() -> TierTable:
    return load_tiers()


def _limit_text(value: int) -> str:
    return "unlimited" if value == UNLIMITED else str(value)


SUBSCRIPTION_TIER_SQL = "SELECT tier FROM user_subscriptions WHERE user_id = ? AND status <> 'canceled'"


def subscription_tier(store: Store | Any, user_id: str) -> str:
    """The user's tier: their subscription's, ``free`` without one. ``store`` may be a raw connection
    inside a transaction."""
    if isinstance(store, Store):
        tier = store.scalar(SUBSCRIPTION_TIER_SQL, [user_id])
    else:
        row = store.execute(SUBSCRIPTION_TIER_SQL, [user_id]).fetchone()
        tier = row[0] if row else None
    return str(tier) if tier else "free"


def subscription_row(store: Store, user_id: str) -> dict[str, Any] | None:
    """The user's subscription as stored (tier, status), or None without one."""
    return store.fetchone("SELECT user_id, tier, status FROM user_subscriptions WHERE user_id = ?", [user_id])


def ensure_unlimited(store: Store, user_id: str) -> None:
    """Give ``user_id`` the enterprise tier without limits, unless it already has a subscription."""
    store.execute(
        "INSERT INTO user_subscriptions (user_id, tier, max_deployed_apps, max_custom_domains)"
        " VALUES (?, 'enterprise', ?, ?) ON CONFLICT (user_id) DO NOTHING",
        [user_id, UNLIMITED, UNLIMITED],
    )


def check_app_slot(connection: Any, user_id: str, tiers: TierTable | None = None) -> str:
    """Inside the transaction that creates an app: refuse if the owner has no app slot left, so
    concurrent first deploys cannot all squeeze in. Returns the owner's tier."""
    tiers = tiers or default_tiers()
    tier = subscription_tier(connection, user_id)
    current = tiers.get(tier)
    marks = ", ".join("?" for _ in LIVE_STATUSES)
    apps = int(
        connection.execute(
            f"SELECT count(*) FROM deployed_apps WHERE user_id = ? AND status IN ({marks})",
            [user_id, *LIVE_STATUSES],
        ).fetchone()[0]
    )
    if not current.allows_count("max_deployed_apps", apps + 1):
        lifter = tiers.lifting(tier, lambda t: t.allows_count("max_deployed_apps", apps + 1))
        raise TierLimitExceeded(
            f"deploy refused: the {tier} tier allows {_limit_text(current.max_deployed_apps)} deployed app(s) "
            f"(max_deployed_apps) and {user_id} has {apps}"
            + (f"; the {lifter.name} tier allows {_limit_text(lifter.max_deployed_apps)}" if lifter else "")
        )
    return tier


def override_tier(
    store: Store, user_id: str, tier: str, *, actor: str, reason: str, tiers: TierTable | None = None
) -> dict[str, Any]:
    """An operator sets a user's tier (outside Stripe); the user's apps follow, and the audit log keeps
    who, why, and the tier before. A later subscription event from Stripe supersedes it."""
    tiers = tiers or default_tiers()
    chosen = tiers.get(tier)
    if not reason.strip():
        raise InputError("reason: say why the tier is overridden (it goes in the audit log)")
    before = subscription_tier(store, user_id)
    with store.transaction() as connection:
        connection.execute(
            "INSERT INTO user_subscriptions (user_id, tier, status, max_deployed_apps, max_custom_domains)"
            " VALUES (?, ?, 'active', ?, ?) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier,"
            " status = 'active', max_deployed_apps = excluded.max_deployed_apps,"
            " max_custom_domains = excluded.max_custom_domains, updated_at = now()",
            [user_id, chosen.name, chosen.max_deployed_apps, chosen.max_custom_domains],
        )
        connection.execute(
            "UPDATE deployed_apps SET tier = ?, updated_at = now() WHERE user_id = ?", [chosen.name, user_id]
        )
        connection.execute(
            "INSERT INTO audit_log (actor, action, target, detail) VALUES (?, 'override tier', ?, ?)",
            [actor, user_id, json.dumps({"from": before, "to": chosen.name, "reason": reason})],
        )
    return {"user_id": user_id, "tier": chosen.name, "previous_tier": before}


def resume_hold(store: Store, app: App) -> str | None:
    """Why a platform may not resume (or redeploy) this suspended app, or None. An app that metering
    suspended for going over its quota stays suspended until an operator resumes it or the quota is
    lifted: a new month began, or the owner's subscription changed since. An operator's suspension
    is lifted by an operator only."""
    if app.status != "suspended":
        return None
    last = store.fetchone(
        "SELECT requested_by, created_at, params FROM deployments WHERE app_id = ? AND pipeline = 'suspend'"
        " AND status = 'succeeded' ORDER BY created_at DESC LIMIT 1",
        [app.id],
    )
    if last is None:
        return None
    by = str(last["requested_by"])
    if by.startswith("operator:"):
        return f"{app.name} was suspended by an operator; only an operator can resume it"
    if by != "metering":
        return None
    suspended_at = last["created_at"]
    month_now = store.scalar("SELECT date_trunc('month', now())")
    if suspended_at < month_now:
        return None
    changed = store.scalar("SELECT updated_at FROM user_subscriptions WHERE user_id = ?", [app.user_id])
    if changed is not None and changed > suspended_at:
        return None
    reason = json.loads(last["params"] or "{}").get("reason") or "over its tier's monthly quota"
    return (
        f"{app.name} was suspended for going over quota ({reason}); it resumes when an operator resumes it, "
        "when the owner's tier changes, or at the start of next month"
    )


def check_deploy_allowed(
    store: Store,
    user_id: str,
    tier: str | None,
    database_provider: str | None,
    custom_domain: bool,
    *,
    app_name: str | None = None,
    tiers: TierTable | None = None,
) -> None:
    """Raise ``TierLimitExceeded`` if deploying one more app (or redeploying ``app_name``) goes over the tier.

    ``tier`` None: the user's subscription tier (``free`` without one); the deploy pipeline always passes None.
    """
    tiers = tiers or default_tiers()
    if tier is None:
        tier = subscription_tier(store, user_id)
    current = tiers.get(tier)
    problems: list[str] = []
    if database_provider is not None and database_provider not in current.allowed_database_providers:
        lifter = tiers.lifting(tier, lambda t: database_provider in t.allowed_database_providers)
        problems.append(
            f"the {tier} tier does not include the {database_provider!r} database (allowed_database_providers: "
            f"{', '.join(current.allowed_database_providers)})"
            + (f"; the {lifter.name} tier includes it" if lifter else "")
        )
    others = "" if app_name is None else " AND name <> ?"
    params: list[Any] = [user_id, *LIVE_STATUSES] + ([app_name] if app_name else [])
    marks = ", ".join("?" for _ in LIVE_STATUSES)
    apps = int(
        store.scalar(
            f"SELECT count(*) FROM deployed_apps WHERE user_id = ? AND status IN ({marks}){others}", params
        )
    )
    if not current.allows_count("max_deployed_apps", apps + 1):
        lifter = tiers.lifting(tier, lambda t: t.allows_count("max_deployed_apps", apps + 1))
        problems.append(
            f"the {tier} tier allows {_limit_text(current.max_deployed_apps)} deployed app(s) "
            f"(max_deployed_apps) and {user_id} has {apps}"
            + (f"; the {lifter.name} tier allows {_limit_text(lifter.max_deployed_apps)}" if lifter else "")
        )
    if custom_domain:
        domains = int(
            store.scalar(
                f"SELECT count(*) FROM deployed_apps WHERE user_id = ? AND custom_domain IS NOT NULL"
                f" AND status IN ({marks}){others}",
                params,
            )
        )
        if not current.allows_count("max_custom_domains", domains + 1):
            lifter = tiers.lifting(tier, lambda t: t.allows_count("max_custom_domains", domains + 1))
            problems.append(
                f"the {tier} tier allows {_limit_text(current.max_custom_domains)} custom domain(s) "
                f"(max_custom_domains) and {user_id} has {domains}"
                + (
                    f"; the {lifter.name} tier allows {_limit_text(lifter.max_custom_domains)}"
                    if lifter
                    else ""
                )
            )
    if problems:
        raise TierLimitExceeded("deploy refused: " + "; ".join(problems))


@dataclass(frozen=True)
class QuotaAction:
    app_id: str
    user_id: str
    tier: str
    action: str  # notify | suspend
    reason: str


def over_quota(
    store: Store,
    month: date,
    usage: dict[str, dict[str, dict[str, int | None]]],
    apps: dict[str, Any],
    app_cost_cents: dict[str, int],
    *,
    tiers: TierTable | None = None,
) -> list[QuotaAction]:
    """Apps over their tier's monthly quotas, and apps of users over their spend cap, not yet acted on.

    ``usage``/``apps``/``app_cost_cents`` come from ``rollup.cost_month`` (one month's computed costs).
    """
    tiers = tiers or default_tiers()
    done = {
        (row["app_id"], row["action"])
        for row in store.fetchall("SELECT app_id, action FROM quota_actions WHERE month = ?", [month])
    }
    caps = {
        row["user_id"]: int(row["cap_cents"])
        for row in store.fetchall("SELECT user_id, cap_cents FROM spend_caps")
    }
    user_spend: dict[str, int] = {}
    for app_id, info in apps.items():
        user_spend[info.user_id] = user_spend.get(info.user_id, 0) + app_cost_cents.get(app_id, 0)
    actions: list[QuotaAction] = []
    for app_id, info in sorted(apps.items()):
        tier = tiers.tiers.get(info.tier)
        if tier is None:
            continue
        totals: dict[str, int] = {}
        for metrics in usage.get(app_id, {}).values():
            for name, value in metrics.items():
                if value is not None:
                    totals[name] = (
                        max(totals.get(name, 0), value)
                        if name.endswith("_peak")
                        else totals.get(name, 0) + value
                    )
        over = [
            f"{name} {totals[name]:,} > {limit:,}"
            for name, limit in tier.quotas.items()
            if totals.get(name, 0) > limit
        ]
        reasons = []
        if over:
            reasons.append(f"over the {tier.name} tier's monthly quota: " + ", ".join(over))
        cap = caps.get(info.user_id)
        if cap is not None and tier.price_cents > 0 and user_spend.get(info.user_id, 0) > cap:
            reasons.append(
                f"{info.user_id}'s spend {user_spend[info.user_id]} cents is over the cap of {cap} cents"
            )
        if not reasons:
            continue
        wanted = ["notify"] + (
            ["suspend"]
            if tier.over_quota == "suspend" or (cap is not None and user_spend.get(info.user_id, 0) > cap)
            else []
        )
        for action in wanted:
            if (app_id, action) not in done:
                actions.append(QuotaAction(app_id, info.user_id, info.tier, action, "; ".join(reasons)))
    return actions


def record_action(store: Store, month: date, action: QuotaAction) -> None:
    store.execute(
        "INSERT OR IGNORE INTO quota_actions (month, app_id, action, reason) VALUES (?, ?, ?, ?)",
        [month, action.app_id, action.action, action.reason],
    )


def set_spend_cap(store: Store, user_id: str, cap_cents: int | None) -> None:
    if cap_cents is None:
        store.execute("DELETE FROM spend_caps WHERE user_id = ?", [user_id])
        return
    if cap_cents < 0:
        raise InputError("a spend cap must be zero or more cents")
    store.execute(
        "INSERT OR REPLACE INTO spend_caps (user_id, cap_cents) VALUES (?, ?)", [user_id, cap_cents]
    )
