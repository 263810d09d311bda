//! Test databases for the tests of every crate that stores something (feature `testing`):
//! a fresh SQLite file, or a fresh schema in the test PostgreSQL (skipped locally when there
//! is none, a failure under CI: see `mtasts_testkit::require`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::ScanStore;

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
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
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

    /// The database, opened.
    pub async fn database(&self) -> crate::Database {
        crate::Database::open(&crate::DatabaseUrl::parse(&self.url).unwrap()).await.unwrap()
    }
}
