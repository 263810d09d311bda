//! `mtasts scan`: the check engine over whole domain lists, with durable, resumable,
//! shareable runs (see [`run`]), statistics ([`summary`]) and reports ([`output`], [`html`]).

pub mod html;
pub mod input;
pub mod output;
pub mod row;
pub mod run;
pub mod summary;

pub use input::{InputLine, InputReader};
pub use run::{LoadStats, RowSink, Scan, ScanConfig, ScanError, ScanProgress};
pub use summary::{Summary, SummaryBuilder};
