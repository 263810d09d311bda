//! TLS-RPT results of this site's own deliveries (the sending side of RFC 8460), and the
//! reports made of them.
//!
//! - `outbound_sessions`: per UTC day and *group* (one recipient domain, one TLSRPT record
//!   text, one policy), the successful and failed sessions. A collector adds its counts
//!   (upserts that add), so several collectors, on several MTA hosts, can share one
//!   PostgreSQL database and the reporter reads the sum.
//! - `outbound_failures`: per day, group and failure detail, the failed sessions.
//! - `outbound_days` and `outbound_deliveries`: which closed days have been planned, and each
//!   report's delivery to each `rua` destination, with its attempts, next attempt and
//!   give-up time (RFC 8460 §5.5: retry for up to a day). A delivery is claimed by moving
//!   its `due_at` forward by a lease in the statement that reads it, so two reporters never
//!   send the same report at once and a reporter killed mid-send retries after the lease.
//!
//! Keys (`group_key`, `detail_key`, `record_key`) are computed by the caller (hex SHA-256 of
//! the canonical JSON), so long policy texts never sit in an index.

use crate::db::{Database, DbError, Migrations, on_pool};

/// The outbound module's migrations.
pub static MIGRATIONS: Migrations = Migrations::new(
    "outbound",
    "_mtasts_outbound_migrations",
    || sqlx::migrate!("./migrations/outbound/sqlite"),
    || sqlx::migrate!("./migrations/outbound/postgres"),
);

/// Rows per multi-row statement (SQLite allows 32 766 bound values; the widest row has 7).
const ROWS_PER_STATEMENT: usize = 1000;

/// An outbound query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed.
    #[error("TLS-RPT results in {url}: {error}")]
    Query {
        /// The database (redacted).
        url: String,
        /// What the driver said.
        error: sqlx::Error,
    },
}

/// Sessions of one day and group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The group's key.
    pub group_key: String,
    /// The recipient (policy) domain.
    pub domain: String,
    /// The TLSRPT record text as the MTA found it.
    pub record: String,
    /// The policy, JSON.
    pub policy: String,
    /// Successful sessions.
    pub successes: i64,
    /// Failed sessions.
    pub failures: i64,
}

/// Failed sessions of one day, group and failure detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRow {
    /// UTC day.
    pub day: String,
    /// The group's key.
    pub group_key: String,
    /// The detail's key.
    pub detail_key: String,
    /// The detail, JSON without its count.
    pub detail: String,
    /// Failed sessions.
    pub sessions: i64,
}

/// One day's totals.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DayTotals {
    /// UTC day.
    pub day: String,
    /// Recipient domains.
    pub domains: i64,
    /// Successful sessions.
    pub successes: i64,
    /// Failed sessions.
    pub failures: i64,
    /// Whether the day's reports have been planned.
    pub planned: bool,
}

/// A delivery to plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// UTC day.
    pub day: String,
    /// The policy domain.
    pub domain: String,
    /// The record's key.
    pub record_key: String,
    /// The `rua` URI.
    pub destination: String,
    /// The report's id.
    pub report_id: String,
    /// First attempt, unix seconds.
    pub due_at: i64,
    /// Give up after, unix seconds.
    pub give_up_at: i64,
}

/// A delivery as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// UTC day.
    pub day: String,
    /// The policy domain.
    pub domain: String,
    /// The record's key.
    pub record_key: String,
    /// The `rua` URI.
    pub destination: String,
    /// The report's id.
    pub report_id: String,
    /// `pending`, `sent`, `failed` (given up) or `skipped`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Next attempt, unix seconds.
    pub due_at: i64,
    /// Given up after, unix seconds.
    pub give_up_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered, unix seconds.
    pub sent_at: Option<i64>,
}

type DeliveryTuple =
    (String, String, String, String, String, String, i64, i64, i64, Option<String>, Option<i64>);

fn delivery(t: DeliveryTuple) -> Delivery {
    let (day, domain, record_key, destination, report_id, state, attempts, due_at, give_up_at) =
        (t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8);
    Delivery {
        day,
        domain,
        record_key,
        destination,
        report_id,
        state,
        attempts,
        due_at,
        give_up_at,
        last_error: t.9,
        sent_at: t.10,
    }
}

const DELIVERY_COLUMNS: &str = "day, domain, record_key, destination, report_id, state, attempts, \
     due_at, give_up_at, last_error, sent_at";

/// The outbound tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboundStore {
    db: Database,
}

fn builder<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>, init: &str) -> sqlx::QueryBuilder<DB> {
    sqlx::QueryBuilder::new(init)
}

impl OutboundStore {
    /// The store on an open database, after running this module's [`MIGRATIONS`].
    pub async fn with_database(db: Database) -> Result<Self, OutboundError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn err(&self, error: sqlx::Error) -> OutboundError {
        OutboundError::Query { url: self.db.url().to_string(), error }
    }

    /// Adds `sessions` and `failures` to the stored counts, in one transaction. Rows are
    /// written in key order, so concurrent collectors on PostgreSQL lock rows in the same
    /// order and never deadlock; each key must appear once.
    pub async fn add(
        &self,
        sessions: &[SessionRow],
        failures: &[FailureRow],
    ) -> Result<(), OutboundError> {
        let mut sessions: Vec<&SessionRow> = sessions.iter().collect();
        sessions.sort_by(|a, b| (&a.day, &a.group_key).cmp(&(&b.day, &b.group_key)));
        let mut failures: Vec<&FailureRow> = failures.iter().collect();
        failures.sort_by(|a, b| {
            (&a.day, &a.group_key, &a.detail_key).cmp(&(&b.day, &b.group_key, &b.detail_key))
        });
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let mut tx = pool.begin().await.map_err(e)?;
            for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
                let mut q = builder(
                    pool,
                    "INSERT INTO outbound_sessions (day, group_key, domain, record, policy, successes, failures) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.day)
                        .push_bind(&r.group_key)
                        .push_bind(&r.domain)
                        .push_bind(&r.record)
                        .push_bind(&r.policy)
                        .push_bind(r.successes)
                        .push_bind(r.failures);
                });
                q.push(
                    " ON CONFLICT (day, group_key) DO UPDATE SET \
                     successes = outbound_sessions.successes + excluded.successes, \
                     failures = outbound_sessions.failures + excluded.failures",
                );
                q.build().execute(&mut *tx).await.map_err(e)?;
            }
            for chunk in failures.chunks(ROWS_PER_STATEMENT) {
                let mut q = builder(
                    pool,
                    "INSERT INTO outbound_failures (day, group_key, detail_key, detail, sessions) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.day)
                        .push_bind(&r.group_key)
                        .push_bind(&r.detail_key)
                        .push_bind(&r.detail)
                        .push_bind(r.sessions);
                });
                q.push(
                    " ON CONFLICT (day, group_key, detail_key) DO UPDATE SET \
                     sessions = outbound_failures.sessions + excluded.sessions",
                );
                q.build().execute(&mut *tx).await.map_err(e)?;
            }
            tx.commit().await.map_err(e)?;
            Ok(())
        })
    }

    /// Each day with results, newest first.
    pub async fn days(&self) -> Result<Vec<DayTotals>, OutboundError> {
        const Q: &str = "SELECT s.day, COUNT(DISTINCT s.domain), CAST(SUM(s.successes) AS BIGINT), CAST(SUM(s.failures) AS BIGINT), \
             MAX(CASE WHEN d.day IS NULL THEN 0 ELSE 1 END) \
             FROM outbound_sessions s LEFT JOIN outbound_days d ON d.day = s.day \
             GROUP BY s.day ORDER BY s.day DESC";
        type Row = (String, i64, Option<i64>, Option<i64>, i32);
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(Q)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(rows
            .into_iter()
            .map(|(day, domains, s, f, planned)| DayTotals {
                day,
                domains,
                successes: s.unwrap_or(0),
                failures: f.unwrap_or(0),
                planned: planned != 0,
            })
            .collect())
    }

    /// The sessions of `day`, by domain and group.
    pub async fn day_sessions(&self, day: &str) -> Result<Vec<SessionRow>, OutboundError> {
        const Q: &str = "SELECT day, group_key, domain, record, policy, successes, failures \
             FROM outbound_sessions WHERE day = $1 ORDER BY domain, group_key";
        type Row = (String, String, String, String, String, i64, i64);
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(Q)
            .bind(day)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(rows
            .into_iter()
            .map(|(day, group_key, domain, record, policy, successes, failures)| SessionRow {
                day,
                group_key,
                domain,
                record,
                policy,
                successes,
                failures,
            })
            .collect())
    }

    /// The failure details of `day`.
    pub async fn day_failures(&self, day: &str) -> Result<Vec<FailureRow>, OutboundError> {
        const Q: &str = "SELECT day, group_key, detail_key, detail, sessions \
             FROM outbound_failures WHERE day = $1 ORDER BY group_key, sessions DESC, detail_key";
        type Row = (String, String, String, String, i64);
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(Q)
            .bind(day)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(rows
            .into_iter()
            .map(|(day, group_key, detail_key, detail, sessions)| FailureRow {
                day,
                group_key,
                detail_key,
                detail,
                sessions,
            })
            .collect())
    }

    /// Whether `day` has been planned.
    pub async fn is_planned(&self, day: &str) -> Result<bool, OutboundError> {
        const Q: &str = "SELECT COUNT(*) FROM outbound_days WHERE day = $1";
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(Q)
            .bind(day)
            .fetch_one(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(n > 0)
    }

    /// Plans `day`: records its deliveries (one already planned is kept as it is) and marks
    /// the day planned, in one transaction. False when the day was already planned (by
    /// another reporter): nothing is changed then.
    pub async fn plan(
        &self,
        day: &str,
        deliveries: &[NewDelivery],
        reports: i64,
        now: i64,
    ) -> Result<bool, OutboundError> {
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let mut tx = pool.begin().await.map_err(e)?;
            let done = sqlx::query(
                "INSERT INTO outbound_days (day, planned_at, reports) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO NOTHING",
            )
            .bind(day)
            .bind(now)
            .bind(reports)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
                let mut q = builder(
                    pool,
                    "INSERT INTO outbound_deliveries (day, domain, record_key, destination, report_id, \
                     state, attempts, due_at, give_up_at) ",
                );
                q.push_values(chunk, |mut b, d| {
                    b.push_bind(&d.day)
                        .push_bind(&d.domain)
                        .push_bind(&d.record_key)
                        .push_bind(&d.destination)
                        .push_bind(&d.report_id)
                        .push_bind("pending")
                        .push_bind(0_i64)
                        .push_bind(d.due_at)
                        .push_bind(d.give_up_at);
                });
                q.push(" ON CONFLICT (day, domain, record_key, destination) DO NOTHING");
                q.build().execute(&mut *tx).await.map_err(e)?;
            }
            tx.commit().await.map_err(e)?;
            Ok(true)
        })
    }

    /// Claims up to `limit` pending deliveries due at `now`: their `due_at` moves to
    /// `now + lease` and their attempt count goes up, so no other reporter takes them while
    /// this one sends. Oldest due first.
    pub async fn claim_due(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, OutboundError> {
        let q = format!(
            "UPDATE outbound_deliveries SET due_at = $1, attempts = attempts + 1 \
             WHERE (day, domain, record_key, destination) IN ( \
               SELECT day, domain, record_key, destination FROM outbound_deliveries \
               WHERE state = 'pending' AND due_at <= $2 ORDER BY due_at LIMIT $3) \
             AND state = 'pending' AND due_at <= $2 RETURNING {DELIVERY_COLUMNS}"
        );
        let rows: Vec<DeliveryTuple> =
            on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(q.as_str()))
                .bind(now.saturating_add(lease))
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?);
        Ok(rows.into_iter().map(delivery).collect())
    }

    /// Records the outcome of an attempt at `d`: `Ok` delivered at `now`; `Err(why)` tried
    /// again at `retry_at`, or given up when that is past its give-up time.
    pub async fn finish(
        &self,
        d: &Delivery,
        outcome: Result<(), &str>,
        now: i64,
        retry_at: i64,
    ) -> Result<(), OutboundError> {
        let (state, due, error, sent) = match outcome {
            Ok(()) => ("sent", now, None, Some(now)),
            Err(why) if retry_at > d.give_up_at => ("failed", now, Some(why), None),
            Err(why) => ("pending", retry_at, Some(why), None),
        };
        const Q: &str = "UPDATE outbound_deliveries SET state = $1, due_at = $2, last_error = $3, \
             sent_at = $4 WHERE day = $5 AND domain = $6 AND record_key = $7 AND destination = $8";
        on_pool!(self, |pool| sqlx::query(Q)
            .bind(state)
            .bind(due)
            .bind(error)
            .bind(sent)
            .bind(&d.day)
            .bind(&d.domain)
            .bind(&d.record_key)
            .bind(&d.destination)
            .execute(pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected());
        Ok(())
    }

    /// Deliveries, of `day` or of every day, newest day first.
    pub async fn deliveries(&self, day: Option<&str>) -> Result<Vec<Delivery>, OutboundError> {
        let q = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbound_deliveries WHERE (CAST($1 AS TEXT) IS NULL OR day = $1) \
             ORDER BY day DESC, domain, destination"
        );
        let rows: Vec<DeliveryTuple> =
            on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(q.as_str()))
                .bind(day)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?);
        Ok(rows.into_iter().map(delivery).collect())
    }
}
