//! The sender side of MTA-STS (RFC 8461 §5): what a sending MTA must do with a recipient
//! domain's policy, as a Postfix `smtp_tls_policy_maps` socketmap daemon.
//!
//! | module | what |
//! |---|---|
//! | [`engine`] | the resolver: lifecycle driven by real DNS and HTTPS, one flight per domain, answers per zone |
//! | [`http`] | the same decisions as JSON (`GET /v1/policy/DOMAIN`) and Prometheus `/metrics` |
//! | [`config`] | the configuration file: native TOML, or postfix-mta-sts-resolver's YAML as it is |
//! | [`cache`] | where domain states are kept (one trait, several backends) |
//! | [`server`] | the socketmap server: netstrings on TCP or a unix socket, pipelined, bounded |
//! | [`lifecycle`] | the policy cache's rules as pure code: TXT id tracking, `max_age`, back-off, negative cache, refresh (RFC 8461 §3.1, §3.3, §5.1, §10.2) |
//!
//! The socketmap wire format and the Postfix answers are pure code in `mtasts-proto`
//! (`socketmap`, `postfix`).

#![warn(missing_docs)]

pub mod cache;
pub mod config;
pub mod engine;
pub mod http;
pub mod lifecycle;
pub mod server;
pub mod tlsrpt;

pub use engine::{Resolver, Zones};
