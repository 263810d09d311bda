//! Integration tests of the scan store, run against SQLite (a temporary file) and the
//! PostgreSQL named by `MTASTS_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`; each test gets its own schema). PostgreSQL
//! tests are skipped when the server is unreachable, unless `CI` is set
//! (`mtasts_testkit::require`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]

mod common;
mod diff;
mod hosting;
mod open;
mod queue;
mod reports;
mod results;
