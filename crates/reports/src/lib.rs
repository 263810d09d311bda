//! TLS-RPT reports received (RFC 8460): from a mail or an HTTPS body to a stored report.
//!
//! - [`intake`]: pure. A report mail (RFC 8460 §5.3 MIME, plus what real senders do) or an
//!   HTTPS body (§5.4) to the report(s) it carries, decompressed with a cap (gzip bombs),
//!   parsed leniently with every tolerated quirk recorded; typed errors that name the rule.
//! - [`record`]: pure. A parsed report to the rows `mtasts_store::reports` keeps.
//! - [`source`]: I/O. Messages from a file, standard input, a maildir or an mbox.
//! - [`dkim`]: the DKIM check of report mail (RFC 8460 §3), kept, flagged or refused.
//! - [`ingest`]: intake, then storage, with outcomes a Postfix `pipe` transport understands.
#![warn(missing_docs)]

pub mod alert;
pub mod api;
pub mod dkim;
pub mod http;
pub mod imap;
pub mod ingest;
pub mod intake;
pub mod page;
pub mod readiness;
pub mod record;
pub mod source;

pub use ingest::{Incoming, IngestError, Ingested, Ingestor};
pub use intake::{Extracted, IntakeError, Limits};
