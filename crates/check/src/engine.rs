//! The checker: gathers (`crate::gather`, all the I/O) and judges (`crate::judge`, pure), one
//! domain at a time or many concurrently into a [`Sink`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mtasts_net::{
    DnsClient, DnsError, FetchError, HickoryDns, IpLimiter, MxProbe, NetConfig, PolicyFetcher,
    ProbeCache,
};
use mtasts_proto::DomainName;
use time::OffsetDateTime;

use crate::finding::{Code, Finding};
use crate::gather::Gatherer;
use crate::judge;
use crate::report::{DomainReport, ExitStatus, ReportBuilder, Sink};

/// Knobs of a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Probe MX hosts over SMTP (`--no-smtp` turns it off).
    pub probe_smtp: bool,
    /// Look up TLSA and DNSSEC status.
    pub dane: bool,
    /// Share MX probe results between domains (a scan: each MX host probed once).
    pub probe_cache: Option<Arc<ProbeCache>>,
    /// At most this many SMTP connections per IP address at once.
    pub smtp_per_ip: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { probe_smtp: true, dane: true, probe_cache: None, smtp_per_ip: None }
    }
}

/// Why a checker could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Trust roots could not be loaded.
    #[error(transparent)]
    Trust(#[from] mtasts_net::trust::TrustError),
    /// The DNS client could not be built.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// The HTTPS client could not be built.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// The checker: reusable across many domains (its HTTPS client pools connections).
#[derive(Clone, Debug)]
pub struct Checker {
    gatherer: Arc<Gatherer>,
}

impl Checker {
    /// A checker for the world described by `config`.
    pub fn new(config: &NetConfig, options: CheckOptions) -> Result<Self, SetupError> {
        let dns: Arc<dyn DnsClient> =
            Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns)?);
        Self::with_dns(config, dns, options)
    }

    /// A checker that resolves through `dns`.
    pub fn with_dns(
        config: &NetConfig,
        dns: Arc<dyn DnsClient>,
        options: CheckOptions,
    ) -> Result<Self, SetupError> {
        let roots = config.trust.load()?;
        let fetcher = PolicyFetcher::new(config, roots.clone(), dns.clone())?;
        let mut probe = MxProbe::new(config.clone(), roots, dns.clone());
        if let Some(per_ip) = options.smtp_per_ip {
            probe = probe.with_ip_limit(IpLimiter::new(per_ip));
        }
        let gatherer = Gatherer::new(dns, fetcher, probe)
            .probe_smtp(options.probe_smtp)
            .dane(options.dane)
            .probe_cache(options.probe_cache);
        Ok(Self { gatherer: Arc::new(gatherer) })
    }

    /// Whether the DNS servers answer at all ([`DnsClient::reachable`]): asked once before a
    /// run, so a dead resolver is the operator's problem said once, not a finding for every
    /// domain.
    pub async fn dns_reachable(&self) -> Result<(), DnsError> {
        self.gatherer.dns().reachable().await
    }

    /// The gathering step this checker uses (for callers that judge themselves).
    pub fn gatherer(&self) -> &Gatherer {
        &self.gatherer
    }

    /// Checks `inputs` with at most `concurrency` domains in flight, handing each report to
    /// `sink` in input order. Stops as soon as the sink says stop (`Ok(false)`) or fails; the
    /// checks still in flight are dropped. Returns the exit status of the reports delivered.
    pub async fn check_all<S: Sink>(
        &self,
        inputs: Vec<String>,
        concurrency: usize,
        sink: &mut S,
    ) -> Result<ExitStatus, S::Error> {
        let mut status = ExitStatus::Clean;
        let mut stream = futures::stream::iter(inputs)
            .map(|input| {
                let this = self.clone();
                async move { this.check(&input).await }
            })
            .buffered(concurrency.max(1));
        while let Some(report) = stream.next().await {
            status = status.max(ExitStatus::of(&report));
            if !sink.report(&report)? {
                break;
            }
        }
        Ok(status)
    }

    /// Checks one domain, giving up after `deadline`: the report then says so
    /// ([`Code::DomainDeadline`]) and counts as could-not-check.
    pub async fn check_with_deadline(&self, input: &str, deadline: Duration) -> DomainReport {
        let started = Instant::now();
        match tokio::time::timeout(deadline, self.check(input)).await {
            Ok(report) => report,
            Err(_) => {
                let domain = DomainName::from_user_input(input.trim()).ok();
                let mut out = ReportBuilder::new(input, domain.as_ref());
                out.push(Finding::new(
                    Code::DomainDeadline,
                    format!("the check did not finish within {} s", deadline.as_secs_f64()),
                ));
                out.incomplete();
                out.finish(started.elapsed())
            }
        }
    }

    /// Checks one domain.
    pub async fn check(&self, input: &str) -> DomainReport {
        let started = Instant::now();
        match DomainName::from_user_input(input.trim()) {
            Ok(domain) => {
                let obs = self.gatherer.gather(&domain).await;
                let out = ReportBuilder::new(input, Some(&domain));
                judge::judge_into(out, &obs, OffsetDateTime::now_utc()).finish(started.elapsed())
            }
            Err(e) => {
                let mut out = ReportBuilder::new(input, None);
                out.push(Finding::new(Code::DomainInvalid, format!("{input:?}: {e}")));
                out.incomplete();
                out.finish(started.elapsed())
            }
        }
    }
}
