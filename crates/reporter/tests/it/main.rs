//! The reporter end to end (one integration binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod collect;
mod end_to_end;
mod peer;
