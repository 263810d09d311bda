//! The strict MTA-STS policy fetch (RFC 8461 §3.3).
//!
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`, with SNI `mta-sts.<domain>` and a
//! certificate that must be valid for that name and chain to a trusted root; only status 200
//! counts ("Senders … MUST NOT follow redirects"), the media type must be `text/plain`, and the
//! body is cut off past [`POLICY_MAX_BYTES`] while it streams, so a peer sending gigabytes costs
//! 64 KiB of memory. A connect timeout and a total deadline bound slow peers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mtasts_proto::policy::POLICY_MAX_BYTES;
use mtasts_proto::result_type::CertificateProblem;
use rustls::RootCertStore;
use serde::Serialize;

use crate::config::{NetConfig, Timeouts};
use crate::dns::{DnsClient, DnsError};
use crate::tls::{
    CertInfo, certificate_problem, describe_certificate_error, find_rustls_error,
    strict_client_config,
};
use mtasts_proto::DomainName;

/// A policy fetched with status 200 and media type `text/plain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchedPolicy {
    /// The URL fetched.
    pub url: String,
    /// The body, at most [`POLICY_MAX_BYTES`].
    pub body: Vec<u8>,
    /// The Content-Type header as sent.
    pub content_type: String,
    /// The policy host's certificate.
    pub certificate: Option<CertInfo>,
    /// The address connected to.
    pub remote_addr: Option<SocketAddr>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Why no valid policy response was obtained. Each variant is one RFC 8461 §3.3 rule or one
/// network step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The policy host name does not resolve.
    #[error("cannot resolve the policy host: {0}")]
    Resolve(DnsError),
    /// TCP connect failed.
    #[error("cannot connect to the policy host: {reason}")]
    Connect {
        /// The OS's words.
        reason: String,
    },
    /// The deadline passed (`stage` says where).
    #[error("the policy host did not finish within {limit_ms} ms ({stage})")]
    Timeout {
        /// connect, response or body.
        stage: &'static str,
        /// The limit that passed.
        limit_ms: u64,
    },
    /// RFC 8461 §3.3: the certificate is not valid for `mta-sts.<domain>` or does not chain to
    /// a trusted root.
    #[error("RFC 8461 §3.3: the policy host's certificate is not valid: {detail}")]
    Certificate {
        /// What is wrong.
        problem: CertificateProblem,
        /// The validator's words.
        detail: String,
    },
    /// The TLS handshake failed for a reason other than the certificate.
    #[error("TLS handshake with the policy host failed: {detail}")]
    Tls {
        /// What happened.
        detail: String,
    },
    /// RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed".
    #[error(
        "RFC 8461 §3.3: the policy URL redirects (HTTP {status} to {}); redirects must not be followed",
        location.as_deref().unwrap_or("no Location header")
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The Location header, if any.
        location: Option<String>,
    },
    /// RFC 8461 §3.3: only HTTP 200 is a valid policy response.
    #[error("RFC 8461 §3.3: the policy URL answered HTTP {status}; only 200 is valid")]
    Status {
        /// The status.
        status: u16,
    },
    /// RFC 8461 §3.2: the media type must be `text/plain`. The body is kept so a checker can
    /// still validate it.
    #[error(
        "RFC 8461 §3.2: the policy is served as {}; the media type must be text/plain",
        found.as_deref().unwrap_or("(no Content-Type)")
    )]
    ContentType {
        /// The Content-Type header, if any.
        found: Option<String>,
        /// The body, capped like a valid one.
        body: Vec<u8>,
    },
    /// RFC 8461 §3.3: the body exceeds the size limit.
    #[error("RFC 8461 §3.3: the policy is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// The Content-Length, if the server announced one.
        announced: Option<u64>,
    },
    /// The connection broke while reading.
    #[error("reading the policy failed: {reason}")]
    Body {
        /// What happened.
        reason: String,
    },
    /// The client could not be built (bad trust roots, …).
    #[error("cannot set up the HTTPS client: {reason}")]
    Setup {
        /// What happened.
        reason: String,
    },
}

impl FetchError {
    /// True when the failure is about the certificate (TLS-RPT `sts-webpki-invalid`).
    pub fn is_certificate(&self) -> bool {
        matches!(self, Self::Certificate { .. })
    }

    /// What a sender reports for this failure (RFC 8460 §4.3.2.2): the policy host's
    /// certificate is `sts-webpki-invalid`, a body that is not a policy (media type, size) is
    /// `sts-policy-invalid`, anything else (DNS, connection, status, timeout) is
    /// `sts-policy-fetch-error`.
    pub fn sts_failure(&self) -> mtasts_proto::StsFailure {
        use mtasts_proto::StsFailure;
        match self {
            Self::Certificate { .. } => StsFailure::WebPkiInvalid,
            Self::ContentType { .. } | Self::TooLarge { .. } => StsFailure::PolicyInvalid,
            _ => StsFailure::PolicyFetch,
        }
    }
}

/// Resolves names through our DNS client and gives them the configured HTTPS port.
struct Resolver {
    dns: Arc<dyn DnsClient>,
    port: u16,
}

/// A reqwest resolver that looks names up through `dns` (the configured DNS server, the test
/// world's in tests) and connects to the port the URL names (443 when it names none).
pub fn reqwest_resolver(dns: Arc<dyn DnsClient>) -> Arc<dyn reqwest::dns::Resolve> {
    // Port 0: hyper's connector puts the URL's port (or the scheme's) in its place.
    Arc::new(Resolver { dns, port: 0 })
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = self.dns.clone();
        let port = self.port;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = dns
                .ip(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: reqwest::dns::Addrs = Box::new(
                ips.into_iter()
                    .map(move |ip| SocketAddr::new(ip, port))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// A reusable, strict policy fetcher (connection pool shared between fetches).
#[derive(Clone)]
pub struct PolicyFetcher {
    client: reqwest::Client,
    timeouts: Timeouts,
    /// The HTTPS port (443 but in tests), for messages.
    port: u16,
}

impl fmt::Debug for PolicyFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFetcher").field("timeouts", &self.timeouts).finish()
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl PolicyFetcher {
    /// A fetcher for `config`, validating against `roots` and resolving through `dns`.
    pub fn new(
        config: &NetConfig,
        roots: Arc<RootCertStore>,
        dns: Arc<dyn DnsClient>,
    ) -> Result<Self, FetchError> {
        let mut tls = strict_client_config(roots);
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Resolver { dns, port: config.https_port }))
            .connect_timeout(config.timeouts.connect)
            .no_proxy()
            // Policy hosts are nearly all distinct and each is fetched once: idle connections
            // would only pile up (thousands during a scan), so none are kept.
            .pool_max_idle_per_host(0)
            .tls_info(true)
            .user_agent(concat!("mtasts/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Setup { reason: e.to_string() })?;
        Ok(Self { client, timeouts: config.timeouts, port: config.https_port })
    }

    /// Fetches the policy of `domain`.
    pub async fn fetch(&self, domain: &DomainName) -> Result<FetchedPolicy, FetchError> {
        let limit = self.timeouts.fetch_total;
        let started = Instant::now();
        match tokio::time::timeout(limit, self.fetch_inner(domain, started)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { stage: "response or body", limit_ms: ms(limit) }),
        }
    }

    async fn fetch_inner(
        &self,
        domain: &DomainName,
        started: Instant,
    ) -> Result<FetchedPolicy, FetchError> {
        // RFC 8461 §3.3: "https://mta-sts.<Policy Domain>/.well-known/mta-sts.txt".
        let url = domain.policy_url();
        let mut resp = self
            .client
            .get(&url)
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .send()
            .await
            .map_err(|e| self.map_send_error(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(FetchError::Redirect { status, location });
        }
        if status != 200 {
            return Err(FetchError::Status { status });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let announced = resp.content_length();
        if announced.is_some_and(|n| n > POLICY_MAX_BYTES as u64) {
            return Err(FetchError::TooLarge { limit: POLICY_MAX_BYTES, announced });
        }
        let certificate = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(CertInfo::from_der);
        let remote_addr = resp.remote_addr();

        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > POLICY_MAX_BYTES {
                        return Err(FetchError::TooLarge { limit: POLICY_MAX_BYTES, announced });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return Err(FetchError::Timeout {
                        stage: "body",
                        limit_ms: ms(self.timeouts.fetch_total),
                    });
                }
                Err(e) => return Err(FetchError::Body { reason: error_text(&e) }),
            }
        }

        if !mtasts_proto::is_policy_media_type(content_type.as_deref()) {
            return Err(FetchError::ContentType { found: content_type, body });
        }
        Ok(FetchedPolicy {
            url,
            body,
            content_type: content_type.unwrap_or_default(),
            certificate,
            remote_addr,
            elapsed_ms: ms(started.elapsed()),
        })
    }

    fn map_send_error(&self, e: &reqwest::Error) -> FetchError {
        if let Some(dns) = find_dns_error(e) {
            return FetchError::Resolve(dns.clone());
        }
        if let Some(tls) = find_rustls_error(e) {
            return match certificate_problem(tls) {
                Some(problem) => {
                    FetchError::Certificate { problem, detail: describe_certificate_error(tls) }
                }
                None => FetchError::Tls { detail: tls.to_string() },
            };
        }
        if e.is_timeout() {
            let stage = if e.is_connect() { "connect" } else { "response" };
            let limit =
                if e.is_connect() { self.timeouts.connect } else { self.timeouts.fetch_total };
            return FetchError::Timeout { stage, limit_ms: ms(limit) };
        }
        if e.is_connect() {
            return FetchError::Connect { reason: connect_words(e, self.port) };
        }
        FetchError::Body { reason: error_text(e) }
    }
}

fn find_dns_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a DnsError> {
    crate::tls::error_chain(err).find_map(|e| e.downcast_ref::<DnsError>())
}

/// Why the connection failed: the socket error in words ([`crate::socket_words`]), not
/// reqwest's and hyper's wrappers ("error sending request for url (…): client error
/// (Connect): tcp connect error: …").
fn connect_words(err: &(dyn std::error::Error + 'static), port: u16) -> String {
    match crate::tls::error_chain(err).find_map(|e| e.downcast_ref::<std::io::Error>()) {
        Some(io) => crate::socket_words(io, port),
        None => error_text(err),
    }
}

/// The innermost useful text of an error chain (reqwest's top-level text is generic).
fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
