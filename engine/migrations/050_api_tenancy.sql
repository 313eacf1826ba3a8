-- The builder platform's API: uploads, token scopes, and tiers that default to the subscription's.

-- An owner's uploads. Content is stored once per digest (uploads/<kind>/<digest>); each owner that sent
-- it gets its own id, and only that owner's routes may name it.
CREATE TABLE uploads (
    id UUID PRIMARY KEY,
    owner TEXT NOT NULL,                 -- the principal that uploaded it (a platform, or 'operator')
    kind TEXT NOT NULL,                  -- app | preview
    format TEXT NOT NULL,                -- tar.gz | zip | sqlite | sql
    digest TEXT NOT NULL,                -- SHA-256 of the body, hex
    size_bytes BIGINT NOT NULL,
    files INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner, kind, digest)
);

-- A platform token may be limited to the apps of some of the platform's users (NULL: all of them).
ALTER TABLE api_tokens ADD COLUMN users JSON;

-- An app with no subscription is on the free tier, here as in enforcement.
ALTER TABLE deployed_apps ALTER COLUMN tier SET DEFAULT 'free';
UPDATE deployed_apps SET tier = 'free'
WHERE user_id NOT IN (SELECT user_id FROM user_subscriptions WHERE status <> 'canceled');

