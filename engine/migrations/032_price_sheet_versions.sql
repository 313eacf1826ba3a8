-- Every price sheet version ever loaded. Immutable: a price change is a new row with a new effective_from.
CREATE TABLE price_sheet_versions (
    provider TEXT NOT NULL,
    effective_from DATE NOT NULL,
    content_hash TEXT NOT NULL,
    content JSON NOT NULL,
    source TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    PRIMARY KEY (provider, effective_from)
);
