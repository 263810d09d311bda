//! Storage for mtasts. See [`scan`] for the scan runs, the shared work queue and results.
#![warn(missing_docs)]

pub mod scan;

pub use scan::{
    Backend, Category, Change, Claim, DiffRow, Grade, Progress, ResultRow, RunId, RunInfo,
    ScanStore, StoreError,
};
