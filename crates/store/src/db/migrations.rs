//! One feature module's migrations: its SQL for each backend and its own bookkeeping table.

use sqlx::migrate::Migrator;

use super::Backend;

/// The migrations of one feature module (see the [module docs](super) for how a module adds
/// its own).
#[derive(Debug)]
pub struct Migrations {
    module: &'static str,
    table: &'static str,
    sqlite: fn() -> Migrator,
    postgres: fn() -> Migrator,
}

impl Migrations {
    /// A module named `module` whose applied migrations are recorded in `table` (by
    /// convention `_mtasts_<module>_migrations`). `sqlite` and `postgres` return
    /// `sqlx::migrate!("./migrations/<module>/<backend>")`.
    pub const fn new(
        module: &'static str,
        table: &'static str,
        sqlite: fn() -> Migrator,
        postgres: fn() -> Migrator,
    ) -> Self {
        Self { module, table, sqlite, postgres }
    }

    /// The module's name, e.g. `scan`.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// The module's bookkeeping table.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The versions of the module's migrations on `backend`, in order.
    pub fn versions(&self, backend: Backend) -> Vec<i64> {
        self.migrator(backend).iter().map(|m| m.version).collect()
    }

    /// The migrator for `backend`, recording into [`Migrations::table`].
    pub(crate) fn migrator(&self, backend: Backend) -> Migrator {
        let mut migrator = match backend {
            Backend::Sqlite => (self.sqlite)(),
            Backend::Postgres => (self.postgres)(),
        };
        migrator.dangerous_set_table_name(self.table);
        migrator
    }
}
