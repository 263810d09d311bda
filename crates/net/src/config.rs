//! Network configuration shared by every component of this crate.

use std::net::SocketAddr;
use std::time::Duration;

use crate::trust::TrustRoots;

/// The HTTPS port of a policy host (RFC 8461 §3.3: the policy is fetched from an `https` URL
/// without a port).
pub const DEFAULT_HTTPS_PORT: u16 = 443;

/// The SMTP port of an MX host (RFC 5321 §4.5.4.2 / RFC 8461 §4).
pub const DEFAULT_SMTP_PORT: u16 = 25;

/// Everything a network component needs to know about the world it runs in.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// DNS servers to ask; empty means the system configuration (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// Roots that server certificates must chain to.
    pub trust: TrustRoots,
    /// Port for `https://mta-sts.<domain>/` (443 in production).
    pub https_port: u16,
    /// Port for SMTP to MX hosts (25 in production).
    pub smtp_port: u16,
    /// Per-step timeouts.
    pub timeouts: Timeouts,
    /// Name this client gives in `EHLO`.
    pub ehlo_name: String,
}

impl NetConfig {
    /// A self-contained world (the test world, `mtasts demo`): one DNS server, a private CA's
    /// PEM file as the only trust root, the given HTTPS and SMTP ports, and short timeouts.
    pub fn private_world(
        dns: SocketAddr,
        ca_pem: &std::path::Path,
        https_port: u16,
        smtp_port: u16,
        ehlo_name: &str,
    ) -> Self {
        Self {
            dns_servers: vec![dns],
            trust: TrustRoots::PemFile(ca_pem.to_path_buf()),
            https_port,
            smtp_port,
            timeouts: Timeouts::fast(),
            ehlo_name: ehlo_name.to_owned(),
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            dns_servers: Vec::new(),
            trust: TrustRoots::WebPki,
            https_port: DEFAULT_HTTPS_PORT,
            smtp_port: DEFAULT_SMTP_PORT,
            timeouts: Timeouts::default(),
            ehlo_name: "mtasts-check.invalid".to_owned(),
        }
    }
}

/// Timeouts for each network step. Each step has its own, so a slow peer is reported at the step
/// where it stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// One DNS query (per attempt).
    pub dns: Duration,
    /// TCP connect (HTTPS and SMTP).
    pub connect: Duration,
    /// The whole policy fetch, connect to last body byte. RFC 8461 §3.3 suggests senders use a
    /// timeout; its example is one minute, which is far too long for an interactive checker.
    pub fetch_total: Duration,
    /// Waiting for one SMTP reply (banner, EHLO, STARTTLS, QUIT).
    pub smtp_reply: Duration,
    /// The TLS handshake on the SMTP connection.
    pub tls_handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            dns: Duration::from_secs(5),
            connect: Duration::from_secs(10),
            fetch_total: Duration::from_secs(20),
            smtp_reply: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(15),
        }
    }
}

impl Timeouts {
    /// Short timeouts for tests against a loopback world.
    pub fn fast() -> Self {
        Self {
            dns: Duration::from_millis(800),
            connect: Duration::from_secs(2),
            fetch_total: Duration::from_secs(3),
            smtp_reply: Duration::from_secs(2),
            tls_handshake: Duration::from_secs(3),
        }
    }
}
