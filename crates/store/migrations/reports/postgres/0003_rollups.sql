-- Roll-ups for analysis at scale: the summary, the dashboard and the readiness verdict read
-- one row per policy domain and UTC day (and per failure key), not every policy and failure
-- detail ever received. Both are maintained in the transaction that stores a report
-- (store::reports), so they are never out of step with the detail tables they summarise;
-- the detail tables stay the source of truth (report show, export).

-- The listing's two derived columns, kept on the report row instead of two correlated
-- subqueries per listed report: its policy domains and the deliveries received.
ALTER TABLE tlsrpt_reports ADD COLUMN domains TEXT NOT NULL DEFAULT '';
ALTER TABLE tlsrpt_reports ADD COLUMN receipts BIGINT NOT NULL DEFAULT 1;
UPDATE tlsrpt_reports SET
    domains = COALESCE((SELECT STRING_AGG(DISTINCT COALESCE(p.policy_domain, ''), ',') FROM tlsrpt_policies p WHERE p.report = tlsrpt_reports.id), ''),
    receipts = (SELECT COUNT(*) FROM tlsrpt_receipts c WHERE c.report = tlsrpt_reports.id);

-- Sessions per policy domain ('' for no-policy-found reports without one) and UTC day; a
-- report counts once per domain and day however many of its policies name the domain.
CREATE TABLE tlsrpt_domain_days (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    PRIMARY KEY (domain, day)
);
INSERT INTO tlsrpt_domain_days (domain, day, successful, failed, reports)
SELECT COALESCE(policy_domain, ''), day, SUM(successful), SUM(failed), COUNT(DISTINCT report)
FROM tlsrpt_policies GROUP BY COALESCE(policy_domain, ''), day;

-- Failed sessions per policy domain, UTC day and one failure key: dimension is result_type,
-- organization, receiving_mx, receiving_ip, sending_ip or reason_code; item is the value
-- ('(none)' when the detail has none), at most 512 characters.
CREATE TABLE tlsrpt_failure_days (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    dimension TEXT NOT NULL,
    item TEXT NOT NULL,
    failed BIGINT NOT NULL,
    PRIMARY KEY (domain, dimension, day, item)
);
INSERT INTO tlsrpt_failure_days (domain, day, dimension, item, failed)
SELECT domain, day, dimension, item, SUM(failed) FROM (
    SELECT COALESCE(p.policy_domain, '') AS domain, p.day AS day, 'result_type' AS dimension,
        SUBSTR(f.result_type, 1, 512) AS item, f.failed_sessions AS failed
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy
    UNION ALL
    SELECT COALESCE(p.policy_domain, ''), p.day, 'organization', SUBSTR(r.organization, 1, 512), f.failed_sessions
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy JOIN tlsrpt_reports r ON r.id = p.report
    UNION ALL
    SELECT COALESCE(p.policy_domain, ''), p.day, 'receiving_mx', SUBSTR(COALESCE(f.receiving_mx_hostname, '(none)'), 1, 512), f.failed_sessions
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy
    UNION ALL
    SELECT COALESCE(p.policy_domain, ''), p.day, 'receiving_ip', SUBSTR(COALESCE(f.receiving_ip, '(none)'), 1, 512), f.failed_sessions
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy
    UNION ALL
    SELECT COALESCE(p.policy_domain, ''), p.day, 'sending_ip', SUBSTR(COALESCE(f.sending_ip, '(none)'), 1, 512), f.failed_sessions
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy
    UNION ALL
    SELECT COALESCE(p.policy_domain, ''), p.day, 'reason_code', SUBSTR(COALESCE(f.failure_reason_code, '(none)'), 1, 512), f.failed_sessions
    FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy
) AS t GROUP BY domain, day, dimension, item;
