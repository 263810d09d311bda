-- Hosted MTA-STS domains (`mtasts serve`, `mtasts domain`): one row per domain with the policy
-- served now, and every version ever published, with who, when and why. The policy `id`
-- (RFC 8461 §3.1) changes with every version; a version is written in one transaction with
-- the row, so what is served and its history never disagree.
CREATE TABLE hosted_domains (
    domain TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    version BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_age BIGINT NOT NULL,
    -- The longest max_age ever published: a retired domain is served until it has passed
    -- (RFC 8461 §8.3), counted from the retirement.
    longest_max_age BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE INDEX hosted_domains_tenant ON hosted_domains (tenant, domain);

CREATE TABLE hosted_policy_versions (
    domain TEXT NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_age BIGINT NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, version)
);
