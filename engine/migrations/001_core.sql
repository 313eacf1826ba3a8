-- Core tables. The plan's deployed_apps / deployment_usage / user_subscriptions keep the plan's columns;
-- UUID defaults use DuckDB's uuid(); JSONB is JSON; BYTEA is BLOB. Money is integer cents.

CREATE TABLE deployed_apps (
    id UUID PRIMARY KEY DEFAULT uuid(),
    name TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,               -- owner: the user (or platform principal) the app belongs to
    project_id TEXT,
    platform TEXT NOT NULL DEFAULT 'web',  -- web | ios | android | windows | macos | linux
    status TEXT NOT NULL DEFAULT 'provisioning', -- provisioning | deploying | active | failed | suspended | destroyed
    deployment_url TEXT,
    custom_domain TEXT,
    database_provider TEXT,             -- turso | neon | byo | local-libsql | local-postgres
    database_id TEXT,
    database_url_encrypted BLOB,        -- vault ciphertext, never plaintext
    hosting_provider TEXT,              -- cloudflare | vercel | local
    hosting_project_id TEXT,
    tier TEXT NOT NULL DEFAULT 'starter',
    config JSON,
    live_deployment_id UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_deployed_at TIMESTAMPTZ
);

CREATE TABLE deployment_usage (
    id UUID PRIMARY KEY DEFAULT uuid(),
    deployed_app_id UUID NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end TIMESTAMPTZ NOT NULL,
    db_reads BIGINT DEFAULT 0,
    db_writes BIGINT DEFAULT 0,
    db_storage_bytes BIGINT DEFAULT 0,
    requests BIGINT DEFAULT 0,
    bandwidth_bytes BIGINT DEFAULT 0,
    compute_ms BIGINT DEFAULT 0,
    database_cost_cents INTEGER DEFAULT 0,
    hosting_cost_cents INTEGER DEFAULT 0,
    total_cost_cents INTEGER DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE user_subscriptions (
    id UUID PRIMARY KEY DEFAULT uuid(),
    user_id TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL DEFAULT 'free',
    status TEXT NOT NULL DEFAULT 'active',   -- active | past_due | canceled
    max_deployed_apps INTEGER NOT NULL DEFAULT 0,
    max_custom_domains INTEGER NOT NULL DEFAULT 0,
    stripe_customer_id TEXT,
    stripe_subscription_id TEXT,
    current_period_start TIMESTAMPTZ,
    current_period_end TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A deployment is one run of a pipeline for an app.
CREATE TABLE deployments (
    id UUID PRIMARY KEY,
    app_id UUID NOT NULL,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,               -- pending | running | succeeded | failed | cancelled | undone
    params JSON NOT NULL,               -- the request (no secrets: those live in the vault)
    state JSON NOT NULL DEFAULT '{}',   -- outputs of finished steps, restored on resume
    config_snapshot JSON,               -- what rollback brings back
    url TEXT,
    error TEXT,
    requested_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    cancel_requested BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX deployments_app ON deployments (app_id);

CREATE TABLE step_runs (
    deployment_id UUID NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,               -- pending | running | succeeded | failed | cancelled | undone | skipped
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    detail TEXT,
    progress_done BIGINT,
    progress_total BIGINT,
    progress_unit TEXT,
    error TEXT,
    PRIMARY KEY (deployment_id, position)
);

CREATE SEQUENCE deployment_log_seq;
CREATE TABLE deployment_log (
    id BIGINT PRIMARY KEY DEFAULT nextval('deployment_log_seq'),
    deployment_id UUID NOT NULL,
    logged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    step TEXT,
    line TEXT NOT NULL
);
CREATE INDEX deployment_log_deployment ON deployment_log (deployment_id);

CREATE SEQUENCE audit_log_seq;
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_seq'),
    logged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSON
);

-- Engine API tokens, stored as SHA-256 hashes only.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY DEFAULT uuid(),
    name TEXT NOT NULL,
    role TEXT NOT NULL,                 -- operator | finance | platform
    principal TEXT NOT NULL,            -- for platform tokens: whose apps it may see
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

-- Vault: ciphertext only. key_id is a fingerprint of the key that sealed the value.
CREATE TABLE secrets (
    scope TEXT NOT NULL,                -- 'platform' or an app id
    name TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    key_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, name)
);
