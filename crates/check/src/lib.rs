//! The MTA-STS / TLS-RPT domain checker.
//!
//! [`Checker`] runs every lookup an administrator would do by hand (dig the `_mta-sts` TXT
//! record, curl the policy, compare `mx:` lines with live MX records, open an SMTP session and
//! look at the certificate, dig `_smtp._tls`) and turns what it sees into [`Finding`]s: each
//! with a stable [`Code`], a [`Severity`], the RFC section, a one-line explanation and, where
//! there is one, the exact fix. Output is the caller's business: reports go to a [`Sink`].
//!
//! A check is two steps: [`gather`] does every lookup, fetch and probe and returns
//! [`Observations`]; [`judge`] turns observations and the time into findings, with no I/O.

#![warn(missing_docs)]

pub mod engine;
pub mod finding;
pub mod fix;
pub mod gather;
pub mod judge;
pub mod lint;
pub mod observations;
pub mod render;
pub mod report;

pub use engine::{CheckOptions, Checker, SetupError};
pub use finding::{Area, Code, Finding, Severity};
pub use fix::Fix;
pub use observations::Observations;
pub use report::{DomainReport, ExitStatus, JSON_SCHEMA_VERSION, Outcome, Sink, exit_code};
