//! An IMAP mailbox as a report source: log in, take every message of the mailbox, ingest it,
//! move what was stored (or already stored) to the processed folder and what was rejected to
//! the rejected folder; a temporary failure (the database) leaves the message for the next
//! poll. IMAP4rev1 (RFC 3501) with MOVE (RFC 6851) when the server has it, else COPY, STORE
//! \Deleted and EXPUNGE.
//!
//! `imaps://USER:PASSWORD@HOST[:993]/MAILBOX` (TLS, verified against the given roots) or
//! `imap://…` (plain, port 143: only for a server on loopback or a trusted network).

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ingest::Ingestor;

/// Where and how to poll.
#[derive(Clone)]
pub struct ImapSource {
    /// Server name (also the TLS name).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS configuration; `None` for plain IMAP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Login.
    pub user: String,
    /// Password.
    pub password: String,
    /// The mailbox with the report mail.
    pub mailbox: String,
    /// Where stored (and already stored) messages go.
    pub processed: String,
    /// Where rejected messages go.
    pub rejected: String,
    /// Time allowed for each network step.
    pub timeout: Duration,
    /// Connect to this address instead of resolving `host` (TLS still checks `host`): for a
    /// server reached through a tunnel or split DNS, and for tests.
    pub connect_to: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSource")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Messages whose reports were stored.
    pub stored: usize,
    /// Messages whose reports were already stored.
    pub duplicates: usize,
    /// Messages refused (moved to the rejected folder).
    pub rejected: usize,
    /// Messages left for the next poll (temporary failure).
    pub deferred: usize,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The URL is not usable.
    #[error("IMAP URL: {0}")]
    Url(String),
    /// No connection.
    #[error("cannot connect to the IMAP server {addr}: {reason}")]
    Connect {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A step did not finish in time.
    #[error("the IMAP server {addr} did not answer within {secs} s ({step})")]
    Timeout {
        /// host:port.
        addr: String,
        /// What was waited for.
        step: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The server refused the login.
    #[error("the IMAP server refused the login of {user}: {reason}")]
    Login {
        /// The user.
        user: String,
        /// What it said.
        reason: String,
    },
    /// A command failed.
    #[error("IMAP {step} failed: {reason}")]
    Command {
        /// Which.
        step: &'static str,
        /// What the server or the connection said.
        reason: String,
    },
}

/// The server's own text from async-imap's error (`no response: code: None, info:
/// Some("[AUTHENTICATIONFAILED] Authentication failed.")` is "[AUTHENTICATIONFAILED]
/// Authentication failed.").
fn server_words(text: &str) -> String {
    match text.split_once("info: Some(\"") {
        Some((_, rest)) => rest.trim_end_matches(")").trim_end_matches('"').replace("\\\"", "\""),
        None => text.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ImapSource {
    /// From `imaps://USER:PASSWORD@HOST[:PORT]/MAILBOX` (user and password percent-encoded;
    /// `password` replaces the URL's when given). `tls` is used for `imaps://`.
    pub fn from_url(
        url: &str,
        password: Option<String>,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, ImapError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            ImapError::Url(format!("{url:?} has no scheme (imaps:// or imap://)"))
        })?;
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => (Some(tls), 993),
            "imap" => (None, 143),
            other => {
                return Err(ImapError::Url(format!(
                    "scheme {other:?}: use imaps:// (or imap:// on loopback)"
                )));
            }
        };
        let (authority, mailbox) = rest.split_once('/').unwrap_or((rest, "INBOX"));
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| ImapError::Url("no user: imaps://USER:PASSWORD@HOST/MAILBOX".into()))?;
        let (user, url_password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
            None => (percent_decode(userinfo), None),
        };
        let password = password.or(url_password).ok_or_else(|| {
            ImapError::Url("no password: put it in the URL or in MTASTS_IMAP_PASSWORD".into())
        })?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(['[', ']']).to_owned(),
                p.parse().map_err(|_| {
                    ImapError::Url(format!("port {p:?} is not a number from 1 to 65535"))
                })?,
            ),
            _ => (hostport.trim_matches(['[', ']']).to_owned(), default_port),
        };
        if host.is_empty() {
            return Err(ImapError::Url("no host".into()));
        }
        let mailbox = if mailbox.is_empty() { "INBOX".to_owned() } else { percent_decode(mailbox) };
        Ok(Self {
            host,
            port,
            tls,
            user,
            password,
            mailbox,
            processed: "TLSRPT-Processed".into(),
            rejected: "TLSRPT-Rejected".into(),
            timeout: Duration::from_secs(30),
            connect_to: None,
        })
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn step<T, E: std::fmt::Display>(
        &self,
        step: &'static str,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ImapError> {
        match tokio::time::timeout(self.timeout, f).await {
            Err(_) => {
                Err(ImapError::Timeout { addr: self.addr(), step, secs: self.timeout.as_secs() })
            }
            Ok(Err(e)) => Err(ImapError::Command { step, reason: server_words(&e.to_string()) }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Polls once: every message of the mailbox is ingested and moved.
    pub async fn poll(&self, ingestor: &Ingestor) -> Result<PollStats, ImapError> {
        let addr = self.addr();
        let connect = async {
            match self.connect_to {
                Some(to) => tokio::net::TcpStream::connect(to).await,
                None => tokio::net::TcpStream::connect(&addr).await,
            }
        };
        let tcp = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => {
                return Err(ImapError::Timeout {
                    addr,
                    step: "connect",
                    secs: self.timeout.as_secs(),
                });
            }
            Ok(Err(e)) => return Err(ImapError::Connect { addr, reason: e.to_string() }),
            Ok(Ok(s)) => s,
        };
        match &self.tls {
            None => self.session(tcp, ingestor).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| ImapError::Url(format!("{}: {e}", self.host)))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = self.step("TLS handshake", connector.connect(name, tcp)).await?;
                self.session(tls, ingestor).await
            }
        }
    }

    async fn session<T>(&self, stream: T, ingestor: &Ingestor) -> Result<PollStats, ImapError>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let mut client = async_imap::Client::new(stream);
        let greeting = self.step("greeting", client.read_response()).await?;
        if greeting.is_none() {
            return Err(ImapError::Command {
                step: "greeting",
                reason: "the server closed the connection".into(),
            });
        }
        let mut session = match tokio::time::timeout(
            self.timeout,
            client.login(&self.user, &self.password),
        )
        .await
        {
            Err(_) => {
                return Err(ImapError::Timeout {
                    addr: self.addr(),
                    step: "login",
                    secs: self.timeout.as_secs(),
                });
            }
            Ok(Err((e, _))) => {
                return Err(ImapError::Login { user: self.user.clone(), reason: e.to_string() });
            }
            Ok(Ok(s)) => s,
        };
        let moves = self.step("CAPABILITY", session.capabilities()).await?.has_str("MOVE");
        self.step("SELECT", session.select(&self.mailbox)).await?;
        let mut uids: Vec<u32> =
            self.step("SEARCH", session.uid_search("ALL")).await?.into_iter().collect();
        uids.sort_unstable();
        let mut stats = PollStats::default();
        let mut created = Vec::new();
        for uid in uids {
            let body = {
                let fetches =
                    self.step("FETCH", session.uid_fetch(uid.to_string(), "BODY.PEEK[]")).await?;
                let all: Vec<_> = self.step("FETCH", fetches.try_collect::<Vec<_>>()).await?;
                all.iter().find_map(|f| f.body().map(<[u8]>::to_vec))
            };
            let Some(body) = body else { continue };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let target = match ingestor.mail(&body, now).await {
                Ok(reports) => {
                    if reports.iter().all(|r| r.duplicate) {
                        stats.duplicates += 1;
                    } else {
                        stats.stored += 1;
                    }
                    tracing::info!(uid, reports = reports.len(), "report mail stored from IMAP");
                    &self.processed
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(uid, error = %e, "report mail left in the mailbox for the next poll");
                    stats.deferred += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(uid, error = %e, "report mail rejected");
                    stats.rejected += 1;
                    &self.rejected
                }
            };
            if !created.contains(target) {
                // Exists already, most of the time: the error is expected then.
                let _ = self.step("CREATE", session.create(target)).await;
                created.push(target.clone());
            }
            let set = uid.to_string();
            if moves {
                self.step("MOVE", session.uid_mv(&set, target)).await?;
            } else {
                self.step("COPY", session.uid_copy(&set, target)).await?;
                {
                    let stored = self
                        .step("STORE", session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"))
                        .await?;
                    let _: Vec<_> = self.step("STORE", stored.try_collect::<Vec<_>>()).await?;
                }
                let expunged = self.step("EXPUNGE", session.expunge()).await?;
                let _: Vec<_> = self.step("EXPUNGE", expunged.try_collect::<Vec<_>>()).await?;
            }
        }
        let _ = tokio::time::timeout(self.timeout, session.logout()).await;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tls() -> Arc<rustls::ClientConfig> {
        Arc::new(mtasts_testkit::ca::client_config(rustls::RootCertStore::empty()))
    }

    #[test]
    fn server_words_drop_the_wrapping() {
        assert_eq!(
            server_words(
                "no response: code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")"
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(server_words("connection lost"), "connection lost");
    }

    #[test]
    fn urls() {
        let s =
            ImapSource::from_url("imaps://tls%40rpt:p%3Ass@mail.example.com/Reports", None, tls())
                .unwrap();
        assert_eq!((s.user.as_str(), s.password.as_str()), ("tls@rpt", "p:ss"));
        assert_eq!(
            (s.host.as_str(), s.port, s.mailbox.as_str()),
            ("mail.example.com", 993, "Reports")
        );
        assert!(s.tls.is_some());
        let s = ImapSource::from_url("imap://u@127.0.0.1:1430", Some("pw".into()), tls()).unwrap();
        assert_eq!((s.port, s.mailbox.as_str(), s.password.as_str()), (1430, "INBOX", "pw"));
        assert!(s.tls.is_none());
        for bad in [
            "mail.example.com",
            "pop3://u:p@h/",
            "imaps://h/INBOX",
            "imaps://u@h/",
            "imaps://u:p@h:99999/",
        ] {
            assert!(ImapSource::from_url(bad, None, tls()).is_err(), "{bad}");
        }
    }
}
