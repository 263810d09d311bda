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

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scan.db").display());
        Self { url, kind: Kind::Sqlite(dir) }
    }

    /// A fresh schema in the test PostgreSQL, or `None` (test skipped; a failure under CI)
    /// when there is none: see `mtasts_testkit::require`.
    pub async fn postgres(test: &str) -> Option<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = mtasts_testkit::require::postgres_url()?;
        let mut conn =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
                .await
                .unwrap_or_else(|_| panic!("{test}: connecting to the test PostgreSQL timed out"))
                .unwrap_or_else(|e| panic!("{test}: the test PostgreSQL refused: {e}"));
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

    /// The PostgreSQL server's URL (without this test's schema), if this is PostgreSQL.
    pub fn admin_url(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { admin_url, .. } => Some(admin_url),
            Kind::Sqlite(_) => None,
        }
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
