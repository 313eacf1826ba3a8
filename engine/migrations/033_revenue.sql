-- Revenue per user and month: from Stripe invoices when Stripe is configured, else each tier's list price.
CREATE TABLE revenue (
    month DATE NOT NULL,
    user_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    source TEXT NOT NULL,                 -- stripe | list_price
    stripe_invoice_id TEXT,
    recorded_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    PRIMARY KEY (month, user_id, source)
);

-- Stripe webhook events already applied (replay protection beyond the signature's timestamp tolerance).
CREATE TABLE stripe_events (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);

-- Billing meter events sent for usage over quota; the identifier is what Stripe de-duplicates on.
CREATE TABLE stripe_meter_events (
    identifier TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    month DATE NOT NULL,
    metric TEXT NOT NULL,
    value BIGINT NOT NULL,
    sent_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);

-- Stripe objects per tier (product + price), found again by lookup key.
CREATE TABLE stripe_tier_prices (
    tier TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    price_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL
);
