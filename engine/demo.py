"""The demo workspace: a synthetic fleet so every console page has something to show on first start.

Everything seeded here is labelled as demo data where it shows: app names start with ``demo-``, owners
with ``demo-user-``, and usage readings come from the sources ``demo-database`` and ``demo-hosting``.
Usage goes into the ledger through the cost engine's own ingest (``engine.costs.ledger.ingest_frame``),
so costs and margins are computed from it exactly as from metered usage.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from engine.client import EngineClient
from engine.config import PROJECT_ROOT, Settings
from engine.costs.closing import close_month
from engine.costs.ledger import IngestResult, ingest_frame, with_keys
from engine.costs.rollup import is_closed, month_end
from engine.errors import Conflict, LaunchdeckError
from engine.rules import capabilities_of
from engine.store import Store

DEMO_PREFIX = "demo-"
DEMO_USER_PREFIX = "demo-user-"
SOURCES = ("demo-database", "demo-hosting")
# A locally served demo app's server, as bench/measured_use.py measured data/examples/shop's (2026-12-07):
# 10.55 ms of CPU per request, 240 MB resident while up.
DEMO_SERVER_CPU_MS_PER_REQUEST = 10.55
DEMO_SERVER_MEMORY_BYTES = 240_000_000

# Share of apps per tier, and which databases each tier's apps use (allowed by data/tiers.toml).
TIER_MIX = {"free": 0.06, "starter": 0.44, "pro": 0.30, "business": 0.15, "enterprise": 0.05}
DATABASES = {
    "free": ("local-libsql", "turso"),
    "starter": ("turso", "local-libsql"),
    "pro": ("turso",),
    "business": ("neon", "local-postgres"),
    "enterprise": ("byo", "neon"),
}
HOSTS = (("cloudflare", 0.7), ("vercel", 0.15), ("local", 0.15))
STATES = (("active", 0.88), ("suspended", 0.05), ("failed", 0.04), ("deploying", 0.03))
# Median monthly requests of an app per tier: traffic grows with what the owner pays for.
MONTHLY_REQUESTS = {
    "free": 3_000,
    "starter": 40_000,
    "pro": 400_000,
    "business": 3_000_000,
    "enterprise": 8_000_000,
}
WORDS = (
    "atlas", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kite",
    "lumen", "maple", "nova", "orbit", "pixel", "quill", "river", "sable", "tide", "umber", "vale",
    "willow", "yarrow", "zephyr",
)  # fmt: skip


@dataclass(frozen=True)
class SeedResult:
    apps: int
    users: int
    usage: IngestResult | None


def demo_app_count(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM deployed_apps WHERE starts_with(name, ?)", [DEMO_PREFIX]))


def _tiers() -> dict[str, dict[str, object]]:
    raw = tomllib.loads((PROJECT_ROOT / "data" / "tiers.toml").read_text(encoding="utf-8"))
    tiers: dict[str, dict[str, object]] = raw["tiers"]
    return tiers


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], size: int) -> list[str]:
    names = [name for name, _ in options]
    weights = np.array([w for _, w in options])
    return list(rng.choice(names, size=size, p=weights / weights.sum()))


def seed_demo(
    store: Store,
    *,
    apps: int = 500,
    days: int = 90,
    reading_hours: int = 1,
    seed: int = 7,
    now: datetime | None = None,
) -> SeedResult:
    """Seed ``apps`` demo apps with ``days`` of usage ending at today's midnight (UTC). Does nothing when
    the workspace already holds demo apps. ``reading_hours`` > 1 writes one reading per that many hours
    (the benchmark's 10,000-app fleet uses 24: one reading per app and day)."""
    if demo_app_count(store):
        return SeedResult(0, 0, None)
    rng = np.random.default_rng(seed)
    tiers = _tiers()
    tier_names = list(TIER_MIX)
    app_tiers = list(rng.choice(tier_names, size=apps, p=np.array(list(TIER_MIX.values()))))
    hosts = _pick(rng, HOSTS, apps)
    states = _pick(rng, STATES, apps)
    # Whole days, ending at today's midnight (UTC), so no chart ends on a half-counted day.
    end = (
        (now or datetime.now(UTC))
        .astimezone(UTC)
        .replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    )
    start = end - timedelta(days=days)

    # Owners: each has one tier; an owner gets as many apps as the tier allows (most have one to three).
    users: dict[str, str] = {}
    owners: list[str] = []
    open_owner: dict[str, tuple[str, int]] = {}
    for tier in app_tiers:
        limit = int(tiers[tier]["max_deployed_apps"])  # type: ignore[call-overload]
        owner, used = open_owner.get(tier, ("", 10**9))
        cap = 3 if limit < 0 else min(limit, 3)
        if used >= cap:
            owner, used = f"{DEMO_USER_PREFIX}{len(users) + 1:04d}", 0
            users[owner] = tier
        open_owner[tier] = (owner, used + 1)
        owners.append(owner)

    app_rows = []
    for i in range(apps):
        tier, host = app_tiers[i], hosts[i]
        name = f"{DEMO_PREFIX}{WORDS[i % len(WORDS)]}-{i + 1:05d}"
        database = str(rng.choice(DATABASES[tier]))
        url = {
            "cloudflare": f"https://{name}.pages.dev",
            "vercel": f"https://{name}.vercel.app",
            "local": f"http://{name}.localhost:8472/",
        }[host]
        custom = (
            f"{name.removeprefix(DEMO_PREFIX)}.demo.example"
            if tier in ("pro", "business") and i % 3 == 0
            else None
        )
        created = start - timedelta(days=int(rng.integers(1, 200)))
        app_rows.append(
            (name, owners[i], "web", states[i], url if states[i] != "failed" else None, custom, database,
             f"{name}-db", host, f"{name}-site", tier, '{"demo": true}', created, created, created)
        )  # fmt: skip
    app_columns = ("name", "user_id", "platform", "status", "deployment_url", "custom_domain", "database_provider",
                   "database_id", "hosting_provider", "hosting_project_id", "tier", "config", "created_at",
                   "updated_at", "last_deployed_at")  # fmt: skip
    period_start = end.replace(day=1, hour=0)
    subscriptions = pl.DataFrame(
        {
            "user_id": list(users),
            "tier": list(users.values()),
            "max_deployed_apps": [tiers[t]["max_deployed_apps"] for t in users.values()],
            "max_custom_domains": [tiers[t]["max_custom_domains"] for t in users.values()],
            "current_period_start": [period_start] * len(users),
            "current_period_end": [(period_start + timedelta(days=32)).replace(day=1)] * len(users),
        }
    )
    # Bulk inserts through Arrow: row-by-row executemany takes about a minute for 10,000 apps.
    with store.transaction() as connection:
        connection.register("demo_apps", pl.DataFrame(app_rows, schema=app_columns, orient="row").to_arrow())
        connection.register("demo_users", subscriptions.to_arrow())
        try:
            connection.execute(
                f"INSERT INTO deployed_apps ({', '.join(app_columns)}) SELECT {', '.join(app_columns)} FROM demo_apps"
            )
            connection.execute(
                "INSERT INTO user_subscriptions (user_id, tier, status, max_deployed_apps, max_custom_domains,"
                " current_period_start, current_period_end) SELECT user_id, tier, 'active', max_deployed_apps,"
                " max_custom_domains, current_period_start, current_period_end FROM demo_users"
            )
        finally:
            connection.unregister("demo_apps")
            connection.unregister("demo_users")
    ids = store.fetchall(
        "SELECT CAST(id AS TEXT) AS id, name, database_provider, hosting_provider, tier, status FROM deployed_apps"
        " WHERE starts_with(name, ?) ORDER BY name",
        [DEMO_PREFIX],
    )
    result = ingest_frame(store, _usage_frame(rng, ids, start, end, reading_hours))
    # The engine's billing job closes each finished month; a workspace that ran for 90 days would have done so.
    month = start.date().replace(day=1)
    while month_end(month) <= end.date():
        if not is_closed(store, month):
            close_month(store, month, actor="demo-seed", now=end)
        month = month_end(month)
    return SeedResult(apps, len(users), result)


def _usage_frame(
    rng: np.random.Generator,
    apps: list[dict[str, object]],
    start: datetime,
    end: datetime,
    reading_hours: int,
) -> pl.DataFrame:
    """Hourly (or coarser) readings: a per-app traffic level, a daily cycle, weekly dip and slow growth.
    Failed apps never served; suspended apps stop a random number of days before the end."""
    hours = np.arange(
        np.datetime64(start, "us"), np.datetime64(end, "us"), np.timedelta64(reading_hours, "h")
    )
    steps = len(hours)
    hour_of_day = (hours.astype("datetime64[h]").astype(np.int64) % 24).astype(float)
    day_index = np.arange(steps) * reading_hours / 24
    shape = (1 + 0.6 * np.sin((hour_of_day - 9) / 24 * 2 * np.pi)) * (
        1 + 0.3 * day_index / max(day_index[-1], 1)
    )
    weekday = (hours.astype("datetime64[D]").astype(np.int64) + 4) % 7  # 0 = Monday
    shape = shape * np.where(weekday >= 5, 0.7, 1.0)
    shape = shape / shape.mean()
    frames = []
    for app in apps:
        if app["status"] == "failed":
            continue
        monthly = MONTHLY_REQUESTS[str(app["tier"])] * float(rng.lognormal(0, 0.8))
        per_step = monthly / (30 * 24) * reading_hours
        # Most generated apps are idle most hours: each is active in a share of hours (mean about 1 in 6),
        # busier in the day; its traffic falls in those hours. Idle hours read and write nothing.
        active_share = float(rng.beta(1.2, 6.0))
        active = rng.random(steps) < np.clip(active_share * shape, 0.0, 1.0)
        requests = np.where(
            active, rng.poisson(np.maximum(per_step * shape / max(active_share, 0.01), 0.0)), 0
        )
        if app["status"] == "suspended":
            requests[steps - int(rng.integers(1, max(steps // 3, 2))) :] = 0
        reads = requests * int(rng.integers(3, 40))
        writes = rng.binomial(requests, float(rng.uniform(0.02, 0.2)))
        storage = (float(rng.uniform(0.2, 50)) * 1e6 + np.cumsum(writes) * 600).astype(np.int64)
        size = int(rng.integers(8_000, 90_000))
        common = {"app_id": [app["id"]] * steps, "hour_start": hours}
        frames.append(
            pl.DataFrame(
                {**common, "provider": [app["database_provider"]] * steps, "source": [SOURCES[0]] * steps,
                 "db_rows_read": reads, "db_rows_written": writes, "db_storage_bytes": storage}
            )
        )  # fmt: skip
        served_here = capabilities_of(str(app["hosting_provider"])).own_origin
        hosting = {**common, "provider": [app["hosting_provider"]] * steps, "source": [SOURCES[1]] * steps,
                   "requests": requests, "bandwidth_bytes": requests * size,
                   "compute_ms": [None] * steps if served_here else requests * 7}  # fmt: skip
        if served_here:  # its server's CPU and memory are measured too
            up = requests > 0  # up in the hours it served (scaled to zero in the others)
            hosting |= {
                "cpu_ms": np.round(requests * DEMO_SERVER_CPU_MS_PER_REQUEST).astype(np.int64),
                "memory_peak_bytes": np.where(up, DEMO_SERVER_MEMORY_BYTES, 0),
                "memory_avg_bytes": np.where(up, DEMO_SERVER_MEMORY_BYTES * reading_hours, 0),
            }
        frames.append(pl.DataFrame(hosting))
    if not frames:
        return pl.DataFrame()
    return with_keys(pl.concat(frames, how="diagonal_relaxed"))


EXAMPLE_APP = "taskboard"
EXAMPLE_NAME = "example-taskboard"


def seed_workspace(
    settings: Settings, *, apps: int = 500, days: int = 90, reading_hours: int = 1
) -> SeedResult:
    """Seed the workspace's store before its engine starts (the engine is the store's only writer)."""
    from engine.service import find_running_engine

    if find_running_engine(settings):
        raise Conflict(
            f"an engine already serves {settings.workspace}: stop it first, then run `launchdeck up --demo`"
        )
    store = Store(settings.store_path, memory_limit=settings.duckdb_memory_limit)
    store.execute("SET enable_progress_bar = false")
    try:
        return seed_demo(store, apps=apps, days=days, reading_hours=reading_hours)
    finally:
        store.checkpoint()
        store.close()


def deploy_example(client: EngineClient, app: str = EXAMPLE_APP) -> str:
    """Start one real local deployment of an example app, so the fleet holds something live and true.
    Returns what happened, for the person starting the demo."""
    if any(a["name"] == EXAMPLE_NAME for a in client.apps()):
        return f"{EXAMPLE_NAME} is already deployed"
    try:
        started = client.deploy_web(
            str(PROJECT_ROOT / "data" / "examples" / app), app=EXAMPLE_NAME, owner="operator"
        )
    except LaunchdeckError as exc:
        return f"the example app was not deployed: {exc}"
    return f"deploying {EXAMPLE_NAME} (deployment {started['deployment_id']}); follow it on the console's Status page"
