//! Integration tests of `mtasts-scan`: runs against the hermetic test world on SQLite, and
//! the HTML report in a real browser (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod docs;
mod html_report;
mod run;
mod support;
