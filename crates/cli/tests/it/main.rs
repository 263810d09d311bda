//! The `mtasts` binary end to end: arguments, environment, output formats and exit codes,
//! against the hermetic test world (one integration binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod check;
mod lint;
mod man;
mod report;
mod reporter;
mod resolver;
mod scan;
mod serve;
