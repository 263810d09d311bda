-- Certificates of the policy hosts `mta-sts.<domain>` (RFC 8461 §3.3: the policy is fetched
-- over HTTPS with a certificate valid for that name). Stored in the database so that every
-- `serve` instance on it presents the same certificate; one row per hosted domain, replaced on
-- renewal. `source` is `acme` (ordered by serve) or `manual` (files an administrator gave).
-- The key is stored as PEM: whoever can read this database can impersonate the policy hosts,
-- so protect it as you protect the key files themselves.
CREATE TABLE hosted_certificates (
    domain TEXT PRIMARY KEY NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
