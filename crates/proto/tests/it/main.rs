//! Integration tests of `mtasts-proto`: property tests, real TLS-RPT
//! samples and the fuzz corpus replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_corpus;
mod mutate;
mod props;
mod samples;
