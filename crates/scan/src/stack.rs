//! The network stack of a scan: one DNS client for the whole scan (paced per DNS server,
//! adaptively, with an optional fixed cap), one MX probe cache (each MX host probed once per scan), and the checker using them.

use std::sync::Arc;

use mtasts_check::{CheckOptions, Checker, SetupError};
use mtasts_net::dns::DnsOptions;
use mtasts_net::{DnsClient, DnsError, HickoryDns, NetConfig, ProbeCache};

/// MX hosts whose probe results are kept during a scan.
pub const PROBE_CACHE_HOSTS: usize = 10_000;

/// What the checks of a scan do, and how politely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSettings {
    /// Probe MX hosts over SMTP.
    pub probe_smtp: bool,
    /// Look up TLSA and DNSSEC status too.
    pub dane: bool,
    /// SMTP connections per MX IP address at once.
    pub smtp_per_ip: usize,
    /// DNS queries per second to each DNS server, at most (`None`: no fixed cap; the pacing
    /// adapts to lost, truncated, REFUSED and SERVFAIL answers anyway).
    pub dns_rate: Option<u32>,
}

/// Why the stack could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The DNS client could not be built.
    #[error("setting up DNS: {0}")]
    Dns(#[from] DnsError),
    /// The checker could not be built (trust roots, HTTPS client).
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// The DNS client of a scan, asking `config`'s servers: paced per server (`net::dns::pacing`),
/// never above `dns_rate` queries per second to one server when a cap is given.
pub fn dns(config: &NetConfig, dns_rate: Option<u32>) -> Result<Arc<dyn DnsClient>, DnsError> {
    Ok(Arc::new(HickoryDns::with_options(
        &config.dns_servers,
        DnsOptions::new(config.timeouts.dns).with_max_rate(dns_rate),
    )?))
}

/// A checker for a scan, and the probe cache it shares between domains (for counting the
/// probes run).
pub fn checker(
    config: &NetConfig,
    settings: &CheckSettings,
) -> Result<(Checker, Arc<ProbeCache>), StackError> {
    let cache = ProbeCache::new(PROBE_CACHE_HOSTS);
    let options = CheckOptions {
        probe_smtp: settings.probe_smtp,
        dane: settings.dane,
        probe_cache: Some(cache.clone()),
        smtp_per_ip: Some(settings.smtp_per_ip),
    };
    let checker = Checker::with_dns(config, dns(config, settings.dns_rate)?, options)?;
    Ok((checker, cache))
}
