-- Metrics the ledger did not carry yet (one nullable column each; NULL: not measured):
--   cpu_ms             an app server's CPU time (user + system of its process tree), counter
--   memory_peak_bytes  its largest resident memory sampled in the hour, gauge
--   memory_avg_bytes   its resident memory averaged over the whole hour (0 while stopped), gauge
--   build_ms           wall-clock time of builds run on this machine (install + build; the sandbox does not
--                      report CPU time yet), counter
--   builds_android, builds_ios, build_minutes   EAS builds and their minutes, counters
--   fee_cents          fixed fees as charged (store registrations), counter
ALTER TABLE ledger_readings ADD COLUMN cpu_ms BIGINT;
ALTER TABLE ledger_readings ADD COLUMN memory_peak_bytes BIGINT;
ALTER TABLE ledger_readings ADD COLUMN memory_avg_bytes BIGINT;
ALTER TABLE ledger_readings ADD COLUMN build_ms BIGINT;
ALTER TABLE ledger_readings ADD COLUMN builds_android BIGINT;
ALTER TABLE ledger_readings ADD COLUMN builds_ios BIGINT;
ALTER TABLE ledger_readings ADD COLUMN build_minutes BIGINT;
ALTER TABLE ledger_readings ADD COLUMN fee_cents BIGINT;

CREATE OR REPLACE VIEW usage_ledger AS
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
    r.cpu_ms,
    r.memory_peak_bytes,
    r.memory_avg_bytes,
    r.build_ms,
    r.builds_android,
    r.builds_ios,
    r.build_minutes,
    r.fee_cents,
    r.recorded_at
FROM ledger_readings r, names;

-- The daily rollup: counters summed; memory keeps its peak and the sum of the hourly averages (byte-hours),
-- so a month's memory in GB-minutes is exact.
ALTER TABLE daily_usage ADD COLUMN cpu_ms BIGINT;
ALTER TABLE daily_usage ADD COLUMN memory_peak_bytes BIGINT;
ALTER TABLE daily_usage ADD COLUMN memory_byte_hours HUGEINT;
ALTER TABLE daily_usage ADD COLUMN build_ms BIGINT;
ALTER TABLE daily_usage ADD COLUMN builds_android BIGINT;
ALTER TABLE daily_usage ADD COLUMN builds_ios BIGINT;
ALTER TABLE daily_usage ADD COLUMN build_minutes BIGINT;
ALTER TABLE daily_usage ADD COLUMN fee_cents BIGINT;

-- A closed month keeps both Railway baselines: the reserved size and what the app measured (NULL: the app
-- never ran on this machine that month, so only the reserved size applies).
ALTER TABLE monthly_margins ADD COLUMN railway_measured_cents BIGINT;
