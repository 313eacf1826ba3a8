-- Stripe revenue is kept per invoice, so a webhook and a sync that both see an invoice write the same row
-- (the month's revenue is the sum of its invoices, whatever order they arrive in). ``revenue`` rows with
-- source 'stripe' are that sum per user and month, rewritten whenever an invoice changes.
CREATE TABLE stripe_invoices (
    invoice_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    month DATE NOT NULL,                  -- the month the invoice was created in
    amount_cents BIGINT NOT NULL,         -- amount_paid
    status TEXT NOT NULL,                 -- paid | void | uncollectible | ...
    event_at TIMESTAMP NOT NULL,          -- Stripe's time of the newest event (or sync) that set this row
    recorded_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);
INSERT INTO stripe_invoices (invoice_id, user_id, month, amount_cents, status, event_at)
SELECT coalesce(stripe_invoice_id, 'legacy-' || user_id || '-' || strftime(month, '%Y-%m')), user_id, month,
       amount_cents, 'paid', recorded_at
FROM revenue WHERE source = 'stripe';

-- Subscription events are applied in Stripe's order (event ``created``): an older event arriving late
-- leaves a newer state alone.
ALTER TABLE user_subscriptions ADD COLUMN stripe_event_at TIMESTAMP;
