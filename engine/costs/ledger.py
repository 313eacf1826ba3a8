"""The append-only usage ledger in DuckDB, ingested in bulk through Arrow.

Every reading has an idempotency key (source, app, hour): a key already in the ledger adds nothing, so
collecting an hour twice, or replaying a batch after a crash, is harmless. The key is those three columns, so
the ledger derives its ``idempotency_key`` column on read (migration 036) instead of storing a string per row.
Readings for a closed month are refused (counted, not written): closing a month freezes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from engine.costs.usage import METRICS, Reading, hour_floor
from engine.store import Store

# The columns a batch brings. An ``idempotency_key`` column (``with_keys``) may come along; it is not stored.
LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "app_id": pl.String(),
    "provider": pl.String(),
    "source": pl.String(),
    "hour_start": pl.Datetime("us"),
    **{metric: pl.Int64() for metric in METRICS},
}
KEY_COLUMNS = ("source", "app_id", "hour_start")


def _add(column: str) -> str:
    """Add a day's new readings to the stored total; NULL (not measured) only while both sides are NULL."""
    return (
        f"{column} = CASE WHEN daily_usage.{column} IS NULL AND excluded.{column} IS NULL THEN NULL"
        f" ELSE coalesce(daily_usage.{column}, 0) + coalesce(excluded.{column}, 0) END"
    )


# Fold the batch's new rows (the registered ``ledger_batch``) into the daily rollup.
DAILY_UPSERT = (
    "INSERT INTO daily_usage SELECT app_id, provider, CAST(hour_start AS DATE),"
    " sum(db_rows_read), sum(db_rows_written), max(db_storage_bytes), sum(db_storage_bytes), count(db_storage_bytes),"
    " count(*) FILTER (WHERE coalesce(db_rows_read, 0) + coalesce(db_rows_written, 0) > 0),"
    " sum(requests), sum(bandwidth_bytes), sum(compute_ms)"
    " FROM ledger_batch GROUP BY ALL"
    " ON CONFLICT (app_id, provider, day) DO UPDATE SET "
    + ", ".join(
        [
            _add("db_rows_read"),
            _add("db_rows_written"),
            "db_storage_bytes_max = CASE WHEN daily_usage.db_storage_bytes_max IS NULL"
            " THEN excluded.db_storage_bytes_max WHEN excluded.db_storage_bytes_max IS NULL"
            " THEN daily_usage.db_storage_bytes_max"
            " ELSE greatest(daily_usage.db_storage_bytes_max, excluded.db_storage_bytes_max) END",
            _add("db_storage_bytes_sum"),
            "db_storage_bytes_count = daily_usage.db_storage_bytes_count + excluded.db_storage_bytes_count",
            "db_active_hours = daily_usage.db_active_hours + excluded.db_active_hours",
            _add("requests"),
            _add("bandwidth_bytes"),
            _add("compute_ms"),
        ]
    )
)


@dataclass(frozen=True)
class IngestResult:
    added: int
    duplicates: int
    refused_closed: int

    @property
    def received(self) -> int:
        return self.added + self.duplicates + self.refused_closed


def readings_frame(readings: Iterable[Reading]) -> pl.DataFrame:
    rows = [
        {
            "app_id": r.app_id,
            "provider": r.provider,
            "source": r.source,
            "hour_start": hour_floor(r.hour_start),
            **{metric: r.metrics.get(metric) for metric in METRICS},
        }
        for r in readings
    ]
    return pl.DataFrame(rows, schema=LEDGER_SCHEMA)


def with_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the idempotency key the ledger derives for each reading (for display; ``ingest_frame`` ignores it)."""
    key = pl.concat_str(
        [pl.col("source"), pl.col("app_id"), pl.col("hour_start").dt.strftime("%Y-%m-%dT%H:%M:%S")],
        separator="|",
    )
    return frame.with_columns(key.alias("idempotency_key"))


def closed_months(store: Store) -> set[date]:
    return {row["month"] for row in store.fetchall("SELECT month FROM closed_months")}


def ingest_frame(store: Store, frame: pl.DataFrame) -> IngestResult:
    """Append a frame of readings (columns of ``LEDGER_SCHEMA``) to the ledger; return what happened."""
    if frame.is_empty():
        return IngestResult(0, 0, 0)
    if dict(frame.schema) != LEDGER_SCHEMA:
        frame = frame.select([pl.col(name).cast(dtype) for name, dtype in LEDGER_SCHEMA.items()])
    received = frame.height
    closed = closed_months(store)
    refused = 0
    if closed:
        month = pl.col("hour_start").dt.truncate("1mo").dt.date()
        open_rows = frame.filter(~month.is_in(sorted(closed)))
        refused = received - open_rows.height
        frame = open_rows
    # A batch repeating a key keeps its first reading. Distinct hashes prove distinct keys (a collision only
    # sends the batch through the exact ``unique``), at half the cost of comparing the strings.
    if frame.select(pl.struct(KEY_COLUMNS).hash().n_unique()).item() != frame.height:
        frame = frame.unique(subset=KEY_COLUMNS, keep="first", maintain_order=True)
    if frame.is_empty():
        return IngestResult(0, received - refused, refused)
    bounds = frame.select(pl.col("hour_start").min().alias("lo"), pl.col("hour_start").max().alias("hi")).row(
        0
    )
    columns = ", ".join(LEDGER_SCHEMA)
    with store.transaction() as connection:
        connection.register("ledger_batch", frame.to_arrow())
        try:
            # Keys already in the ledger: the hour-range predicate lets DuckDB skip every row group outside the
            # batch's hours, and the result is small (empty unless hours are collected again), so it is removed
            # from the batch once here instead of anti-joining in both statements below.
            seen = connection.sql(
                f"SELECT {', '.join(KEY_COLUMNS)} FROM usage_ledger SEMI JOIN ledger_batch USING ({', '.join(KEY_COLUMNS)})"
                " WHERE usage_ledger.hour_start BETWEEN $lo AND $hi",
                params={"lo": bounds[0], "hi": bounds[1]},
            ).pl()
            if seen.height:
                connection.unregister("ledger_batch")
                frame = frame.join(seen, on=list(KEY_COLUMNS), how="anti")
                connection.register("ledger_batch", frame.to_arrow())
            if frame.height:
                connection.execute(DAILY_UPSERT)
                connection.execute(f"INSERT INTO usage_ledger ({columns}) SELECT {columns} FROM ledger_batch")
        finally:
            connection.unregister("ledger_batch")
    added = frame.height
    return IngestResult(added, received - refused - added, refused)


def ingest(store: Store, readings: Iterable[Reading]) -> IngestResult:
    return ingest_frame(store, readings_frame(readings))


def usage_series(
    store: Store,
    *,
    start: datetime,
    end: datetime,
    app_id: str | None = None,
    grain: str = "day",
) -> list[dict[str, object]]:
    """Usage per app and hour/day/month between ``start`` and ``end`` (UTC). None: not measured."""
    if grain not in ("hour", "day", "month"):
        from engine.errors import InputError

        raise InputError(f"grain {grain!r} is not one of: hour, day, month")
    sums = ", ".join(f"sum({m}) AS {m}" for m in METRICS if m != "db_storage_bytes")
    where = "hour_start >= ? AND hour_start < ?" + (" AND app_id = ?" if app_id else "")
    params: list[object] = [hour_floor(start), hour_floor(end)] + ([app_id] if app_id else [])
    return store.fetchall(
        f"SELECT app_id, date_trunc('{grain}', hour_start) AS period, {sums},"
        " max(db_storage_bytes) AS db_storage_bytes"
        f" FROM usage_ledger WHERE {where} GROUP BY ALL ORDER BY period, app_id",
        params,
    )
