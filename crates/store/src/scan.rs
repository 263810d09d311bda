//! Scan runs, the shared work queue and per-domain results.
//!
//! A `mtasts scan` is a **run** ([`ScanStore::create_run`]). Its input domains go into a
//! **queue** table; **workers** — tasks, processes, or machines sharing one PostgreSQL —
//! **claim** batches of queue rows under a time-limited **lease**, check the domains and store
//! one **result** per domain.
//!
//! # Queue and lease protocol
//!
//! 1. **Load.** The loader streams the input and calls [`ScanStore::enqueue`] with batches
//!    (about 1000 domains each) in input order. Every new domain gets the next `seq`
//!    (increasing, possibly with gaps); a domain already in the run's queue is dropped, so
//!    re-loading the same input after a crash adds nothing. Input lines that are not domain
//!    names skip the queue: [`ScanStore::record_result`]. When the whole input is in,
//!    [`ScanStore::mark_loaded`].
//! 2. **Claim.** A worker calls [`ScanStore::claim`] with its worker id, a batch size and a
//!    lease. It gets up to that many rows that are `pending`, or `claimed` with an expired
//!    lease (`lease_until < now`: the holder crashed or stalled), lowest `seq` first; they
//!    become `claimed` by this worker with `lease_until = now + lease`. Claims are atomic:
//!    PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, SQLite claims inside a
//!    `BEGIN IMMEDIATE` transaction, so two concurrent claimers never get the same row.
//! 3. **Renew.** A worker whose checks may outlast the lease calls [`ScanStore::renew`] (for
//!    example every lease/3) for the rows it still holds. Renewing rows another worker has
//!    since taken over does nothing.
//! 4. **Complete.** [`ScanStore::complete`] inserts the results and marks the rows `done` in
//!    one transaction. A domain gets at most one result: if a lease expired and two workers
//!    both finish the domain, the first result stays and the second is ignored.
//! 5. **Finish.** An empty claim does **not** mean the run is over: the loader may still be
//!    adding rows, and rows held by other workers come back when their leases expire. The
//!    run is over when it is loaded and [`ScanStore::progress`] shows no `pending` and no
//!    `claimed` rows; then [`ScanStore::finish_run`]. A run that never finished can be resumed
//!    ([`ScanStore::latest_unfinished_run`]): re-enqueue the input, and claim as usual
//!    (rows claimed by the dead process are re-claimed once their leases expire).
//!
//! # Clock
//!
//! Times are unix seconds from the **database clock**, so workers on machines with skewed
//! clocks agree on lease expiry. Leases are whole seconds (rounded up, at least 1 s). The
//! `*_at` variants ([`ScanStore::claim_at`], [`ScanStore::renew_at`]) take an explicit `now`
//! instead, for tests and simulations.
//!
//! # Backends
//!
//! SQLite (`sqlite://PATH`, `sqlite::memory:`) is the default; PostgreSQL (`postgres://…`)
//! is for fleets of workers. Pools, URLs and migrations come from the shared database layer
//! ([`crate::db`]); this module's tables are created by [`MIGRATIONS`]
//! (`migrations/scan/{sqlite,postgres}`), run by [`ScanStore::open`] and
//! [`ScanStore::with_database`]. All timestamps are `BIGINT` unix seconds, JSON is `TEXT`, and
//! code lists are space-separated `TEXT`.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, QueryBuilder, Row, Type};

use crate::db::{Backend, Database, DatabaseUrl, DbError, Migrations, Pool};

mod diff;
mod sql;

pub use diff::{Change, DiffRow};

/// A scan run's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a domain stands with MTA-STS, for adoption statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The input line is not a domain name.
    InvalidName,
    /// DNS failures kept the check from finishing.
    CouldNotCheck,
    /// The domain does not exist (NXDOMAIN).
    DoesNotExist,
    /// No `_mta-sts` record and no policy.
    NoMtaSts,
    /// A TXT record (valid or not) but no policy could be fetched.
    TxtWithoutPolicy,
    /// A policy was fetched but the TXT record or the policy is invalid: senders ignore it.
    InvalidPolicy,
    /// A policy is served but no `_mta-sts` TXT record announces it: senders never fetch it.
    PolicyWithoutTxt,
    /// Valid, `mode: none`.
    None,
    /// Valid, `mode: testing`.
    Testing,
    /// Valid, `mode: enforce`.
    Enforce,
}

impl Category {
    /// Every category in display order.
    pub const ALL: &'static [Self] = &[
        Self::Enforce,
        Self::Testing,
        Self::None,
        Self::InvalidPolicy,
        Self::PolicyWithoutTxt,
        Self::TxtWithoutPolicy,
        Self::NoMtaSts,
        Self::CouldNotCheck,
        Self::DoesNotExist,
        Self::InvalidName,
    ];

    /// Stable kebab-case name (also the stored value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidName => "invalid-name",
            Self::CouldNotCheck => "could-not-check",
            Self::DoesNotExist => "does-not-exist",
            Self::NoMtaSts => "no-mta-sts",
            Self::TxtWithoutPolicy => "txt-without-policy",
            Self::PolicyWithoutTxt => "policy-without-txt",
            Self::InvalidPolicy => "invalid-policy",
            Self::None => "none",
            Self::Testing => "testing",
            Self::Enforce => "enforce",
        }
    }

    /// Parses [`Category::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// A letter grade for one domain.
///
/// A: `enforce`, no errors or warnings. B: `enforce` with warnings, or `testing` without
/// errors. C: a valid policy with errors (MX not covered, MX TLS problems) or `mode: none`.
/// D: MTA-STS attempted but broken (senders ignore it). F: no MTA-STS. `-`: not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    /// Best.
    A,
    /// Good.
    B,
    /// Partial.
    C,
    /// Broken.
    D,
    /// Absent.
    F,
    /// Not checked (invalid name, could not check).
    #[serde(rename = "-")]
    Unknown,
}

impl Grade {
    /// `A`…`F` or `-`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
            Self::F => "F",
            Self::Unknown => "-",
        }
    }

    /// Parses [`Grade::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::A, Self::B, Self::C, Self::D, Self::F, Self::Unknown]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// One domain's scan result as stored (and as a CSV row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The domain (lower-case A-labels), or the raw input line for an invalid name.
    pub domain: String,
    /// Adoption category.
    pub category: Category,
    /// Grade.
    pub grade: Grade,
    /// A `_mta-sts` v=STSv1 TXT record is present (valid or not).
    pub txt_present: bool,
    /// The policy parsed.
    pub policy_valid: bool,
    /// `enforce` / `testing` / `none`.
    pub mode: Option<String>,
    /// `max_age` seconds.
    pub max_age: Option<u32>,
    /// Every MX matched by the policy (`None` when there is no valid policy).
    pub mx_covered: Option<bool>,
    /// Every probed MX passed STARTTLS and certificate checks (`None` when not probed).
    pub mx_tls_ok: Option<bool>,
    /// A `v=TLSRPTv1` record is present (valid or not).
    pub tlsrpt_present: bool,
    /// The TLS-RPT record is valid.
    pub tlsrpt_valid: bool,
    /// The mail provider: registrable suffix of the primary MX host (e.g. `google.com`).
    pub provider: Option<String>,
    /// Codes of error findings.
    pub error_codes: Vec<String>,
    /// Codes of warning findings.
    pub warning_codes: Vec<String>,
    /// The full `check --format json` report of the domain, plus timings, as JSON text.
    pub report_json: String,
    /// Time to check the domain.
    pub elapsed_ms: u64,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be opened or migrated (the message names it, redacted).
    #[error(transparent)]
    Db(#[from] DbError),
    /// A run id that does not exist.
    #[error("no scan run {0}")]
    NoSuchRun(RunId),
    /// Stored data that does not decode.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Rows per page when streaming results.
const PAGE: i64 = 1000;
/// Results per multi-row `INSERT` (19 bind parameters each).
const RESULT_CHUNK: usize = 200;
/// Sequence numbers per `IN (…)` list.
const SEQ_CHUNK: usize = 500;
/// The scan module's tables. The bookkeeping table keeps its historical name, so databases
/// made before the shared layer existed migrate on as before.
pub static MIGRATIONS: Migrations = Migrations::new(
    "scan",
    "_mtasts_scan_migrations",
    || sqlx::migrate!("./migrations/scan/sqlite"),
    || sqlx::migrate!("./migrations/scan/postgres"),
);

/// A scan run as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id.
    pub id: RunId,
    /// The input file name, or `-` for standard input.
    pub input: String,
    /// The scan options as JSON text.
    pub options_json: String,
    /// When the run was created (unix seconds).
    pub started_at: i64,
    /// When the run finished (unix seconds).
    pub finished_at: Option<i64>,
    /// The whole input is in the queue.
    pub loaded: bool,
}

/// A queue row handed to a worker by [`ScanStore::claim`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Claim {
    /// Position in the input (increasing; may have gaps).
    pub seq: i64,
    /// The domain to check.
    pub domain: String,
    /// The domain as the user wrote it, when that differs.
    pub input: Option<String>,
}

/// Counts of a run's queue and results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    /// Rows in the queue (`done + claimed + pending`).
    pub queued: u64,
    /// Rows done.
    pub done: u64,
    /// Rows claimed by a worker (including claims whose lease has expired).
    pub claimed: u64,
    /// Rows nobody has claimed yet.
    pub pending: u64,
    /// Stored results (including ones that never went through the queue).
    pub results: u64,
}

/// The scan store: runs, the shared work queue and results, on SQLite or PostgreSQL.
///
/// Cheap to clone (the clones share one connection pool). See the [module docs](self) for
/// the queue and lease protocol.
#[derive(Debug, Clone)]
pub struct ScanStore {
    db: Database,
}

/// Runs `$body` with `$pool` bound to the typed pool and `$sql` to that backend's statements.
/// The body is compiled once per backend.
macro_rules! with_db {
    ($self:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $self.db.pool() {
            Pool::Sqlite($pool) => {
                let $sql: &sql::Sql = &sql::SQLITE;
                $body
            }
            Pool::Postgres($pool) => {
                let $sql: &sql::Sql = &sql::PG;
                $body
            }
        }
    };
}

/// Pushes one result row's values (in [`sql::INSERT_RESULTS`] column order) into a
/// `push_values` tuple.
macro_rules! push_result_row {
    ($b:ident, $run:expr, $seq:expr, $row:expr, $now:expr) => {{
        let row: &ResultRow = $row;
        $b.push_bind($run.0)
            .push_bind(row.domain.as_str())
            .push_bind($seq)
            .push_bind(row.category.as_str())
            .push_bind(row.grade.as_str())
            .push_bind(row.txt_present)
            .push_bind(row.policy_valid)
            .push_bind(row.mode.as_deref())
            .push_bind(row.max_age.map(i64::from))
            .push_bind(row.mx_covered)
            .push_bind(row.mx_tls_ok)
            .push_bind(row.tlsrpt_present)
            .push_bind(row.tlsrpt_valid)
            .push_bind(row.provider.as_deref())
            .push_bind(join_codes(&row.error_codes))
            .push_bind(join_codes(&row.warning_codes))
            .push_bind(row.report_json.as_str())
            .push_bind(i64::try_from(row.elapsed_ms).unwrap_or(i64::MAX))
            .push($now);
    }};
}

impl ScanStore {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    ///
    /// * `sqlite://PATH` (or `sqlite:PATH`): a database file, created if missing, WAL mode.
    /// * `sqlite::memory:`: a private in-memory database (gone when the store is dropped).
    /// * `postgres://…` / `postgresql://…`: a PostgreSQL database; the connection is tried
    ///   once right away so an unreachable server fails fast with a clear error.
    ///
    /// Anything else is [`DbError::UnsupportedUrl`]. Shorthand for [`DatabaseUrl::parse`],
    /// [`Database::open`] and [`ScanStore::with_database`].
    pub async fn open(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        Self::with_database(Database::open(&url).await?).await
    }

    /// [`ScanStore::open`] for reading: an SQLite file that does not exist is an error
    /// ([`Database::open_existing`]), not a new empty database.
    pub async fn open_existing(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        Self::with_database(Database::open_existing(&url).await?).await
    }

    /// The scan store on an open database (sharing its pool with other stores), after
    /// running the scan module's [`MIGRATIONS`].
    pub async fn with_database(db: Database) -> Result<Self> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    /// The database the store is on.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Closes the connection pool (waiting for connections in use to be returned). Other
    /// clones of this store, and other stores on the same database, stop working too.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Starts a run. `input` is the input file name (`-` for standard input);
    /// `options_json` the scan options as JSON text.
    pub async fn create_run(&self, input: &str, options_json: &str) -> Result<RunId> {
        let id: i64 = with_db!(self, |pool, sql| {
            sqlx::query_scalar(sql.create_run)
                .bind(input)
                .bind(options_json)
                .fetch_one(pool)
                .await?
        });
        Ok(RunId(id))
    }

    /// One run, or [`StoreError::NoSuchRun`].
    pub async fn run_info(&self, run: RunId) -> Result<RunInfo> {
        let info = with_db!(self, |pool, sql| {
            let row = sqlx::query(sql.run_info).bind(run.0).fetch_optional(pool).await?;
            row.as_ref().map(decode_run).transpose()?
        });
        info.ok_or(StoreError::NoSuchRun(run))
    }

    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunInfo>> {
        with_db!(self, |pool, sql| {
            let rows = sqlx::query(sql.runs).fetch_all(pool).await?;
            rows.iter().map(decode_run).collect()
        })
    }

    /// The newest run that has not finished, if any.
    pub async fn latest_unfinished_run(&self) -> Result<Option<RunId>> {
        let id: Option<i64> = with_db!(self, |pool, sql| {
            sqlx::query_scalar(sql.latest_unfinished_run).fetch_optional(pool).await?
        });
        Ok(id.map(RunId))
    }

    /// Appends domains to the run's queue in the given order and returns how many were new.
    ///
    /// A domain already queued for the run (earlier in this batch, in an earlier batch, or
    /// in an earlier attempt at loading the same input) is dropped, so this is idempotent.
    /// Meant to be called with batches of about 1000 while the input streams; one statement
    /// per batch. Only one loader per run at a time.
    pub async fn enqueue(&self, run: RunId, domains: &[String]) -> Result<u64> {
        let pairs: Vec<(String, Option<String>)> =
            domains.iter().map(|d| (d.clone(), None)).collect();
        self.enqueue_inputs(run, &pairs).await
    }

    /// [`ScanStore::enqueue`], each domain with the text the user wrote when that differs
    /// (kept for the results' `input`).
    pub async fn enqueue_inputs(
        &self,
        run: RunId,
        domains: &[(String, Option<String>)],
    ) -> Result<u64> {
        let mut seen = HashSet::with_capacity(domains.len());
        let kept: Vec<&(String, Option<String>)> =
            domains.iter().filter(|(d, _)| seen.insert(d.as_str())).collect();
        let batch: Vec<&str> = kept.iter().map(|(d, _)| d.as_str()).collect();
        let inputs: Vec<Option<&str>> = kept.iter().map(|(_, i)| i.as_deref()).collect();
        let json = serde_json::to_string(&batch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inputs_json =
            serde_json::to_string(&inputs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_db!(self, |pool, sql| {
            let mut tx = pool.begin_with(sql.begin_write).await?;
            // Serializes loaders of the same run (PostgreSQL: row lock; SQLite: the write
            // lock) and checks that the run exists.
            if sqlx::query(sql.lock_run).bind(run.0).fetch_optional(&mut *tx).await?.is_none() {
                return Err(StoreError::NoSuchRun(run));
            }
            if batch.is_empty() {
                return Ok(0);
            }
            let base: i64 = sqlx::query_scalar(sql.max_seq).bind(run.0).fetch_one(&mut *tx).await?;
            let added = sqlx::query(sql.enqueue)
                .bind(run.0)
                .bind(base)
                .bind(json.as_str())
                .bind(inputs_json.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Records that the whole input is in the queue.
    pub async fn mark_loaded(&self, run: RunId) -> Result<()> {
        let n = with_db!(self, |pool, sql| {
            sqlx::query(sql.mark_loaded).bind(run.0).execute(pool).await?.rows_affected()
        });
        if n == 0 { Err(StoreError::NoSuchRun(run)) } else { Ok(()) }
    }

    /// Claims up to `max` rows for `worker` with a lease of `lease` (whole seconds, at least
    /// one), using the database clock. Returns them in `seq` order; empty when there is
    /// nothing to claim *right now* (see the module docs for when a run is over).
    pub async fn claim(
        &self,
        run: RunId,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>> {
        self.claim_inner(run, worker, max, lease, None).await
    }

    /// [`ScanStore::claim`] with an explicit clock: `now` in unix seconds.
    pub async fn claim_at(
        &self,
        run: RunId,
        worker: &str,
        max: usize,
        lease: Duration,
        now: i64,
    ) -> Result<Vec<Claim>> {
        self.claim_inner(run, worker, max, lease, Some(now)).await
    }

    async fn claim_inner(
        &self,
        run: RunId,
        worker: &str,
        max: usize,
        lease: Duration,
        now: Option<i64>,
    ) -> Result<Vec<Claim>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let lease = lease_secs(lease);
        let mut claims = with_db!(self, |pool, sql| {
            let mut tx = pool.begin_with(sql.begin_write).await?;
            let rows = sqlx::query(sql.claim)
                .bind(run.0)
                .bind(worker)
                .bind(lease)
                .bind(now)
                .bind(max)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(|r| {
                    Ok(Claim {
                        seq: r.try_get("seq")?,
                        domain: r.try_get("domain")?,
                        input: r.try_get("input")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        });
        claims.sort_unstable_by_key(|c| c.seq);
        Ok(claims)
    }

    /// Extends to now + `lease` the lease of those of `seqs` that `worker` still holds.
    pub async fn renew(
        &self,
        run: RunId,
        worker: &str,
        seqs: &[i64],
        lease: Duration,
    ) -> Result<()> {
        self.renew_inner(run, worker, seqs, lease, None).await
    }

    /// The workers holding claims on `run` (state `claimed`, lease expired or not).
    pub async fn holders(&self, run: RunId) -> Result<Vec<String>> {
        let q = "SELECT DISTINCT worker FROM scan_queue WHERE run_id = $1 AND state = 'claimed' \
                 AND worker IS NOT NULL ORDER BY worker";
        let rows: Vec<(String,)> =
            with_db!(self, |pool, _sql| sqlx::query_as(q).bind(run.0).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(w,)| w).collect())
    }

    /// Returns every claim `worker` holds on `run` to the queue at once (used for a worker
    /// known to be dead, e.g. a killed process on this host, instead of waiting for its
    /// leases to expire). Returns how many rows were released.
    pub async fn release(&self, run: RunId, worker: &str) -> Result<u64> {
        let q = "UPDATE scan_queue SET state = 'pending', worker = NULL, lease_until = NULL \
                 WHERE run_id = $1 AND worker = $2 AND state = 'claimed'";
        let done = with_db!(self, |pool, _sql| {
            sqlx::query(q).bind(run.0).bind(worker).execute(pool).await?.rows_affected()
        });
        Ok(done)
    }

    /// [`ScanStore::renew`] with an explicit clock: `now` in unix seconds.
    pub async fn renew_at(
        &self,
        run: RunId,
        worker: &str,
        seqs: &[i64],
        lease: Duration,
        now: i64,
    ) -> Result<()> {
        self.renew_inner(run, worker, seqs, lease, Some(now)).await
    }

    async fn renew_inner(
        &self,
        run: RunId,
        worker: &str,
        seqs: &[i64],
        lease: Duration,
        now: Option<i64>,
    ) -> Result<()> {
        let lease = lease_secs(lease);
        with_db!(self, |pool, sql| {
            for chunk in seqs.chunks(SEQ_CHUNK) {
                let mut qb = builder(pool, "UPDATE scan_queue SET lease_until = COALESCE(");
                qb.push_bind(now)
                    .push(", ")
                    .push(sql.now)
                    .push(") + ")
                    .push_bind(lease)
                    .push(" WHERE run_id = ")
                    .push_bind(run.0)
                    .push(" AND worker = ")
                    .push_bind(worker)
                    .push(" AND state = 'claimed' AND seq IN (");
                let mut list = qb.separated(", ");
                for seq in chunk {
                    list.push_bind(*seq);
                }
                list.push_unseparated(")");
                qb.build().execute(pool).await?;
            }
        });
        Ok(())
    }

    /// Stores the results of claimed rows and marks the rows done, in one transaction.
    ///
    /// A domain that already has a result keeps it (first result wins), so completing a row
    /// whose lease expired and that another worker also finished is harmless.
    pub async fn complete(
        &self,
        run: RunId,
        worker: &str,
        results: &[(i64, ResultRow)],
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        with_db!(self, |pool, sql| {
            let mut tx = pool.begin_with(sql.begin_write).await?;
            for chunk in results.chunks(RESULT_CHUNK) {
                let mut qb = builder(pool, sql::INSERT_RESULTS);
                qb.push_values(chunk, |mut b, (seq, row)| {
                    push_result_row!(b, run, Some(*seq), row, sql.now);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in results.chunks(SEQ_CHUNK) {
                let mut qb = builder(
                    pool,
                    "UPDATE scan_queue SET state = 'done', lease_until = NULL, worker = ",
                );
                qb.push_bind(worker)
                    .push(" WHERE run_id = ")
                    .push_bind(run.0)
                    .push(" AND seq IN (");
                let mut list = qb.separated(", ");
                for (seq, _) in chunk {
                    list.push_bind(*seq);
                }
                list.push_unseparated(")");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a result that never went through the queue (an invalid input line). A domain
    /// that already has a result keeps it.
    pub async fn record_result(&self, run: RunId, row: &ResultRow) -> Result<()> {
        with_db!(self, |pool, sql| {
            let mut qb = builder(pool, sql::INSERT_RESULTS);
            qb.push_values(std::iter::once(row), |mut b, row| {
                push_result_row!(b, run, None::<i64>, row, sql.now);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(pool).await?;
        });
        Ok(())
    }

    /// Records that the run finished (now).
    pub async fn finish_run(&self, run: RunId) -> Result<()> {
        let n = with_db!(self, |pool, sql| {
            sqlx::query(sql.finish_run).bind(run.0).execute(pool).await?.rows_affected()
        });
        if n == 0 { Err(StoreError::NoSuchRun(run)) } else { Ok(()) }
    }

    /// Counts of the run's queue rows by state, and of its results.
    pub async fn progress(&self, run: RunId) -> Result<Progress> {
        with_db!(self, |pool, sql| {
            let row = sqlx::query(sql.progress).bind(run.0).fetch_one(pool).await?;
            let count = |name: &str| -> Result<u64> {
                let n: i64 = row.try_get(name)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {name}")))
            };
            Ok(Progress {
                queued: count("queued")?,
                done: count("done")?,
                claimed: count("claimed")?,
                pending: count("pending")?,
                results: count("results")?,
            })
        })
    }

    /// Streams the run's results: first those from the queue in `seq` (input) order, then
    /// those that never went through the queue, by domain. Reads pages of 1000 rows (keyset
    /// pagination), so memory stays flat and no connection is held between pages.
    pub fn results(&self, run: RunId) -> impl Stream<Item = Result<ResultRow>> + '_ {
        enum Cursor {
            Seq(i64),
            Unqueued(Option<String>),
            Done,
        }
        let start = (Cursor::Seq(i64::MIN), VecDeque::<ResultRow>::new());
        futures::stream::unfold(start, move |(mut cursor, mut buf)| async move {
            loop {
                if let Some(row) = buf.pop_front() {
                    return Some((Ok(row), (cursor, buf)));
                }
                match cursor {
                    Cursor::Done => return None,
                    Cursor::Seq(after) => match self.results_page_by_seq(run, after).await {
                        Ok(page) => {
                            let full = page.len() as u64 == PAGE as u64;
                            cursor = match page.last() {
                                Some((seq, _)) if full => Cursor::Seq(*seq),
                                _ => Cursor::Unqueued(None),
                            };
                            buf.extend(page.into_iter().map(|(_, row)| row));
                        }
                        Err(e) => return Some((Err(e), (Cursor::Done, buf))),
                    },
                    Cursor::Unqueued(after) => {
                        match self.results_page_unqueued(run, after.as_deref()).await {
                            Ok(page) => {
                                let full = page.len() as u64 == PAGE as u64;
                                cursor = match page.last() {
                                    Some(row) if full => Cursor::Unqueued(Some(row.domain.clone())),
                                    _ => Cursor::Done,
                                };
                                buf.extend(page);
                            }
                            Err(e) => return Some((Err(e), (Cursor::Done, buf))),
                        }
                    }
                }
            }
        })
    }

    async fn results_page_by_seq(&self, run: RunId, after: i64) -> Result<Vec<(i64, ResultRow)>> {
        with_db!(self, |pool, sql| {
            let rows = sqlx::query(sql.results_by_seq)
                .bind(run.0)
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|r| Ok((r.try_get::<i64, _>("seq")?, decode_result(r)?))).collect()
        })
    }

    async fn results_page_unqueued(
        &self,
        run: RunId,
        after: Option<&str>,
    ) -> Result<Vec<ResultRow>> {
        with_db!(self, |pool, sql| {
            let rows = sqlx::query(sql.results_unqueued)
                .bind(run.0)
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode_result).collect()
        })
    }

    /// One domain's result in a run.
    pub async fn result(&self, run: RunId, domain: &str) -> Result<Option<ResultRow>> {
        with_db!(self, |pool, sql| {
            let row = sqlx::query(sql.result).bind(run.0).bind(domain).fetch_optional(pool).await?;
            row.as_ref().map(decode_result).transpose()
        })
    }

    /// Domains whose category, grade or error codes differ between run `a` (before) and run
    /// `b` (after), plus domains in only one of them, ordered by domain (bytewise).
    pub async fn diff(&self, a: RunId, b: RunId) -> Result<Vec<DiffRow>> {
        self.run_info(a).await?;
        self.run_info(b).await?;
        let sides = with_db!(self, |pool, sql| {
            let rows = sqlx::query(sql.diff).bind(a.0).bind(b.0).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let domain: String = r.try_get("domain")?;
                    let before = decode_side(r, "a_category", "a_grade", "a_mode", "a_errors")?;
                    let after = decode_side(r, "b_category", "b_grade", "b_mode", "b_errors")?;
                    Ok((domain, before, after))
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(sides
            .into_iter()
            .filter_map(|(domain, before, after)| {
                let change = diff::classify(before.as_ref(), after.as_ref())?;
                Some(DiffRow {
                    domain,
                    change,
                    before: before.map(|s| (s.category, s.grade)),
                    after: after.map(|s| (s.category, s.grade)),
                })
            })
            .collect())
    }
}

/// A lease in whole seconds, rounded up, at least one.
fn lease_secs(lease: Duration) -> i64 {
    let secs = lease.as_secs().saturating_add(u64::from(lease.subsec_nanos() > 0));
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX / 4).min(i64::MAX / 4)
}

fn join_codes(codes: &[String]) -> String {
    codes.join(" ")
}

fn split_codes(codes: &str) -> Vec<String> {
    codes.split_whitespace().map(str::to_owned).collect()
}

/// A query builder for the pool's database.
fn builder<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>, init: &str) -> QueryBuilder<DB> {
    QueryBuilder::new(init)
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} {value:?}"))
}

fn decode_run<R>(row: &R) -> Result<RunInfo>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RunInfo {
        id: RunId(row.try_get("id")?),
        input: row.try_get("input")?,
        options_json: row.try_get("options_json")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        loaded: row.try_get("loaded")?,
    })
}

fn decode_result<R>(row: &R) -> Result<ResultRow>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let category: String = row.try_get("category")?;
    let grade: String = row.try_get("grade")?;
    let max_age: Option<i64> = row.try_get("max_age")?;
    let elapsed_ms: i64 = row.try_get("elapsed_ms")?;
    let error_codes: String = row.try_get("error_codes")?;
    let warning_codes: String = row.try_get("warning_codes")?;
    Ok(ResultRow {
        domain: row.try_get("domain")?,
        category: Category::parse(&category).ok_or_else(|| corrupt("category", &category))?,
        grade: Grade::parse(&grade).ok_or_else(|| corrupt("grade", &grade))?,
        txt_present: row.try_get("txt_present")?,
        policy_valid: row.try_get("policy_valid")?,
        mode: row.try_get("mode")?,
        max_age: max_age
            .map(|v| u32::try_from(v).map_err(|_| corrupt("max_age", &v.to_string())))
            .transpose()?,
        mx_covered: row.try_get("mx_covered")?,
        mx_tls_ok: row.try_get("mx_tls_ok")?,
        tlsrpt_present: row.try_get("tlsrpt_present")?,
        tlsrpt_valid: row.try_get("tlsrpt_valid")?,
        provider: row.try_get("provider")?,
        error_codes: split_codes(&error_codes),
        warning_codes: split_codes(&warning_codes),
        report_json: row.try_get("report_json")?,
        elapsed_ms: u64::try_from(elapsed_ms)
            .map_err(|_| corrupt("elapsed_ms", &elapsed_ms.to_string()))?,
    })
}

/// One side of a diff row; `None` when the domain is not in that run.
fn decode_side<R>(
    row: &R,
    category: &str,
    grade: &str,
    mode: &str,
    errors: &str,
) -> Result<Option<diff::Side>>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let Some(c) = row.try_get::<Option<String>, _>(category)? else {
        return Ok(None);
    };
    let g: String = row.try_get(grade)?;
    let e: Option<String> = row.try_get(errors)?;
    Ok(Some(diff::Side {
        category: Category::parse(&c).ok_or_else(|| corrupt("category", &c))?,
        grade: Grade::parse(&g).ok_or_else(|| corrupt("grade", &g))?,
        mode: row.try_get(mode)?,
        errors: split_codes(e.as_deref().unwrap_or("")),
    }))
}
