//! Pure protocol core of `mtasts`: every rule of MTA-STS (RFC 8461) and
//! SMTP TLS Reporting (RFC 8460) as types and pure functions.
//!
//! Nothing in this crate performs I/O or reads a clock; callers pass in the
//! bytes they fetched and the time they observed. Parsers follow the
//! "parse, don't validate" pattern: a value of a newtype such as
//! [`PolicyId`], [`MxPattern`] or [`DomainName`] can only exist if it obeys
//! the grammar of its RFC section.
//!
//! | module | RFC section |
//! |---|---|
//! | [`domain`] | RFC 8461 §3.1, §3.2, §3.3 (A-label policy domain) |
//! | [`sts_record`] | RFC 8461 §3.1 (`_mta-sts` TXT record) |
//! | [`policy`] | RFC 8461 §3.2 (policy file, its `text/plain` media type), §4.1 (MX matching) |
//! | [`mx`] | RFC 5321 §5.1 (explicit and implicit MX), RFC 7505 (null MX) |
//! | [`socketmap`] | Postfix socketmap netstrings; TLS policy keys (RFC 8461 §3.4) |
//! | [`postfix`] | Postfix TLS policy answers for a policy (RFC 8461 §4.1, §5, §7.1) |
//! | [`generate`] | RFC 8461 §3.1, §3.2, §8.1, RFC 8460 §3 (records and policies to publish) |
//! | [`tlsrpt_record`] | RFC 8460 §3 (`_smtp._tls` TXT record) |
//! | [`result_type`] | RFC 8460 §4.3 (result types) |
//! | [`report`] | RFC 8460 §4.4 (aggregate report JSON) |
//! | [`datagram`] | libtlsrpt's delivery-result datagram (one session's RFC 8460 §4 data) |
//!
//! No function in this crate panics on any input.
#![warn(missing_docs)]

pub mod dane;
pub mod datagram;
pub mod diag;
pub mod domain;
pub mod generate;
pub mod mx;
pub mod policy;
pub mod postfix;
pub mod report;
pub mod result_type;
pub mod socketmap;
pub mod sts_record;
pub mod tlsrpt_record;

/// The fuzz oracles, only with the `fuzzing` feature (for `fuzz/` and the corpus replay
/// tests; not in the release binary).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

mod syntax;

pub use diag::{Parsed, Warning, io_words};
pub use domain::{DomainError, DomainName};
pub use generate::GenerateError;
pub use mx::{MxKind, MxRecord, MxSet};
pub use policy::{
    MAX_AGE_MAX, MaxAge, Mode, MxPattern, MxPatternError, POLICY_MAX_BYTES, Policy, PolicyError,
    PolicyErrorKind, PolicyExtension, is_policy_media_type,
};
pub use report::{
    DateRange, FailureDetail, PolicyDetails, PolicyReport, PolicyType, REPORT_MAX_BYTES, Report,
    ReportError, ReportErrorKind, Summary, Tolerated,
};
pub use result_type::{CertificateProblem, ResultType, StsFailure};
pub use sts_record::{
    Extension, PolicyId, StsDiscovery, StsDiscoveryError, StsRecord, StsRecordError,
    select_sts_record,
};
pub use tlsrpt_record::{
    ReportUri, TlsRptDiscovery, TlsRptDiscoveryError, TlsRptRecord, TlsRptRecordError,
    select_tlsrpt_record,
};
