//! Sending one question to the configured servers and getting one answer back: UDP with
//! resends on a short schedule, TCP when the server invites it, each server paced by its own
//! [`AdaptiveRate`].
//!
//! # One lookup
//!
//! 1. The question goes out over UDP (RFC 1035 §4.2.1) with EDNS and a 1232-byte payload
//!    size (RFC 6891 §6.2.5; the DNS flag day 2020 value), from a fresh socket with a random
//!    id (RFC 5452 §9.2). Each datagram first waits for its turn in the server's pacer.
//! 2. If no answer comes within the server's retransmission timeout ([`RttEstimator`]), the
//!    question is sent again, to the next server if there is one ("The client should try
//!    other servers and server addresses before repeating a query to a specific address of a
//!    server", RFC 1035 §4.2.1), with the timeout doubled for each resend. Every resend has an
//!    id of its own and an answer to any earlier datagram is still taken, so a late answer is
//!    told from a lost one and times its own round trip. One lost datagram costs one
//!    retransmission timeout, not the whole lookup timeout.
//! 3. An answer with TC set is asked again over TCP (RFC 1035 §4.2.2; RFC 2181 §9: "When a
//!    DNS client receives a reply with TC set, it should ignore that response, and query
//!    again, using a mechanism, such as a TCP connection, that will permit larger replies").
//!    So is a question whose first [`UDP_SENDS_BEFORE_TCP`] datagrams went unanswered (one
//!    while the server is in back-off, see 4.): RFC 7766 §5, "Stub resolvers and recursive
//!    resolvers MAY elect to send either TCP or UDP queries depending on local operational
//!    reasons. TCP MAY be used before sending any UDP queries." A server that drops UDP
//!    answers under load usually still answers over TCP (that is what response rate limiting
//!    expects of genuine clients). UDP resends go on meanwhile.
//! 4. While a server is in back-off (its [`AdaptiveRate`] lowered the rate), its UDP
//!    datagrams are paced at that rate and a question goes over TCP first whenever one of its
//!    [`TCP_PER_SERVER`] TCP slots is free (RFC 7766 §5, as above): a server that limits its
//!    UDP answers (NSD and BIND response rate limiting) expects genuine clients to come back
//!    over TCP, which it does not limit, and the UDP rate it sees drops so that its limiter
//!    lets go. Once the rate has recovered, questions go over UDP again.
//! 5. The lookup ends with the first answer, or at its deadline (the configured DNS timeout)
//!    with [`QueryError::Timeout`].
//!
//! Every datagram sent and every outcome is reported to the server's [`AdaptiveRate`]: an
//! answer (with its round trip), a truncation, REFUSED, SERVFAIL, and, when the lookup ends,
//! every datagram sent before the one answered (or all of them, if none was) as lost. It
//! lowers the pace when the server shows signs of rate limiting or overload and raises it
//! again when they stop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::pacing::{AdaptiveRate, RttEstimator, Signal};

/// EDNS UDP payload size offered (RFC 6891 §6.2.5; DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Unanswered UDP datagrams of one question after which it is also asked over TCP.
pub const UDP_SENDS_BEFORE_TCP: u32 = 2;
/// TCP questions in flight to one server at once (connections are not kept).
pub const TCP_PER_SERVER: usize = 16;
/// Largest UDP answer read (the payload size offered, with room for servers that ignore it).
const UDP_BUFFER: usize = 4096;

/// Why a question got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// No answer before the deadline.
    Timeout,
    /// A local failure (socket, encoding).
    Io(String),
}

/// Counts over the life of a [`HickoryDns`](super::HickoryDns), for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsStats {
    /// UDP datagrams sent (first sends and resends).
    pub udp_sent: u64,
    /// UDP resends (a datagram unanswered within the retransmission timeout).
    pub resends: u64,
    /// Truncated answers (each followed by a TCP question).
    pub truncated: u64,
    /// Questions asked over TCP.
    pub tcp_queries: u64,
    /// Multiplicative rate decreases, over all servers.
    pub decreases: u64,
}

/// One server: its address, pacer, round-trip estimate and TCP allowance.
#[derive(Debug)]
struct Server {
    addr: SocketAddr,
    control: Mutex<Control>,
    tcp: Semaphore,
}

#[derive(Debug)]
struct Control {
    rate: AdaptiveRate,
    rtt: RttEstimator,
    /// When the next paced query may go.
    next_slot: Instant,
}

impl Server {
    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        // A panic while holding the lock cannot leave the controller inconsistent enough to
        // matter: go on with whatever it holds.
        self.control.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for this server's next slot. False if it would come after `deadline`.
    async fn pace(&self, deadline: Instant) -> bool {
        let slot = {
            let mut c = self.control();
            let now = Instant::now();
            c.rate.on_send(now.into_std());
            match c.rate.interval() {
                None => return true,
                Some(interval) => {
                    let slot = c.next_slot.max(now);
                    c.next_slot = slot + interval;
                    slot
                }
            }
        };
        if slot > deadline {
            return false;
        }
        tokio::time::sleep_until(slot).await;
        true
    }

    fn backing_off(&self) -> bool {
        self.control().rate.backing_off()
    }

    fn signal(&self, s: Signal) {
        self.control().rate.on_signal(s, Instant::now().into_std());
    }

    fn rto(&self, resends: u32) -> Duration {
        self.control().rtt.backed_off(resends)
    }

    fn sample(&self, rtt: Duration) {
        self.control().rtt.sample(rtt);
    }
}

/// The servers of one client and the way questions are put to them.
#[derive(Debug)]
pub(crate) struct Transport {
    servers: Vec<Server>,
    timeout: Duration,
    next: AtomicUsize,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    udp_sent: AtomicU64,
    resends: AtomicU64,
    truncated: AtomicU64,
    tcp_queries: AtomicU64,
}

impl Transport {
    /// Questions to `servers` (tried in turn), each lookup bounded by `timeout`, each server
    /// paced by an [`AdaptiveRate`] with `ceiling` queries per second at most.
    pub(crate) fn new(servers: &[SocketAddr], timeout: Duration, ceiling: Option<u32>) -> Self {
        let now = Instant::now();
        Self {
            servers: servers
                .iter()
                .map(|&addr| Server {
                    addr,
                    control: Mutex::new(Control {
                        rate: AdaptiveRate::new(ceiling, now.into_std()),
                        rtt: RttEstimator::default(),
                        next_slot: now,
                    }),
                    tcp: Semaphore::new(TCP_PER_SERVER),
                })
                .collect(),
            timeout,
            next: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> DnsStats {
        let c = &self.counters;
        DnsStats {
            udp_sent: c.udp_sent.load(Ordering::Relaxed),
            resends: c.resends.load(Ordering::Relaxed),
            truncated: c.truncated.load(Ordering::Relaxed),
            tcp_queries: c.tcp_queries.load(Ordering::Relaxed),
            decreases: self.servers.iter().map(|s| s.control().rate.decreases()).sum(),
        }
    }

    /// The rate in force for each server (queries per second; `None` = no limit).
    pub(crate) fn rates(&self) -> Vec<(SocketAddr, Option<f64>)> {
        self.servers.iter().map(|s| (s.addr, s.control().rate.rate())).collect()
    }

    /// Asks `name`/`rtype` (recursion desired) and returns the first answer, whatever its
    /// response code; see the module docs for the schedule.
    /// The servers asked, in order.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    pub(crate) async fn query(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Message, QueryError> {
        if self.servers.is_empty() {
            return Err(QueryError::Io("no DNS server configured".into()));
        }
        let deadline = Instant::now() + self.timeout;
        let id = random_id();
        let wire = encode(id, name, rtype)?;
        let first = self.next.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        let server = &self.servers[first];
        if server.backing_off()
            && let Ok(permit) = server.tcp.try_acquire()
            && let Ok(answer) = self.ask_tcp_with(server, permit, id, &wire, deadline).await
        {
            return Ok(answer);
        }
        let socket = bind_for(server.addr).await?;
        let mut buf = vec![0u8; UDP_BUFFER];
        // Each datagram: (server index, its id, when it went). Every resend has an id of its
        // own, so an answer tells which datagram it answers: a late answer is not a lost one,
        // and its round trip can be timed without the retransmission ambiguity (RFC 6298 §3).
        let mut sent: Vec<(usize, u16, Instant)> = Vec::new();
        let mut sends: u32 = 0;
        let mut next_send = Instant::now();
        let mut tcp: Option<std::pin::Pin<Box<TcpFuture<'_>>>> = None;
        let lost = |datagrams: &[(usize, u16, Instant)]| {
            for &(k, _, _) in datagrams {
                self.servers[k].signal(Signal::Lost);
            }
        };
        loop {
            // Time to (re)send?
            if Instant::now() >= next_send && next_send < deadline {
                let i = (first + sends as usize) % self.servers.len();
                let target = &self.servers[i];
                if sends > 0 {
                    self.counters.resends.fetch_add(1, Ordering::Relaxed);
                }
                let tcp_due = sends >= UDP_SENDS_BEFORE_TCP || (sends >= 1 && server.backing_off());
                if tcp_due && tcp.is_none() {
                    tcp = Some(Box::pin(self.ask_tcp(server, id, &wire, deadline)));
                }
                if target.pace(deadline).await {
                    let dgram_id = if sends == 0 { id } else { random_id() };
                    let dgram =
                        if sends == 0 { wire.clone() } else { encode(dgram_id, name, rtype)? };
                    self.counters.udp_sent.fetch_add(1, Ordering::Relaxed);
                    // A send error (e.g. no route) is like a lost datagram: the schedule goes on.
                    let _ = socket.send_to(&dgram, target.addr).await;
                    sent.push((i, dgram_id, Instant::now()));
                }
                next_send = Instant::now() + target.rto(sends);
                sends += 1;
            }
            let wake = next_send.min(deadline);
            let tcp_answer = async {
                match tcp.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else {
                        // A local socket error: do not spin on it; the schedule goes on.
                        tokio::time::sleep_until(wake).await;
                        continue;
                    };
                    let Some(reply) = decode(&buf[..n], name, rtype) else { continue };
                    let Some(j) = sent.iter().position(|&(k, did, _)| {
                        did == reply.metadata.id && self.servers[k].addr == from
                    }) else {
                        continue;
                    };
                    let (k, _, at) = sent[j];
                    let answered_by = &self.servers[k];
                    // The datagrams before the one answered went unanswered for at least a
                    // retransmission timeout each.
                    lost(&sent[..j]);
                    answered_by.sample(at.elapsed());
                    if reply.metadata.truncation {
                        self.counters.truncated.fetch_add(1, Ordering::Relaxed);
                        answered_by.signal(Signal::Truncated);
                        if let Ok(answer) = self.ask_tcp(answered_by, id, &wire, deadline).await {
                            return Ok(answer);
                        }
                        continue;
                    }
                    answered_by.signal(signal_of(reply.metadata.response_code));
                    return Ok(reply);
                }
                answer = tcp_answer => {
                    match answer {
                        Ok(reply) => {
                            lost(&sent);
                            return Ok(reply);
                        }
                        // TCP did not work: UDP goes on alone.
                        Err(_) => tcp = Some(Box::pin(pending_tcp())),
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        lost(&sent);
                        return Err(QueryError::Timeout);
                    }
                }
            }
        }
    }

    /// One question over TCP (RFC 1035 §4.2.2, two-byte length prefix), a connection of its
    /// own, within `deadline`.
    async fn ask_tcp(
        &self,
        server: &Server,
        id: u16,
        wire: &[u8],
        deadline: Instant,
    ) -> Result<Message, QueryError> {
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, server.tcp.acquire()).await else {
            return Err(QueryError::Timeout);
        };
        self.ask_tcp_with(server, permit, id, wire, deadline).await
    }

    /// [`Transport::ask_tcp`] once a TCP slot is held.
    async fn ask_tcp_with(
        &self,
        server: &Server,
        _permit: tokio::sync::SemaphorePermit<'_>,
        id: u16,
        wire: &[u8],
        deadline: Instant,
    ) -> Result<Message, QueryError> {
        self.counters.tcp_queries.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let mut stream = TcpStream::connect(server.addr).await?;
            let len = u16::try_from(wire.len()).map_err(std::io::Error::other)?;
            let mut out = Vec::with_capacity(wire.len() + 2);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(wire);
            stream.write_all(&out).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let raw = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => return Err(QueryError::Io(e.to_string())),
            Err(_) => {
                server.signal(Signal::Lost);
                return Err(QueryError::Timeout);
            }
        };
        let reply = Message::from_vec(&raw).map_err(|e| QueryError::Io(e.to_string()))?;
        if reply.metadata.id != id {
            return Err(QueryError::Io("TCP answer with another id".into()));
        }
        server.signal(signal_of(reply.metadata.response_code));
        Ok(reply)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        tracing::debug!(stats = ?self.stats(), rates = ?self.rates(), "DNS transport done");
    }
}

type TcpFuture<'a> = dyn Future<Output = Result<Message, QueryError>> + Send + 'a;

fn pending_tcp() -> impl Future<Output = Result<Message, QueryError>> + Send {
    std::future::pending()
}

fn signal_of(code: ResponseCode) -> Signal {
    match code {
        ResponseCode::Refused => Signal::Refused,
        ResponseCode::ServFail => Signal::ServFail,
        _ => Signal::Answered,
    }
}

/// The question as wire bytes: RD set (RFC 1035 §4.1.1), EDNS with [`EDNS_PAYLOAD`].
fn encode(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, QueryError> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    msg.to_vec().map_err(|e| QueryError::Io(e.to_string()))
}

/// The datagram as an answer to our question (the caller matches its id), or `None` for
/// anything else (another question, not a response, garbage): such datagrams are ignored, as
/// a forged or stray answer must not end the lookup (RFC 5452 §9.1).
fn decode(raw: &[u8], name: &Name, rtype: RecordType) -> Option<Message> {
    let reply = Message::from_vec(raw).ok()?;
    if reply.metadata.message_type != MessageType::Response {
        return None;
    }
    // A truncated answer may come without its question (RFC 1035 leaves it open; NSD's rate
    // limiter keeps it): accept a missing question only then.
    match reply.queries.first() {
        Some(q) if q.query_type() == rtype && q.name() == name => Some(reply),
        None if reply.metadata.truncation => Some(reply),
        _ => None,
    }
}

/// A UDP socket on an OS-chosen (random) port, of the server's address family.
async fn bind_for(server: SocketAddr) -> Result<UdpSocket, QueryError> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(local).await.map_err(|e| QueryError::Io(e.to_string()))
}

/// 16 unpredictable bits for a query id (RFC 5452 §4.3).
pub(crate) fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // Truncation intended: any 16 bits of the hash will do for a query id.
    (h.finish() & 0xffff) as u16
}
