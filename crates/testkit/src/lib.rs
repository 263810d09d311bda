//! The hermetic test universe of `mtasts`: an in-process authoritative DNS server, a test CA,
//! an HTTPS server hosting MTA-STS policy files (RFC 8461 §3.3) with good and bad behaviours,
//! and SMTP servers with and without STARTTLS — all on loopback (127.0.0.0/8), nothing else.
//!
//! Most tests want a [`World`]: `World::builder().scenario(Scenario::Good).build().await`,
//! then point the code under test at [`World::dns_addr`], [`World::https_port`],
//! [`World::smtp_port`] and [`World::ca_pem_path`].
//!
//! Every server takes an already-bound listener (or binds loopback itself), runs in spawned
//! tokio tasks that are aborted when its handle is dropped, bounds what it reads, and times
//! out idle peers, so a hostile or buggy client cannot hang a test.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod ca;
pub mod dns;
pub mod https;
pub mod smtp;
mod tasks;
pub mod world;

pub use ca::{CertSpec, IssuedCert, TestCa};
pub use dns::{DnsServer, Zone};
pub use https::{HttpBehaviour, HttpsHost, HttpsServer, RecordedRequest};
pub use smtp::{SmtpBehaviour, SmtpServer, SmtpSession};
pub use world::{
    BlockingWorld, CertKind, DomainSpec, ImplicitMx, MxSpec, PolicyHost, Scenario, SmtpKind, World,
    WorldBuilder, policy_text,
};
