//! The network stack of a scan: one DNS client for the whole scan (hickory behind a rate
//! cap), one MX probe cache (each MX host probed once per scan), and the checker using them.

use std::sync::Arc;

use mtasts_check::{CheckOptions, Checker, SetupError};
use mtasts_net::dns::RateLimitedDns;
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
    /// DNS queries per second, at most.
    pub dns_rate: u32,
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

/// The DNS client of a scan: hickory, asking `config`'s servers, at most `dns_rate` queries
/// per second for the whole scan.
pub fn dns(config: &NetConfig, dns_rate: u32) -> Result<Arc<dyn DnsClient>, DnsError> {
    let hickory: Arc<dyn DnsClient> =
        Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns)?);
    Ok(Arc::new(RateLimitedDns::new(hickory, dns_rate)))
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
