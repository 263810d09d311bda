-- What `serve`'s monitoring found wrong with each hosted domain at its last check, one row per
-- problem (the check's finding code, or a hosting code such as `hosting-txt-id-stale`, and
-- the MX host or other subject it is about), with when it was first and last seen: a problem
-- that appears or goes away is alerted once, not on every round.
CREATE TABLE domain_problems (
    domain TEXT NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (domain, code, subject)
);
-- When each hosted domain was last checked.
CREATE TABLE domain_checks (
    domain TEXT PRIMARY KEY NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
    checked_at BIGINT NOT NULL
);
