//! DNS lookups behind a small trait, so the hickory version can move without touching callers.
//!
//! MTA-STS cares about the difference between "there is no such record" (NXDOMAIN, or NODATA:
//! the name exists without records of the type) and "the DNS could not answer" (SERVFAIL,
//! timeout): RFC 8461 §5 says a sender must not permanently fail on a lookup problem, and a
//! checker must not tell an administrator "you have no policy" when their DNS is merely down.
//! [`DnsError`] keeps the two apart.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::{Name, RData};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::{Resolver, TokioResolver};
use tokio::net::UdpSocket;

use mtasts_proto::{DomainName, MxRecord, MxSet};

/// A lookup that did not produce records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("{name}: no such name (NXDOMAIN)")]
    NxDomain {
        /// The name asked for.
        name: String,
    },
    /// NODATA: the name exists but has no record of this type.
    #[error("{name}: no {rtype} record (NODATA)")]
    NoData {
        /// The name asked for.
        name: String,
        /// The record type asked for.
        rtype: String,
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

    /// True when the DNS could not answer: retry later, never read it as "no record".
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::ServerFailure { .. } | Self::Timeout { .. } | Self::Other { .. })
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

/// [`DnsClient`] on hickory-resolver.
#[derive(Clone)]
pub struct HickoryDns {
    resolver: TokioResolver,
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
    /// A resolver asking `servers` (UDP, falling back to TCP for truncated answers), or the
    /// system's resolvers from `/etc/resolv.conf` when `servers` is empty.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Self, DnsError> {
        let setup_err = |e: NetError| DnsError::Other {
            name: "(resolver setup)".into(),
            reason: e.to_string(),
        };
        let (config, mut opts) = if servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf().map_err(setup_err)?
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            (ResolverConfig::from_parts(None, vec![], name_servers), ResolverOpts::default())
        };
        let status_server = config
            .name_servers
            .first()
            .map(|ns| SocketAddr::new(ns.ip, ns.connections.first().map_or(53, |c| c.port)));
        opts.timeout = timeout;
        opts.attempts = 2;
        // Names are always absolute here: never append search domains.
        opts.ndots = 0;
        // A checker must see changes as they happen.
        opts.cache_size = 0;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(setup_err)?;
        Ok(Self { resolver, status_server, timeout })
    }

    async fn lookup(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<hickory_resolver::lookup::Lookup, DnsError> {
        let fqdn = absolute(name)?;
        self.resolver.lookup(fqdn, rtype).await.map_err(|e| map_error(name, rtype, &e))
    }
}

fn absolute(name: &str) -> Result<Name, DnsError> {
    let text = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
    Name::from_ascii(&text)
        .map_err(|e| DnsError::InvalidName { name: name.to_owned(), reason: e.to_string() })
}

fn map_error(name: &str, rtype: RecordType, e: &NetError) -> DnsError {
    let name = name.to_owned();
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsError::NxDomain { name },
            ResponseCode::NoError => DnsError::NoData { name, rtype: rtype.to_string() },
            other => DnsError::ServerFailure { name, rcode: other.to_str().to_owned() },
        },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            DnsError::ServerFailure { name, rcode: code.to_str().to_owned() }
        }
        NetError::Timeout => DnsError::Timeout { name },
        other => {
            let text = other.to_string();
            // hickory reports an exhausted retry budget as a message, not as Timeout.
            if text.contains("timed out") || text.contains("timeout") {
                DnsError::Timeout { name }
            } else {
                DnsError::Other { name, reason: text }
            }
        }
    }
}

#[async_trait]
impl DnsClient for HickoryDns {
    async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsError> {
        let lookup = self.lookup(name, RecordType::TXT).await?;
        let mut answer = TxtAnswer::default();
        for record in lookup.answers() {
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
            return Err(DnsError::NoData { name: name.to_owned(), rtype: "TXT".into() });
        }
        Ok(answer)
    }

    async fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        let lookup = self.lookup(name, RecordType::MX).await?;
        let mut hosts: Vec<MxRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxRecord::new(mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Err(DnsError::NoData { name: name.to_owned(), rtype: "MX".into() });
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
            for r in lookup.answers() {
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
            _ => Err(DnsError::NoData { name: name.to_owned(), rtype: "A/AAAA".into() }),
        }
    }

    async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        match self.lookup(name, RecordType::CNAME).await {
            Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
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
            .answers()
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
            return Err(DnsError::NoData { name: name.to_owned(), rtype: "TLSA".into() });
        }
        Ok(records)
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
    let id: u16 = rand_id();
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

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // Truncation intended: any 16 bits of the hash will do for a query id.
    (h.finish() & 0xffff) as u16
}

/// A [`DnsClient`] that spaces queries to at most `per_second` (a polite scan must not flood
/// the resolver it shares with others). Each query waits for its slot; slots are handed out in
/// order of asking.
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
}
