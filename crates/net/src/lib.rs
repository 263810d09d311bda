//! The I/O layer of mtasts: DNS, the strict MTA-STS policy fetch and the SMTP STARTTLS probe.
//!
//! Every component here takes its network parameters from a config value ([`NetConfig`]): the
//! DNS server, the trust roots, the HTTPS and SMTP ports and every timeout. Production uses the
//! defaults (system resolver, Mozilla roots, ports 443 and 25); tests point the same code at the
//! hermetic world of `mtasts-testkit` on loopback.
//!
//! Nothing in this crate decides what a result *means* for MTA-STS: it reports what the network
//! said, with typed errors that say which step failed. The protocol rules live in
//! `mtasts-proto`, the judgement in `mtasts-check`.

#![warn(missing_docs)]

pub mod config;
pub mod dns;
pub mod fetch;
pub mod probe;
pub mod smtp;
pub mod submit;
pub mod tls;
pub mod trust;

pub use config::{NetConfig, Timeouts};
pub use dns::{DnsClient, DnsError, HickoryDns};
pub use fetch::{FetchError, FetchedPolicy, PolicyFetcher};
pub use probe::{IpLimiter, MxProbe, ProbeCache, ProbeReport, ProbeStep};
pub use trust::TrustRoots;

/// Installs ring as the process-wide rustls crypto provider.
///
/// Safe to call more than once; later calls are no-ops. Every binary and test calls it before
/// building a TLS config, so that only one provider (ring) is ever in play.
pub fn install_crypto_provider() {
    // An Err here only means a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// A socket error in an administrator's words, for a connection to `port`: "connection refused
/// on port 443 (…)" rather than "Connection refused (os error 111)".
pub fn socket_words(io: &std::io::Error, port: u16) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => format!(
            "connection refused on port {port} (nothing listens there, or a firewall rejects it)"
        ),
        ErrorKind::ConnectionReset => format!("the connection to port {port} was reset"),
        ErrorKind::HostUnreachable => "the host is unreachable (no route)".to_owned(),
        ErrorKind::NetworkUnreachable => "the network is unreachable (no route)".to_owned(),
        ErrorKind::AddrNotAvailable => "no usable local address for this host".to_owned(),
        _ => mtasts_proto::io_words(io),
    }
}
