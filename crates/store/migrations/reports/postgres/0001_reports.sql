-- TLS-RPT aggregate reports received (RFC 8460 §4), one row per report; a report is the
-- same report when organisation, report-id and date range are equal (received twice, by mail
-- and HTTPS, it is stored once; every receipt is recorded).
CREATE TABLE tlsrpt_reports (
    id BIGSERIAL PRIMARY KEY,
    organization TEXT NOT NULL,
    report_id TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    contact_info TEXT,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    channel TEXT NOT NULL,
    submitter TEXT,
    report_domain TEXT,
    dkim TEXT,
    warnings_json TEXT NOT NULL,
    report_json TEXT NOT NULL,
    raw_json TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (organization, report_id, start_at, end_at)
);
CREATE INDEX tlsrpt_reports_start ON tlsrpt_reports (start_at);

CREATE TABLE tlsrpt_receipts (
    report BIGINT NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    duplicate BOOLEAN NOT NULL
);
CREATE INDEX tlsrpt_receipts_report ON tlsrpt_receipts (report);

CREATE TABLE tlsrpt_policies (
    id BIGSERIAL PRIMARY KEY,
    report BIGINT NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_domain TEXT,
    policy_strings_json TEXT NOT NULL,
    mx_hosts_json TEXT NOT NULL,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    day BIGINT NOT NULL,
    extra_json TEXT NOT NULL
);
CREATE INDEX tlsrpt_policies_domain_day ON tlsrpt_policies (policy_domain, day);
CREATE INDEX tlsrpt_policies_report ON tlsrpt_policies (report);

CREATE TABLE tlsrpt_failures (
    policy BIGINT NOT NULL REFERENCES tlsrpt_policies (id) ON DELETE CASCADE,
    result_type TEXT NOT NULL,
    sending_ip TEXT,
    receiving_mx_hostname TEXT,
    receiving_mx_helo TEXT,
    receiving_ip TEXT,
    failed_sessions BIGINT NOT NULL,
    additional_information TEXT,
    failure_reason_code TEXT,
    extra_json TEXT NOT NULL
);
CREATE INDEX tlsrpt_failures_policy ON tlsrpt_failures (policy);
