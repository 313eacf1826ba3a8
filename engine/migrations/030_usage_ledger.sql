-- Cost analytics: the append-only usage ledger. One row per (source, app, hour) reading; the idempotency key
-- makes collecting the same hour twice add nothing. A NULL metric was not measured (never read it as zero).
CREATE TABLE usage_ledger (
    idempotency_key TEXT NOT NULL,
    app_id TEXT NOT NULL,
    provider TEXT NOT NULL,              -- the provider the reading is about: local-postgres, local, turso, ...
    source TEXT NOT NULL,                -- the usage source that measured it
    hour_start TIMESTAMP NOT NULL,       -- UTC, on the hour
    db_rows_read BIGINT,
    db_rows_written BIGINT,
    db_storage_bytes BIGINT,
    requests BIGINT,
    bandwidth_bytes BIGINT,
    compute_ms BIGINT,
    recorded_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);

-- Cumulative counters last seen per source (edge host, PostgreSQL statistics), so hourly deltas survive restarts.
CREATE TABLE usage_counter_state (
    source TEXT NOT NULL,
    subject TEXT NOT NULL,               -- app id (or database name)
    metric TEXT NOT NULL,
    value BIGINT NOT NULL,
    hour_start TIMESTAMP NOT NULL,       -- the hour the value closed
    PRIMARY KEY (source, subject, metric)
);
