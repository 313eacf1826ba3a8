"""The append-only usage ledger in DuckDB, ingested in bulk through Arrow.

Every reading has an idempotency key (source, app, hour): a key already in the ledger adds nothing, so
collecting an hour twice, or replaying a batch after a crash, is harmless. The key is those three columns, so
the ledger derives its ``idempotency_key`` column on read (migration 036) instead of storing a string per row.
Rows hold integer refs to the app, provider and source names (``ledger_readings``, migration 037); the
``usage_ledger`` view reads them back as names.
Readings for a closed month are refused (counted, not written): closing a month freezes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
import pyarrow as pa

from engine.costs.usage import GAUGES, METRICS, Reading, hour_floor
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


def _greatest(column: str) -> str:
    """The larger of the stored and the new gauge; NULL (not measured) only while both sides are NULL."""
    return (
        f"{column} = CASE WHEN daily_usage.{column} IS NULL THEN excluded.{column}"
        f" WHEN excluded.{column} IS NULL THEN daily_usage.{column}"
        f" ELSE greatest(daily_usage.{column}, excluded.{column}) END"
    )


# Counters the daily rollup sums under their own name (the original six are spelled out below).
PLAIN_COUNTERS = ("build_ms", "builds_android", "builds_ios", "build_minutes", "fee_cents")

# The batch's new rows (the registered ``ledger_batch``) summed per app, provider and day.
DAILY_BATCH = (
    "SELECT app_id, provider, CAST(hour_start AS DATE) AS day, sum(db_rows_read) AS db_rows_read,"
    " sum(db_rows_written) AS db_rows_written, max(db_storage_bytes) AS db_storage_bytes_max,"
    " sum(db_storage_bytes) AS db_storage_bytes_sum, count(db_storage_bytes) AS db_storage_bytes_count,"
    " count(*) FILTER (WHERE coalesce(db_rows_read, 0) + coalesce(db_rows_written, 0) > 0) AS db_active_hours,"
    " sum(requests) AS requests, sum(bandwidth_bytes) AS bandwidth_bytes, sum(compute_ms) AS compute_ms,"
    " sum(cpu_ms) AS cpu_ms, max(memory_peak_bytes) AS memory_peak_bytes,"
    " sum(memory_avg_bytes) AS memory_byte_hours, "
    + ", ".join(f"sum({m}) AS {m}" for m in PLAIN_COUNTERS)
    + " FROM ledger_batch GROUP BY ALL"
)
# Days the daily rollup has no row for yet take a plain insert; otherwise the batch is folded in by MERGE.
DAILY_INSERT = f"INSERT INTO daily_usage BY NAME {DAILY_BATCH}"
DAILY_MERGE = (
    f"MERGE INTO daily_usage USING ({DAILY_BATCH}) AS excluded"
    " ON daily_usage.app_id = excluded.app_id AND daily_usage.provider = excluded.provider"
    " AND daily_usage.day = excluded.day AND daily_usage.day BETWEEN CAST($lo AS DATE) AND CAST($hi AS DATE)"
    " WHEN MATCHED THEN UPDATE SET "
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
            _add("cpu_ms"),
            _greatest("memory_peak_bytes"),
            _add("memory_byte_hours"),
            *(_add(m) for m in PLAIN_COUNTERS),
        ]
    )
    + " WHEN NOT MATCHED THEN INSERT BY NAME"
)

_METRIC_COLUMNS = ", ".join(METRICS)
# Whether the ledger holds readings in the batch's hours, and the daily rollup rows for its days: range probes
# that zone maps answer without reading rows.
OVERLAP_SQL = (
    "SELECT EXISTS (SELECT 1 FROM ledger_readings WHERE hour_start BETWEEN $lo AND $hi),"
    " EXISTS (SELECT 1 FROM daily_usage WHERE day BETWEEN CAST($lo AS DATE) AND CAST($hi AS DATE))"
)
# The batch's keys already in the ledger, read through the ``usage_ledger`` view (names, not refs).
SEEN_SQL = (
    f"SELECT {', '.join(KEY_COLUMNS)} FROM usage_ledger SEMI JOIN ledger_batch USING ({', '.join(KEY_COLUMNS)})"
    " WHERE usage_ledger.hour_start BETWEEN $lo AND $hi"
)
# The batch's distinct (app, provider, source) triples; names the ledger has not seen yet get the next dense
# refs (the view resolves a ref by list position); the triples with their refs, which the readings join once.
# A NULL ref: a name not in ``ledger_names`` yet.
ADD_NAMES = (
    "INSERT INTO ledger_names"
    " SELECT (SELECT coalesce(max(ref), 0) FROM ledger_names) + row_number() OVER (ORDER BY name), name"
    " FROM (SELECT app_id AS name FROM ledger_triples UNION SELECT provider FROM ledger_triples"
    " UNION SELECT source FROM ledger_triples) ANTI JOIN ledger_names USING (name)"
)
TRIPLE_REFS = (
    "SELECT t.*, a.ref AS app_ref, p.ref AS provider_ref, s.ref AS source_ref"
    " FROM (SELECT DISTINCT app_id, provider, source FROM ledger_batch) t"
    " LEFT JOIN ledger_names a ON a.name = t.app_id LEFT JOIN ledger_names p ON p.name = t.provider"
    " LEFT JOIN ledger_names s ON s.name = t.source"
)
INSERT_READINGS = (
    f"INSERT INTO ledger_readings (app_ref, provider_ref, source_ref, hour_start, {_METRIC_COLUMNS})"
    f" SELECT app_ref, provider_ref, source_ref, hour_start, {_METRIC_COLUMNS}"
    " FROM ledger_batch JOIN ledger_refs USING (app_id, provider, source)"
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
        missing = [
            pl.lit(None).alias(name) for name in LEDGER_SCHEMA if name not in frame.columns
        ]  # not measured
        frame = frame.with_columns(missing).select(
            [pl.col(name).cast(dtype) for name, dtype in LEDGER_SCHEMA.items()]
        )
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
    with store.transaction() as connection:
        registered: list[str] = []

        def register(name: str, table: pa.Table) -> None:
            connection.register(name, table)
            registered.append(name)

        try:
            register("ledger_batch", frame.to_arrow())
            # Keys already in the ledger can only be in the batch's hours. Usually none are (each hour is collected
            # once), so the range probe decides whether the semi-join is needed at all.
            [(overlap, days_overlap)] = connection.execute(
                OVERLAP_SQL, {"lo": bounds[0], "hi": bounds[1]}
            ).fetchall()
            if overlap:
                seen = connection.sql(SEEN_SQL, params={"lo": bounds[0], "hi": bounds[1]}).pl()
                if seen.height:
                    frame = frame.join(seen, on=list(KEY_COLUMNS), how="anti")
                    register("ledger_batch", frame.to_arrow())
            if frame.height:
                refs = connection.sql(TRIPLE_REFS).pl()
                if refs.select(pl.any_horizontal(pl.col("^.*_ref$").is_null()).any()).item():
                    register("ledger_triples", refs.to_arrow())
                    connection.execute(ADD_NAMES)  # only when a name is new: most batches name no new app
                    refs = connection.sql(TRIPLE_REFS).pl()
                register("ledger_refs", refs.to_arrow())
                if days_overlap:
                    connection.execute(DAILY_MERGE, {"lo": bounds[0], "hi": bounds[1]})
                else:
                    connection.execute(DAILY_INSERT)
                connection.execute(INSERT_READINGS)
        finally:
            for name in set(registered):
                connection.unregister(name)
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
    # Counters add up; a peak is the largest; the memory average of a day is the mean of its hourly averages.
    sums = ", ".join(
        f"CAST(round(avg({m})) AS BIGINT) AS {m}"
        if m == "memory_avg_bytes"
        else f"max({m}) AS {m}"
        if m in GAUGES
        else f"sum({m}) AS {m}"
        for m in METRICS
    )
    where = "hour_start >= ? AND hour_start < ?" + (" AND app_id = ?" if app_id else "")
    params: list[object] = [hour_floor(start), hour_floor(end)] + ([app_id] if app_id else [])
    return store.fetchall(
        f"SELECT app_id, date_trunc('{grain}', hour_start) AS period, {sums}"
        f" FROM usage_ledger WHERE {where} GROUP BY ALL ORDER BY period, app_id",
        params,
    )
