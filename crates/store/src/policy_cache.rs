//! The resolver's policy cache: one row per recipient domain holding the domain's cache state
//! as JSON text (the resolver owns its meaning), with the time after which nothing in it is
//! worth keeping. Rows past that time read as absent and are deleted by [`PolicyCacheStore::purge_expired`].
//!
//! SQLite (the default, embedded: survives restarts and `kill -9`) or PostgreSQL (shared by a
//! fleet of resolvers), through [`crate::db`].

use crate::db::{Database, DbError, Migrations, on_pool};

/// The policy cache module's migrations.
pub static MIGRATIONS: Migrations = Migrations::new(
    "policy_cache",
    "_mtasts_policy_cache_migrations",
    || sqlx::migrate!("./migrations/policy_cache/sqlite"),
    || sqlx::migrate!("./migrations/policy_cache/postgres"),
);

/// A policy cache query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyCacheError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed.
    #[error("policy cache in {url}: {error}")]
    Query {
        /// The database (redacted).
        url: String,
        /// What the driver said.
        error: sqlx::Error,
    },
}

/// One cached entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRow {
    /// The domain (lower-case A-labels).
    pub domain: String,
    /// The state, JSON text.
    pub state: String,
    /// Unix seconds after which the row is dead.
    pub expires_at: i64,
}

/// The policy cache table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PolicyCacheStore {
    db: Database,
}

impl PolicyCacheStore {
    /// The store on an open database, after running this module's [`MIGRATIONS`].
    pub async fn with_database(db: Database) -> Result<Self, PolicyCacheError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    fn err(&self, error: sqlx::Error) -> PolicyCacheError {
        PolicyCacheError::Query { url: self.db.url().to_string(), error }
    }

    /// The entry for `domain`, unless it is dead at `now`.
    pub async fn get(&self, domain: &str, now: i64) -> Result<Option<CacheRow>, PolicyCacheError> {
        const Q: &str = "SELECT domain, state, expires_at FROM policy_cache WHERE domain = $1 AND expires_at > $2";
        let row: Option<(String, String, i64)> = on_pool!(self, |pool| sqlx::query_as(Q)
            .bind(domain)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(row.map(|(domain, state, expires_at)| CacheRow { domain, state, expires_at }))
    }

    /// Stores (inserts or replaces) `row`.
    pub async fn put(&self, row: &CacheRow, now: i64) -> Result<(), PolicyCacheError> {
        const Q: &str = "INSERT INTO policy_cache (domain, state, expires_at, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (domain) DO UPDATE SET \
                         state = excluded.state, expires_at = excluded.expires_at, \
                         updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(Q)
            .bind(&row.domain)
            .bind(&row.state)
            .bind(row.expires_at)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected());
        Ok(())
    }

    /// Deletes the entry for `domain`; true if there was one.
    pub async fn remove(&self, domain: &str) -> Result<bool, PolicyCacheError> {
        const Q: &str = "DELETE FROM policy_cache WHERE domain = $1";
        let n = on_pool!(self, |pool| sqlx::query(Q)
            .bind(domain)
            .execute(pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected());
        Ok(n > 0)
    }

    /// Every live entry at `now`, by domain.
    pub async fn entries(&self, now: i64) -> Result<Vec<CacheRow>, PolicyCacheError> {
        const Q: &str = "SELECT domain, state, expires_at FROM policy_cache WHERE expires_at > $1 \
                         ORDER BY domain";
        let rows: Vec<(String, String, i64)> = on_pool!(self, |pool| sqlx::query_as(Q)
            .bind(now)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?);
        Ok(rows
            .into_iter()
            .map(|(domain, state, expires_at)| CacheRow { domain, state, expires_at })
            .collect())
    }

    /// Deletes every entry dead at `now`; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, PolicyCacheError> {
        const Q: &str = "DELETE FROM policy_cache WHERE expires_at <= $1";
        Ok(on_pool!(self, |pool| sqlx::query(Q)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::DatabaseUrl;

    #[tokio::test]
    async fn put_get_expire_remove_on_sqlite() {
        let db = Database::open(&DatabaseUrl::parse("sqlite::memory:").unwrap()).await.unwrap();
        let store = PolicyCacheStore::with_database(db).await.unwrap();
        let row = CacheRow { domain: "example.com".into(), state: "{}".into(), expires_at: 1000 };
        store.put(&row, 10).await.unwrap();
        assert_eq!(store.get("example.com", 999).await.unwrap(), Some(row.clone()));
        assert_eq!(store.get("example.com", 1000).await.unwrap(), None);
        let newer = CacheRow { state: "{\"a\":1}".into(), expires_at: 2000, ..row.clone() };
        store.put(&newer, 20).await.unwrap();
        assert_eq!(store.entries(1500).await.unwrap(), vec![newer.clone()]);
        assert_eq!(store.purge_expired(1500).await.unwrap(), 0);
        assert_eq!(store.purge_expired(2000).await.unwrap(), 1);
        assert!(!store.remove("example.com").await.unwrap());
    }
}
