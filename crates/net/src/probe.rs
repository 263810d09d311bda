//! The MX probe: one SMTP session that tells whether an MX host would pass RFC 8461 §4
//! validation.
//!
//! connect → banner → EHLO → STARTTLS offered? → STARTTLS → TLS handshake with SNI = the MX name
//! (RFC 8461 §7.1) → EHLO again → QUIT. The certificate chain is recorded even when validation
//! fails, then judged: chain to a trusted root, validity dates, a SAN matching the MX name
//! (RFC 8461 §4.2). Every step has its own timeout, and a failure names the step.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mtasts_proto::result_type::CertificateProblem;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsConnector;

use crate::config::NetConfig;
use crate::dns::DnsClient;
use crate::smtp::{Reply, ReplyParser};
use crate::tls::{
    CertInfo, RecordingVerifier, TlsParams, certificate_problem, describe_certificate_error,
};

/// The steps of a probe, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeStep {
    /// Looking up the MX host's addresses.
    Resolve,
    /// TCP connect.
    Connect,
    /// Waiting for the 220 greeting.
    Banner,
    /// EHLO before TLS.
    Ehlo,
    /// The STARTTLS command.
    StartTls,
    /// The TLS handshake.
    Handshake,
    /// EHLO inside TLS.
    EhloAfterTls,
    /// QUIT.
    Quit,
}

impl fmt::Display for ProbeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolve => "resolve",
            Self::Connect => "connect",
            Self::Banner => "banner",
            Self::Ehlo => "EHLO",
            Self::StartTls => "STARTTLS",
            Self::Handshake => "TLS handshake",
            Self::EhloAfterTls => "EHLO after TLS",
            Self::Quit => "QUIT",
        })
    }
}

/// Why a probe stopped early.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeFailure {
    /// The step that failed.
    pub step: ProbeStep,
    /// Whether it failed by running out of time.
    pub timed_out: bool,
    /// Whether the DNS could not answer the address lookup (SERVFAIL, timeout): the host's
    /// addresses are unknown, not absent, so a checker cannot judge the host.
    pub dns_temporary: bool,
    /// What happened.
    pub message: String,
}

/// The TLS part of a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsOutcome {
    /// Negotiated version and cipher.
    pub params: Option<TlsParams>,
    /// The presented chain, leaf first.
    pub chain: Vec<CertInfo>,
    /// The validation problem, if the certificate would fail RFC 8461 §4.2.
    #[serde(serialize_with = "crate::tls::serialize_problem")]
    pub problem: Option<CertificateProblem>,
    /// The validator's own words for the problem.
    pub problem_detail: Option<String>,
}

/// Everything a probe learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The MX host name.
    pub host: String,
    /// The address connected to.
    pub addr: Option<SocketAddr>,
    /// The greeting line(s).
    pub banner: Option<String>,
    /// EHLO keywords before TLS.
    pub ehlo_keywords: Vec<String>,
    /// Whether EHLO offered STARTTLS (`None` if the probe did not get that far).
    pub starttls_offered: Option<bool>,
    /// The TLS outcome, if a handshake was attempted.
    pub tls: Option<TlsOutcome>,
    /// Where the probe stopped early, if it did.
    pub failure: Option<ProbeFailure>,
    /// Wall time of the probe in milliseconds.
    pub elapsed_ms: u64,
}

impl ProbeReport {
    fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            addr: None,
            banner: None,
            ehlo_keywords: Vec::new(),
            starttls_offered: None,
            tls: None,
            failure: None,
            elapsed_ms: 0,
        }
    }

    /// True when STARTTLS was offered and the certificate passed validation for the MX name.
    pub fn tls_ok(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.params.is_some() && t.problem.is_none())
    }
}

/// Probes MX hosts with one configuration.
#[derive(Clone)]
pub struct MxProbe {
    config: NetConfig,
    roots: Arc<RootCertStore>,
    dns: Arc<dyn DnsClient>,
    ip_limit: Option<Arc<IpLimiter>>,
}

/// Caps simultaneous SMTP connections per IP address, so a scan never hammers one provider.
#[derive(Debug)]
pub struct IpLimiter {
    per_ip: usize,
    slots: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

impl IpLimiter {
    /// At most `per_ip` connections to any one address at a time.
    pub fn new(per_ip: usize) -> Arc<Self> {
        Arc::new(Self { per_ip: per_ip.max(1), slots: Mutex::new(HashMap::new()) })
    }

    async fn acquire(&self, ip: IpAddr) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            // Drop idle entries now and then so the map stays as small as the set of busy IPs.
            if slots.len() > 4096 {
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots.entry(ip).or_insert_with(|| Arc::new(Semaphore::new(self.per_ip))).clone()
        };
        sem.acquire_owned().await.ok()
    }
}

/// Remembers probe results for the length of a scan, so an MX host shared by many domains (the
/// big providers) is probed once; concurrent askers for the same host wait for one probe.
/// Bounded: past `capacity` hosts, older entries are dropped (hot hosts are re-probed at most
/// once more).
#[derive(Debug)]
pub struct ProbeCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Arc<OnceCell<ProbeReport>>>>,
    probes: std::sync::atomic::AtomicU64,
}

impl ProbeCache {
    /// A cache of at most `capacity` hosts.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            probes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The report for `host`, probing with `probe` only if no one has yet.
    pub async fn probe(&self, probe: &MxProbe, host: &str) -> ProbeReport {
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if entries.len() >= self.capacity && !entries.contains_key(host) {
                // Evict finished entries (half the map), keeping in-flight ones.
                let mut n = entries.len() / 2;
                entries.retain(|_, cell| {
                    if n > 0 && cell.initialized() {
                        n -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
            entries.entry(host.to_owned()).or_default().clone()
        };
        cell.get_or_init(|| async {
            self.probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            probe.probe(host).await
        })
        .await
        .clone()
    }

    /// How many probes actually ran.
    pub fn probes_run(&self) -> u64 {
        self.probes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl fmt::Debug for MxProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MxProbe").field("smtp_port", &self.config.smtp_port).finish()
    }
}

struct StepError {
    timed_out: bool,
    dns_temporary: bool,
    message: String,
}

impl StepError {
    fn msg(message: impl Into<String>) -> Self {
        Self { timed_out: false, dns_temporary: false, message: message.into() }
    }
}

async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(StepError {
            timed_out: true,
            dns_temporary: false,
            message: format!("no answer within {} ms", limit.as_millis()),
        }),
    }
}

async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    parser: &mut ReplyParser,
) -> Result<Reply, StepError> {
    let mut buf = [0u8; 2048];
    loop {
        if let Some(reply) = parser.next_reply().map_err(|e| StepError::msg(e.to_string()))? {
            return Ok(reply);
        }
        let n = stream.read(&mut buf).await.map_err(|e| StepError::msg(e.to_string()))?;
        if n == 0 {
            return Err(StepError::msg("connection closed by the server"));
        }
        parser.push(&buf[..n]);
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    parser: &mut ReplyParser,
    line: &str,
) -> Result<Reply, StepError> {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| StepError::msg(e.to_string()))?;
    // Over TLS, `write_all` may leave the record in the TLS layer's buffer when the socket
    // was not ready: without a flush the command never leaves and both ends wait for the
    // reply timeout.
    stream.flush().await.map_err(|e| StepError::msg(e.to_string()))?;
    read_reply(stream, parser).await
}

impl MxProbe {
    /// A probe using `config` (SMTP port, timeouts, EHLO name), `roots` and `dns`.
    pub fn new(config: NetConfig, roots: Arc<RootCertStore>, dns: Arc<dyn DnsClient>) -> Self {
        Self { config, roots, dns, ip_limit: None }
    }

    /// The same probe, with at most the limiter's number of connections per IP address.
    pub fn with_ip_limit(mut self, limiter: Arc<IpLimiter>) -> Self {
        self.ip_limit = Some(limiter);
        self
    }

    /// Probes `host` (an MX exchange name) on the configured SMTP port.
    pub async fn probe(&self, host: &str) -> ProbeReport {
        let started = Instant::now();
        let mut report = ProbeReport::new(host);
        if let Err((step, e)) = self.run(host, &mut report).await {
            report.failure = Some(ProbeFailure {
                step,
                timed_out: e.timed_out,
                dns_temporary: e.dns_temporary,
                message: e.message,
            });
        }
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report
    }

    async fn run(
        &self,
        host: &str,
        report: &mut ProbeReport,
    ) -> Result<(), (ProbeStep, StepError)> {
        let t = self.config.timeouts;
        let addrs = self.dns.ip(host).await.map_err(|e| {
            let error =
                StepError { dns_temporary: e.is_temporary(), ..StepError::msg(e.to_string()) };
            (ProbeStep::Resolve, error)
        })?;

        // Connect to the addresses in turn until one answers; with a limiter, hold a slot for
        // the address for the whole session.
        let mut last = StepError::msg("no address");
        let mut connected = None;
        for ip in addrs {
            let addr = SocketAddr::new(ip, self.config.smtp_port);
            let permit = match &self.ip_limit {
                Some(limit) => limit.acquire(ip).await,
                None => None,
            };
            let attempt = within(t.connect, async {
                TcpStream::connect(addr).await.map_err(|e| {
                    StepError::msg(format!("{ip}: {}", crate::socket_words(&e, addr.port())))
                })
            })
            .await;
            match attempt {
                Ok(s) => {
                    report.addr = Some(addr);
                    connected = Some((s, permit));
                    break;
                }
                Err(e) => last = e,
            }
        }
        let (mut tcp, _permit) = connected.ok_or((ProbeStep::Connect, last))?;
        let mut parser = ReplyParser::default();

        let banner = within(t.smtp_reply, read_reply(&mut tcp, &mut parser))
            .await
            .map_err(|e| (ProbeStep::Banner, e))?;
        report.banner = Some(banner.text());
        if banner.code != 220 {
            return Err((
                ProbeStep::Banner,
                StepError::msg(format!("greeting was {}", banner.text())),
            ));
        }

        let ehlo_cmd = format!("EHLO {}", self.config.ehlo_name);
        let ehlo = within(t.smtp_reply, command(&mut tcp, &mut parser, &ehlo_cmd))
            .await
            .map_err(|e| (ProbeStep::Ehlo, e))?;
        if !ehlo.is_positive() {
            return Err((
                ProbeStep::Ehlo,
                StepError::msg(format!("EHLO refused: {}", ehlo.text())),
            ));
        }
        report.ehlo_keywords = ehlo.ehlo_keywords();
        report.starttls_offered = Some(ehlo.offers_starttls());
        if !ehlo.offers_starttls() {
            let _ = within(t.smtp_reply, command(&mut tcp, &mut parser, "QUIT")).await;
            return Ok(());
        }

        let go = within(t.smtp_reply, command(&mut tcp, &mut parser, "STARTTLS"))
            .await
            .map_err(|e| (ProbeStep::StartTls, e))?;
        if go.code != 220 {
            return Err((
                ProbeStep::StartTls,
                StepError::msg(format!("STARTTLS refused: {}", go.text())),
            ));
        }
        if parser.pending() > 0 {
            // RFC 3207 §4.2 / CVE-2011-0411: nothing may be buffered across the TLS boundary.
            return Err((
                ProbeStep::StartTls,
                StepError::msg("server sent data after its STARTTLS reply (plaintext injection)"),
            ));
        }

        let verifier = RecordingVerifier::new(self.roots.clone())
            .map_err(|e| (ProbeStep::Handshake, StepError::msg(e.to_string())))?;
        let connector = TlsConnector::from(Arc::new(verifier.client_config()));
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| (ProbeStep::Handshake, StepError::msg(format!("{host}: {e}"))))?;
        let handshake = within(t.tls_handshake, async {
            connector.connect(server_name, tcp).await.map_err(|e| {
                let detail = crate::tls::find_rustls_error(&e).map_or_else(
                    || e.to_string(),
                    |r| match r {
                        rustls::Error::PeerIncompatible(_) => format!(
                            "{r}: no TLS 1.2 or later in common (RFC 8461 §7.2 requires TLS 1.2+)"
                        ),
                        _ => r.to_string(),
                    },
                );
                StepError::msg(detail)
            })
        })
        .await;

        let recorded = verifier.recorded();
        let chain: Vec<CertInfo> =
            recorded.chain.iter().filter_map(|c| CertInfo::from_der(c)).collect();
        let (problem, problem_detail) = match &recorded.verdict {
            Some(Err(e)) => (
                certificate_problem(e).or(Some(CertificateProblem::Other(e.to_string()))),
                Some(describe_certificate_error(e)),
            ),
            _ => (None, None),
        };
        let mut outcome = TlsOutcome { params: None, chain, problem, problem_detail };

        let mut tls = match handshake {
            Ok(s) => s,
            Err(e) => {
                report.tls = Some(outcome);
                return Err((ProbeStep::Handshake, e));
            }
        };
        outcome.params = Some(TlsParams::from_connection(tls.get_ref().1));
        report.tls = Some(outcome);

        let mut parser = ReplyParser::default();
        let ehlo2 = within(t.smtp_reply, command(&mut tls, &mut parser, &ehlo_cmd))
            .await
            .map_err(|e| (ProbeStep::EhloAfterTls, e))?;
        if !ehlo2.is_positive() {
            return Err((
                ProbeStep::EhloAfterTls,
                StepError::msg(format!("EHLO refused after TLS: {}", ehlo2.text())),
            ));
        }
        within(t.smtp_reply, command(&mut tls, &mut parser, "QUIT"))
            .await
            .map_err(|e| (ProbeStep::Quit, e))?;
        let _ = tls.shutdown().await;
        Ok(())
    }
}
