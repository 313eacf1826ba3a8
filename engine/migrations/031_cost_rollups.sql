-- Frozen monthly results, written when a month is closed. Open months are computed from the ledger on demand.
CREATE TABLE closed_months (
    month DATE PRIMARY KEY,              -- first day of the month
    closed_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    closed_by TEXT NOT NULL,
    method TEXT NOT NULL                 -- allocation method used
);

CREATE TABLE monthly_cost_lines (
    month DATE NOT NULL,
    provider TEXT NOT NULL,
    plan TEXT NOT NULL,
    sheet_effective_from DATE NOT NULL,
    app_id TEXT,                          -- NULL: the idle line
    component TEXT NOT NULL,
    cents BIGINT NOT NULL
);
CREATE INDEX monthly_cost_lines_month ON monthly_cost_lines (month);

CREATE TABLE monthly_app_usage (
    month DATE NOT NULL,
    app_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    metrics JSON NOT NULL,
    PRIMARY KEY (month, app_id, provider)
);

CREATE TABLE monthly_margins (
    month DATE NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    payment_fee_cents BIGINT NOT NULL,
    cost_cents BIGINT NOT NULL,
    railway_baseline_cents BIGINT NOT NULL,
    PRIMARY KEY (month, app_id)
);
