//! An HTTPS server for MTA-STS policy hosts (RFC 8461 §3.3).
//!
//! One listener serves many hosts: the TLS SNI name picks the certificate and the
//! [`HttpBehaviour`]; a ClientHello with an unknown name or no SNI fails the handshake. The
//! HTTP/1.1 side is a small hand-written responder: it reads one request head (at most
//! [`MAX_REQUEST_HEAD`] bytes within [`REQUEST_TIMEOUT`]), records it, answers, and closes.
//! The behaviour applies to [`POLICY_PATH`]; other paths get 404 (except [`HttpBehaviour::Hang`],
//! which never answers anything).

use std::{
    collections::HashMap,
    fmt, io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use tokio_rustls::TlsAcceptor;

use crate::{
    ca::IssuedCert,
    tasks::{AbortOnDrop, spawn_accept_loop},
};

/// RFC 8461 §3.3: the policy is fetched from `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Largest request head (request line and headers) the server reads.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Time allowed for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to receive the request head after the handshake.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection lingers to drain the client's input.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Time allowed for one write to make progress before the server gives up on the client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a host answers a request for [`POLICY_PATH`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpBehaviour {
    /// A plain response with `Content-Length`.
    Respond {
        /// Status code, e.g. 200.
        status: u16,
        /// `Content-Type` header, if any.
        content_type: Option<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// A redirect (RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed").
    Redirect {
        /// Status code, e.g. 301.
        status: u16,
        /// `Location` header.
        location: String,
    },
    /// `Transfer-Encoding: chunked`, no `Content-Length`.
    Chunked {
        /// `Content-Type` header.
        content_type: String,
        /// The body, sent in several chunks.
        body: Vec<u8>,
    },
    /// Streams bytes for ever (no `Content-Length`) until the client goes away.
    Endless {
        /// `Content-Type` header.
        content_type: String,
    },
    /// Sends the head at once (with `Content-Length`), then trickles the body.
    Slow {
        /// `Content-Type` header.
        content_type: String,
        /// The body.
        body: Vec<u8>,
        /// Trickle rate; 0 is treated as 1.
        bytes_per_second: u32,
    },
    /// The TLS handshake completes, then the server never answers.
    Hang,
}

impl HttpBehaviour {
    /// `200 text/plain` with `body`.
    pub fn ok_text(body: impl Into<Vec<u8>>) -> Self {
        Self::Respond {
            status: 200,
            content_type: Some("text/plain".to_owned()),
            body: body.into(),
        }
    }
}

/// One virtual host of an [`HttpsServer`].
#[derive(Clone, Debug)]
pub struct HttpsHost {
    /// The certificate presented for this SNI name.
    pub cert: IssuedCert,
    /// What the host does.
    pub behaviour: HttpBehaviour,
}

/// One request the server received (after a successful handshake).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The SNI name the client sent (lower case).
    pub sni: String,
    /// Request method, e.g. "GET".
    pub method: String,
    /// Request target as sent, e.g. "/.well-known/mta-sts.txt".
    pub path: String,
    /// HTTP version token, e.g. "HTTP/1.1".
    pub version: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The client's address.
    pub peer: SocketAddr,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    hellos: Vec<Option<String>>,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// One virtual host of [`HttpsServer::start_virtual`]: a certificate shared with other hosts
/// (e.g. one certificate with many subject alternative names) and a behaviour.
#[derive(Clone)]
pub struct VirtualHost {
    /// The certificate and key presented for this SNI name.
    pub key: Arc<CertifiedKey>,
    /// What the host does.
    pub behaviour: Arc<HttpBehaviour>,
}

impl fmt::Debug for VirtualHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualHost").field("behaviour", &self.behaviour).finish_non_exhaustive()
    }
}

type Hosts = Arc<HashMap<String, VirtualHost>>;

/// Behaviours changed while the server runs ([`HttpsServer::set_behaviour`]), by SNI name.
type Changes = Arc<Mutex<HashMap<String, Arc<HttpBehaviour>>>>;

struct SniResolver {
    hosts: Hosts,
    log: Arc<Mutex<Log>>,
    record: bool,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver").field("names", &self.hosts.len()).finish()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(normalize);
        if self.record
            && let Ok(mut log) = self.log.lock()
        {
            log.hellos.push(sni.clone());
        }
        self.hosts.get(&sni?).map(|h| Arc::clone(&h.key))
    }
}

/// A running HTTPS server. Stops when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    changes: Changes,
    _task: AbortOnDrop,
}

impl fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// A rustls server config with ring, TLS 1.2 and 1.3, no client auth.
pub(crate) fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> io::Result<Arc<ServerConfig>> {
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    Ok(Arc::new(config))
}

impl HttpsServer {
    /// Serves `hosts` (keyed by SNI name; matched case-insensitively) on `listener`.
    pub async fn start(
        listener: TcpListener,
        hosts: HashMap<String, HttpsHost>,
    ) -> io::Result<Self> {
        let hosts = hosts
            .into_iter()
            .map(|(name, host)| {
                let v = VirtualHost {
                    key: host.cert.certified_key(),
                    behaviour: Arc::new(host.behaviour),
                };
                (name, v)
            })
            .collect();
        Self::start_virtual(listener, hosts, true).await
    }

    /// Like [`HttpsServer::start`], for many hosts sharing certificates. With `record` false
    /// nothing is logged ([`HttpsServer::requests`] and [`HttpsServer::client_hellos`] stay
    /// empty), so memory does not grow with the number of requests.
    pub async fn start_virtual(
        listener: TcpListener,
        hosts: HashMap<String, VirtualHost>,
        record: bool,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let hosts: Hosts =
            Arc::new(hosts.into_iter().map(|(name, host)| (normalize(&name), host)).collect());
        let resolver = SniResolver { hosts: Arc::clone(&hosts), log: Arc::clone(&log), record };
        let config = server_config(Arc::new(resolver))?;
        let acceptor = TlsAcceptor::from(config);
        let conn_log = Arc::clone(&log);
        let changes: Changes = Arc::default();
        let conn_changes = Arc::clone(&changes);
        let task = spawn_accept_loop(listener, move |stream, peer| {
            let acceptor = acceptor.clone();
            let hosts = Arc::clone(&hosts);
            let log = Arc::clone(&conn_log);
            let changes = Arc::clone(&conn_changes);
            async move {
                let log = if record { Some(&*log) } else { None };
                if let Err(error) = serve(acceptor, stream, peer, &hosts, &changes, log).await {
                    tracing::debug!(%peer, %error, "https connection ended");
                }
            }
        });
        Ok(Self { addr, log, changes, _task: task })
    }

    /// From now on, host `sni` (a name the server has a certificate for) behaves as
    /// `behaviour` (a test whose world changes: a new policy, a policy host that starts failing).
    pub fn set_behaviour(&self, sni: &str, behaviour: HttpBehaviour) {
        if let Ok(mut c) = self.changes.lock() {
            c.insert(normalize(sni), Arc::new(behaviour));
        }
    }

    /// Host `sni` behaves as it was built again.
    pub fn clear_behaviour(&self, sni: &str) {
        if let Ok(mut c) = self.changes.lock() {
            c.remove(&normalize(sni));
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().map(|l| l.requests.clone()).unwrap_or_default()
    }

    /// The SNI name (lower case; `None` if absent) of every ClientHello received so far,
    /// including those whose handshake then failed.
    pub fn client_hellos(&self) -> Vec<Option<String>> {
        self.log.lock().map(|l| l.hellos.clone()).unwrap_or_default()
    }
}

async fn serve(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    hosts: &HashMap<String, VirtualHost>,
    changes: &Mutex<HashMap<String, Arc<HttpBehaviour>>>,
    log: Option<&Mutex<Log>>,
) -> io::Result<()> {
    let mut tls = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let sni = tls.get_ref().1.server_name().map(normalize).unwrap_or_default();
    let Some(built) = hosts.get(&sni).map(|h| Arc::clone(&h.behaviour)) else {
        return Ok(());
    };
    let changed = changes.lock().ok().and_then(|c| c.get(&sni).cloned());
    let behaviour = changed.unwrap_or(built);
    if *behaviour == HttpBehaviour::Hang {
        return drain_until_closed(&mut tls).await;
    }
    let head = match timeout(REQUEST_TIMEOUT, read_head(&mut tls)).await {
        Err(_) => return Ok(()),
        Ok(Err(HeadError::TooLarge)) => {
            let msg = b"request head too large\n";
            write_simple(&mut tls, 431, Some("text/plain"), msg, false).await?;
            return finish(tls).await;
        }
        Ok(Err(HeadError::Malformed)) => {
            write_simple(&mut tls, 400, Some("text/plain"), b"bad request\n", false).await?;
            return finish(tls).await;
        }
        Ok(Err(HeadError::Io(e))) => return Err(e),
        Ok(Ok(head)) => head,
    };
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let on_policy_path = head.path.split('?').next() == Some(POLICY_PATH);
    if let Some(log) = log
        && let Ok(mut log) = log.lock()
    {
        log.requests.push(RecordedRequest {
            sni,
            method: head.method,
            path: head.path,
            version: head.version,
            headers: head.headers,
            peer,
        });
    }
    if !on_policy_path {
        write_simple(&mut tls, 404, Some("text/plain"), b"not found\n", head_only).await?;
        return finish(tls).await;
    }
    respond(&mut tls, &behaviour, head_only).await?;
    finish(tls).await
}

/// Sends close_notify, then briefly swallows what the client still sends so that unread
/// input does not turn the close into a reset that would destroy the response.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> io::Result<()> {
    let _ = timeout(CLOSE_LINGER, async {
        s.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 64 * 1024 {
            let n = s.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok::<_, io::Error>(())
    })
    .await;
    Ok(())
}

async fn drain_until_closed<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        if s.read(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> io::Result<()> {
    timeout(WRITE_TIMEOUT, async {
        s.write_all(data).await?;
        s.flush().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn head_text(status: u16, fields: &[(&str, String)]) -> String {
    let mut s = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in fields {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(value);
        s.push_str("\r\n");
    }
    s.push_str("Server: mtasts-testkit\r\nConnection: close\r\n\r\n");
    s
}

async fn write_simple<S: AsyncWrite + Unpin>(
    s: &mut S,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut fields = vec![("Content-Length", body.len().to_string())];
    if let Some(ct) = content_type {
        fields.push(("Content-Type", ct.to_owned()));
    }
    let mut out = head_text(status, &fields).into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    write_all(s, &out).await
}

async fn respond<S: AsyncWrite + Unpin>(
    s: &mut S,
    behaviour: &HttpBehaviour,
    head_only: bool,
) -> io::Result<()> {
    match behaviour {
        HttpBehaviour::Respond { status, content_type, body } => {
            write_simple(s, *status, content_type.as_deref(), body, head_only).await
        }
        HttpBehaviour::Redirect { status, location } => {
            let fields = [("Location", location.clone()), ("Content-Length", "0".to_owned())];
            write_all(s, head_text(*status, &fields).as_bytes()).await
        }
        HttpBehaviour::Chunked { content_type, body } => {
            let fields = [
                ("Content-Type", content_type.clone()),
                ("Transfer-Encoding", "chunked".to_owned()),
            ];
            write_all(s, head_text(200, &fields).as_bytes()).await?;
            if head_only {
                return Ok(());
            }
            // Several chunks, so clients must really reassemble.
            let size = body.len().div_ceil(3).max(1);
            for chunk in body.chunks(size) {
                let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
                write_all(s, &out).await?;
            }
            write_all(s, b"0\r\n\r\n").await
        }
        HttpBehaviour::Endless { content_type } => {
            let fields = [("Content-Type", content_type.clone())];
            write_all(s, head_text(200, &fields).as_bytes()).await?;
            if head_only {
                return Ok(());
            }
            let line = b"mx: endless.example.test\n";
            let block: Vec<u8> = line.iter().copied().cycle().take(16 * 1024).collect();
            let mut block_start = b"version: STSv1\nmode: enforce\n".to_vec();
            block_start.extend_from_slice(&block);
            write_all(s, &block_start).await?;
            loop {
                write_all(s, &block).await?;
            }
        }
        HttpBehaviour::Slow { content_type, body, bytes_per_second } => {
            let fields = [
                ("Content-Type", content_type.clone()),
                ("Content-Length", body.len().to_string()),
            ];
            write_all(s, head_text(200, &fields).as_bytes()).await?;
            if head_only {
                return Ok(());
            }
            let bps = (*bytes_per_second).max(1) as usize;
            let (step, every) = if bps >= 10 {
                (bps / 10, Duration::from_millis(100))
            } else {
                (1, Duration::from_millis(1000 / bps as u64))
            };
            for chunk in body.chunks(step) {
                write_all(s, chunk).await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
        HttpBehaviour::Hang => std::future::pending().await,
    }
}

struct Head {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

enum HeadError {
    TooLarge,
    Malformed,
    Io(io::Error),
}

async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(HeadError::TooLarge);
        }
        let n = s.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > MAX_REQUEST_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        version: version.to_owned(),
        headers,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
