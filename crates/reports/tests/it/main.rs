//! TLS-RPT intake and storage end to end: real report mails and files from the samples, into
//! SQLite and PostgreSQL (one integration binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alert;
mod dkim;
mod https;
mod imap;
mod ingest;
mod page;
