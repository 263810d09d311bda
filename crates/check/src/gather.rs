//! The gathering step: every lookup, fetch and probe for one domain, as concurrently as their
//! dependencies allow, into an [`Observations`] value. No judgement is made here.
//!
//! Round one runs at once: the `_mta-sts` TXT record, the MX set, the `_smtp._tls` TXT record
//! and the policy fetch (a sender fetches the policy only after seeing the TXT record, but a
//! checker fetches it anyway, to tell a missing record from a missing policy). Round two needs
//! the MX hosts: the SMTP probes and, beside them, the DNSSEC status and TLSA records.

use std::sync::Arc;

use futures::StreamExt;
use mtasts_net::dns::{RecordType, resolve_mx};
use mtasts_net::{DnsClient, MxProbe, PolicyFetcher, ProbeCache};
use mtasts_proto::DomainName;

use crate::observations::{DaneObservations, Observations, Probes};

/// MX hosts probed at once for one domain.
pub const PROBES_PER_DOMAIN: usize = 4;

/// Does the I/O of a check. Cheap to clone; shares its HTTPS client and probe cache.
#[derive(Clone)]
pub struct Gatherer {
    dns: Arc<dyn DnsClient>,
    fetcher: PolicyFetcher,
    probe: MxProbe,
    /// Probe MX hosts over SMTP.
    probe_smtp: bool,
    /// Look up DNSSEC status and TLSA records.
    dane: bool,
    probe_cache: Option<Arc<ProbeCache>>,
}

impl std::fmt::Debug for Gatherer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer")
            .field("probe_smtp", &self.probe_smtp)
            .field("dane", &self.dane)
            .finish_non_exhaustive()
    }
}

impl Gatherer {
    /// A gatherer resolving through `dns`, fetching with `fetcher` and probing with `probe`.
    pub fn new(dns: Arc<dyn DnsClient>, fetcher: PolicyFetcher, probe: MxProbe) -> Self {
        Self { dns, fetcher, probe, probe_smtp: true, dane: true, probe_cache: None }
    }

    /// Turns SMTP probing on or off.
    pub fn probe_smtp(mut self, on: bool) -> Self {
        self.probe_smtp = on;
        self
    }

    /// Turns the DNSSEC and TLSA lookups on or off.
    pub fn dane(mut self, on: bool) -> Self {
        self.dane = on;
        self
    }

    /// Shares MX probe results through `cache` (a scan probes each MX host once).
    pub fn probe_cache(mut self, cache: Option<Arc<ProbeCache>>) -> Self {
        self.probe_cache = cache;
        self
    }

    /// The DNS client in use.
    pub fn dns(&self) -> &Arc<dyn DnsClient> {
        &self.dns
    }

    /// The policy fetcher in use.
    pub fn fetcher(&self) -> &PolicyFetcher {
        &self.fetcher
    }

    /// Gathers everything about `domain`.
    pub async fn gather(&self, domain: &DomainName) -> Observations {
        let (sts_name, tlsrpt_name) = (domain.mta_sts_txt_name(), domain.tlsrpt_txt_name());
        let (sts_txt, mx, tlsrpt_txt, policy) = tokio::join!(
            self.dns.txt(&sts_name),
            resolve_mx(self.dns.as_ref(), domain),
            self.dns.txt(&tlsrpt_name),
            self.fetcher.fetch(domain),
        );
        let hosts: Vec<String> = mx.as_ref().map(|set| set.names()).unwrap_or_default();
        let (probes, dane) =
            tokio::join!(self.probe_all(&hosts), self.dane_lookups(domain, &hosts));
        Observations { domain: domain.clone(), sts_txt, mx, policy, tlsrpt_txt, probes, dane }
    }

    /// Probes `hosts`, at most [`PROBES_PER_DOMAIN`] at once, keeping their order.
    pub async fn probe_all(&self, hosts: &[String]) -> Probes {
        if !self.probe_smtp {
            return Probes::Off;
        }
        let reports = futures::stream::iter(hosts.iter().cloned())
            .map(|host| {
                let probe = self.probe.clone();
                let cache = self.probe_cache.clone();
                async move {
                    match cache {
                        Some(cache) => cache.probe(&probe, &host).await,
                        None => probe.probe(&host).await,
                    }
                }
            })
            .buffered(PROBES_PER_DOMAIN)
            .collect()
            .await;
        Probes::Done(reports)
    }

    async fn dane_lookups(
        &self,
        domain: &DomainName,
        hosts: &[String],
    ) -> Option<DaneObservations> {
        if !self.dane {
            return None;
        }
        let status = self.dns.dnssec_status(domain.as_str(), RecordType::MX);
        let tlsa = futures::future::join_all(hosts.iter().map(|host| async move {
            // RFC 7672 §2.2.1: the TLSA base domain of an MX host on port 25.
            let name = format!("_25._tcp.{host}");
            match self.dns.tlsa(&name).await {
                Ok(records) if !records.is_empty() => Some((host.clone(), records)),
                _ => None,
            }
        }));
        let (dnssec, tlsa) = tokio::join!(status, tlsa);
        Some(DaneObservations { dnssec, tlsa: tlsa.into_iter().flatten().collect() })
    }
}
