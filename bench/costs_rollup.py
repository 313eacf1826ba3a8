"""Benchmark: ledger ingest, then the monthly cost and margin rollup, then closing that month.

N apps x D days of hourly readings go into a DuckDB file through the same ``ingest_frame`` the metering job
uses (one Arrow batch per day by default, with the idempotency check); then one month is costed, its margins
computed, and it is closed (frozen). Prints ingest rows/s against the named baseline "plain append" (the same
batches inserted into a bare table with no idempotency check, no name refs and no rollup: the ceiling for this
machine, measured in the same run on every 10th batch, interleaved, so other processes' load hits both),
rollup and close seconds, and peak memory (max RSS of this process), beside the issue's targets. Readings are
generated one batch at a time.

    .venv/bin/python bench/costs_rollup.py --apps 1000 --apps 10000 [--days 90] [--batch-days 1]
        [--memory-limit 1GB]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from engine.costs.closing import close_month
from engine.costs.ledger import LEDGER_SCHEMA, ingest_frame
from engine.costs.margins import margins_for
from engine.costs.rollup import cost_month, month_end
from engine.store import DEFAULT_MEMORY_LIMIT, Store

START = datetime(2026, 8, 1)
TARGET_ROWS_PER_S = 1_000_000
TARGET_ROLLUP_S = 3.0
TARGET_PEAK_MB = 2048


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_apps(store: Store, apps: int) -> list[str]:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(apps)]
    tiers = np.array(["free", "starter", "pro", "business"])[np.arange(apps) % 4]
    frame = pl.DataFrame(
        {
            "id": ids,
            "name": [f"bench-{i}" for i in range(apps)],
            "user_id": [f"user-{i // 3}" for i in range(apps)],
            "tier": tiers,
            "database_provider": np.where(tiers == "business", "local-postgres", "local-libsql"),
            "hosting_provider": ["local"] * apps,
            "status": ["active"] * apps,
        }
    )
    with store.connection() as connection:
        connection.register("bench_apps", frame.to_arrow())
        connection.execute(
            "INSERT INTO deployed_apps (id, name, user_id, tier, database_provider, hosting_provider, status,"
            " created_at) SELECT CAST(id AS UUID), name, user_id, tier, database_provider, hosting_provider, status,"
            " TIMESTAMP '2026-01-01' FROM bench_apps"
        )
        connection.unregister("bench_apps")
    return ids


def day_frame(ids: list[str], providers: np.ndarray, day: int, rng: np.random.Generator) -> pl.DataFrame:
    n = len(ids) * 24
    hours = np.repeat(np.arange(24), len(ids))
    start = START + timedelta(days=day)
    active = rng.random(n) < 0.3
    # Repeated by index from polars Series: numpy's fixed-width unicode tiles cost 144 bytes per app id.
    each_hour = np.tile(np.arange(len(ids)), 24)
    frame = pl.DataFrame(
        {
            "app_id": pl.Series(ids, dtype=pl.String).gather(each_hour),
            "provider": pl.Series(providers, dtype=pl.String).gather(each_hour),
            "source": pl.repeat("bench", n, dtype=pl.String, eager=True),
            "hour_start": np.datetime64(start, "us") + hours.astype("timedelta64[h]"),
            "db_rows_read": np.where(active, rng.integers(0, 5_000, n), 0),
            "db_rows_written": np.where(active, rng.integers(0, 100, n), 0),
            "db_storage_bytes": rng.integers(1_000_000, 50_000_000, n),
            "requests": np.where(active, rng.integers(0, 400, n), 0),
            "bandwidth_bytes": np.where(active, rng.integers(0, 10_000_000, n), 0),
            "compute_ms": pl.repeat(None, n, dtype=pl.Int64, eager=True),
        }
    )
    return frame.select(list(LEDGER_SCHEMA))


def plain_append_seconds(store: Store, frame: pl.DataFrame) -> float:
    """The named baseline: the same batch appended to a bare table (no key check, no names, no rollup)."""
    with store.connection() as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_plain_append (app_id TEXT, provider TEXT, source TEXT,"
            " hour_start TIMESTAMP, db_rows_read BIGINT, db_rows_written BIGINT, db_storage_bytes BIGINT,"
            " requests BIGINT, bandwidth_bytes BIGINT, compute_ms BIGINT)"
        )
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.register("bench_batch", frame.to_arrow())
        connection.execute("INSERT INTO bench_plain_append SELECT * FROM bench_batch")
        connection.unregister("bench_batch")
        connection.execute("COMMIT")
        return time.perf_counter() - started


def run(
    apps: int,
    days: int,
    workdir: Path,
    batch_days: int = 1,
    baseline_every: int = 10,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> dict[str, float]:
    store = Store(workdir / f"bench-{apps}.duckdb", memory_limit=memory_limit)
    ids = seed_apps(store, apps)
    providers = np.where(np.arange(apps) % 4 == 3, "local-postgres", "local-libsql")
    rng = np.random.default_rng(7)
    ingest_seconds = baseline_seconds = 0.0
    rows = baseline_rows = 0
    for batch, first_day in enumerate(range(0, days, batch_days)):
        frame = pl.concat(
            [
                day_frame(ids, providers, day, rng)
                for day in range(first_day, min(days, first_day + batch_days))
            ]
        )
        started = time.perf_counter()
        result = ingest_frame(store, frame)
        ingest_seconds += time.perf_counter() - started
        rows += result.added
        # Interleaved with the ingest on a sample of batches, so both see the same load from other processes.
        if batch % baseline_every == 0:
            baseline_seconds += plain_append_seconds(store, frame)
            baseline_rows += frame.height
        del frame
    store.execute("DROP TABLE bench_plain_append")
    again = ingest_frame(store, day_frame(ids, providers, 0, np.random.default_rng(7)))
    assert again.added == 0, "re-ingesting a day must add nothing"
    ingest_peak = peak_mb()
    month = START.date().replace(day=1)  # August: fully covered whenever --days >= 31
    started = time.perf_counter()
    costs = cost_month(store, month)
    margins = margins_for(store, costs)
    rollup_seconds = time.perf_counter() - started
    assert sum(line.cents for line in costs.lines()) == costs.total_cents()
    started = time.perf_counter()
    frozen = close_month(
        store, month, actor="bench", now=datetime.combine(month_end(month), datetime.min.time())
    )
    close_seconds = time.perf_counter() - started
    assert frozen.closed and frozen.total_cents() == costs.total_cents()
    store.close()
    return {
        "apps": apps,
        "rows": rows,
        "ingest_s": ingest_seconds,
        "rows_per_s": rows / ingest_seconds,
        "baseline_rows_per_s": baseline_rows / baseline_seconds,
        "rollup_s": rollup_seconds,
        "close_s": close_seconds,
        "month_total_cents": costs.total_cents(),
        "margin_cents": margins.totals()["margin_cents"],
        "ingest_peak_mb": ingest_peak,
        "peak_mb": peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, action="append", help="fleet size (repeatable)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--batch-days", type=int, default=1, help="days of readings per ingest call (default 1)"
    )
    parser.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"DuckDB memory_limit for the store (default: the engine's, {DEFAULT_MEMORY_LIMIT})",
    )
    args = parser.parse_args()
    sizes = args.apps or [1000, 10000]
    print(
        f"targets: ingest >= {TARGET_ROWS_PER_S:,} rows/s, rollup (10,000 apps) <= {TARGET_ROLLUP_S} s, "
        f"peak <= {TARGET_PEAK_MB} MB"
    )
    with tempfile.TemporaryDirectory(prefix="ld-bench-") as tmp:
        for apps in sizes:
            r = run(apps, args.days, Path(tmp), args.batch_days, memory_limit=args.memory_limit)
            print(
                f"apps={apps:>6,} batch={args.batch_days}d memory_limit={args.memory_limit} rows={int(r['rows']):>11,} ingest {r['ingest_s']:6.1f} s = {r['rows_per_s']:>11,.0f} rows/s"
                f" (baseline plain append, same batches: {r['baseline_rows_per_s']:>11,.0f} rows/s,"
                f" ingest at {r['rows_per_s'] / r['baseline_rows_per_s']:.0%} of it)"
                f" | rollup {r['rollup_s']:5.2f} s | close month {r['close_s']:5.2f} s | peak {r['peak_mb']:,.0f} MB (after ingest {r['ingest_peak_mb']:,.0f} MB)"
                f" | month cost ${r['month_total_cents'] / 100:,.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
