//! The hermetic test universe of `mtasts`: an in-process authoritative DNS server, a test CA,
//! an HTTPS server hosting MTA-STS policy files (RFC 8461 §3.3) with good and bad behaviours,
//! and SMTP servers with and without STARTTLS — all on loopback (127.0.0.0/8), nothing else.
//!
//! Most tests want a [`World`]: `World::builder().scenario(Scenario::Good).build().await`,
//! then point the code under test at [`World::dns_addr`], [`World::https_port`],
//! [`World::smtp_port`] and [`World::ca_pem_path`].
//!
//! ```text
//! let world = World::builder()
//!     .scenario(Scenario::Good)
//!     .scenario(Scenario::HttpsRedirect)
//!     .domain(DomainSpec::good("x.test").with_policy(policy_text("testing", 86400, &["mx1.x.test"])))
//!     .build()
//!     .await;
//! // resolver  -> world.dns_addr()          (authoritative for everything, UDP and TCP)
//! // policies  -> mta-sts.<d>:world.https_port(), trust world.ca_pem_path()
//! // MX probes -> <mx ip>:world.smtp_port()
//! assert!(world.https().requests().iter().all(|r| r.sni != "www.https-redirect.test"));
//! ```
//!
//! Benchmarks want many domains: [`WorldBuilder::generated`] installs `n` generated domains
//! (a deterministic mix of good, testing, absent and broken MTA-STS; see [`generated`]) and
//! lays the world out for size ([`WorldBuilder::shared_hosts`]: MX names virtually hosted on a
//! pool of SMTP servers, certificates for groups of names). [`WorldBuilder::standard_ports`]
//! serves DNS on `127.A.B.253:53`, HTTPS on 443 and SMTP on 25 for tools that cannot be told
//! other ports, and [`WorldBuilder::quiet`] keeps no logs. The `testworld` binary runs such a
//! world in its own process (see `bench/`).
//!
//! Synchronous tests that block (e.g. run the CLI binary) use
//! [`WorldBuilder::build_blocking`], which serves from its own runtime threads.
//!
//! Every server takes an already-bound listener (or binds loopback itself), runs in spawned
//! tokio tasks that are aborted when its handle is dropped, bounds what it reads, and times
//! out idle peers, so a hostile or buggy client cannot hang a test.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod ca;
pub mod dns;
pub mod dovecot;
pub mod generated;
pub mod https;
pub mod nsd;
pub mod pebble;
pub mod postfix;
pub mod require;
mod shared;
pub mod smtp;
mod tasks;
pub mod world;

pub use ca::{CertSpec, IssuedCert, TestCa};
pub use dns::{DnsServer, Zone};
pub use generated::{Breakage, GeneratedDomain, MxPool, Profile};
pub use https::{HttpBehaviour, HttpsHost, HttpsServer, RecordedRequest, VirtualHost};
pub use shared::{POOL_NO_STARTTLS, POOL_SILENT, POOL_STARTTLS};
pub use smtp::{SmtpBehaviour, SmtpServer, SmtpSession};
pub use world::{
    BlockingWorld, CertKind, DomainSpec, ImplicitMx, MxSpec, PolicyHost, Scenario, SmtpKind, World,
    WorldBuilder, policy_text,
};
