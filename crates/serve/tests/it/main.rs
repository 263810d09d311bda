//! Integration tests of mtasts-serve: the policy server over real TLS (test CA) on both
//! database backends, and the domain lifecycle against the test world's DNS and SMTP servers.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]
mod acme;
mod api;
mod common;
mod dashboard;
mod domains;
mod monitor;
mod server;
