//! The SQL text of the scan store, once per backend.
//!
//! Most statements are the same on both backends and are written once; `pick!` chooses where
//! they differ and `now!` is "the database clock in unix seconds". Placeholders are `$N`
//! (SQLite accepts them too).

/// Every statement the store runs with fixed text (bulk statements are built with
/// `QueryBuilder` from the fragments at the end).
pub(crate) struct Sql {
    /// Starts a write transaction (SQLite: take the write lock up front).
    pub(crate) begin_write: &'static str,
    /// The database clock, unix seconds, as an SQL expression.
    pub(crate) now: &'static str,
    pub(crate) create_run: &'static str,
    pub(crate) run_info: &'static str,
    pub(crate) runs: &'static str,
    pub(crate) latest_unfinished_run: &'static str,
    pub(crate) lock_run: &'static str,
    pub(crate) max_seq: &'static str,
    pub(crate) enqueue: &'static str,
    pub(crate) mark_loaded: &'static str,
    pub(crate) finish_run: &'static str,
    pub(crate) claim: &'static str,
    pub(crate) progress: &'static str,
    pub(crate) results_by_seq: &'static str,
    pub(crate) results_unqueued: &'static str,
    pub(crate) result: &'static str,
    pub(crate) diff: &'static str,
}

macro_rules! now {
    (sqlite) => {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    };
    (pg) => {
        "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)"
    };
}

macro_rules! pick {
    (sqlite, $sqlite:expr, $pg:expr) => {
        $sqlite
    };
    (pg, $sqlite:expr, $pg:expr) => {
        $pg
    };
}

/// The columns of a [`crate::ResultRow`] (plus `seq`) as selected by the result queries.
macro_rules! result_columns {
    () => {
        "domain, seq, category, grade, txt_present, policy_valid, mode, max_age, mx_covered, \
         mx_tls_ok, tlsrpt_present, tlsrpt_valid, provider, error_codes, warning_codes, \
         report_json, elapsed_ms"
    };
}

/// Column list for inserting results; the values are pushed by the store in this order.
pub(crate) const INSERT_RESULTS: &str = "INSERT INTO scan_results (run_id, domain, seq, category, \
     grade, txt_present, policy_valid, mode, max_age, mx_covered, mx_tls_ok, tlsrpt_present, \
     tlsrpt_valid, provider, error_codes, warning_codes, report_json, elapsed_ms, finished_at) ";

macro_rules! sql_set {
    ($d:tt) => {
        Sql {
            begin_write: pick!($d, "BEGIN IMMEDIATE", "BEGIN"),
            now: now!($d),
            create_run: concat!(
                "INSERT INTO scan_runs (input, options_json, started_at, loaded) VALUES ($1, $2, ",
                now!($d),
                ", FALSE) RETURNING id"
            ),
            run_info: "SELECT id, input, options_json, started_at, finished_at, loaded \
                       FROM scan_runs WHERE id = $1",
            runs: "SELECT id, input, options_json, started_at, finished_at, loaded \
                   FROM scan_runs ORDER BY id DESC",
            latest_unfinished_run: "SELECT id FROM scan_runs WHERE finished_at IS NULL \
                                    ORDER BY id DESC LIMIT 1",
            lock_run: pick!(
                $d,
                "SELECT id FROM scan_runs WHERE id = $1",
                "SELECT id FROM scan_runs WHERE id = $1 FOR NO KEY UPDATE"
            ),
            max_seq: "SELECT COALESCE(MAX(seq), 0) FROM scan_queue WHERE run_id = $1",
            // $1 run, $2 seq base, $3 JSON array of domains (first occurrence wins), $4 JSON
            // array of the inputs as written (null: the same as the domain), index for index.
            enqueue: pick!(
                $d,
                "INSERT INTO scan_queue (run_id, seq, domain, state, input) \
                 SELECT $1, $2 + j.key + 1, j.value, 'pending', i.value \
                 FROM json_each($3) AS j JOIN json_each($4) AS i ON i.key = j.key \
                 WHERE true ORDER BY j.key ON CONFLICT DO NOTHING",
                "INSERT INTO scan_queue (run_id, seq, domain, state, input) \
                 SELECT $1, $2 + d.ord, d.domain, 'pending', i.input \
                 FROM jsonb_array_elements_text(CAST($3 AS TEXT)::jsonb) WITH ORDINALITY AS d (domain, ord) \
                 JOIN jsonb_array_elements_text(CAST($4 AS TEXT)::jsonb) WITH ORDINALITY AS i (input, ord) \
                 ON i.ord = d.ord ORDER BY d.ord ON CONFLICT DO NOTHING"
            ),
            mark_loaded: "UPDATE scan_runs SET loaded = TRUE WHERE id = $1",
            finish_run: concat!("UPDATE scan_runs SET finished_at = ", now!($d), " WHERE id = $1"),
            // $1 run, $2 worker, $3 lease seconds, $4 now (NULL: database clock), $5 max rows.
            // Pending rows and expired claims are picked separately (each an index range scan
            // in seq order), merged, and the lowest $5 seqs taken.
            claim: pick!(
                $d,
                concat!(
                    "UPDATE scan_queue SET state = 'claimed', worker = $2, \
                     lease_until = COALESCE($4, ", now!(sqlite), ") + $3 \
                     WHERE run_id = $1 AND seq IN (\
                       SELECT seq FROM (SELECT seq FROM scan_queue \
                         WHERE run_id = $1 AND state = 'pending' ORDER BY seq LIMIT $5) \
                       UNION ALL \
                       SELECT seq FROM (SELECT seq FROM scan_queue \
                         WHERE run_id = $1 AND state = 'claimed' \
                         AND lease_until < COALESCE($4, ", now!(sqlite), ") ORDER BY seq LIMIT $5) \
                       ORDER BY 1 LIMIT $5) \
                     RETURNING seq, domain, input"
                ),
                concat!(
                    "WITH p AS (SELECT seq FROM scan_queue \
                       WHERE run_id = $1 AND state = 'pending' \
                       ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED), \
                     e AS (SELECT seq FROM scan_queue \
                       WHERE run_id = $1 AND state = 'claimed' \
                       AND lease_until < COALESCE($4, ", now!(pg), ") \
                       ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED), \
                     c AS (SELECT seq FROM p UNION ALL SELECT seq FROM e ORDER BY 1 LIMIT $5) \
                     UPDATE scan_queue AS q SET state = 'claimed', worker = $2, \
                       lease_until = COALESCE($4, ", now!(pg), ") + $3 \
                     FROM c WHERE q.run_id = $1 AND q.seq = c.seq \
                     RETURNING q.seq, q.domain, q.input"
                )
            ),
            progress: "SELECT COUNT(*) AS queued, \
                       COUNT(CASE WHEN state = 'done' THEN 1 END) AS done, \
                       COUNT(CASE WHEN state = 'claimed' THEN 1 END) AS claimed, \
                       COUNT(CASE WHEN state = 'pending' THEN 1 END) AS pending, \
                       (SELECT COUNT(*) FROM scan_results WHERE run_id = $1) AS results \
                       FROM scan_queue WHERE run_id = $1",
            // $1 run, $2 after this seq, $3 page size.
            results_by_seq: concat!(
                "SELECT ",
                result_columns!(),
                " FROM scan_results WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
            // $1 run, $2 after this domain (NULL: from the start), $3 page size.
            results_unqueued: concat!(
                "SELECT ",
                result_columns!(),
                " FROM scan_results WHERE run_id = $1 AND seq IS NULL \
                 AND (CAST($2 AS TEXT) IS NULL OR domain > CAST($2 AS TEXT)) ORDER BY domain LIMIT $3"
            ),
            result: concat!(
                "SELECT ",
                result_columns!(),
                " FROM scan_results WHERE run_id = $1 AND domain = $2"
            ),
            // $1 run a (before), $2 run b (after).
            diff: "SELECT a.domain AS domain, \
                     a.category AS a_category, a.grade AS a_grade, a.mode AS a_mode, \
                     a.error_codes AS a_errors, \
                     b.category AS b_category, b.grade AS b_grade, b.mode AS b_mode, \
                     b.error_codes AS b_errors \
                   FROM scan_results AS a \
                   LEFT JOIN scan_results AS b ON b.run_id = $2 AND b.domain = a.domain \
                   WHERE a.run_id = $1 AND (b.domain IS NULL OR a.category <> b.category \
                     OR a.grade <> b.grade OR a.error_codes <> b.error_codes) \
                   UNION ALL \
                   SELECT b.domain, NULL, NULL, NULL, NULL, \
                     b.category, b.grade, b.mode, b.error_codes \
                   FROM scan_results AS b \
                   WHERE b.run_id = $2 AND NOT EXISTS (SELECT 1 FROM scan_results AS a \
                     WHERE a.run_id = $1 AND a.domain = b.domain) \
                   ORDER BY 1",
        }
    };
}

/// SQLite statements.
pub(crate) const SQLITE: Sql = sql_set!(sqlite);
/// PostgreSQL statements.
pub(crate) const PG: Sql = sql_set!(pg);
