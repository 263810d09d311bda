-- TLS-RPT results collected from this site's MTAs (the sending side, RFC 8460 §4), per UTC
-- day, and the reports made of them. Counts are added by every collector (upserts), so
-- several collectors may share one database.

-- Sessions per day and group: one recipient domain, one TLSRPT record text, one policy.
CREATE TABLE outbound_sessions (
    day TEXT NOT NULL,
    -- hex SHA-256 of (domain, record, policy), computed by the collector
    group_key TEXT NOT NULL,
    domain TEXT NOT NULL,
    record TEXT NOT NULL,
    -- JSON: policy-type, policy-string, policy-domain, mx-host (RFC 8460 §4.4 "policy")
    policy TEXT NOT NULL,
    successes BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (day, group_key)
);
CREATE INDEX outbound_sessions_domain ON outbound_sessions (day, domain);

-- Failed sessions per day, group and failure detail (RFC 8460 §4.4 "failure-details").
CREATE TABLE outbound_failures (
    day TEXT NOT NULL,
    group_key TEXT NOT NULL,
    -- hex SHA-256 of the detail
    detail_key TEXT NOT NULL,
    -- JSON: the failure detail without its count
    detail TEXT NOT NULL,
    sessions BIGINT NOT NULL,
    PRIMARY KEY (day, group_key, detail_key)
);

-- Days whose reports have been planned (so a day is planned once).
CREATE TABLE outbound_days (
    day TEXT PRIMARY KEY,
    planned_at BIGINT NOT NULL,
    reports BIGINT NOT NULL
);

-- One report to one destination (an rua URI of the record it was made for).
CREATE TABLE outbound_deliveries (
    day TEXT NOT NULL,
    domain TEXT NOT NULL,
    -- hex SHA-256 of the TLSRPT record text
    record_key TEXT NOT NULL,
    destination TEXT NOT NULL,
    report_id TEXT NOT NULL,
    -- pending, sent, failed (given up), skipped (nothing to send to)
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- unix seconds: next attempt (also moved forward while an attempt is in flight)
    due_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL,
    last_error TEXT,
    sent_at BIGINT,
    PRIMARY KEY (day, domain, record_key, destination)
);
CREATE INDEX outbound_deliveries_due ON outbound_deliveries (state, due_at);
