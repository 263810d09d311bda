//! Network options shared by every subcommand that touches the network: DNS server, trust
//! roots, ports and timeouts, each also settable by an environment variable, so the same
//! binary runs against production or a test world unchanged.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use mtasts_net::{NetConfig, Timeouts, TrustRoots};

/// Network options.
#[derive(Debug, Clone, Args)]
pub(crate) struct NetArgs {
    /// DNS server to ask (IP or IP:PORT; repeatable). Default: the system's resolvers.
    #[arg(global = true, long = "dns-server", env = "MTASTS_DNS_SERVER", value_delimiter = ',')]
    pub(crate) dns_servers: Vec<String>,
    /// Trust roots: `webpki` (Mozilla's, built in), `system`, or a PEM file.
    #[arg(global = true, long, env = "MTASTS_TRUST_ROOTS", default_value = "webpki")]
    pub(crate) trust_roots: String,
    /// Port of the policy hosts' HTTPS.
    #[arg(global = true, long, env = "MTASTS_HTTPS_PORT", default_value_t = mtasts_net::config::DEFAULT_HTTPS_PORT)]
    pub(crate) https_port: u16,
    /// Port of the MX hosts' SMTP.
    #[arg(global = true, long, env = "MTASTS_SMTP_PORT", default_value_t = mtasts_net::config::DEFAULT_SMTP_PORT)]
    pub(crate) smtp_port: u16,
    /// Seconds per DNS query.
    #[arg(global = true, long, env = "MTASTS_DNS_TIMEOUT", default_value_t = 5.0)]
    pub(crate) dns_timeout: f64,
    /// Seconds for a TCP connect.
    #[arg(global = true, long, env = "MTASTS_CONNECT_TIMEOUT", default_value_t = 10.0)]
    pub(crate) connect_timeout: f64,
    /// Seconds for the whole policy fetch.
    #[arg(global = true, long, env = "MTASTS_FETCH_TIMEOUT", default_value_t = 20.0)]
    pub(crate) fetch_timeout: f64,
    /// Seconds to wait for each SMTP reply and for the TLS handshake.
    #[arg(global = true, long, env = "MTASTS_SMTP_TIMEOUT", default_value_t = 30.0)]
    pub(crate) smtp_timeout: f64,
    /// Name to send in EHLO.
    #[arg(global = true, long, env = "MTASTS_EHLO_NAME", default_value = "mtasts-check.invalid")]
    pub(crate) ehlo_name: String,
}

fn secs(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 3600.0) {
        bail!("--{name} must be more than 0 and at most 3600 seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

pub(crate) fn parse_server(s: &str) -> anyhow::Result<SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    // IP:PORT (or [IPv6]:PORT) whose port is out of range.
    if let Some((host, port)) = s.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<std::net::IpAddr>().is_ok() && port.parse::<u16>().is_err() {
            bail!("--dns-server {s:?}: the port must be a number from 1 to 65535");
        }
    }
    bail!("--dns-server {s:?} is neither an IP address nor IP:PORT (e.g. 127.0.0.1, [::1]:5353)")
}

impl NetArgs {
    /// The network configuration these options describe.
    pub(crate) fn config(&self) -> anyhow::Result<NetConfig> {
        let dns_servers = self
            .dns_servers
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_server(s))
            .collect::<Result<_, _>>()?;
        Ok(NetConfig {
            dns_servers,
            trust: TrustRoots::from_arg(&self.trust_roots),
            https_port: self.https_port,
            smtp_port: self.smtp_port,
            timeouts: Timeouts {
                dns: secs("dns-timeout", self.dns_timeout)?,
                connect: secs("connect-timeout", self.connect_timeout)?,
                fetch_total: secs("fetch-timeout", self.fetch_timeout)?,
                smtp_reply: secs("smtp-timeout", self.smtp_timeout)?,
                tls_handshake: secs("smtp-timeout", self.smtp_timeout)?,
            },
            ehlo_name: self.ehlo_name.clone(),
        })
    }
}
