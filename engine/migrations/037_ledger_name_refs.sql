-- The ledger stores integer references instead of repeating the app id (a 36-character UUID text), provider
-- and source on every row: strings were most of an ingest's cost. ``ledger_names`` holds each distinct name
-- once; refs are dense (1, 2, 3, ... in the order names first arrive, never deleted), so the ``usage_ledger``
-- view resolves a ref by list position against one list of all names, not by a join per column: a count or
-- max over the view reads only the readings table, and the view shows exactly the columns the table had.
CREATE TABLE ledger_names (
    ref INTEGER PRIMARY KEY,             -- 1-based position in list(name ORDER BY ref)
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE ledger_readings (
    app_ref INTEGER NOT NULL,
    provider_ref INTEGER NOT NULL,       -- the provider the reading is about: local-postgres, local, turso, ...
    source_ref INTEGER NOT NULL,         -- the usage source that measured it
    hour_start TIMESTAMP NOT NULL,       -- UTC, on the hour
    db_rows_read BIGINT,
    db_rows_written BIGINT,
    db_storage_bytes BIGINT,
    requests BIGINT,
    bandwidth_bytes BIGINT,
    compute_ms BIGINT,
    recorded_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);

INSERT INTO ledger_names
SELECT row_number() OVER (ORDER BY name), name
FROM (SELECT app_id AS name FROM usage_ledger UNION SELECT provider FROM usage_ledger UNION SELECT source FROM usage_ledger);

INSERT INTO ledger_readings
SELECT a.ref, p.ref, s.ref, l.hour_start, l.db_rows_read, l.db_rows_written, l.db_storage_bytes, l.requests,
       l.bandwidth_bytes, l.compute_ms, l.recorded_at
FROM usage_ledger l
JOIN ledger_names a ON a.name = l.app_id
JOIN ledger_names p ON p.name = l.provider
JOIN ledger_names s ON s.name = l.source
ORDER BY l.hour_start;

DROP TABLE usage_ledger;

CREATE VIEW usage_ledger AS
WITH names AS (SELECT list(name ORDER BY ref) AS list FROM ledger_names)
SELECT
    names.list[r.source_ref] || '|' || names.list[r.app_ref] || '|' || strftime(r.hour_start, '%Y-%m-%dT%H:%M:%S')
        AS idempotency_key,
    names.list[r.app_ref] AS app_id,
    names.list[r.provider_ref] AS provider,
    names.list[r.source_ref] AS source,
    r.hour_start,
    r.db_rows_read,
    r.db_rows_written,
    r.db_storage_bytes,
    r.requests,
    r.bandwidth_bytes,
    r.compute_ms,
    r.recorded_at
FROM ledger_readings r, names;

-- The daily rollup loses its primary key: ingest keeps one row per (app, provider, day) itself (a plain insert
-- for days with no rows yet, a MERGE where there are), and the key's index on text columns cost more to
-- maintain on every ingest than the rest of the rollup, and memory in proportion to apps x days.
CREATE TABLE daily_usage_v2 (
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
    compute_ms BIGINT
);
INSERT INTO daily_usage_v2 SELECT * FROM daily_usage ORDER BY day;
DROP TABLE daily_usage;
ALTER TABLE daily_usage_v2 RENAME TO daily_usage;
