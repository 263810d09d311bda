//! TLS-RPT aggregate reports received (RFC 8460 §4): one row per report with every field kept
//! (the report as received, the parser's warnings), its policies and
//! failure details in their own tables for analysis, and one receipt per delivery.
//!
//! A report is identified by organisation, `report-id` and date range: delivered twice (by
//! mail and by HTTPS, or twice by mail) it is stored once, and the second delivery is
//! acknowledged as a duplicate ([`Stored::duplicate`]). A report and all its rows are
//! committed in one transaction, so a crash never leaves half a report.
//!
//! This module knows nothing of the report format: the caller (`mtasts-reports`) turns a parsed
//! report into a [`NewReport`].

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use crate::db::{Database, DbError, Migrations, Pool, on_pool};

/// The reports module's migrations.
pub static MIGRATIONS: Migrations = Migrations::new(
    "reports",
    "_mtasts_reports_migrations",
    || sqlx::migrate!("./migrations/reports/sqlite"),
    || sqlx::migrate!("./migrations/reports/postgres"),
);

/// A reports query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportStoreError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed.
    #[error("report store {url}: {error}")]
    Query {
        /// The database (redacted).
        url: String,
        /// What the driver said.
        error: sqlx::Error,
    },
}

/// A report to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// `date-range`, unix seconds.
    pub start: i64,
    /// End of the date range, unix seconds.
    pub end: i64,
    /// `contact-info`.
    pub contact_info: Option<String>,
    /// How it arrived: `mail`, `https`, `file`.
    pub channel: String,
    /// `TLS-Report-Submitter` (mail) or the client (HTTPS).
    pub submitter: Option<String>,
    /// `TLS-Report-Domain` header (mail).
    pub report_domain: Option<String>,
    /// DKIM result of the mail (`pass`, `fail`, `none`), when checked.
    pub dkim: Option<String>,
    /// What the lenient parser tolerated, JSON array.
    pub warnings_json: String,
    /// The report as received (decompressed): every field, unknown ones included. The parsed
    /// form is not stored beside it; it is the parser's output of this text.
    pub raw_json: String,
    /// When it was received, unix seconds.
    pub received_at: i64,
    /// Its policies.
    pub policies: Vec<NewPolicy>,
}

/// One `policies` entry of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPolicy {
    /// `policy-type`.
    pub policy_type: String,
    /// `policy-domain`.
    pub policy_domain: Option<String>,
    /// `policy-string`, JSON array.
    pub policy_strings_json: String,
    /// `mx-host`, JSON array.
    pub mx_hosts_json: String,
    /// `total-successful-session-count`.
    pub successful: i64,
    /// `total-failure-session-count`.
    pub failed: i64,
    /// Unknown fields of the policy entry, JSON object.
    pub extra_json: String,
    /// `failure-details`.
    pub failures: Vec<NewFailure>,
}

/// One `failure-details` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFailure {
    /// `result-type`.
    pub result_type: String,
    /// `sending-mta-ip`.
    pub sending_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `failed-session-count`.
    pub failed_sessions: i64,
    /// `additional-information`.
    pub additional_information: Option<String>,
    /// `failure-reason-code`.
    pub failure_reason_code: Option<String>,
    /// Unknown fields, JSON object.
    pub extra_json: String,
}

/// What [`ReportStore::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The report's row id.
    pub id: i64,
    /// The report was already stored (this delivery is recorded as a receipt only).
    pub duplicate: bool,
}

/// A stored report, as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReportRow {
    /// Row id.
    pub id: i64,
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// Start of the date range, unix seconds.
    pub start: i64,
    /// End of the date range, unix seconds.
    pub end: i64,
    /// Policy domains, comma-separated.
    pub domains: String,
    /// Successful sessions, all policies.
    pub successful: i64,
    /// Failed sessions, all policies.
    pub failed: i64,
    /// First channel it arrived by.
    pub channel: String,
    /// DKIM result, when checked.
    pub dkim: Option<String>,
    /// Deliveries received (1 + duplicates).
    pub receipts: i64,
    /// When first received, unix seconds.
    pub received_at: i64,
}

/// The whole of one stored report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDetail {
    /// The listing.
    pub row: ReportRow,
    /// `contact-info`.
    pub contact_info: Option<String>,
    /// `TLS-Report-Submitter`.
    pub submitter: Option<String>,
    /// `TLS-Report-Domain`.
    pub report_domain: Option<String>,
    /// Tolerated deviations, JSON array.
    pub warnings_json: String,
    /// As received (decompressed).
    pub raw_json: String,
}

/// Sessions of one policy domain on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DayRow {
    /// The policy domain (empty for `no-policy-found` reports without one).
    pub domain: String,
    /// The UTC day, unix seconds of its midnight.
    pub day: i64,
    /// Successful sessions.
    pub successful: i64,
    /// Failed sessions.
    pub failed: i64,
    /// Reports counted.
    pub reports: i64,
}

/// Failed sessions of one result type on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailureDay {
    /// The policy domain.
    pub domain: String,
    /// The UTC day, unix seconds of its midnight.
    pub day: i64,
    /// `result-type`.
    pub result_type: String,
    /// Failed sessions.
    pub failed: i64,
}

/// Failed sessions grouped by one field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailureGroup {
    /// The policy domain.
    pub domain: String,
    /// The field's value (`(none)` when absent).
    pub key: String,
    /// Failed sessions.
    pub failed: i64,
}

/// A policy as one organisation reported it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicySeen {
    /// `organization-name`.
    pub organization: String,
    /// `policy-type`.
    pub policy_type: String,
    /// `policy-string`, JSON array.
    pub policy_strings_json: String,
    /// The last UTC day it was reported, unix seconds.
    pub last_day: i64,
    /// Sessions under it.
    pub sessions: i64,
}

/// What to group failures by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKey {
    /// `result-type`.
    ResultType,
    /// `organization-name` of the report.
    Organization,
    /// `receiving-mx-hostname`.
    ReceivingMx,
    /// `receiving-ip`.
    ReceivingIp,
    /// `sending-mta-ip`.
    SendingIp,
    /// `failure-reason-code`.
    ReasonCode,
}

impl FailureKey {
    /// Every key, in the order the roll-up is written.
    const ALL: [Self; 6] = [
        Self::ResultType,
        Self::Organization,
        Self::ReceivingMx,
        Self::ReceivingIp,
        Self::SendingIp,
        Self::ReasonCode,
    ];

    /// The key's name in `tlsrpt_failure_days.dimension` (migration `reports/0003`).
    fn dimension(self) -> &'static str {
        match self {
            Self::ResultType => "result_type",
            Self::Organization => "organization",
            Self::ReceivingMx => "receiving_mx",
            Self::ReceivingIp => "receiving_ip",
            Self::SendingIp => "sending_ip",
            Self::ReasonCode => "reason_code",
        }
    }

    /// The value of this key for one failure detail of a report from `organization`: at most
    /// [`ITEM_CHARS`] characters, `(none)` when the detail has none (as migration
    /// `reports/0003` computes it with `SUBSTR` and `COALESCE`).
    fn item(self, organization: &str, f: &NewFailure) -> String {
        let value = match self {
            Self::ResultType => Some(f.result_type.as_str()),
            Self::Organization => Some(organization),
            Self::ReceivingMx => f.receiving_mx_hostname.as_deref(),
            Self::ReceivingIp => f.receiving_ip.as_deref(),
            Self::SendingIp => f.sending_ip.as_deref(),
            Self::ReasonCode => f.failure_reason_code.as_deref(),
        };
        value.unwrap_or("(none)").chars().take(ITEM_CHARS).collect()
    }
}

/// The longest failure key kept in the roll-up (a key is part of its primary key, and a
/// PostgreSQL index entry has a size limit); longer values are cut, in the roll-up only.
const ITEM_CHARS: usize = 512;

/// A report's policy domains as listed: each once, in the report's order, comma-separated
/// (`''` for a policy without one).
fn domains_of(r: &NewReport) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for p in &r.policies {
        let d = p.policy_domain.as_deref().unwrap_or("");
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
    seen.join(",")
}

/// The reports tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReportStore {
    db: Database,
}

/// Rows per multi-row statement (SQLite allows 32 766 bound values per statement; the widest
/// row here has 14).
const ROWS_PER_STATEMENT: usize = 1000;

/// Inserts `reports` in one transaction on one connection type, with multi-row statements:
/// a few statements per thousand reports rather than five per report (each statement is a
/// round trip to the database, or to sqlx's SQLite thread).
macro_rules! insert_all {
    ($self:expr, $pool:expr, $reports:expr) => {{
        let e = |error| $self.err(error);
        let reports: &[NewReport] = $reports;
        let mut tx = $pool.begin().await.map_err(e)?;
        // 1. The reports; those already stored (or earlier in this batch) are not returned.
        let mut ids: HashMap<(String, String, i64, i64), i64> = HashMap::new();
        let mut fresh: HashSet<i64> = HashSet::new();
        for chunk in reports.chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_reports (organization, report_id, start_at, end_at, contact_info, \
                 successful, failed, channel, submitter, report_domain, dkim, warnings_json, raw_json, received_at, domains) ");
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.organization)
                    .push_bind(&r.report_id)
                    .push_bind(r.start)
                    .push_bind(r.end)
                    .push_bind(&r.contact_info)
                    .push_bind(r.policies.iter().map(|p| p.successful).sum::<i64>())
                    .push_bind(r.policies.iter().map(|p| p.failed).sum::<i64>())
                    .push_bind(&r.channel)
                    .push_bind(&r.submitter)
                    .push_bind(&r.report_domain)
                    .push_bind(&r.dkim)
                    .push_bind(&r.warnings_json)
                    .push_bind(&r.raw_json)
                    .push_bind(r.received_at)
                    .push_bind(domains_of(r));
            });
            q.push(" ON CONFLICT (organization, report_id, start_at, end_at) DO NOTHING \
                     RETURNING id, organization, report_id, start_at, end_at");
            let rows: Vec<(i64, String, String, i64, i64)> =
                q.build_query_as().fetch_all(&mut *tx).await.map_err(e)?;
            for (id, org, rid, start, end) in rows {
                fresh.insert(id);
                ids.insert((org, rid, start, end), id);
            }
        }
        // Reports stored before this batch: looked up one by one (duplicates are rare).
        for r in reports {
            let key = (r.organization.clone(), r.report_id.clone(), r.start, r.end);
            if ids.contains_key(&key) {
                continue;
            }
            let (id,): (i64,) = sqlx::query_as(
                "SELECT id FROM tlsrpt_reports WHERE organization = $1 AND report_id = $2 \
                 AND start_at = $3 AND end_at = $4",
            )
            .bind(&r.organization)
            .bind(&r.report_id)
            .bind(r.start)
            .bind(r.end)
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?;
            ids.insert(key, id);
        }
        // Which delivery is new: the first of a freshly inserted report in this batch.
        let mut out = Vec::with_capacity(reports.len());
        let mut owners: Vec<(usize, i64)> = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            let id = ids[&(r.organization.clone(), r.report_id.clone(), r.start, r.end)];
            let duplicate = !fresh.remove(&id);
            if !duplicate {
                owners.push((i, id));
            }
            out.push(Stored { id, duplicate });
        }
        // 2. One receipt per delivery.
        for chunk in reports.iter().zip(&out).collect::<Vec<_>>().chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_receipts (report, channel, received_at, duplicate) ");
            q.push_values(chunk, |mut b, (r, st)| {
                b.push_bind(st.id).push_bind(&r.channel).push_bind(r.received_at).push_bind(st.duplicate);
            });
            q.build().execute(&mut *tx).await.map_err(e)?;
        }
        // The report row counts its deliveries (stored with 1).
        let mut again: Vec<(i64, i64)> = Vec::new();
        for st in out.iter().filter(|st| st.duplicate) {
            match again.iter_mut().find(|(id, _)| *id == st.id) {
                Some((_, n)) => *n += 1,
                None => again.push((st.id, 1)),
            }
        }
        for (id, n) in again {
            sqlx::query("UPDATE tlsrpt_reports SET receipts = receipts + $1 WHERE id = $2")
                .bind(n)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        }
        // 3. The policies of the new reports, then 4. their failure details.
        let policies: Vec<(i64, i64, &NewPolicy, i64, &str)> = owners
            .iter()
            .flat_map(|&(i, id)| {
                let r = &reports[i];
                // RFC 8460 §4.1: a report covers (normally) one UTC day; sessions are counted
                // on the day the range starts.
                let day = r.start - r.start.rem_euclid(86_400);
                r.policies.iter().enumerate().map(move |(pos, p)| {
                    (id, i64::try_from(pos).unwrap_or(i64::MAX), p, day, r.organization.as_str())
                })
            })
            .collect();
        let mut policy_ids: HashMap<(i64, i64), i64> = HashMap::new();
        for chunk in policies.chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_policies (report, position, policy_type, policy_domain, \
                 policy_strings_json, mx_hosts_json, successful, failed, day, extra_json) ");
            q.push_values(chunk, |mut b, (id, pos, p, day, _)| {
                b.push_bind(*id)
                    .push_bind(*pos)
                    .push_bind(&p.policy_type)
                    .push_bind(&p.policy_domain)
                    .push_bind(&p.policy_strings_json)
                    .push_bind(&p.mx_hosts_json)
                    .push_bind(p.successful)
                    .push_bind(p.failed)
                    .push_bind(*day)
                    .push_bind(&p.extra_json);
            });
            q.push(" RETURNING id, report, position");
            let rows: Vec<(i64, i64, i64)> = q.build_query_as().fetch_all(&mut *tx).await.map_err(e)?;
            for (pid, report, pos) in rows {
                policy_ids.insert((report, pos), pid);
            }
        }
        let failures: Vec<(i64, &NewFailure)> = policies
            .iter()
            .flat_map(|(id, pos, p, _, _)| {
                let pid = policy_ids.get(&(*id, *pos)).copied().unwrap_or_default();
                p.failures.iter().map(move |f| (pid, f))
            })
            .collect();
        for chunk in failures.chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_failures (policy, result_type, sending_ip, \
                 receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions, \
                 additional_information, failure_reason_code, extra_json) ");
            q.push_values(chunk, |mut b, (pid, f)| {
                b.push_bind(*pid)
                    .push_bind(&f.result_type)
                    .push_bind(&f.sending_ip)
                    .push_bind(&f.receiving_mx_hostname)
                    .push_bind(&f.receiving_mx_helo)
                    .push_bind(&f.receiving_ip)
                    .push_bind(f.failed_sessions)
                    .push_bind(&f.additional_information)
                    .push_bind(&f.failure_reason_code)
                    .push_bind(&f.extra_json);
            });
            q.build().execute(&mut *tx).await.map_err(e)?;
        }
        // 5. The roll-ups, summed here first (one statement must not upsert a key twice).
        let (days, failure_days) = rollup(&policies);
        for chunk in days.chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_domain_days (domain, day, successful, failed, reports) ");
            q.push_values(chunk, |mut b, ((domain, day), (successful, failed, n))| {
                b.push_bind(*domain).push_bind(*day).push_bind(*successful).push_bind(*failed).push_bind(*n);
            });
            q.push(" ON CONFLICT (domain, day) DO UPDATE SET \
                     successful = tlsrpt_domain_days.successful + excluded.successful, \
                     failed = tlsrpt_domain_days.failed + excluded.failed, \
                     reports = tlsrpt_domain_days.reports + excluded.reports");
            q.build().execute(&mut *tx).await.map_err(e)?;
        }
        for chunk in failure_days.chunks(ROWS_PER_STATEMENT) {
            let mut q = builder($pool, "INSERT INTO tlsrpt_failure_days (domain, dimension, day, item, failed) ");
            q.push_values(chunk, |mut b, ((domain, dimension, day, item), failed)| {
                b.push_bind(*domain).push_bind(*dimension).push_bind(*day).push_bind(item.as_str()).push_bind(*failed);
            });
            q.push(" ON CONFLICT (domain, dimension, day, item) DO UPDATE SET \
                     failed = tlsrpt_failure_days.failed + excluded.failed");
            q.build().execute(&mut *tx).await.map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
        out
    }};
}

/// Sessions per (domain, day) with the reports counted, and failed sessions per (domain,
/// dimension, day, item), of the policies of newly stored reports (report id, position,
/// policy, day, organisation), sorted by key.
#[allow(clippy::type_complexity)]
fn rollup<'a>(
    policies: &[(i64, i64, &'a NewPolicy, i64, &'a str)],
) -> (Vec<((&'a str, i64), (i64, i64, i64))>, Vec<((&'a str, &'static str, i64, String), i64)>) {
    use std::collections::BTreeMap;
    let mut days: BTreeMap<(&str, i64), (i64, i64, i64)> = BTreeMap::new();
    let mut counted: HashSet<(i64, &str, i64)> = HashSet::new();
    let mut failures: BTreeMap<(&str, &'static str, i64, String), i64> = BTreeMap::new();
    for &(report, _, p, day, organization) in policies {
        let domain = p.policy_domain.as_deref().unwrap_or("");
        let row = days.entry((domain, day)).or_default();
        row.0 += p.successful;
        row.1 += p.failed;
        if counted.insert((report, domain, day)) {
            row.2 += 1;
        }
        for f in &p.failures {
            for key in FailureKey::ALL {
                *failures
                    .entry((domain, key.dimension(), day, key.item(organization, f)))
                    .or_default() += f.failed_sessions;
            }
        }
    }
    (days.into_iter().collect(), failures.into_iter().collect())
}

fn builder<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>, init: &str) -> sqlx::QueryBuilder<DB> {
    sqlx::QueryBuilder::new(init)
}

const LIST: &str = "SELECT r.id, r.organization, r.report_id, r.start_at, r.end_at, r.domains, \
     r.successful, r.failed, r.channel, r.dkim, r.receipts, r.received_at FROM tlsrpt_reports r";

/// The roll-ups' domain condition: ` AND domain = $N` for one domain, nothing for all (a
/// separate statement rather than `$N IS NULL OR ...`, which keeps the planner off the
/// primary key).
fn domain_is(domain: Option<&str>, n: u8) -> String {
    match domain {
        Some(_) => format!(" AND domain = ${n}"),
        None => String::new(),
    }
}

fn report_row<R: Row>(row: &R) -> Result<ReportRow, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(ReportRow {
        id: row.try_get("id")?,
        organization: row.try_get("organization")?,
        report_id: row.try_get("report_id")?,
        start: row.try_get("start_at")?,
        end: row.try_get("end_at")?,
        domains: row.try_get("domains")?,
        successful: row.try_get("successful")?,
        failed: row.try_get("failed")?,
        channel: row.try_get("channel")?,
        dkim: row.try_get("dkim")?,
        receipts: row.try_get("receipts")?,
        received_at: row.try_get("received_at")?,
    })
}

impl ReportStore {
    /// The store on an open database, after running this module's [`MIGRATIONS`].
    pub async fn with_database(db: Database) -> Result<Self, ReportStoreError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    /// The database's URL (redacted when shown).
    pub fn database(&self) -> &crate::DatabaseUrl {
        self.db.url()
    }

    fn err(&self, error: sqlx::Error) -> ReportStoreError {
        ReportStoreError::Query { url: self.db.url().to_string(), error }
    }

    /// Stores `report` (or records a duplicate delivery of it), in one transaction.
    pub async fn insert(&self, report: &NewReport) -> Result<Stored, ReportStoreError> {
        let mut stored = self.insert_all(std::slice::from_ref(report)).await?;
        stored.pop().ok_or_else(|| self.err(sqlx::Error::RowNotFound))
    }

    /// Stores `reports` (or records duplicate deliveries) in one transaction: all or none.
    /// One `Stored` per report, in order.
    pub async fn insert_all(&self, reports: &[NewReport]) -> Result<Vec<Stored>, ReportStoreError> {
        Ok(match self.db.pool() {
            Pool::Sqlite(pool) => insert_all!(self, pool, reports),
            Pool::Postgres(pool) => insert_all!(self, pool, reports),
        })
    }

    /// Stored reports, newest date range first; only those with a policy for `domain` when
    /// given; at most `limit`.
    pub async fn list(
        &self,
        domain: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReportRow>, ReportStoreError> {
        let sql = format!(
            "{LIST} WHERE ($1 IS NULL OR EXISTS (SELECT 1 FROM tlsrpt_policies p WHERE p.report = r.id AND p.policy_domain = $1)) \
             ORDER BY r.start_at DESC, r.id DESC LIMIT $2"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(domain)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            rows.iter().map(|r| report_row(r).map_err(|e| self.err(e))).collect()
        })
    }

    /// One report, whole.
    pub async fn get(&self, id: i64) -> Result<Option<ReportDetail>, ReportStoreError> {
        let sql = format!(
            "SELECT q.*, x.contact_info, x.submitter, x.report_domain, x.warnings_json, x.raw_json \
             FROM ({LIST} WHERE r.id = $1) q JOIN tlsrpt_reports x ON x.id = q.id"
        );
        on_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let get = |e| self.err(e);
                    Ok(Some(ReportDetail {
                        row: report_row(&r).map_err(get)?,
                        contact_info: r.try_get("contact_info").map_err(get)?,
                        submitter: r.try_get("submitter").map_err(get)?,
                        report_domain: r.try_get("report_domain").map_err(get)?,
                        warnings_json: r.try_get("warnings_json").map_err(get)?,
                        raw_json: r.try_get("raw_json").map_err(get)?,
                    }))
                }
            }
        })
    }

    /// Sessions per policy domain and UTC day from `since` (unix seconds), for `domain` or all
    /// (from the roll-up: one row per domain and day).
    pub async fn days(
        &self,
        domain: Option<&str>,
        since: i64,
    ) -> Result<Vec<DayRow>, ReportStoreError> {
        let sql = format!(
            "SELECT domain, day, successful, failed, reports FROM tlsrpt_domain_days \
             WHERE day >= $1{} ORDER BY domain, day",
            domain_is(domain, 2)
        );
        on_pool!(self, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(since);
            if let Some(d) = domain {
                q = q.bind(d);
            }
            let rows: Vec<(String, i64, i64, i64, i64)> =
                q.fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, day, successful, failed, reports)| DayRow {
                    domain,
                    day,
                    successful,
                    failed,
                    reports,
                })
                .collect())
        })
    }

    /// Failed sessions from `since` grouped by policy domain and `key`, largest first (from
    /// the roll-up).
    pub async fn failures(
        &self,
        key: FailureKey,
        domain: Option<&str>,
        since: i64,
    ) -> Result<Vec<FailureGroup>, ReportStoreError> {
        let sql = format!(
            "SELECT domain, item, CAST(SUM(failed) AS BIGINT) AS failed FROM tlsrpt_failure_days \
             WHERE dimension = $1 AND day >= $2{} GROUP BY domain, item \
             ORDER BY domain, failed DESC, item",
            domain_is(domain, 3)
        );
        on_pool!(self, |pool| {
            let mut q =
                sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(key.dimension()).bind(since);
            if let Some(d) = domain {
                q = q.bind(d);
            }
            let rows: Vec<(String, String, i64)> =
                q.fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, key, failed)| FailureGroup { domain, key, failed })
                .collect())
        })
    }

    /// Per reporting organisation: the policy strings it reported for `domain` from `since`,
    /// with the last day it reported them and the sessions under them.
    pub async fn policies_seen(
        &self,
        domain: &str,
        since: i64,
    ) -> Result<Vec<PolicySeen>, ReportStoreError> {
        const Q: &str = "SELECT r.organization, p.policy_type, p.policy_strings_json, MAX(p.day) AS last_day, \
             CAST(SUM(p.successful + p.failed) AS BIGINT) AS sessions FROM tlsrpt_policies p \
             JOIN tlsrpt_reports r ON r.id = p.report WHERE p.policy_domain = $1 AND p.day >= $2 \
             GROUP BY r.organization, p.policy_type, p.policy_strings_json ORDER BY r.organization, last_day";
        on_pool!(self, |pool| {
            let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(Q)
                .bind(domain)
                .bind(since)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(organization, policy_type, policy_strings_json, last_day, sessions)| {
                    PolicySeen {
                        organization,
                        policy_type,
                        policy_strings_json,
                        last_day,
                        sessions,
                    }
                })
                .collect())
        })
    }

    /// Failed sessions per policy domain, UTC day and result type from `since` (from the
    /// roll-up).
    pub async fn failure_days(
        &self,
        domain: Option<&str>,
        since: i64,
    ) -> Result<Vec<FailureDay>, ReportStoreError> {
        let sql = format!(
            "SELECT domain, day, item, failed FROM tlsrpt_failure_days \
             WHERE dimension = 'result_type' AND day >= $1{} ORDER BY domain, day, item",
            domain_is(domain, 2)
        );
        on_pool!(self, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(since);
            if let Some(d) = domain {
                q = q.bind(d);
            }
            let rows: Vec<(String, i64, String, i64)> =
                q.fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, day, result_type, failed)| FailureDay {
                    domain,
                    day,
                    result_type,
                    failed,
                })
                .collect())
        })
    }

    /// The result types reported for `domain` in reports other than `except` (to tell a new
    /// kind of failure from a known one).
    pub async fn known_result_types(
        &self,
        domain: &str,
        except: i64,
    ) -> Result<Vec<String>, ReportStoreError> {
        const Q: &str = "SELECT DISTINCT f.result_type FROM tlsrpt_failures f \
             JOIN tlsrpt_policies p ON p.id = f.policy WHERE p.policy_domain = $1 AND p.report <> $2 \
             ORDER BY f.result_type";
        on_pool!(self, |pool| {
            let rows: Vec<(String,)> = sqlx::query_as(Q)
                .bind(domain)
                .bind(except)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(rows.into_iter().map(|(t,)| t).collect())
        })
    }

    /// Number of stored reports.
    pub async fn count(&self) -> Result<i64, ReportStoreError> {
        on_pool!(self, |pool| {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tlsrpt_reports")
                .fetch_one(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(n)
        })
    }
}
