//! Integration tests of mtasts-resolver: the socketmap server against the hermetic world.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod dane;
mod exim;
mod hostile;
mod lifecycle;
mod postfix;
mod postfix_delivery;
mod socketmap;
mod support;
mod tlsrpt;
