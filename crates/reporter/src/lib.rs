//! The sending side of SMTP TLS Reporting (RFC 8460): what this site's MTAs saw when they
//! delivered, turned into the daily reports recipients ask for in their `_smtp._tls` record.
//!
//! - [`collect`]: the collector, a drop-in for sys4's tlsrpt-collectd on the same unix
//!   datagram socket and format (libtlsrpt, Postfix ≥ 3.10; the format is
//!   [`mtasts_proto::datagram`]); sums per UTC day and group ([`aggregate`], pure) into
//!   `store::outbound`.
//! - [`compose`] (pure): a closed day's sums → one RFC 8460 §4 report per policy domain and
//!   record, its gzip body, §5.1 file name and §5.3 mail; [`sign`]: DKIM (§3).
//! - [`deliver`]: one report to one destination, by mail (relay or sendmail) or HTTPS POST
//!   (§5.4); [`send`]: planning, spreading, retries and giving up (§4.1, §5.5).
//!
//! `mtasts reporter collect|send|status` are the commands.
#![warn(missing_docs)]

pub mod aggregate;
pub mod collect;
pub mod compose;
pub mod deliver;
pub mod send;
pub mod sign;

pub use aggregate::Aggregate;
pub use collect::{CollectStats, Collector, CollectorConfig};
pub use compose::{DayReport, Identity};
pub use deliver::{Delivery, MailRoute};
pub use send::{Reporter, Schedule};
