//! Integration tests of the check engine against the hermetic test world (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod docs;
mod scenarios;
mod support;
