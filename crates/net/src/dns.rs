//! DNS lookups behind a small trait, so the hickory version can move without touching callers.
//!
//! MTA-STS cares about the difference between "there is no such record" (NXDOMAIN, or NODATA:
//! the name exists without records of the type) and "the DNS could not answer" (SERVFAIL,
//! timeout): RFC 8461 §5 says a sender must not permanently fail on a lookup problem, and a
//! checker must not tell an administrator "you have no policy" when their DNS is merely down.
//! [`DnsError`] keeps the two apart.
//!
//! [`HickoryDns`] asks its servers through its own transport (`dns/transport.rs`, the
//! schedule in its module docs): UDP resent on a short schedule (so one lost answer costs a
//! retransmission timeout, not the lookup timeout), TCP when a truncated answer invites it or
//! UDP keeps going unanswered, and each server paced by its own adaptive rate with an
//! optional ceiling ([`pacing`]: the rule is written there), so a server that rate-limits or
//! is overloaded is asked more slowly instead of timing out.

pub mod pacing;
mod transport;

pub use transport::{DnsStats, EDNS_PAYLOAD, TCP_PER_SERVER, UDP_SENDS_BEFORE_TCP};

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;

use mtasts_proto::{DomainName, MxRecord, MxSet};
use transport::{QueryError, Transport};

/// CNAMEs followed for one lookup before giving up (the chain is then reported as is).
pub const MAX_CNAME_CHAIN: usize = 8;

/// A lookup that did not produce records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("{name}: no such name (NXDOMAIN)")]
    NxDomain {
        /// The name asked for.
        name: String,
        /// How long the answer may be cached (RFC 2308 §5: the smaller of the authority
        /// section's SOA TTL and its MINIMUM field), when the server sent the SOA.
        negative_ttl: Option<u32>,
    },
    /// NODATA: the name exists but has no record of this type.
    #[error("{name}: no {rtype} record (NODATA)")]
    NoData {
        /// The name asked for.
        name: String,
        /// The record type asked for.
        rtype: String,
        /// How long the answer may be cached (RFC 2308 §5), when the server sent the SOA.
        negative_ttl: Option<u32>,
    },
    /// The server answered with an error code such as SERVFAIL or REFUSED.
    #[error("{name}: DNS server answered {rcode}")]
    ServerFailure {
        /// The name asked for.
        name: String,
        /// The response code, as text.
        rcode: String,
    },
    /// No answer within the timeout.
    #[error("{name}: DNS query timed out")]
    Timeout {
        /// The name asked for.
        name: String,
    },
    /// The name cannot be a DNS name.
    #[error("{name}: not a valid DNS name: {reason}")]
    InvalidName {
        /// The input.
        name: String,
        /// Why.
        reason: String,
    },
    /// No configured DNS server answers at all (see [`DnsClient::reachable`]): the operator's
    /// resolver is down or unreachable, which says nothing about any domain.
    #[error(
        "DNS server {servers} does not answer ({reason}); check --dns-server or /etc/resolv.conf"
    )]
    NoServerAnswers {
        /// The servers asked, comma-separated.
        servers: String,
        /// What happened (no reply within the timeout, a network error).
        reason: String,
    },
    /// Any other failure to reach the DNS (network error, malformed answer).
    #[error("{name}: DNS lookup failed: {reason}")]
    Other {
        /// The name asked for.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

impl DnsError {
    /// True for NXDOMAIN and NODATA: the DNS answered, and there is nothing there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NxDomain { .. } | Self::NoData { .. })
    }

    /// True for NXDOMAIN only.
    pub fn is_nx_domain(&self) -> bool {
        matches!(self, Self::NxDomain { .. })
    }

    /// For NXDOMAIN and NODATA, how long the absence may be cached (RFC 2308 §5), when the
    /// server said (the SOA in the authority section).
    pub fn negative_ttl(&self) -> Option<u32> {
        match self {
            Self::NxDomain { negative_ttl, .. } | Self::NoData { negative_ttl, .. } => {
                *negative_ttl
            }
            _ => None,
        }
    }

    /// True when the DNS could not answer: retry later, never read it as "no record".
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Self::ServerFailure { .. }
                | Self::Timeout { .. }
                | Self::Other { .. }
                | Self::NoServerAnswers { .. }
        )
    }
}

/// A TLSA record (RFC 6698 §2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsaRecord {
    /// Certificate usage (0–3).
    pub usage: u8,
    /// Selector (0 = full certificate, 1 = SubjectPublicKeyInfo).
    pub selector: u8,
    /// Matching type (0 = exact, 1 = SHA-256, 2 = SHA-512).
    pub matching: u8,
    /// Association data.
    pub data: Vec<u8>,
}

impl std::fmt::Display for TlsaRecord {
    /// Presentation form, as RFC 8460 §4.5 uses for a TLSA `policy-string`: `3 1 1 ABCD…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        for b in &self.data {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// A TXT answer: each record's character-strings joined without spaces (RFC 8461 §3.1, RFC 8460
/// §3: "strings … MUST be concatenated … without any added whitespace"), plus the CNAME chain
/// followed to get there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxtAnswer {
    /// One string per TXT record.
    pub records: Vec<String>,
    /// Names the query was redirected to by CNAME, in order (empty when not delegated).
    pub cname_chain: Vec<String>,
    /// How long the answer may be cached: the smallest TTL of its records, CNAMEs included
    /// (RFC 2181 §5.2), when the client knows it.
    pub ttl: Option<u32>,
}

/// What the configured resolver says about DNSSEC for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecStatus {
    /// The resolver set the AD bit: the answer validated.
    Authenticated,
    /// The resolver answered without the AD bit: unsigned, or the resolver does not validate.
    NotAuthenticated,
    /// The status could not be learned.
    Unknown,
}

/// The lookups mtasts needs. Implemented by [`HickoryDns`]; a trait so callers can be given any
/// resolver (a caching one, a recording one) without caring which.
#[async_trait]
pub trait DnsClient: Send + Sync {
    /// TXT records at `name`, CNAMEs followed.
    async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsError>;
    /// MX records at `name`, sorted by preference then name.
    async fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError>;
    /// A and AAAA addresses of `name`.
    async fn ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError>;
    /// The CNAME target of `name`, if it is an alias.
    async fn cname(&self, name: &str) -> Result<Option<String>, DnsError>;
    /// TLSA records at `name` (e.g. `_25._tcp.mx.example.com`).
    async fn tlsa(&self, name: &str) -> Result<Vec<TlsaRecord>, DnsError>;
    /// Whether the resolver authenticates (DNSSEC) the answer for `name`/`rtype`.
    async fn dnssec_status(&self, name: &str, rtype: RecordType) -> DnssecStatus;
    /// Whether the DNS servers answer at all: one question for the root's NS records, where
    /// any reply (NOERROR, REFUSED from an authoritative-only server, SERVFAIL) counts and
    /// only silence or a network error is [`DnsError::NoServerAnswers`]. Asked once before a
    /// run, so that a dead resolver is said once instead of as a finding for every domain.
    async fn reachable(&self) -> Result<(), DnsError> {
        Ok(())
    }
}

/// The mail exchangers of `domain`. What the answer means (implicit MX, null MX) is decided by
/// [`MxSet`]'s rules in `mtasts-proto` (RFC 5321 §5.1, RFC 7505); this function only asks. An
/// address lookup is made only when there is no MX RRset (NODATA).
pub async fn resolve_mx(dns: &dyn DnsClient, domain: &DomainName) -> Result<MxSet, DnsError> {
    match dns.mx(domain.as_str()).await {
        Ok(records) => Ok(MxSet::from_records(records)),
        Err(e) if matches!(e, DnsError::NoData { .. }) => match dns.ip(domain.as_str()).await {
            Ok(_) => Ok(MxSet::implicit(domain)),
            Err(ip_err) if ip_err.is_not_found() => Err(e),
            Err(ip_err) => Err(ip_err),
        },
        Err(e) => Err(e),
    }
}

/// Lower-cases a name and strips one trailing dot.
pub fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// How [`HickoryDns`] asks: the lookup timeout and the optional fixed rate ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsOptions {
    /// The longest one lookup may take, resends included.
    pub timeout: Duration,
    /// At most this many queries per second to each server (`None`: no fixed cap; the rate
    /// still adapts to the server, see [`pacing`]).
    pub max_rate: Option<u32>,
}

impl DnsOptions {
    /// `timeout` per lookup, no fixed rate cap.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout, max_rate: None }
    }

    /// With a fixed cap of `per_second` queries per second to each server.
    pub fn with_max_rate(mut self, per_second: Option<u32>) -> Self {
        self.max_rate = per_second;
        self
    }
}

/// [`DnsClient`] on hickory's DNS message types and our own transport (UDP with quick
/// resends, TCP on truncation, adaptive pacing per server).
#[derive(Clone)]
pub struct HickoryDns {
    transport: std::sync::Arc<Transport>,
    /// Where DNSSEC status questions go (the first configured server).
    status_server: Option<SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for HickoryDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryDns").field("status_server", &self.status_server).finish()
    }
}

impl HickoryDns {
    /// A client asking `servers` (UDP, TCP for truncated answers), or the system's resolvers
    /// from `/etc/resolv.conf` when `servers` is empty; `timeout` per lookup, no fixed rate
    /// cap.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Self, DnsError> {
        Self::with_options(servers, DnsOptions::new(timeout))
    }

    /// Like [`HickoryDns::new`], with [`DnsOptions`].
    pub fn with_options(servers: &[SocketAddr], options: DnsOptions) -> Result<Self, DnsError> {
        let servers = if servers.is_empty() { system_servers()? } else { servers.to_vec() };
        let status_server = servers.first().copied();
        Ok(Self {
            transport: std::sync::Arc::new(Transport::new(
                &servers,
                options.timeout,
                options.max_rate,
            )),
            status_server,
            timeout: options.timeout,
        })
    }

    /// What the client did so far: datagrams, resends, truncations, TCP questions, rate
    /// decreases.
    pub fn stats(&self) -> DnsStats {
        self.transport.stats()
    }

    /// The rate in force for each server, queries per second (`None`: no limit).
    pub fn rates(&self) -> Vec<(SocketAddr, Option<f64>)> {
        self.transport.rates()
    }

    /// The answer records for `name`/`rtype`, CNAMEs included (and followed when the server
    /// did not follow them itself); NXDOMAIN and error codes as [`DnsError`]s.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Lookup, DnsError> {
        let mut qname = absolute(name)?;
        let mut records: Vec<Record> = Vec::new();
        for _ in 0..MAX_CNAME_CHAIN {
            let reply = self.transport.query(&qname, rtype).await.map_err(|e| match e {
                QueryError::Timeout => DnsError::Timeout { name: name.to_owned() },
                QueryError::Io(reason) => DnsError::Other { name: name.to_owned(), reason },
            })?;
            match reply.metadata.response_code {
                ResponseCode::NoError => {}
                ResponseCode::NXDomain => {
                    return Err(DnsError::NxDomain {
                        name: name.to_owned(),
                        negative_ttl: negative_ttl(&reply.authorities),
                    });
                }
                other => {
                    return Err(DnsError::ServerFailure {
                        name: name.to_owned(),
                        rcode: other.to_str().to_owned(),
                    });
                }
            }
            let negative = negative_ttl(&reply.authorities);
            records.extend(reply.answers);
            // Follow the chain from the name asked through the records so far.
            let mut end = absolute(name)?;
            for _ in 0..=MAX_CNAME_CHAIN {
                let next = records.iter().find_map(|r| match &r.data {
                    RData::CNAME(t) if r.name == end => Some(t.0.clone()),
                    _ => None,
                });
                match next {
                    Some(target) if rtype != RecordType::CNAME => end = target,
                    _ => break,
                }
            }
            let complete = rtype == RecordType::CNAME
                || end == absolute(name)?
                || records.iter().any(|r| r.name == end && r.record_type() == rtype);
            if complete || end == qname {
                return Ok(Lookup { records, negative_ttl: negative });
            }
            // The server left the chain at a CNAME whose target it did not answer for.
            qname = end;
        }
        Ok(Lookup { records, negative_ttl: None })
    }
}

/// One lookup's answer records and, for an empty answer, its negative TTL.
struct Lookup {
    records: Vec<Record>,
    negative_ttl: Option<u32>,
}

impl Lookup {
    /// NODATA for `name`/`rtype`, with this answer's negative TTL.
    fn no_data(&self, name: &str, rtype: &str) -> DnsError {
        DnsError::NoData {
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            negative_ttl: self.negative_ttl,
        }
    }
}

/// RFC 2308 §5: a negative answer is cached for the smaller of the SOA record's own TTL and
/// its MINIMUM field; `None` when the authority section carries no SOA.
fn negative_ttl(authorities: &[Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

/// The name servers of `/etc/resolv.conf` (port 53).
fn system_servers() -> Result<Vec<SocketAddr>, DnsError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DnsError::Other { name: "(resolver setup)".into(), reason: e.to_string() })?;
    let servers: Vec<SocketAddr> = config
        .name_servers
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, ns.connections.first().map_or(53, |c| c.port)))
        .collect();
    if servers.is_empty() {
        return Err(DnsError::Other {
            name: "(resolver setup)".into(),
            reason: "no name server in the system configuration".into(),
        });
    }
    Ok(servers)
}

fn absolute(name: &str) -> Result<Name, DnsError> {
    let text = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
    Name::from_ascii(&text)
        .map_err(|e| DnsError::InvalidName { name: name.to_owned(), reason: e.to_string() })
}

#[async_trait]
impl DnsClient for HickoryDns {
    async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsError> {
        let lookup = self.lookup(name, RecordType::TXT).await?;
        let mut answer =
            TxtAnswer { ttl: lookup.records.iter().map(|r| r.ttl).min(), ..TxtAnswer::default() };
        for record in &lookup.records {
            match &record.data {
                RData::TXT(txt) => {
                    let joined: Vec<u8> =
                        txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                    answer.records.push(String::from_utf8_lossy(&joined).into_owned());
                }
                RData::CNAME(target) => answer.cname_chain.push(normalize(&target.0.to_ascii())),
                _ => {}
            }
        }
        if answer.records.is_empty() {
            return Err(lookup.no_data(name, "TXT"));
        }
        Ok(answer)
    }

    async fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        let lookup = self.lookup(name, RecordType::MX).await?;
        let mut hosts: Vec<MxRecord> = lookup
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxRecord::new(mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Err(lookup.no_data(name, "MX"));
        }
        hosts.sort_by(|a, b| {
            a.preference.cmp(&b.preference).then_with(|| a.exchange.cmp(&b.exchange))
        });
        hosts.dedup();
        Ok(hosts)
    }

    async fn ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let (v4, v6) =
            tokio::join!(self.lookup(name, RecordType::A), self.lookup(name, RecordType::AAAA));
        let mut addrs = Vec::new();
        for lookup in [&v4, &v6].into_iter().flatten() {
            for r in &lookup.records {
                match &r.data {
                    RData::A(a) => addrs.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => addrs.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        // Report the more telling of the two failures: a temporary one beats "not found".
        match (v4, v6) {
            (Err(e), _) if e.is_temporary() => Err(e),
            (_, Err(e)) if e.is_temporary() => Err(e),
            (Err(e), _) => Err(e),
            (Ok(a), Ok(b)) => Err(DnsError::NoData {
                name: name.to_owned(),
                rtype: "A/AAAA".into(),
                negative_ttl: a.negative_ttl.min(b.negative_ttl),
            }),
            _ => Err(DnsError::NoData {
                name: name.to_owned(),
                rtype: "A/AAAA".into(),
                negative_ttl: None,
            }),
        }
    }

    async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        match self.lookup(name, RecordType::CNAME).await {
            Ok(lookup) => Ok(lookup.records.iter().find_map(|r| match &r.data {
                RData::CNAME(target) => Some(normalize(&target.0.to_ascii())),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tlsa(&self, name: &str) -> Result<Vec<TlsaRecord>, DnsError> {
        let lookup = self.lookup(name, RecordType::TLSA).await?;
        let records: Vec<TlsaRecord> = lookup
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(TlsaRecord {
                    usage: t.cert_usage.into(),
                    selector: t.selector.into(),
                    matching: t.matching.into(),
                    data: t.cert_data.clone(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(lookup.no_data(name, "TLSA"));
        }
        Ok(records)
    }

    async fn reachable(&self) -> Result<(), DnsError> {
        let servers =
            self.transport.addrs().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self.transport.query(&Name::root(), RecordType::NS).await {
            Ok(_) => Ok(()),
            Err(QueryError::Timeout) => Err(DnsError::NoServerAnswers {
                servers,
                reason: format!("no reply within {} s", self.timeout.as_secs_f64()),
            }),
            Err(QueryError::Io(reason)) => Err(DnsError::NoServerAnswers { servers, reason }),
        }
    }

    async fn dnssec_status(&self, name: &str, rtype: RecordType) -> DnssecStatus {
        let Some(server) = self.status_server else { return DnssecStatus::Unknown };
        let Ok(fqdn) = absolute(name) else { return DnssecStatus::Unknown };
        match tokio::time::timeout(self.timeout, ad_bit(server, fqdn, rtype)).await {
            Ok(Some(true)) => DnssecStatus::Authenticated,
            Ok(Some(false)) => DnssecStatus::NotAuthenticated,
            _ => DnssecStatus::Unknown,
        }
    }
}

/// Asks `server` one question with the DO and AD bits set (RFC 6840 §5.7) and returns whether
/// the answer came back with AD: the validating resolver vouches for it.
async fn ad_bit(server: SocketAddr, name: Name, rtype: RecordType) -> Option<bool> {
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).await.ok()?;
    let mut msg = Message::query();
    let id: u16 = transport::random_id();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.metadata.authentic_data = true;
    msg.add_query(Query::query(name, rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let bytes = msg.to_vec().ok()?;
    socket.send_to(&bytes, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await.ok()?;
        if from != server {
            continue;
        }
        let reply = Message::from_vec(&buf[..n]).ok()?;
        if reply.metadata.id != id {
            continue;
        }
        return Some(reply.metadata.authentic_data);
    }
}

/// A [`DnsClient`] that spaces lookups to at most `per_second`, whatever client is inside.
/// Each lookup waits for its slot; slots are handed out in order of asking.
///
/// [`HickoryDns`] paces each of its servers itself (adaptive, with the optional fixed ceiling
/// [`DnsOptions::max_rate`], counting every datagram including resends; see [`pacing`]); this
/// wrapper is for other clients.
pub struct RateLimitedDns {
    inner: std::sync::Arc<dyn DnsClient>,
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl std::fmt::Debug for RateLimitedDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitedDns").field("interval", &self.interval).finish()
    }
}

impl RateLimitedDns {
    /// Wraps `inner`, allowing `per_second` queries per second (at least 1).
    pub fn new(inner: std::sync::Arc<dyn DnsClient>, per_second: u32) -> Self {
        Self {
            inner,
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait_turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[async_trait]
impl DnsClient for RateLimitedDns {
    async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsError> {
        self.wait_turn().await;
        self.inner.txt(name).await
    }
    async fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        self.wait_turn().await;
        self.inner.mx(name).await
    }
    async fn ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        // A and AAAA: two queries.
        self.wait_turn().await;
        self.wait_turn().await;
        self.inner.ip(name).await
    }
    async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        self.wait_turn().await;
        self.inner.cname(name).await
    }
    async fn tlsa(&self, name: &str) -> Result<Vec<TlsaRecord>, DnsError> {
        self.wait_turn().await;
        self.inner.tlsa(name).await
    }
    async fn dnssec_status(&self, name: &str, rtype: RecordType) -> DnssecStatus {
        self.wait_turn().await;
        self.inner.dnssec_status(name, rtype).await
    }
    async fn reachable(&self) -> Result<(), DnsError> {
        self.inner.reachable().await
    }
}
