-- The ledger's idempotency key is (source, app, hour) by definition (Reading.idempotency_key), so it is derived
-- on read instead of stored: a unique ~60-byte string per row was half the cost of every ingest (written to the
-- WAL, then compressed at checkpoint) and a second copy of three columns already there. Ingest dedupes on the
-- three columns; the key column reads exactly as before.
CREATE TABLE usage_ledger_v2 (
    idempotency_key TEXT GENERATED ALWAYS AS (
        source || '|' || app_id || '|' || strftime(hour_start, '%Y-%m-%dT%H:%M:%S')
    ) VIRTUAL,
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

INSERT INTO usage_ledger_v2 (app_id, provider, source, hour_start, db_rows_read, db_rows_written, db_storage_bytes,
                             requests, bandwidth_bytes, compute_ms, recorded_at)
SELECT app_id, provider, source, hour_start, db_rows_read, db_rows_written, db_storage_bytes,
       requests, bandwidth_bytes, compute_ms, recorded_at
FROM usage_ledger
ORDER BY hour_start;

DROP TABLE usage_ledger;
ALTER TABLE usage_ledger_v2 RENAME TO usage_ledger;
