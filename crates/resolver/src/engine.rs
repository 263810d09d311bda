//! The resolver: answers Postfix TLS policy lookups from recipients' MTA-STS policies, driving
//! [`lifecycle`](crate::lifecycle) with real DNS and HTTPS, one flight per domain.
//!
//! However many lookups for one domain arrive at once, one walks the lifecycle (TXT lookup,
//! maybe a fetch) while the others wait for it and then read its result from the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mtasts_net::PolicyFetcher;
use mtasts_net::dns::{DnsClient, DnssecStatus, RecordType, resolve_mx};
use mtasts_proto::dane::{DomainDane, HostDane, precedence, tlsa_usable};
use mtasts_proto::postfix::{Answer, ZoneOptions, answer};
use mtasts_proto::socketmap::{PolicyKey, policy_key};
use mtasts_proto::{DomainName, Policy, PolicyId, select_sts_record};

use crate::cache::{MemoryCache, PolicyCache};
use crate::lifecycle::{Decision, DomainState, Next, TxtOutcome};
use crate::server::MapHandler;

/// TTL assumed for a TXT answer when the DNS client does not report one (a [`DnsClient`] other
/// than [`mtasts_net::HickoryDns`]).
pub const DEFAULT_TXT_TTL: u32 = 300;

/// Seconds the live MX names a wildcard `mx:` pattern was matched against are reused, so a
/// lookup for a cached wildcard policy costs no MX query per message. Short, so a changed MX
/// set is seen within a minute.
pub const LIVE_MX_TTL_SECS: i64 = 60;

/// Above this many remembered MX views, the stale ones are dropped when one is added.
const LIVE_MX_PRUNE_AT: usize = 65_536;

/// What the DNS said about a domain's MX hosts, reused for [`LIVE_MX_TTL_SECS`].
/// Each part is looked up only when first needed.
#[derive(Clone, Debug, Default)]
struct MxView {
    until: i64,
    /// The MX set (`None` inside: the lookup failed), once asked for.
    mx: Option<Option<mtasts_proto::MxSet>>,
    /// DANE for the domain, once asked for.
    dane: Option<DomainDane>,
}

/// MX views by domain, pruned of stale views when it grows past `prune_at` (which then
/// doubles while the views are all fresh, so pruning stays amortised O(1) per insert).
#[derive(Debug)]
struct LiveMx {
    views: HashMap<DomainName, Arc<MxView>>,
    prune_at: usize,
}

impl LiveMx {
    fn new() -> Self {
        Self { views: HashMap::new(), prune_at: LIVE_MX_PRUNE_AT }
    }

    fn insert(&mut self, domain: DomainName, view: Arc<MxView>, now: i64) {
        if self.views.len() >= self.prune_at {
            self.views.retain(|_, v| now < v.until);
            self.prune_at = (self.views.len() * 2).max(LIVE_MX_PRUNE_AT);
        }
        self.views.insert(domain, view);
    }
}

/// The zones: the socketmap name selects one (postfix-mta-sts-resolver's model); an unknown
/// name gets the default zone.
#[derive(Clone, Debug, Default)]
pub struct Zones {
    /// Options for names not listed.
    pub default: ZoneOptions,
    /// Options by socketmap name.
    pub named: HashMap<String, ZoneOptions>,
}

impl Zones {
    /// The options for socketmap name `name`.
    pub fn get(&self, name: &str) -> ZoneOptions {
        self.named.get(name).copied().unwrap_or(self.default)
    }
}

/// The resolver. Cheap to share (`Arc`).
pub struct Resolver {
    dns: Arc<dyn DnsClient>,
    fetcher: PolicyFetcher,
    cache: Arc<dyn PolicyCache>,
    zones: Zones,
    flights: Mutex<HashMap<DomainName, Arc<tokio::sync::Mutex<()>>>>,
    /// MX names and DANE by domain, for wildcard matching and DANE precedence.
    live: Mutex<LiveMx>,
    clock: Clock,
    /// Where policy failures are reported (RFC 8460 §4.3.2.2), if anywhere.
    tlsrpt: Option<crate::tlsrpt::TlsRptSink>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("zones", &self.zones).finish_non_exhaustive()
    }
}

/// Where the resolver reads the time (Unix seconds): the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock in Unix seconds.
pub(crate) fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why a resolver could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Trust roots could not be loaded.
    #[error(transparent)]
    Trust(#[from] mtasts_net::trust::TrustError),
    /// The DNS client could not be built.
    #[error(transparent)]
    Dns(#[from] mtasts_net::DnsError),
    /// The HTTPS client could not be built.
    #[error(transparent)]
    Fetch(#[from] mtasts_net::FetchError),
}

impl Resolver {
    /// A resolver for the network described by `config` (DNS servers, trust roots, ports,
    /// timeouts), caching in memory.
    pub fn from_config(config: &mtasts_net::NetConfig, zones: Zones) -> Result<Self, SetupError> {
        let dns: Arc<dyn DnsClient> =
            Arc::new(mtasts_net::HickoryDns::new(&config.dns_servers, config.timeouts.dns)?);
        let roots = config.trust.load()?;
        let fetcher = PolicyFetcher::new(config, roots, dns.clone())?;
        Ok(Self::new(dns, fetcher, zones))
    }

    /// A resolver resolving through `dns` and fetching with `fetcher`, caching in memory.
    pub fn new(dns: Arc<dyn DnsClient>, fetcher: PolicyFetcher, zones: Zones) -> Self {
        Self {
            dns,
            fetcher,
            cache: Arc::new(MemoryCache::default()),
            zones,
            flights: Mutex::new(HashMap::new()),
            live: Mutex::new(LiveMx::new()),
            clock: Arc::new(system_now),
            tlsrpt: None,
        }
    }

    /// The same resolver reporting its policy failures as TLS-RPT datagrams to the collector
    /// socket at `path` ([`crate::tlsrpt`]).
    pub fn with_tlsrpt_socket(
        mut self,
        path: impl Into<std::path::PathBuf>,
    ) -> std::io::Result<Self> {
        self.tlsrpt = Some(crate::tlsrpt::TlsRptSink::new(path, self.dns.clone())?);
        Ok(self)
    }

    /// The same resolver with another cache.
    pub fn with_cache(mut self, cache: Arc<dyn PolicyCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The same resolver reading the time from `clock` (Unix seconds), for tests.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The cache in use.
    pub fn cache(&self) -> &Arc<dyn PolicyCache> {
        &self.cache
    }

    /// The answer for `key` as map `zone` would give it: what [`Resolver::explain`] answers,
    /// without building the explanation (the socketmap path).
    pub async fn answer(&self, zone: &str, key: &str) -> Answer {
        let started = std::time::Instant::now();
        let options = self.zones.get(zone);
        let domain = match policy_key(key) {
            PolicyKey::Domain(d) => d,
            PolicyKey::NotADomain(_) => {
                metrics::counter!("mtasts_resolver_lookups_total", "result" => "not-a-domain")
                    .increment(1);
                return Answer::NotFound;
            }
        };
        let a = match self.decide(&domain).await {
            Decision::Policy { policy, .. } => {
                let live = self.live_mx(&domain, &policy, options).await;
                let sts = answer(&domain, &policy, &live, options);
                self.weigh_dane(&domain, sts, options).await.0
            }
            Decision::NoPolicy(_) => self.weigh_dane(&domain, Answer::NotFound, options).await.0,
            Decision::Temporary(reason) => Answer::Temp(reason),
        };
        record_lookup(&a, started);
        a
    }

    /// The answer for `key` in map `zone`, with what it was decided from.
    pub async fn explain(&self, zone: &str, key: &str) -> Explanation {
        let started = std::time::Instant::now();
        let options = self.zones.get(zone);
        let mut e = Explanation {
            key: key.to_owned(),
            zone: zone.to_owned(),
            domain: None,
            decision: "not-a-domain",
            mode: None,
            mx: Vec::new(),
            live_mx: Vec::new(),
            dane: None,
            source: None,
            why: String::new(),
            answer: Answer::NotFound,
        };
        let domain = match policy_key(key) {
            PolicyKey::Domain(d) => d,
            PolicyKey::NotADomain(why) => {
                e.why = format!("the key is {why}");
                metrics::counter!("mtasts_resolver_lookups_total", "result" => "not-a-domain")
                    .increment(1);
                return e;
            }
        };
        e.domain = Some(domain.as_str().to_owned());
        match self.decide(&domain).await {
            Decision::Policy { policy, source } => {
                let live = self.live_mx(&domain, &policy, options).await;
                e.decision = "policy";
                e.mode = Some(policy.mode().to_string());
                e.mx = policy.mx().iter().map(ToString::to_string).collect();
                e.source = Some(source.as_str());
                let sts = answer(&domain, &policy, &live, options);
                let (a, view) = self.weigh_dane(&domain, sts, options).await;
                e.answer = a;
                e.dane = view.map(|v| DaneView::from(v.dane.clone().unwrap_or_default()));
                e.why = match (&e.answer, policy.mode()) {
                    (Answer::DaneOnly, _) => format!(
                        "every MX host has usable DNSSEC-validated TLSA records: DANE takes precedence over the MTA-STS policy (mode: {}, RFC 8461 §2)",
                        policy.mode()
                    ),
                    (Answer::Dane, _) => "some MX hosts have usable DNSSEC-validated TLSA records: DANE for those, opportunistic TLS for the others (RFC 7672 §2.2)".into(),
                    (Answer::Secure { .. }, _) => format!(
                        "mode: {}; verified TLS to a host whose certificate matches the policy ({})",
                        policy.mode(),
                        source.describe()
                    ),
                    (Answer::Temp(reason), _) => reason.clone(),
                    (Answer::PolicyFailure { reason, failure, .. }, _) => format!(
                        "{reason}; Postfix is told policy_failure={} and reports each attempt through TLSRPT",
                        failure.as_str()
                    ),
                    (Answer::NotFound, mtasts_proto::Mode::Testing) => {
                        "mode: testing: senders deliver anyway and report (strict_testing is off)"
                            .into()
                    }
                    (Answer::NotFound, _) => {
                        format!("mode: {}: treated as no policy", policy.mode())
                    }
                };
                e.live_mx = live;
            }
            Decision::NoPolicy(reason) => {
                e.decision = "no-policy";
                let (a, view) = self.weigh_dane(&domain, Answer::NotFound, options).await;
                e.why = match &a {
                    Answer::DaneOnly => "no MTA-STS policy; every MX host has usable DNSSEC-validated TLSA records: DANE".into(),
                    Answer::Dane => "no MTA-STS policy; DANE for the MX hosts with usable DNSSEC-validated TLSA records (RFC 7672 §2.2)".into(),
                    Answer::Temp(reason) => reason.clone(),
                    _ => reason.describe(),
                };
                e.answer = a;
                e.dane = view.map(|v| DaneView::from(v.dane.clone().unwrap_or_default()));
            }
            Decision::Temporary(reason) => {
                e.decision = "temporary";
                e.why = format!("the DNS could not answer and nothing is cached: {reason}");
                e.answer = Answer::Temp(reason);
            }
        }
        record_lookup(&e.answer, started);
        e
    }

    /// The MX names a wildcard pattern is matched against (only looked up when needed).
    async fn live_mx(
        &self,
        domain: &DomainName,
        policy: &Policy,
        options: ZoneOptions,
    ) -> Vec<String> {
        if options.wildcard_dot || !policy.mx().iter().any(mtasts_proto::MxPattern::is_wildcard) {
            return Vec::new();
        }
        match &self.mx_view(domain, false).await.mx {
            Some(Some(set)) => set.names(),
            _ => Vec::new(),
        }
    }

    /// `sts` with DANE weighed in (RFC 8461 §2; the rules are [`precedence`]'s), when the zone
    /// wants it, and the DANE state it was weighed with.
    async fn weigh_dane(
        &self,
        domain: &DomainName,
        sts: Answer,
        options: ZoneOptions,
    ) -> (Answer, Option<Arc<MxView>>) {
        if !options.dane {
            return (sts, None);
        }
        // The shared view, not a copy of its DANE state: this is the path of every lookup.
        let view = self.mx_view(domain, true).await;
        let answer = match &view.dane {
            Some(dane) => precedence(sts, dane),
            None => sts,
        };
        (answer, Some(view))
    }

    /// The domain's MX view from the last [`LIVE_MX_TTL_SECS`], completed from the DNS: the
    /// MX set, and with `dane` the DANE state. DANE starts with the AD bit of the MX answer
    /// (RFC 7672 §2.2.1), so a domain in an unsigned zone (or behind a resolver that does not
    /// validate) costs one query and no TLSA lookups.
    async fn mx_view(&self, domain: &DomainName, dane: bool) -> Arc<MxView> {
        let now = (self.clock)();
        let cached = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .views
            .get(domain)
            .filter(|v| now < v.until)
            .cloned();
        if let Some(v) = &cached
            && if dane { v.dane.is_some() } else { v.mx.is_some() }
        {
            return v.clone();
        }
        let mut view = cached
            .map(|v| (*v).clone())
            .unwrap_or_else(|| MxView { until: now + LIVE_MX_TTL_SECS, ..MxView::default() });
        if dane {
            let validated = self.dns.dnssec_status(domain.as_str(), RecordType::MX).await
                == DnssecStatus::Authenticated;
            view.dane = Some(if validated {
                if view.mx.is_none() {
                    view.mx = Some(self.resolve_mx(domain).await);
                }
                match &view.mx {
                    Some(Some(set)) => self.domain_dane(domain, set).await,
                    _ => DomainDane::NotApplicable,
                }
            } else {
                DomainDane::NotApplicable
            });
        } else {
            view.mx = Some(self.resolve_mx(domain).await);
        }
        let view = Arc::new(view);
        self.live.lock().unwrap_or_else(PoisonError::into_inner).insert(
            domain.clone(),
            view.clone(),
            now,
        );
        view
    }

    async fn resolve_mx(&self, domain: &DomainName) -> Option<mtasts_proto::MxSet> {
        match resolve_mx(self.dns.as_ref(), domain).await {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::info!(domain = domain.as_str(), error = %e, "MX lookup failed");
                None
            }
        }
    }

    /// What the DNS says about DANE for `domain`'s MX hosts (RFC 7672 §2.2; the I/O for
    /// [`precedence`]). Only a DNSSEC-validated MX answer counts (§2.2.1); then each host's
    /// `_25._tcp` TLSA records, validated too. The MX answer's own validation is the
    /// caller's ([`Resolver::mx_view`]).
    async fn domain_dane(&self, domain: &DomainName, set: &mtasts_proto::MxSet) -> DomainDane {
        // Implicit MX (the domain's own address) and null MX: no MX hosts to look at.
        if set.kind != mtasts_proto::MxKind::Explicit || set.hosts.is_empty() {
            return DomainDane::NotApplicable;
        }
        let hosts = futures::future::join_all(set.names().into_iter().map(|host| async move {
            let name = format!("_25._tcp.{host}");
            let state = match self.dns.tlsa(&name).await {
                Ok(records) => match self.dns.dnssec_status(&name, RecordType::TLSA).await {
                    DnssecStatus::Authenticated => {
                        if records.iter().any(|r| tlsa_usable(r.usage, r.selector, r.matching)) {
                            HostDane::Usable
                        } else {
                            HostDane::Unusable
                        }
                    }
                    // Records the resolver did not vouch for are no DANE (§2.2.2).
                    _ => HostDane::Absent,
                },
                Err(e) if e.is_not_found() => HostDane::Absent,
                Err(e) => {
                    tracing::warn!(domain = domain.as_str(), error = %e, "DANE TLSA lookup failed");
                    HostDane::Failed
                }
            };
            (host, state)
        }))
        .await;
        DomainDane::Hosts(hosts)
    }

    /// Walks the lifecycle for `domain`: one flight per domain at a time.
    pub async fn decide(&self, domain: &DomainName) -> Decision {
        // Most lookups are answered from the cached state as it is (a fresh policy, a negative
        // entry, a back-off): that changes nothing, so it needs no flight.
        if let Ok(Some(state)) = self.cache.get(domain).await
            && let Next::Decided(d) = state.on_lookup((self.clock)())
        {
            count_cache("hit");
            return d;
        }
        let d = self.in_flight(domain, self.walk(domain)).await;
        count_cache(match &d {
            // Another lookup's flight, or a TXT check, let the cached entry answer.
            Decision::Policy { source: crate::lifecycle::Source::Fetched, .. } => "miss",
            Decision::Policy { .. } => "revalidated",
            _ => "miss",
        });
        d
    }

    /// Runs `work` for `domain` while no other work for it runs: one flight per domain, however
    /// many lookups (and refreshes) wait for it.
    async fn in_flight<T>(&self, domain: &DomainName, work: impl Future<Output = T>) -> T {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            flights.entry(domain.clone()).or_default().clone()
        };
        let result = {
            let _turn = flight.lock().await;
            work.await
        };
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's own reference and ours: nobody else waits, drop the entry.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(domain);
        }
        result
    }

    async fn walk(&self, domain: &DomainName) -> Decision {
        let now = (self.clock)();
        let mut state = match self.cache.get(domain).await {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("policy cache: {e}; continuing without the cached entry");
                DomainState::default()
            }
        };
        // `on_lookup` does not change the state: a decision here needs no write.
        let mut next = state.on_lookup(now);
        if let Next::Decided(d) = next {
            return d;
        }
        let before = state.clone();
        let decision = loop {
            next = match next {
                Next::Decided(d) => break d,
                Next::LookUpTxt => {
                    let txt = self.txt(domain).await;
                    state.on_txt(txt, now)
                }
                Next::Fetch(id) => {
                    let result = self.fetch(domain).await;
                    if let Err(reason) = &result {
                        tracing::info!(domain = domain.as_str(), error = %reason, "policy fetch failed");
                    }
                    break state.on_fetch(id, result, now);
                }
            };
        };
        if state != before {
            let stored = if state.is_dead(now) {
                self.cache.remove(domain).await
            } else {
                self.cache.put(domain, &state).await
            };
            if let Err(e) = stored {
                tracing::warn!(
                    "policy cache: {e}; the entry for {} was not saved",
                    domain.as_str()
                );
            }
        }
        decision
    }

    /// Refreshes `domain`'s cached policy if it is due (RFC 8461 §3.3: "SHOULD proactively
    /// refresh"; §10.2: fetch the live policy regardless of the TXT record's id, so a cached
    /// policy does not lapse while the domain is in use). True if a fetch was made.
    pub async fn refresh(&self, domain: &DomainName) -> bool {
        self.in_flight(domain, self.refresh_walk(domain)).await
    }

    async fn refresh_walk(&self, domain: &DomainName) -> bool {
        let now = (self.clock)();
        let Ok(Some(mut state)) = self.cache.get(domain).await else { return false };
        if state.refresh_due().is_none_or(|due| due > now) {
            return false;
        }
        let Next::Fetch(id) = state.on_refresh_txt(self.txt(domain).await, now) else {
            return false;
        };
        let result = self.fetch(domain).await;
        if let Err(reason) = &result {
            tracing::warn!(domain = domain.as_str(), error = %reason, "refreshing the cached policy failed");
        }
        state.on_fetch(id, result, now);
        if let Err(e) = self.cache.put(domain, &state).await {
            tracing::warn!(
                "policy cache: {e}; the refreshed entry for {} was not saved",
                domain.as_str()
            );
        }
        true
    }

    /// Refreshes every cached policy that is due, at most `concurrency` at a time; returns how
    /// many were fetched.
    pub async fn refresh_due(&self, concurrency: usize) -> usize {
        use futures::StreamExt;
        let now = (self.clock)();
        let due: Vec<DomainName> = match self.cache.entries().await {
            Ok(entries) => entries
                .into_iter()
                .filter(|(_, s)| s.refresh_due().is_some_and(|t| t <= now))
                .map(|(d, _)| d)
                .collect(),
            Err(e) => {
                tracing::warn!("policy cache: {e}; no refresh this round");
                return 0;
            }
        };
        futures::stream::iter(due)
            .map(|d| async move { self.refresh(&d).await })
            .buffer_unordered(concurrency.max(1))
            .filter(|fetched| futures::future::ready(*fetched))
            .count()
            .await
    }

    /// Runs [`Resolver::refresh_due`] every `every` until `shutdown` fires.
    pub async fn refresh_loop(
        self: Arc<Self>,
        every: std::time::Duration,
        concurrency: usize,
        mut shutdown: crate::server::Shutdown,
    ) {
        loop {
            tokio::select! {
                () = shutdown.fired() => return,
                () = tokio::time::sleep(every) => {}
            }
            let n = self.refresh_due(concurrency).await;
            if n > 0 {
                tracing::info!(fetched = n, "refreshed cached policies");
            }
        }
    }

    async fn txt(&self, domain: &DomainName) -> TxtOutcome {
        match self.dns.txt(&domain.mta_sts_txt_name()).await {
            Ok(answer) => match select_sts_record(&answer.records) {
                Ok(found) => TxtOutcome::Record {
                    id: found.record.value.id().clone(),
                    ttl: answer.ttl.unwrap_or(DEFAULT_TXT_TTL),
                },
                // TXT records, none of them one STS record (§3.1): no policy, for as long as
                // this answer may be cached.
                Err(_) => TxtOutcome::NoRecord { negative_ttl: answer.ttl },
            },
            // RFC 2308 §5: absence is cached for the SOA's negative TTL.
            Err(e) if e.is_not_found() => TxtOutcome::NoRecord { negative_ttl: e.negative_ttl() },
            Err(e) => TxtOutcome::DnsFailed(e.to_string()),
        }
    }

    async fn fetch(&self, domain: &DomainName) -> Result<Policy, String> {
        let fetched = self.fetcher.fetch(domain).await.map_err(|e| {
            metrics::counter!("mtasts_resolver_fetch_errors_total", "kind" => fetch_error_kind(&e))
                .increment(1);
            let reason = e.to_string();
            self.report(domain, &e.sts_failure(), &reason);
            reason
        })?;
        Policy::parse_bytes(&fetched.body).map(|p| p.value).map_err(|e| {
            let reason = e.to_string();
            self.report(domain, &mtasts_proto::StsFailure::PolicyInvalid, &reason);
            reason
        })
    }

    fn report(&self, domain: &DomainName, failure: &mtasts_proto::StsFailure, reason: &str) {
        if let Some(sink) = &self.tlsrpt {
            sink.report(domain, failure.result_type(), reason);
        }
    }
}

#[async_trait]
impl MapHandler for Resolver {
    async fn lookup(&self, name: &str, key: &str) -> String {
        let reply = self.answer(name, key).await.reply();
        tracing::debug!(map = name, key, reply = %reply, "lookup");
        reply
    }
}

/// An answer and what it was decided from (`mtasts resolver query`, the HTTP endpoint).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Explanation {
    /// The key as asked.
    pub key: String,
    /// The socketmap name (zone).
    pub zone: String,
    /// The policy domain the key names, if any.
    pub domain: Option<String>,
    /// `policy`, `no-policy`, `temporary` or `not-a-domain`.
    pub decision: &'static str,
    /// The policy's mode.
    pub mode: Option<String>,
    /// The policy's `mx:` patterns.
    pub mx: Vec<String>,
    /// The live MX names wildcard patterns were matched against.
    pub live_mx: Vec<String>,
    /// DANE as weighed (RFC 8461 §2): absent when the zone does not weigh it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dane: Option<DaneView>,
    /// Where the policy came from (`fetched`, `cache`, …).
    pub source: Option<&'static str>,
    /// Why, in words.
    pub why: String,
    /// The answer.
    #[serde(serialize_with = "serialize_answer")]
    pub answer: Answer,
}

/// DANE for the explanation: whether it applies and each MX host's TLSA state.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DaneView {
    /// False when the MX answer is not DNSSEC-validated (or there are no MX hosts).
    pub applies: bool,
    /// Each MX host and `usable`, `unusable`, `absent` or `failed`.
    pub hosts: Vec<DaneHost>,
}

/// One MX host's TLSA state.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DaneHost {
    /// The MX host name.
    pub host: String,
    /// `usable`, `unusable`, `absent` or `failed`.
    pub tlsa: &'static str,
}

impl From<DomainDane> for DaneView {
    fn from(d: DomainDane) -> Self {
        match d {
            DomainDane::NotApplicable => Self { applies: false, hosts: Vec::new() },
            DomainDane::Hosts(hosts) => Self {
                applies: true,
                hosts: hosts
                    .into_iter()
                    .map(|(host, h)| DaneHost {
                        host,
                        tlsa: match h {
                            HostDane::Usable => "usable",
                            HostDane::Unusable => "unusable",
                            HostDane::Absent => "absent",
                            HostDane::Failed => "failed",
                        },
                    })
                    .collect(),
            },
        }
    }
}

fn serialize_answer<S: serde::Serializer>(a: &Answer, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    match a {
        Answer::Secure { matches, .. } => {
            m.serialize_entry("action", "secure")?;
            m.serialize_entry("match", matches)?;
            // The same names as one colon-separated list, as Exim (and Postfix) lists are
            // written: an Exim `manualroute` takes it as its host list.
            m.serialize_entry("match_list", &matches.join(":"))?;
        }
        Answer::NotFound => m.serialize_entry("action", "none")?,
        Answer::DaneOnly => m.serialize_entry("action", "dane-only")?,
        Answer::Dane => m.serialize_entry("action", "dane")?,
        Answer::Temp(reason) => {
            m.serialize_entry("action", "defer")?;
            m.serialize_entry("reason", reason)?;
        }
        // Mail waits: never a host list an MTA could deliver to.
        Answer::PolicyFailure { reason, failure, .. } => {
            m.serialize_entry("action", "defer")?;
            m.serialize_entry("reason", reason)?;
            m.serialize_entry("policy_failure", failure.as_str())?;
        }
    }
    m.serialize_entry("postfix", &a.reply())?;
    m.end()
}

/// For tests and `query`: the policy id a state was fetched under.
pub fn cached_id(state: &DomainState) -> Option<&PolicyId> {
    state.policy.as_ref().map(|c| &c.id)
}

/// Counts how the policy cache served a decision: `hit` (no network), `revalidated` (the
/// cached entry, after a TXT lookup or another lookup's flight), `miss` (fetched, or decided
/// from the DNS).
fn count_cache(outcome: &'static str) {
    metrics::counter!("mtasts_resolver_cache_total", "outcome" => outcome).increment(1);
}

/// Counts a lookup by result and records its latency.
fn record_lookup(a: &Answer, started: std::time::Instant) {
    let result = match a {
        Answer::Secure { .. } => "secure",
        Answer::NotFound => "notfound",
        Answer::DaneOnly => "dane-only",
        Answer::Dane => "dane",
        Answer::Temp(_) => "temp",
        Answer::PolicyFailure { .. } => "policy-failure",
    };
    metrics::counter!("mtasts_resolver_lookups_total", "result" => result).increment(1);
    metrics::histogram!("mtasts_resolver_lookup_seconds").record(started.elapsed().as_secs_f64());
}

fn fetch_error_kind(e: &mtasts_net::FetchError) -> &'static str {
    use mtasts_net::FetchError as F;
    match e {
        F::Resolve(_) => "dns",
        F::Connect { .. } => "connect",
        F::Timeout { .. } => "timeout",
        F::Certificate { .. } => "certificate",
        F::Tls { .. } => "tls",
        F::Redirect { .. } => "redirect",
        F::Status { .. } => "status",
        F::ContentType { .. } => "content-type",
        F::TooLarge { .. } => "too-large",
        _ => "other",
    }
}
