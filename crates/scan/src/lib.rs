//! `mtasts scan`: the check engine over whole domain lists, with durable, resumable,
//! shareable runs.
//!
//! | module | job |
//! |---|---|
//! | [`job`] | one scan from start to end: input, store, run, network stack, summary |
//! | [`input`] | the domain list as a stream (lines or a CSV column) |
//! | [`run`] | loading the queue, leased batches, bounded concurrency, the single writer |
//! | [`worker`] | worker names; releasing the claims of this host's dead workers |
//! | [`stack`] | the scan's DNS client (rate-capped), MX probe cache and checker |
//! | [`row`] | a domain's report → its stored row: category, grade, provider |
//! | [`summary`] | statistics over a run, streamed from the store |
//! | [`output`], [`html`] | per-domain JSON lines / CSV; the self-contained HTML report |
//!
//! The queue and lease protocol itself is the store's (`mtasts_store::scan`).
#![warn(missing_docs)]

pub mod html;
pub mod input;
pub mod job;
pub mod output;
pub mod row;
pub mod run;
pub mod stack;
pub mod summary;
pub mod worker;

pub use input::{InputLine, InputReader};
pub use job::{InputSource, JobError, JobOptions, RunChoice, ScanJob, ScanOutcome};
pub use run::{LoadStats, NoRows, RowSink, Scan, ScanConfig, ScanError, ScanProgress};
pub use stack::CheckSettings;
pub use summary::{Summary, SummaryBuilder};
