-- Daily usage rollup, maintained by the ledger's ingest in the same transaction as the readings it adds, so a
-- month is costed from ~30 rows per app instead of ~720. NULL: not measured that day. Storage keeps sum and
-- count so the monthly average is exact. Backfilled from any ledger rows already present.
CREATE TABLE daily_usage (
    app_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    day DATE NOT NULL,
    db_rows_read BIGINT,
    db_rows_written BIGINT,
    db_storage_bytes_max BIGINT,
    db_storage_bytes_sum HUGEINT,
    db_storage_bytes_count BIGINT NOT NULL,
    db_active_hours BIGINT NOT NULL,
    requests BIGINT,
    bandwidth_bytes BIGINT,
    compute_ms BIGINT,
    PRIMARY KEY (app_id, provider, day)
);

INSERT INTO daily_usage
SELECT app_id, provider, CAST(hour_start AS DATE),
       sum(db_rows_read), sum(db_rows_written), max(db_storage_bytes), sum(db_storage_bytes), count(db_storage_bytes),
       count(*) FILTER (WHERE coalesce(db_rows_read, 0) + coalesce(db_rows_written, 0) > 0),
       sum(requests), sum(bandwidth_bytes), sum(compute_ms)
FROM usage_ledger
GROUP BY ALL;
