use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtasts_store::{Category, Grade, ResultRow, ScanStore};
use sqlx::{Connection, PgConnection};

/// A database for one test: a fresh SQLite file or a fresh PostgreSQL schema.
pub struct TestDb {
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

pub fn postgres_base_url() -> String {
    std::env::var("MTASTS_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scan.db").display());
        Self { url, kind: Kind::Sqlite(dir) }
    }

    /// A fresh schema in the test PostgreSQL, or `None` (test skipped) if it is unreachable
    /// outside CI.
    pub async fn postgres(test: &str) -> Option<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = postgres_base_url();
        let conn =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await;
        let mut conn = match conn {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if !in_ci() => {
                eprintln!("skipping PostgreSQL test {test}: cannot connect to {admin_url}: {e}");
                return None;
            }
            Err(_) if !in_ci() => {
                eprintln!("skipping PostgreSQL test {test}: connecting to {admin_url} timed out");
                return None;
            }
            Ok(Err(e)) => panic!("CI: cannot connect to PostgreSQL at {admin_url}: {e}"),
            Err(_) => panic!("CI: connecting to PostgreSQL at {admin_url} timed out"),
        };
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let schema = format!(
            "mtasts_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={schema}");
        Some(Self { url, kind: Kind::Postgres { admin_url, schema } })
    }

    pub async fn open(&self) -> ScanStore {
        ScanStore::open(&self.url).await.unwrap()
    }

    /// Drops the PostgreSQL schema (the SQLite directory goes with `self`).
    pub async fn cleanup(self) {
        if let Kind::Postgres { admin_url, schema } = &self.kind {
            let mut conn = PgConnection::connect(admin_url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            let _ = conn.close().await;
        }
    }
}

/// Defines `sqlite` and `postgres` tests running `$f(&TestDb)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$name(&db).await;
                    db.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        )*
    };
}
pub(crate) use both_backends;

pub fn domains(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i:05}.{prefix}.example")).collect()
}

/// A plain result row for `domain`.
pub fn row(domain: &str, category: Category, grade: Grade) -> ResultRow {
    let valid = matches!(category, Category::None | Category::Testing | Category::Enforce);
    ResultRow {
        domain: domain.to_owned(),
        category,
        grade,
        txt_present: valid,
        policy_valid: valid,
        mode: valid.then(|| category.as_str().to_owned()),
        max_age: valid.then_some(604_800),
        mx_covered: valid.then_some(true),
        mx_tls_ok: None,
        tlsrpt_present: false,
        tlsrpt_valid: false,
        provider: None,
        error_codes: Vec::new(),
        warning_codes: Vec::new(),
        report_json: format!("{{\"domain\":\"{domain}\"}}"),
        elapsed_ms: 12,
    }
}

pub fn with_errors(mut r: ResultRow, errors: &[&str]) -> ResultRow {
    r.error_codes = errors.iter().map(|s| (*s).to_owned()).collect();
    r
}
