-- ACME (RFC 8555) for the policy hosts' certificates.
--
-- acme_accounts: one account per ACME directory URL, its credentials (the account key, JSON
-- as instant-acme serialises it) shared by every instance on this database.
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY NOT NULL,
    credentials TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- acme_challenges: HTTP-01 answers (RFC 8555 §8.3) while an order is open, so that whichever
-- instance the CA's validation reaches behind a load balancer can answer it.
CREATE TABLE acme_challenges (
    token TEXT PRIMARY KEY NOT NULL,
    key_authorization TEXT NOT NULL,
    domain TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
-- acme_status: per hosted domain, the last ordering attempt and when to try again (back-off
-- after a failure, so a broken delegation does not hammer the CA's rate limits).
CREATE TABLE acme_status (
    domain TEXT PRIMARY KEY NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
    failures BIGINT NOT NULL,
    last_attempt BIGINT NOT NULL,
    last_error TEXT,
    next_attempt BIGINT NOT NULL
);
-- hosting_locks: named leases (one instance orders certificates at a time). A lease is held
-- until expires_at; its holder renews it, anyone may take it once it has expired.
CREATE TABLE hosting_locks (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
