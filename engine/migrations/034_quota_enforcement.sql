-- Per-user monthly spend caps (paid tiers) and the over-quota actions already taken, so each is taken once.
CREATE TABLE spend_caps (
    user_id TEXT PRIMARY KEY,
    cap_cents BIGINT NOT NULL,
    set_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);

CREATE TABLE quota_actions (
    month DATE NOT NULL,
    app_id TEXT NOT NULL,
    action TEXT NOT NULL,                 -- notify | suspend
    reason TEXT NOT NULL,
    taken_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    PRIMARY KEY (month, app_id, action)
);
