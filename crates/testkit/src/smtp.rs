//! A small SMTP server (RFC 5321) with optional STARTTLS (RFC 3207), for MX probes.
//!
//! It speaks: the 220 banner; EHLO (multi-line 250 with PIPELINING, SIZE, 8BITMIME and, before
//! TLS and when enabled, STARTTLS); HELO; STARTTLS → `220 2.0.0 Ready to start TLS` then a TLS
//! 1.2/1.3 handshake with the configured certificate (any SNI is accepted); MAIL, RCPT, DATA
//! (accepted and kept in [`SmtpSession::messages`]; DATA ends at `<CRLF>.<CRLF>`), RSET, NOOP, QUIT → 221. Anything else
//! gets 500. Lines are capped at [`MAX_LINE`] bytes and each command must arrive within
//! [`IDLE_TIMEOUT`]. Bytes pipelined after STARTTLS (the "STARTTLS command injection",
//! CVE-2011-0411) are discarded and recorded.

use std::{
    collections::HashMap,
    fmt, io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls::{
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
    https::server_config,
    tasks::{AbortOnDrop, spawn_accept_loop},
};

/// Longest command line accepted, CRLF included (RFC 5321 §4.5.3.1.4 says 512; be lenient).
pub const MAX_LINE: usize = 4096;
/// Time allowed between commands (RFC 5321 §4.5.3.2.7 suggests 5 minutes; tests need less).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the TLS handshake after STARTTLS.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a silent server keeps a connection open.
pub const SILENT_HOLD: Duration = Duration::from_secs(600);
/// How long a closing connection lingers to drain the client's input.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Most input drained while closing.
pub const CLOSE_DRAIN_MAX: usize = 64 * 1024;
/// The SIZE advertised in EHLO.
pub const SIZE_LIMIT: u64 = 10_240_000;

/// How an [`SmtpServer`] behaves.
#[derive(Clone, Debug)]
pub struct SmtpBehaviour {
    /// Text after `220 ` in the greeting, e.g. "mx1.good.test ESMTP testkit". Its first word is
    /// used as the host name in replies.
    pub banner: String,
    /// Advertise and accept STARTTLS.
    pub starttls: bool,
    /// The certificate for STARTTLS. With `starttls` but no certificate, STARTTLS is advertised
    /// and then refused with `454 4.7.0 TLS not available`.
    pub cert: Option<IssuedCert>,
    /// Accept TCP connections and never send anything.
    pub silent: bool,
}

/// What one client did during one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpSession {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The argument of every EHLO/HELO, in order.
    pub ehlo: Vec<String>,
    /// Every command line received (DATA content excluded), in order.
    pub commands: Vec<String>,
    /// True once a STARTTLS handshake completed.
    pub starttls: bool,
    /// The SNI name the client sent in its ClientHello, lower case.
    pub sni: Option<String>,
    /// The negotiated TLS version, e.g. "TLSv1_3".
    pub tls_version: Option<String>,
    /// True if the client pipelined bytes after STARTTLS (they were discarded).
    pub starttls_injection: bool,
    /// True if the client sent QUIT.
    pub quit: bool,
    /// Every message received by DATA, dot-unstuffed, lines joined by CRLF.
    pub messages: Vec<String>,
}

/// A running SMTP server. Stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    sessions: Arc<Mutex<Vec<SmtpSession>>>,
    _task: AbortOnDrop,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct AnyName(Arc<CertifiedKey>);

impl ResolvesServerCert for AnyName {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Picks the certificate by SNI from a table shared by many servers, else a default.
struct BySni {
    certs: Arc<HashMap<String, Arc<CertifiedKey>>>,
    default: Option<Arc<CertifiedKey>>,
}

impl fmt::Debug for BySni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BySni").field("names", &self.certs.len()).finish_non_exhaustive()
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|n| {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            self.certs.get(&n).cloned()
        });
        by_name.or_else(|| self.default.clone())
    }
}

struct Shared {
    behaviour: SmtpBehaviour,
    host: String,
    acceptor: Option<TlsAcceptor>,
    sessions: Arc<Mutex<Vec<SmtpSession>>>,
    record: bool,
}

impl SmtpServer {
    /// Serves SMTP on `listener` as `behaviour` says.
    pub async fn start(listener: TcpListener, behaviour: SmtpBehaviour) -> io::Result<Self> {
        let acceptor = match &behaviour.cert {
            Some(cert) => {
                Some(TlsAcceptor::from(server_config(Arc::new(AnyName(cert.certified_key())))?))
            }
            None => None,
        };
        Self::start_inner(listener, behaviour, acceptor, true)
    }

    /// One SMTP server answering for many MX host names on one address (virtual hosting):
    /// the STARTTLS certificate is looked up by the client's SNI name in `certs` (lower
    /// case, no trailing dot; one table may be shared by many servers), falling back to
    /// `behaviour.cert` for an unknown or absent name (no certificate at all: the
    /// handshake fails). With `record` false, [`SmtpServer::sessions`] stays empty.
    pub async fn start_virtual(
        listener: TcpListener,
        behaviour: SmtpBehaviour,
        certs: Arc<HashMap<String, Arc<CertifiedKey>>>,
        record: bool,
    ) -> io::Result<Self> {
        let default = behaviour.cert.as_ref().map(IssuedCert::certified_key);
        let acceptor = if certs.is_empty() && default.is_none() {
            None
        } else {
            Some(TlsAcceptor::from(server_config(Arc::new(BySni { certs, default }))?))
        };
        Self::start_inner(listener, behaviour, acceptor, record)
    }

    fn start_inner(
        listener: TcpListener,
        behaviour: SmtpBehaviour,
        acceptor: Option<TlsAcceptor>,
        record: bool,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let host = behaviour.banner.split_whitespace().next().unwrap_or("localhost").to_owned();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let shared =
            Arc::new(Shared { behaviour, host, acceptor, sessions: Arc::clone(&sessions), record });
        let task = spawn_accept_loop(listener, move |stream, peer| {
            let shared = Arc::clone(&shared);
            async move {
                if let Err(error) = serve(&shared, stream, peer).await {
                    tracing::debug!(%peer, %error, "smtp connection ended");
                }
            }
        });
        Ok(Self { addr, sessions, _task: task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What each client did so far, one entry per connection in accept order.
    pub fn sessions(&self) -> Vec<SmtpSession> {
        self.sessions.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A line-oriented connection with its own read buffer (so leftovers can be inspected).
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

enum Line {
    Text(String),
    TooLong,
    Eof,
    Idle,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read_line(&mut self) -> io::Result<Line> {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                if pos + 1 > MAX_LINE {
                    return Ok(Line::TooLong);
                }
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(Line::Text(text.trim_end_matches(['\r', '\n']).to_owned()));
            }
            if self.buf.len() >= MAX_LINE {
                return Ok(Line::TooLong);
            }
            let n = match timeout(IDLE_TIMEOUT, self.stream.read(&mut chunk)).await {
                Err(_) => return Ok(Line::Idle),
                Ok(r) => r?,
            };
            if n == 0 {
                return Ok(Line::Eof);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Ends the session politely: stop writing, then swallow what the client still sends
    /// (briefly), so that unread input does not turn the close into a reset that would
    /// destroy the last reply.
    async fn close(&mut self) {
        let _ = timeout(CLOSE_LINGER, async {
            self.stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut total = 0usize;
            while total < CLOSE_DRAIN_MAX {
                let n = self.stream.read(&mut sink).await?;
                if n == 0 {
                    break;
                }
                total += n;
            }
            Ok::<_, io::Error>(())
        })
        .await;
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut out = text.to_owned();
        out.push_str("\r\n");
        timeout(IDLE_TIMEOUT, async {
            self.stream.write_all(out.as_bytes()).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }
}

enum End {
    Closed,
    StartTls,
}

struct Recorder<'a> {
    shared: &'a Shared,
    index: usize,
    session: SmtpSession,
}

impl Recorder<'_> {
    fn save(&self) {
        if let Ok(mut all) = self.shared.sessions.lock()
            && let Some(slot) = all.get_mut(self.index)
        {
            *slot = self.session.clone();
        }
    }
}

async fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    // Without recording, the index points nowhere and `Recorder::save` does nothing.
    let index = if !shared.record {
        usize::MAX
    } else {
        match shared.sessions.lock() {
            Ok(mut all) => {
                all.push(SmtpSession { peer: Some(peer), ..SmtpSession::default() });
                all.len() - 1
            }
            Err(_) => return Ok(()),
        }
    };
    let mut rec = Recorder {
        shared,
        index,
        session: SmtpSession { peer: Some(peer), ..SmtpSession::default() },
    };
    let mut conn = Conn { stream, buf: Vec::new() };
    if shared.behaviour.silent {
        let mut sink = [0u8; 1024];
        let _ = timeout(SILENT_HOLD, async {
            while conn.stream.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
        return Ok(());
    }
    conn.reply(&format!("220 {}", shared.behaviour.banner)).await?;
    match session(&mut conn, &mut rec, false).await? {
        End::Closed => Ok(()),
        End::StartTls => {
            let Some(acceptor) = shared.acceptor.clone() else {
                return Ok(());
            };
            if !conn.buf.is_empty() {
                rec.session.starttls_injection = true;
                rec.save();
            }
            let tls = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn.stream)).await.map_err(
                |_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"),
            )??;
            {
                let state = tls.get_ref().1;
                rec.session.starttls = true;
                rec.session.sni = state.server_name().map(|s| s.to_ascii_lowercase());
                rec.session.tls_version = state.protocol_version().map(|v| format!("{v:?}"));
                rec.save();
            }
            let mut conn = Conn { stream: tls, buf: Vec::new() };
            session(&mut conn, &mut rec, true).await?;
            Ok(())
        }
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    rec: &mut Recorder<'_>,
    in_tls: bool,
) -> io::Result<End> {
    let shared = rec.shared;
    let host = shared.host.as_str();
    loop {
        let line = match conn.read_line().await? {
            Line::Text(t) => t,
            Line::Eof => return Ok(End::Closed),
            Line::TooLong => {
                conn.reply("500 5.5.2 Line too long").await?;
                conn.close().await;
                return Ok(End::Closed);
            }
            Line::Idle => {
                conn.reply("421 4.4.2 Idle timeout, closing connection").await?;
                conn.close().await;
                return Ok(End::Closed);
            }
        };
        rec.session.commands.push(line.clone());
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" | "HELO" => {
                rec.session.ehlo.push(arg.clone());
                rec.save();
                if verb == "HELO" {
                    conn.reply(&format!("250 {host}")).await?;
                    continue;
                }
                let mut caps = vec![
                    format!("{host} greets {arg}"),
                    "PIPELINING".to_owned(),
                    format!("SIZE {SIZE_LIMIT}"),
                    "8BITMIME".to_owned(),
                ];
                if shared.behaviour.starttls && !in_tls {
                    caps.push("STARTTLS".to_owned());
                }
                caps.push("ENHANCEDSTATUSCODES".to_owned());
                let last = caps.len() - 1;
                let text = caps
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("250{}{c}", if i == last { ' ' } else { '-' }))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                conn.reply(&text).await?;
            }
            "STARTTLS" => {
                rec.save();
                if in_tls {
                    conn.reply("503 5.5.1 TLS already active").await?;
                } else if !shared.behaviour.starttls {
                    conn.reply("502 5.5.1 STARTTLS not supported").await?;
                } else if !arg.is_empty() {
                    conn.reply("501 5.5.4 Syntax error (no parameters allowed)").await?;
                } else if shared.acceptor.is_none() {
                    conn.reply("454 4.7.0 TLS not available").await?;
                } else {
                    conn.reply("220 2.0.0 Ready to start TLS").await?;
                    return Ok(End::StartTls);
                }
            }
            "MAIL" => {
                rec.save();
                conn.reply("250 2.1.0 Ok").await?;
            }
            "RCPT" => {
                rec.save();
                conn.reply("250 2.1.5 Ok").await?;
            }
            "DATA" => {
                rec.save();
                conn.reply("354 End data with <CR><LF>.<CR><LF>").await?;
                let mut message = String::new();
                loop {
                    match conn.read_line().await? {
                        Line::Text(t) if t == "." => break,
                        Line::Text(t) => {
                            // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                            message.push_str(t.strip_prefix('.').unwrap_or(&t));
                            message.push_str("\r\n");
                        }
                        Line::Eof => return Ok(End::Closed),
                        Line::TooLong => {
                            conn.reply("500 5.5.2 Line too long").await?;
                            conn.close().await;
                            return Ok(End::Closed);
                        }
                        Line::Idle => {
                            conn.reply("421 4.4.2 Idle timeout, closing connection").await?;
                            conn.close().await;
                            return Ok(End::Closed);
                        }
                    }
                }
                rec.session.messages.push(message);
                rec.save();
                conn.reply("250 2.0.0 Ok: queued (kept for the test)").await?;
            }
            "RSET" | "NOOP" => {
                rec.save();
                conn.reply("250 2.0.0 Ok").await?;
            }
            "QUIT" => {
                rec.session.quit = true;
                rec.save();
                conn.reply(&format!("221 2.0.0 {host} Bye")).await?;
                conn.close().await;
                return Ok(End::Closed);
            }
            _ => {
                rec.save();
                conn.reply("500 5.5.2 Command unrecognized").await?;
            }
        }
    }
}
