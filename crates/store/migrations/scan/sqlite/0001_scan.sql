-- Scan runs, the shared work queue and per-domain results (SQLite).
-- Timestamps are unix seconds; JSON is TEXT; code lists are space-separated TEXT.

CREATE TABLE scan_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    input        TEXT    NOT NULL,
    options_json TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    loaded       BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE scan_queue (
    run_id      INTEGER NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    domain      TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done')),
    worker      TEXT,
    lease_until BIGINT,
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, domain)
);

-- Claiming walks pending rows (and claimed rows, for expired leases) in seq order.
CREATE INDEX scan_queue_claim ON scan_queue (run_id, state, seq);

CREATE TABLE scan_results (
    run_id         INTEGER NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    domain         TEXT    NOT NULL,
    seq            BIGINT,
    category       TEXT    NOT NULL,
    grade          TEXT    NOT NULL,
    txt_present    BOOLEAN NOT NULL,
    policy_valid   BOOLEAN NOT NULL,
    mode           TEXT,
    max_age        BIGINT,
    mx_covered     BOOLEAN,
    mx_tls_ok      BOOLEAN,
    tlsrpt_present BOOLEAN NOT NULL,
    tlsrpt_valid   BOOLEAN NOT NULL,
    provider       TEXT,
    error_codes    TEXT    NOT NULL DEFAULT '',
    warning_codes  TEXT    NOT NULL DEFAULT '',
    report_json    TEXT    NOT NULL,
    elapsed_ms     BIGINT  NOT NULL,
    finished_at    BIGINT  NOT NULL,
    PRIMARY KEY (run_id, domain)
);

-- Streaming results in queue order.
CREATE INDEX scan_results_seq ON scan_results (run_id, seq);
-- Results that never went through the queue (invalid input lines), in domain order.
CREATE INDEX scan_results_unqueued ON scan_results (run_id, domain) WHERE seq IS NULL;
