-- Users' own domains on a cloud host (a Cloudflare for SaaS custom hostname, a Vercel project domain, a Workers
-- Custom Domain), as the host last reported them. Kept apart from ``domains`` (the edge host's, checked by
-- Launchdeck's own DNS checks): a cloud host validates its domains and issues their certificates itself.
CREATE TABLE cloud_domains (
    domain TEXT PRIMARY KEY,              -- ASCII (IDNA), lower case
    app TEXT NOT NULL,                    -- deployed_apps.name
    host TEXT NOT NULL,                   -- cloudflare | vercel
    status TEXT NOT NULL,                 -- active | pending | failed (the host's own words in ``detail``)
    certificate_status TEXT NOT NULL,     -- issued | pending | failed
    records JSON NOT NULL,                -- the DNS records the domain's owner publishes
    detail TEXT,
    checked_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    verified_at TIMESTAMP
);
