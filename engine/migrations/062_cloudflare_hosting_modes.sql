-- How each app is hosted on Cloudflare: as its own Worker ('workers') or as a user Worker in the Workers for
-- Platforms dispatch namespace ('platforms'). Decided at an app's first Cloudflare deployment and kept: an app
-- never moves between the two by itself (its URL and its scripts live in one or the other).
CREATE TABLE cloudflare_hosting (
    app TEXT PRIMARY KEY,                -- deployed_apps.name (the script name)
    mode TEXT NOT NULL,                  -- workers | platforms
    decided_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);
