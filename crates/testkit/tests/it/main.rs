//! Tests of the hermetic test universe itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]

mod dns;
mod generated;
mod https;
mod resolver;
mod smtp;
mod util;
mod world;
