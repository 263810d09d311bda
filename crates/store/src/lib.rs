//! Storage for mtasts.
//!
//! [`db`] is the shared database layer: [`DatabaseUrl`] (parsed, shown without its password),
//! [`Database`] (one pool on SQLite or PostgreSQL) and per-module [`Migrations`]. Each feature
//! that stores something is a module on top of it with its own tables: [`scan`] (scan
//! runs, the shared work queue and results) [`policy_cache`] (the resolver's cache), [`reports`] (TLS-RPT reports received) and
//! [`hosting`] (hosted MTA-STS domains and their policy history) and [`outbound`] (TLS-RPT
//! results of this site's own deliveries, and the reports sent of them). [`MODULES`] lists them all.
#![warn(missing_docs)]

pub mod db;
pub mod hosting;
pub mod outbound;
pub mod policy_cache;
pub mod reports;
pub mod scan;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use db::{Backend, Database, DatabaseUrl, DbError, Migrations};
pub use scan::{
    Category, Change, Claim, DiffRow, Grade, Progress, ResultRow, RunId, RunInfo, ScanStore,
    StoreError,
};

/// Every feature module's migrations, in the order [`Database::migrate_all`] runs them. A new
/// module (policy cache, hosted domains, tenants, reports) adds its own line; see [`db`].
pub static MODULES: &[&Migrations] = &[
    &scan::MIGRATIONS,
    &policy_cache::MIGRATIONS,
    &reports::MIGRATIONS,
    &hosting::MIGRATIONS,
    &outbound::MIGRATIONS,
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn module_names_and_tables_are_unique() {
        let mut names = std::collections::HashSet::new();
        let mut tables = std::collections::HashSet::new();
        for m in MODULES {
            assert!(names.insert(m.module()), "module {} twice", m.module());
            assert!(tables.insert(m.table()), "table {} twice", m.table());
            assert_eq!(m.table(), format!("_mtasts_{}_migrations", m.module()));
            assert_eq!(
                m.versions(Backend::Sqlite),
                m.versions(Backend::Postgres),
                "{}: both backends have the same migration versions",
                m.module()
            );
            assert!(!m.versions(Backend::Sqlite).is_empty());
        }
    }

    #[tokio::test]
    async fn every_module_migrates_twice_on_sqlite() {
        let url = DatabaseUrl::parse("sqlite::memory:").unwrap();
        let db = Database::open(&url).await.unwrap();
        db.migrate_all(MODULES).await.unwrap();
        db.migrate_all(MODULES).await.unwrap();
        ScanStore::with_database(db.clone()).await.unwrap();
    }
}
