"""Provider plan limits: what each provider account's plan allows (from the price sheets' ``limits``), how much of
it the fleet uses, and the check deploy preflight runs before anything is created.

Counted from what Launchdeck itself put on each account (``deployed_apps`` and ``cloudflare_hosting``): Turso
databases, Neon projects, Workers on the account and user Workers in the dispatch namespace. A refusal names the
limit, the plan and what lifts it (a bigger plan of the same sheet, or Workers for Platforms for the Workers cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from engine.costs.sheets import Catalog, default_catalog
from engine.errors import PlanLimitReached
from engine.store import Store

# provider sheet -> (the limit that matters for one app, what one app takes of it)
APP_LIMITS = {
    "turso": "databases",
    "neon": "projects",
    "cloudflare": "scripts",
    "cloudflare-platforms": "scripts",
}
LIVE = ("provisioning", "deploying", "active", "suspended")
DISPATCH_WORKERS = 1  # Workers for Platforms' dispatch Worker is a plain Worker on the account
AUTO_SHARE = 0.9  # auto mode moves new apps to Workers for Platforms at 90% of the plan's Workers
PLATFORMS_LIFT = (
    "Workers for Platforms (user Workers in a dispatch namespace have no per-account cap): "
    "set LAUNCHDECK_CLOUDFLARE_MODE=platforms, or auto to switch past a threshold"
)


@dataclass(frozen=True)
class Headroom:
    provider: str
    plan: str
    limit_name: str
    limit: int | None  # None: unlimited
    used: int
    lifted_by: str | None

    @property
    def left(self) -> int | None:
        return None if self.limit is None else self.limit - self.used

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "plan": self.plan,
            "limit_name": self.limit_name,
            "limit": self.limit,
            "used": self.used,
            "left": self.left,
            "lifted_by": self.lifted_by,
        }


def _limit(value: Any) -> int | None:
    return None if value is None or value == "unlimited" or int(value) < 0 else int(value)


def used(store: Store, provider: str) -> int:
    """How much of the provider's per-app limit Launchdeck's apps take now."""
    marks = ", ".join("?" for _ in LIVE)
    if provider in ("turso", "neon"):
        return int(
            store.scalar(
                f"SELECT count(*) FROM deployed_apps WHERE database_provider = ? AND database_id IS NOT NULL"
                f" AND status IN ({marks})",
                [provider, *LIVE],
            )
        )
    mode = {"cloudflare": "workers", "cloudflare-platforms": "platforms"}[provider]
    scripts = int(
        store.scalar(
            f"SELECT count(*) FROM cloudflare_hosting h JOIN deployed_apps a ON a.name = h.app"
            f" WHERE h.mode = ? AND a.status IN ({marks})",
            [mode, *LIVE],
        )
    )
    if provider == "cloudflare" and store.scalar(
        "SELECT count(*) FROM cloudflare_hosting WHERE mode = 'platforms'"
    ):
        scripts += DISPATCH_WORKERS
    return scripts


def lifted_by(catalog: Catalog, provider: str, month: date, needed: int) -> str | None:
    """What lifts a limit: the first plan of the sheet (in file order) that allows ``needed``."""
    if provider == "cloudflare":
        return PLATFORMS_LIFT
    limit_name = APP_LIMITS[provider]
    current = catalog.plan_for(provider, month)[1].name
    for name, plan in catalog.sheet(provider).version_for(month).plans.items():
        allowed = _limit(plan.limits.get(limit_name, "unlimited"))
        if name != current and (allowed is None or allowed >= needed):
            return f"the {name} plan ({'unlimited' if allowed is None else allowed} {limit_name})"
    return None


def headroom(
    store: Store, *, catalog: Catalog | None = None, month: date | None = None, only: str | None = None
) -> list[Headroom]:
    """Each provider account's plan limit for one more app, what is used, and what lifts it (``only``: one)."""
    catalog = catalog or default_catalog()
    month = month or datetime.now(UTC).date().replace(day=1)
    rows = []
    for provider, limit_name in APP_LIMITS.items():
        if provider not in catalog.sheets or only not in (None, provider):
            continue
        _, plan = catalog.plan_for(provider, month)
        limit = _limit(plan.limits.get(limit_name, "unlimited"))
        taken = used(store, provider)
        rows.append(
            Headroom(
                provider,
                plan.name,
                limit_name,
                limit,
                taken,
                None if limit is None else lifted_by(catalog, provider, month, taken + 1),
            )
        )
    return rows


def check_room(
    store: Store, provider: str, *, catalog: Catalog | None = None, month: date | None = None
) -> None:
    """Refuse, before anything is created, one more app on ``provider`` when its plan's limit is reached."""
    for row in headroom(store, catalog=catalog, month=month, only=provider):
        if row.left is not None and row.left < 1:
            lift = f"; {row.lifted_by} lifts it" if row.lifted_by else ""
            raise PlanLimitReached(
                f"{provider}'s {row.plan} plan allows {row.limit} {row.limit_name} and Launchdeck's apps use "
                f"{row.used}: one more app does not fit{lift}. Nothing was created."
            )


def cloudflare_mode(
    store: Store,
    app: str,
    *,
    setting: str = "auto",
    platforms_after: int | None = None,
    catalog: Catalog | None = None,
    month: date | None = None,
) -> str:
    """How ``app`` is (or will be) hosted on Cloudflare: 'workers' or 'platforms'. An app keeps the mode of
    its first deployment; a new one follows the setting, and in 'auto' goes to Workers for Platforms once the
    account's Workers reach ``platforms_after`` (default: 90% of the plan's cap)."""
    known = recorded_cloudflare_mode(store, app)
    if known:
        return known
    if setting in ("workers", "platforms"):
        return setting
    catalog = catalog or default_catalog()
    month = month or datetime.now(UTC).date().replace(day=1)
    cap = _limit(catalog.plan_for("cloudflare", month)[1].limits.get("scripts", "unlimited"))
    threshold = (
        platforms_after if platforms_after is not None else None if cap is None else int(cap * AUTO_SHARE)
    )
    if threshold is None:
        return "workers"
    return "workers" if used(store, "cloudflare") + 1 <= threshold else "platforms"


def recorded_cloudflare_mode(store: Store, app: str) -> str | None:
    """The mode ``app`` was first deployed with on Cloudflare, if it was."""
    known = store.scalar("SELECT mode FROM cloudflare_hosting WHERE app = ?", [app])
    return None if known is None else str(known)


def record_cloudflare_mode(store: Store, app: str, mode: str) -> None:
    store.execute(
        "INSERT INTO cloudflare_hosting (app, mode) VALUES (?, ?) ON CONFLICT (app) DO NOTHING", [app, mode]
    )
