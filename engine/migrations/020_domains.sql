-- Custom domains of apps. `domain` is the ASCII (IDNA) form in lower case; `app` is deployed_apps.name.
-- The TXT value is a public verification token (it is published in DNS), not a secret.
CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    unicode_name TEXT NOT NULL,
    cname_target TEXT NOT NULL,
    txt_name TEXT NOT NULL,
    txt_value TEXT NOT NULL,
    dns_status TEXT NOT NULL DEFAULT 'pending',          -- pending | valid | invalid
    certificate_status TEXT NOT NULL DEFAULT 'pending',  -- pending | issued | failed
    detail TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    checked_at TIMESTAMPTZ,
    verified_at TIMESTAMPTZ
);
CREATE INDEX domains_app ON domains (app);
