//! The shared database layer: one URL type ([`DatabaseUrl`], whose `Display` never shows a
//! password), one connection pool per process ([`Database`], SQLite or PostgreSQL), and
//! migrations per feature module ([`Migrations`]).
//!
//! # Feature modules
//!
//! Each part of mtasts that stores something is one module of this crate with its own tables
//! and its own migrations: today [`crate::scan`]; later the policy cache, hosted domains,
//! tenants and TLS-RPT reports, each next to `scan`. Every module's migrations are recorded in
//! their own bookkeeping table (`_mtasts_<module>_migrations`), so modules add and evolve
//! their tables independently and can share one database (one pool) with each other and with
//! other sqlx users.
//!
//! A new module `foo`:
//!
//! 1. puts its SQL in `migrations/foo/sqlite/NNNN_name.sql` and
//!    `migrations/foo/postgres/NNNN_name.sql` (same versions on both backends; timestamps are
//!    `BIGINT` unix seconds, JSON is `TEXT`, so the two sets stay alike);
//! 2. declares them in `src/foo.rs`:
//!    ```text
//!    pub static MIGRATIONS: Migrations = Migrations::new(
//!        "foo",
//!        "_mtasts_foo_migrations",
//!        || sqlx::migrate!("./migrations/foo/sqlite"),
//!        || sqlx::migrate!("./migrations/foo/postgres"),
//!    );
//!    ```
//! 3. adds `&foo::MIGRATIONS` to [`crate::MODULES`] (a test checks names and tables are
//!    unique and that every module migrates on both backends);
//! 4. gives its store a constructor taking a [`Database`] that calls
//!    [`Database::migrate`]`(&MIGRATIONS)` first, as [`crate::ScanStore::with_database`]
//!    does, so stores opened on one `Database` share its pool.
//!
//! # Backends
//!
//! SQLite (`sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`) is the default: the file is
//! created if missing, WAL journal, `synchronous=NORMAL`, a busy timeout for other writers
//! (possibly other processes), foreign keys on, a small pool; an in-memory database keeps
//! exactly one connection for its lifetime. PostgreSQL (`postgres://…`) is for fleets of
//! workers: the first connection is made by hand with a short timeout so an unreachable
//! server fails fast with [`DbError::Unreachable`] instead of the pool's generic timeout.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

mod migrations;

/// Runs `$body` with `$pool` bound to the store's SQLite or PostgreSQL pool (the same code,
/// compiled for each driver): the one way a feature module reaches its database.
macro_rules! on_pool {
    ($self:expr, |$pool:ident| $body:expr) => {
        match $self.db.pool() {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;
mod url;

pub use migrations::Migrations;
pub use url::{DatabaseUrl, REDACTED};

/// Time allowed to open the first PostgreSQL connection in [`Database::open`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to get a PostgreSQL connection from the pool (including reconnecting).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL connections per process.
const PG_MAX_CONNECTIONS: u32 = 8;
/// How long SQLite waits for another writer (possibly another process) to finish.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// SQLite's page cache per connection, in KiB when negative (SQLite's own default is 2 MiB): a
/// batch of reports touches index pages all over the store, and a cache that holds them keeps
/// re-reads of the same pages off the disk. Only what is used is allocated.
const SQLITE_CACHE_SIZE: &str = "-32768";
/// Time allowed to get an SQLite connection from the pool.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// SQLite connections per process (file databases; in-memory ones use exactly one).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Pause before retrying an SQLite migration that another process may have been running.
const SQLITE_MIGRATE_RETRY: Duration = Duration::from_millis(250);

/// Which database a [`Database`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, embedded (single machine).
    Sqlite,
    /// PostgreSQL (shared by a fleet of workers).
    Postgres,
}

/// Why a database could not be opened or migrated. Every variant names the database once,
/// without its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL names no supported database (the text is redacted).
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The URL names a supported database but its options do not parse.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// Nothing answered at the database's address (refused, unreachable, timed out).
    #[error("database at {url} does not answer: {reason}")]
    Unreachable {
        /// The database.
        url: DatabaseUrl,
        /// What went wrong.
        reason: String,
    },
    /// The database answered but could not be opened (authentication, no such database, a
    /// file that cannot be created, …).
    #[error("cannot open the database at {url}: {}", driver_words(error))]
    Open {
        /// The database.
        url: DatabaseUrl,
        /// What the driver said (in the message, so not also a `source()`).
        error: sqlx::Error,
    },
    /// The directory an SQLite file is to be created in does not exist.
    #[error("cannot create the database at {url}: the directory {} does not exist", dir.display())]
    NoDirectory {
        /// The database.
        url: DatabaseUrl,
        /// The missing directory.
        dir: std::path::PathBuf,
    },
    /// Reading an SQLite database that does not exist (see [`Database::open_existing`]).
    #[error(
        "no database at {url}: the file does not exist (a typo? it is created by the commands that write: `scan`, `report ingest`, `reporter collect`, `domain add`, the resolver)"
    )]
    Missing {
        /// The database.
        url: DatabaseUrl,
    },
    /// A feature module's migrations failed.
    #[error("migrating the {module} tables in {url}: {error}")]
    Migrate {
        /// The feature module ([`Migrations::module`]).
        module: &'static str,
        /// The database.
        url: DatabaseUrl,
        /// What the migrator said (in the message, so not also a `source()`).
        error: sqlx::migrate::MigrateError,
    },
}

/// The typed pool of a [`Database`].
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open database: its URL and one connection pool, shared by every store opened on it.
///
/// Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct Database {
    url: DatabaseUrl,
    pool: Pool,
}

impl Database {
    /// Opens (for SQLite files: creating if missing) the database at `url`. Runs no
    /// migrations: each store runs its own module's ([`Database::migrate`]).
    pub async fn open(url: &DatabaseUrl) -> Result<Self, DbError> {
        Self::open_with(url, true).await
    }

    /// Opens the database at `url` only if it exists: for commands that read (`scan runs`,
    /// `scan diff`), so a mistyped SQLite path is an error instead of a new, empty database.
    pub async fn open_existing(url: &DatabaseUrl) -> Result<Self, DbError> {
        Self::open_with(url, false).await
    }

    async fn open_with(url: &DatabaseUrl, create: bool) -> Result<Self, DbError> {
        let pool = match url.backend() {
            Backend::Sqlite => Pool::Sqlite(open_sqlite(url, create).await?),
            Backend::Postgres => Pool::Postgres(open_postgres(url).await?),
        };
        Ok(Self { url: url.clone(), pool })
    }

    /// The database's URL (`Display` redacts it).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// Brings one feature module's tables up to date. Idempotent; safe to call from several
    /// processes at once (PostgreSQL takes the migrator's lock; SQLite, which has none, is
    /// retried once).
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), DbError> {
        let err =
            |error| DbError::Migrate { module: migrations.module(), url: self.url.clone(), error };
        let migrator = migrations.migrator(self.backend());
        match &self.pool {
            Pool::Sqlite(pool) => {
                if let Err(first) = migrator.run(pool).await {
                    // SQLite has no migration lock: another process opening the same new file
                    // may have migrated it concurrently. Try once more before giving up.
                    tracing::debug!(error = %first, "SQLite migration failed; retrying once");
                    tokio::time::sleep(SQLITE_MIGRATE_RETRY).await;
                    migrator.run(pool).await.map_err(err)?;
                }
            }
            Pool::Postgres(pool) => migrator.run(pool).await.map_err(err)?,
        }
        Ok(())
    }

    /// [`Database::migrate`] for each of `modules`, in order.
    pub async fn migrate_all(&self, modules: &[&Migrations]) -> Result<(), DbError> {
        for m in modules {
            self.migrate(m).await?;
        }
        Ok(())
    }

    /// Closes the pool (waiting for connections in use to be returned). Every store on this
    /// database, and every clone of it, stops working.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// What the database driver said, without its own framing ("error returned from database:
/// (code: 14) …"): the database's message for database errors, the driver's text otherwise.
fn driver_words(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

async fn open_sqlite(url: &DatabaseUrl, create: bool) -> Result<SqlitePool, DbError> {
    let open_err = |error| DbError::Open { url: url.clone(), error };
    let options = url.expose().parse::<SqliteConnectOptions>().map_err(open_err)?;
    if !url.is_memory() {
        let file = options.get_filename();
        if !create && !file.exists() {
            return Err(DbError::Missing { url: url.clone() });
        }
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(DbError::NoDirectory { url: url.clone(), dir: dir.to_path_buf() });
        }
    }
    let options = options
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("cache_size", SQLITE_CACHE_SIZE)
        // sqlx's own warnings (a statement over 1 s, with its SQL) are not an
        // administrator's business: a long listing is not a fault.
        .disable_statement_logging();
    let pool_options = SqlitePoolOptions::new().acquire_timeout(SQLITE_ACQUIRE_TIMEOUT);
    let pool_options = if url.is_memory() {
        // Every connection would otherwise see its own, empty, database; keep exactly one
        // connection open for the pool's lifetime.
        pool_options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
    } else {
        pool_options.max_connections(SQLITE_MAX_CONNECTIONS)
    };
    pool_options.connect_with(options).await.map_err(open_err)
}

async fn open_postgres(url: &DatabaseUrl) -> Result<PgPool, DbError> {
    let options = url
        .expose()
        .parse::<PgConnectOptions>()
        .map_err(|error| DbError::Open { url: url.clone(), error })?
        .application_name("mtasts")
        .disable_statement_logging();
    // The pool retries refused connections until its acquire timeout and then reports only
    // "timed out"; connect once by hand for a fast, specific error.
    let unreachable = |reason: String| DbError::Unreachable { url: url.clone(), reason };
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => {
            return Err(unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())));
        }
        Ok(Err(sqlx::Error::Io(e))) => return Err(unreachable(e.to_string())),
        Ok(Err(error)) => return Err(DbError::Open { url: url.clone(), error }),
        Ok(Ok(first)) => {
            let first: PgConnection = first;
            let _ = first.close().await;
        }
    }
    Ok(PgPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}
