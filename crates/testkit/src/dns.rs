//! An in-process authoritative DNS server (hickory-server) on loopback, UDP and TCP.
//!
//! All records live in one zone rooted at `.` so that any name can be published, CNAMEs
//! are chased across "domains", and the negative answers are right (RFC 2308): a name that
//! exists (or is an empty non-terminal, RFC 8020) but has no record of the asked type gets
//! NOERROR with an empty answer and the SOA in the authority section (NODATA); any other name
//! gets NXDOMAIN. [`Zone::servfail`] and [`Zone::silent`] names are intercepted by a
//! `RequestHandler` wrapping the hickory `Catalog`. Every record has TTL [`TTL`].

use std::{
    collections::{HashMap, HashSet},
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use hickory_proto::{
    op::{Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode},
    rr::{
        LowerName, Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, MX, SOA, TLSA, TXT},
    },
};
use hickory_server::{
    Server,
    net::runtime::{Time, TokioRuntimeProvider},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
};

/// TTL of every record served.
pub const TTL: u32 = 300;
/// How long the server keeps an idle TCP connection open.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 1035 §3.3: a character-string is at most 255 octets.
pub const MAX_CHARACTER_STRING: usize = 255;
const SERIAL: u32 = 20260101;

/// The records a [`DnsServer`] serves, and the names it misbehaves for.
///
/// Names may be given with or without the trailing dot; they are always absolute. An invalid
/// name or string is remembered and reported by [`DnsServer::start`].
#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: Vec<Record>,
    servfail: HashSet<LowerName>,
    silent: HashSet<LowerName>,
    errors: Vec<String>,
    no_query_log: bool,
}

/// Parses a name as absolute (a trailing dot is optional).
pub fn abs_name(name: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(name).map_err(|e| format!("invalid DNS name {name:?}: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

impl Zone {
    /// An empty zone.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, rdata: RData) -> &mut Self {
        match abs_name(name) {
            Ok(n) => self.records.push(Record::from_rdata(n, TTL, rdata)),
            Err(e) => self.errors.push(e),
        }
        self
    }

    fn target(&mut self, name: &str) -> Name {
        abs_name(name).unwrap_or_else(|e| {
            self.errors.push(e);
            Name::root()
        })
    }

    /// One TXT RR at `name` made of the given character-strings (clients must join them).
    pub fn txt(&mut self, name: &str, strings: &[&str]) -> &mut Self {
        if let Some(s) = strings.iter().find(|s| s.len() > MAX_CHARACTER_STRING) {
            self.errors.push(format!(
                "TXT string of {} bytes at {name} is longer than {MAX_CHARACTER_STRING}",
                s.len()
            ));
            return self;
        }
        let strings = strings.iter().map(|s| (*s).to_owned()).collect();
        self.push(name, RData::TXT(TXT::new(strings)))
    }

    /// An MX RR at `name`.
    pub fn mx(&mut self, name: &str, preference: u16, exchange: &str) -> &mut Self {
        let exchange = self.target(exchange);
        self.push(name, RData::MX(MX::new(preference, exchange)))
    }

    /// An A RR.
    pub fn a(&mut self, name: &str, ip: Ipv4Addr) -> &mut Self {
        self.push(name, RData::A(A(ip)))
    }

    /// An AAAA RR.
    pub fn aaaa(&mut self, name: &str, ip: Ipv6Addr) -> &mut Self {
        self.push(name, RData::AAAA(AAAA(ip)))
    }

    /// A CNAME RR (must be the only record at `name`; [`DnsServer::start`] fails otherwise).
    pub fn cname(&mut self, name: &str, target: &str) -> &mut Self {
        let target = self.target(target);
        self.push(name, RData::CNAME(CNAME(target)))
    }

    /// A TLSA RR (RFC 6698), e.g. at `_25._tcp.mx1.example.test`.
    pub fn tlsa(
        &mut self,
        name: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> &mut Self {
        let tlsa = TLSA::new(usage.into(), selector.into(), matching.into(), data.to_vec());
        self.push(name, RData::TLSA(tlsa))
    }

    /// Every query for exactly this name is answered SERVFAIL.
    pub fn servfail(&mut self, name: &str) -> &mut Self {
        match abs_name(name) {
            Ok(n) => {
                self.servfail.insert(LowerName::new(&n));
            }
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Every query for exactly this name gets no answer at all (the client must time out).
    pub fn silent(&mut self, name: &str) -> &mut Self {
        match abs_name(name) {
            Ok(n) => {
                self.silent.insert(LowerName::new(&n));
            }
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Do not keep a log of queries ([`DnsServer::queries`] stays empty): for big worlds
    /// answering millions of queries.
    pub fn without_query_log(&mut self) -> &mut Self {
        self.no_query_log = true;
        self
    }

    /// Number of resource records added so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The zone as master-file text (RFC 1035 §5.1), origin `.`, the SOA the server uses
    /// first, then every record in the order added, one per line with absolute names, for
    /// another DNS server (e.g. Debian's `nsd`) to serve the same data. [`Zone::servfail`]
    /// and [`Zone::silent`] names cannot be written in a zone file and are left out (a real
    /// server answers them from the records, if any).
    pub fn to_zone_file(&self) -> Result<String, String> {
        if !self.errors.is_empty() {
            return Err(self.errors.join("; "));
        }
        let mut out = String::from("$ORIGIN .\n");
        out.push_str(&format!("$TTL {TTL}\n"));
        for record in std::iter::once(soa_record()?).chain(self.records.iter().cloned()) {
            out.push_str(&format!(
                "{} {} IN {} {}\n",
                record.name,
                record.ttl,
                record.record_type(),
                presentation(&record.data)?
            ));
        }
        Ok(out)
    }

    /// True if `name` already has a record (of any type) in this zone.
    pub fn has_name(&self, name: &str) -> bool {
        match abs_name(name) {
            Ok(n) => {
                let n = LowerName::new(&n);
                self.records.iter().any(|r| LowerName::new(&r.name) == n)
            }
            Err(_) => false,
        }
    }
}

/// The zone's SOA record (at the root, serial [`SERIAL`], negative TTL [`TTL`]).
fn soa_record() -> Result<Record, String> {
    let soa = SOA::new(
        abs_name("ns.testkit.test")?,
        abs_name("hostmaster.testkit.test")?,
        SERIAL,
        3600,
        600,
        86400,
        TTL,
    );
    Ok(Record::from_rdata(Name::root(), TTL, RData::SOA(soa)))
}

/// RDATA in master-file presentation form (RFC 1035 §5.1; TLSA: RFC 6698 §2.2), for the
/// record types a [`Zone`] holds.
fn presentation(data: &RData) -> Result<String, String> {
    Ok(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => c.0.to_string(),
        RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        RData::TXT(txt) => {
            // RFC 1035 §5.1: a <character-string> in quotes, `"` and `\` escaped; bytes
            // outside printable ASCII as \DDD.
            let mut out = String::new();
            for s in txt.txt_data.iter() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push('"');
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            out.push('\\');
                            out.push(char::from(b));
                        }
                        0x20..=0x7e => out.push(char::from(b)),
                        _ => out.push_str(&format!("\\{b:03}")),
                    }
                }
                out.push('"');
            }
            out
        }
        RData::TLSA(t) => {
            let hex: String = t.cert_data.iter().map(|b| format!("{b:02X}")).collect();
            format!(
                "{} {} {} {hex}",
                u8::from(t.cert_usage),
                u8::from(t.selector),
                u8::from(t.matching)
            )
        }
        other => return Err(format!("no zone-file form for {} records", other.record_type())),
    })
}

/// One query the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedQuery {
    /// The query name, lower case, absolute (with the trailing dot).
    pub name: String,
    /// The query type, e.g. "TXT".
    pub qtype: String,
    /// True if it came over TCP.
    pub tcp: bool,
}

/// A runtime change to one name and record type, answered before the zone (tests that need a
/// world to change while a client runs: a new policy id, a record that disappears, a DNS
/// server that starts failing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Override {
    /// These TXT records (each a list of character-strings), with TTL [`TTL`].
    Txt(Vec<Vec<String>>),
    /// NXDOMAIN.
    NxDomain,
    /// NOERROR without records (NODATA).
    NoData,
    /// SERVFAIL.
    ServFail,
    /// No answer at all.
    Silent,
    /// These TXT records with this TTL.
    TxtTtl(Vec<Vec<String>>, u32),
    /// These A records (a name moved to another address: a policy host served elsewhere).
    A(Vec<Ipv4Addr>),
    /// These MX records (preference, exchange): MX drift, a host added or removed.
    Mx(Vec<(u16, String)>),
    /// NXDOMAIN (`nxdomain`) or NODATA with an SOA whose TTL and MINIMUM are `negative_ttl`
    /// (the negative-caching TTL of RFC 2308 §5).
    Negative {
        /// NXDOMAIN rather than NODATA.
        nxdomain: bool,
        /// The SOA's TTL and MINIMUM.
        negative_ttl: u32,
    },
}

type Overrides = Arc<Mutex<HashMap<(String, RecordType), Override>>>;

/// Names (and everything below them) answered as a validating resolver answers for a signed
/// zone: with the AD bit, to a query that set DO or AD (RFC 6840 §5.7).
type Signed = Arc<Mutex<Vec<LowerName>>>;

/// Sets the AD bit of every response sent through it (see [`Signed`]).
#[derive(Clone)]
struct Authentic<R>(R);

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for Authentic<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        response.metadata_mut().authentic_data = true;
        self.0.send_response(response).await
    }
}

struct Handler {
    overrides: Overrides,
    signed: Signed,
    catalog: Catalog,
    servfail: HashSet<LowerName>,
    silent: HashSet<LowerName>,
    log: Arc<Mutex<Vec<RecordedQuery>>>,
    record: bool,
    index: NameIndex,
}

/// Which names exist and which record types they hold, so that negative answers (NXDOMAIN,
/// NODATA) are made here in constant time: hickory's in-memory zone finds them by scanning
/// every record, which takes tens of milliseconds per query in a zone of 100 000 domains.
struct NameIndex {
    /// Every owner name and every ancestor of one (empty non-terminals, RFC 8020), lower
    /// case with the trailing dot, with a bit per record type present ([`type_bit`]).
    names: HashMap<Box<str>, u16>,
    soa: Record,
}

const CNAME_BIT: u16 = 1 << 4;

fn type_bit(t: RecordType) -> u16 {
    match t {
        RecordType::A => 1,
        RecordType::AAAA => 1 << 1,
        RecordType::MX => 1 << 2,
        RecordType::TXT => 1 << 3,
        RecordType::CNAME => CNAME_BIT,
        RecordType::TLSA => 1 << 5,
        RecordType::SOA => 1 << 6,
        RecordType::NS => 1 << 7,
        _ => 1 << 15,
    }
}

fn index_key(name: &str) -> String {
    let mut k = name.to_ascii_lowercase();
    if !k.ends_with('.') {
        k.push('.');
    }
    k
}

impl NameIndex {
    fn new(soa: Record) -> Self {
        let mut index = Self { names: HashMap::new(), soa };
        let (name, t) = (index.soa.name.clone(), index.soa.record_type());
        index.add(&name, t);
        index
    }

    fn add(&mut self, name: &Name, t: RecordType) {
        *self.names.entry(index_key(&name.to_string()).into_boxed_str()).or_default() |=
            type_bit(t);
        let mut parent = name.base_name();
        loop {
            self.names.entry(index_key(&parent.to_string()).into_boxed_str()).or_default();
            if parent.is_root() {
                break;
            }
            parent = parent.base_name();
        }
    }

    /// `Some(code)` when the answer is negative and certain: NXDomain, or NoError (NODATA).
    /// `None` when the zone has an answer (or the question is unusual): ask the catalog.
    fn negative(&self, name: &str, t: RecordType) -> Option<ResponseCode> {
        if matches!(t, RecordType::ANY | RecordType::AXFR | RecordType::IXFR)
            || type_bit(t) == 1 << 15
        {
            return None;
        }
        match self.names.get(index_key(name).as_str()) {
            None => Some(ResponseCode::NXDomain),
            Some(mask) if mask & (type_bit(t) | CNAME_BIT) != 0 => None,
            Some(_) => Some(ResponseCode::NoError),
        }
    }
}

fn info_with(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

async fn answer_override<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    name: &LowerName,
    change: Override,
    soa: &Record,
) -> ResponseInfo {
    let txt = |rrs: Vec<Vec<String>>, ttl: u32| -> Vec<Record> {
        rrs.into_iter()
            .map(|strings| {
                Record::from_rdata(Name::from(name.clone()), ttl, RData::TXT(TXT::new(strings)))
            })
            .collect()
    };
    let mut soa = soa.clone();
    let (code, records) = match change {
        Override::Silent => return info_with(request, ResponseCode::NoError),
        Override::ServFail => (ResponseCode::ServFail, Vec::new()),
        Override::NxDomain => (ResponseCode::NXDomain, Vec::new()),
        Override::NoData => (ResponseCode::NoError, Vec::new()),
        Override::Txt(rrs) => (ResponseCode::NoError, txt(rrs, TTL)),
        Override::TxtTtl(rrs, ttl) => (ResponseCode::NoError, txt(rrs, ttl)),
        Override::A(addrs) => (
            ResponseCode::NoError,
            addrs
                .into_iter()
                .map(|ip| Record::from_rdata(Name::from(name.clone()), TTL, RData::A(A(ip))))
                .collect(),
        ),
        Override::Mx(mx) => (
            ResponseCode::NoError,
            mx.into_iter()
                .filter_map(|(pref, host)| {
                    let exchange = abs_name(&host).ok()?;
                    Some(Record::from_rdata(
                        Name::from(name.clone()),
                        TTL,
                        RData::MX(MX::new(pref, exchange)),
                    ))
                })
                .collect(),
        ),
        Override::Negative { nxdomain, negative_ttl } => {
            soa.ttl = negative_ttl;
            if let RData::SOA(s) = &mut soa.data {
                s.minimum = negative_ttl;
            }
            let code = if nxdomain { ResponseCode::NXDomain } else { ResponseCode::NoError };
            (code, Vec::new())
        }
    };
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.authoritative = code != ResponseCode::ServFail;
    metadata.response_code = code;
    let negative = records.is_empty() && code != ResponseCode::ServFail;
    let response = MessageResponseBuilder::new(&request.queries, None).build(
        metadata,
        records.iter(),
        std::iter::empty(),
        negative.then_some(&soa),
        std::iter::empty(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => info_with(request, ResponseCode::ServFail),
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let wants_ad = request.metadata.authentic_data
            || request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let signed = wants_ad
            && request.queries.queries().first().is_some_and(|q| {
                self.signed.lock().is_ok_and(|s| s.iter().any(|zone| zone.zone_of(q.name())))
            });
        if signed {
            self.respond::<_, T>(request, Authentic(response_handle)).await
        } else {
            self.respond::<_, T>(request, response_handle).await
        }
    }
}

impl Handler {
    async fn respond<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if let Some(q) = request.queries.queries().first() {
            let name = q.name().clone();
            if self.record
                && let Ok(mut log) = self.log.lock()
            {
                log.push(RecordedQuery {
                    name: name.to_string(),
                    qtype: q.query_type().to_string(),
                    tcp: request.protocol().is_stream(),
                });
            }
            let key = (name.to_string().to_ascii_lowercase(), q.query_type());
            let change = self.overrides.lock().ok().and_then(|o| o.get(&key).cloned());
            if let Some(change) = change {
                return answer_override(request, response_handle, &name, change, &self.index.soa)
                    .await;
            }
            if self.silent.contains(&name) {
                return info_with(request, ResponseCode::NoError);
            }
            if self.servfail.contains(&name) {
                let response = MessageResponseBuilder::new(&request.queries, None)
                    .error_msg(&request.metadata, ResponseCode::ServFail);
                return match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => info_with(request, ResponseCode::ServFail),
                };
            }
            if let Some(code) = self.index.negative(&name.to_string(), q.query_type()) {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = true;
                metadata.response_code = code;
                let response = MessageResponseBuilder::new(&request.queries, None).build(
                    metadata,
                    std::iter::empty(),
                    std::iter::empty(),
                    std::iter::once(&self.index.soa),
                    std::iter::empty(),
                );
                return match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => info_with(request, ResponseCode::ServFail),
                };
            }
        }
        self.catalog.handle_request::<R, T>(request, response_handle).await
    }
}

/// A running authoritative DNS server on `127.0.0.1`, UDP and TCP on the same port.
/// Stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    overrides: Overrides,
    signed: Signed,
    server: Server<Handler>,
    log: Arc<Mutex<Vec<RecordedQuery>>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `127.0.0.1` (same ephemeral port) and serves `zone`.
    pub async fn start(zone: Zone) -> io::Result<Self> {
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                Ok(tcp) => return Self::start_on(udp, tcp, zone),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("could not bind DNS sockets")))
    }

    /// Binds UDP and TCP on `addr` (e.g. `127.A.B.253:53`, the standard port) and serves `zone`.
    pub async fn bind(addr: SocketAddr, zone: Zone) -> io::Result<Self> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Self::start_on(udp, tcp, zone)
    }

    /// Serves `zone` on already-bound sockets.
    pub fn start_on(udp: UdpSocket, tcp: TcpListener, zone: Zone) -> io::Result<Self> {
        if !zone.errors.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, zone.errors.join("; ")));
        }
        let addr = udp.local_addr()?;
        let origin = Name::root();
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = soa_record().map_err(io::Error::other)?;
        handler.upsert_mut(soa.clone(), SERIAL);
        let mut index = NameIndex::new(soa);
        for record in zone.records {
            index.add(&record.name, record.record_type());
            let desc = format!("{} {}", record.name, record.record_type());
            if !handler.upsert_mut(record, SERIAL) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("record {desc} conflicts with another (CNAME must be alone)"),
                ));
            }
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
        let log = Arc::new(Mutex::new(Vec::new()));
        let overrides: Overrides = Arc::default();
        let signed: Signed = Arc::default();
        let mut server = Server::new(Handler {
            overrides: Arc::clone(&overrides),
            signed: Arc::clone(&signed),
            catalog,
            servfail: zone.servfail,
            silent: zone.silent,
            log: Arc::clone(&log),
            record: !zone.no_query_log,
            index,
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, 32);
        Ok(Self { addr, overrides, signed, server, log })
    }

    /// From now on, answers `name`/`rtype` with `change` instead of the zone.
    pub fn set_override(&self, name: &str, rtype: RecordType, change: Override) {
        let name = abs_name(name).map_or_else(|_| name.to_owned(), |n| n.to_string());
        if let Ok(mut o) = self.overrides.lock() {
            o.insert((name.to_ascii_lowercase(), rtype), change);
        }
    }

    /// Answers for `zone` and every name below it as a validating resolver answers for a
    /// DNSSEC-signed zone: with the AD bit set, to queries that set DO or AD (RFC 6840 §5.7).
    /// Negative answers (NXDOMAIN, NODATA) under it are then authenticated denials.
    pub fn set_signed(&self, zone: &str) {
        if let (Ok(name), Ok(mut s)) = (abs_name(zone), self.signed.lock()) {
            s.push(LowerName::new(&name));
        }
    }

    /// Answers for `zone` without the AD bit again (see [`DnsServer::set_signed`]).
    pub fn clear_signed(&self, zone: &str) {
        if let (Ok(name), Ok(mut s)) = (abs_name(zone), self.signed.lock()) {
            let name = LowerName::new(&name);
            s.retain(|z| *z != name);
        }
    }

    /// Answers `name`/`rtype` from the zone again.
    pub fn clear_override(&self, name: &str, rtype: RecordType) {
        let name = abs_name(name).map_or_else(|_| name.to_owned(), |n| n.to_string());
        if let Ok(mut o) = self.overrides.lock() {
            o.remove(&(name.to_ascii_lowercase(), rtype));
        }
    }

    /// The address (UDP and TCP) to give clients as their only name server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The queries received so far, in order.
    pub fn queries(&self) -> Vec<RecordedQuery> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.server.shutdown_token().cancel();
    }
}

/// Transport for [`query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One UDP datagram each way.
    Udp,
    /// Two-byte length-prefixed message over TCP (RFC 1035 §4.2.2).
    Tcp,
}

/// Sends one query (RD clear) to `server` and returns the decoded response, or
/// `ErrorKind::TimedOut` after `timeout`. A tiny stub for tests of the test universe.
pub async fn query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    timeout: Duration,
) -> io::Result<Message> {
    let name = abs_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name, qtype));
    let wire = msg.to_vec().map_err(io::Error::other)?;
    let fut = async {
        let raw = match transport {
            Transport::Udp => {
                let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
                sock.connect(server).await?;
                sock.send(&wire).await?;
                let mut buf = vec![0u8; 65535];
                let n = sock.recv(&mut buf).await?;
                buf.truncate(n);
                buf
            }
            Transport::Tcp => {
                let mut s = TcpStream::connect(server).await?;
                let len = u16::try_from(wire.len()).map_err(io::Error::other)?;
                let mut out = len.to_be_bytes().to_vec();
                out.extend_from_slice(&wire);
                s.write_all(&out).await?;
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf).await?;
                buf
            }
        };
        Message::from_vec(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "DNS query timed out"))?
}

/// The strings of every TXT record in `msg`'s answer section, each record's strings joined.
pub fn txt_answers(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}
