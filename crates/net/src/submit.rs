//! Handing a message to a mail relay (RFC 5321 client; submission as RFC 6409 describes it):
//! EHLO, STARTTLS (RFC 3207) with the relay's certificate verified, then MAIL, RCPT, DATA with
//! dot-stuffing (RFC 5321 §4.5.2). For `serve`'s alert mail and, later, the TLS-RPT reports
//! sent by mail. Every step has the timeout given and a failure names the step and what the
//! relay said.

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::smtp::{Reply, ReplyParser};

/// Whether the relay must, may or need not speak TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RelayTls {
    /// STARTTLS, with the relay's certificate verified; a relay that does not offer it is an
    /// error.
    #[default]
    Required,
    /// STARTTLS (verified) when offered, else plain (a relay on loopback or a trusted network).
    Opportunistic,
    /// Never (a relay on loopback).
    None,
}

/// A mail relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// Host name (for the connection and the certificate) or IP address.
    pub host: String,
    /// Port (25, or 587 for submission).
    pub port: u16,
    /// TLS.
    pub tls: RelayTls,
}

/// Why the relay did not take the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The relay could not be reached.
    #[error("mail relay {relay}: cannot connect: {error}")]
    Connect {
        /// host:port.
        relay: String,
        /// Why.
        error: std::io::Error,
    },
    /// A step took longer than the timeout.
    #[error("mail relay {relay}: no answer to {step} within {secs} s")]
    Timeout {
        /// host:port.
        relay: String,
        /// The step.
        step: &'static str,
        /// The timeout.
        secs: u64,
    },
    /// The relay answered a step with an error.
    #[error("mail relay {relay} refused {step}: {reply}")]
    Refused {
        /// host:port.
        relay: String,
        /// The step.
        step: &'static str,
        /// Its reply.
        reply: String,
    },
    /// STARTTLS is required and the relay does not offer it.
    #[error(
        "mail relay {relay} does not offer STARTTLS (required; or use a relay on loopback without TLS)"
    )]
    NoStartTls {
        /// host:port.
        relay: String,
    },
    /// The TLS handshake failed (the relay's certificate, most often).
    #[error("mail relay {relay}: TLS failed: {error}")]
    Tls {
        /// host:port.
        relay: String,
        /// Why.
        error: String,
    },
    /// The connection broke or the relay spoke something else than SMTP.
    #[error("mail relay {relay}: {error}")]
    Protocol {
        /// host:port.
        relay: String,
        /// What happened.
        error: String,
    },
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Sends mail through one relay.
#[derive(Clone)]
pub struct Submitter {
    relay: Relay,
    tls: Arc<rustls::ClientConfig>,
    ehlo: String,
    timeout: Duration,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter").field("relay", &self.relay).finish_non_exhaustive()
    }
}

struct Session {
    stream: Box<dyn Io>,
    parser: ReplyParser,
    relay: String,
    timeout: Duration,
}

impl Session {
    async fn read(&mut self, step: &'static str) -> Result<Reply, SubmitError> {
        let relay = self.relay.clone();
        let secs = self.timeout.as_secs();
        let read = async {
            let mut buf = [0u8; 2048];
            loop {
                match self.parser.next_reply() {
                    Ok(Some(r)) => return Ok(r),
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string()),
                }
                let n = self.stream.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the relay closed the connection".to_owned());
                }
                self.parser.push(&buf[..n]);
            }
        };
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(SubmitError::Timeout { relay, step, secs }),
            Ok(Err(error)) => {
                Err(SubmitError::Protocol { relay, error: format!("{step}: {error}") })
            }
            Ok(Ok(r)) => Ok(r),
        }
    }

    async fn write(&mut self, step: &'static str, bytes: &[u8]) -> Result<(), SubmitError> {
        let relay = self.relay.clone();
        let secs = self.timeout.as_secs();
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(SubmitError::Timeout { relay, step, secs }),
            Ok(Err(e)) => Err(SubmitError::Protocol { relay, error: format!("{step}: {e}") }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends `line` and wants a reply with code `want` (2 → any 2xx, 3 → any 3xx).
    async fn step(
        &mut self,
        step: &'static str,
        line: &str,
        want: u16,
    ) -> Result<Reply, SubmitError> {
        self.write(step, format!("{line}\r\n").as_bytes()).await?;
        let reply = self.read(step).await?;
        if reply.code / 100 != want {
            return Err(SubmitError::Refused {
                relay: self.relay.clone(),
                step,
                reply: reply.text(),
            });
        }
        Ok(reply)
    }
}

/// `message` with RFC 5321 §4.5.2 dot-stuffing, CRLF line ends and the final `.` line.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    // The split yields an empty last piece after a final newline: drop its CRLF.
    if message.ends_with(b"\n") {
        out.truncate(out.len() - 2);
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl Submitter {
    /// A submitter to `relay`, verifying its certificate against `roots`, greeting with
    /// `ehlo` (this host's name), each step within `timeout`.
    pub fn new(
        relay: Relay,
        roots: Arc<RootCertStore>,
        ehlo: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            relay,
            tls: Arc::new(crate::tls::strict_client_config(roots)),
            ehlo: ehlo.into(),
            timeout,
        }
    }

    /// The relay.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Hands `message` (RFC 5322 text, headers included) for `to` from `from` to the relay.
    pub async fn send(&self, from: &str, to: &[String], message: &[u8]) -> Result<(), SubmitError> {
        let relay = format!("{}:{}", self.relay.host, self.relay.port);
        let connect = TcpStream::connect((self.relay.host.as_str(), self.relay.port));
        let tcp = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => {
                return Err(SubmitError::Timeout {
                    relay,
                    step: "connect",
                    secs: self.timeout.as_secs(),
                });
            }
            Ok(Err(error)) => return Err(SubmitError::Connect { relay, error }),
            Ok(Ok(s)) => s,
        };
        let mut s = Session {
            stream: Box::new(tcp),
            parser: ReplyParser::default(),
            relay: relay.clone(),
            timeout: self.timeout,
        };
        let greeting = s.read("the greeting").await?;
        if greeting.code != 220 {
            return Err(SubmitError::Refused {
                relay,
                step: "the connection",
                reply: greeting.text(),
            });
        }
        let ehlo = s.step("EHLO", &format!("EHLO {}", self.ehlo), 2).await?;
        let starttls = match self.relay.tls {
            RelayTls::None => false,
            RelayTls::Opportunistic => ehlo.offers_starttls(),
            RelayTls::Required if ehlo.offers_starttls() => true,
            RelayTls::Required => return Err(SubmitError::NoStartTls { relay }),
        };
        if starttls {
            s.step("STARTTLS", "STARTTLS", 2).await?;
            let name = ServerName::try_from(self.relay.host.clone())
                .map_err(|e| SubmitError::Tls { relay: relay.clone(), error: e.to_string() })?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            // The plain stream is done with: the reply parser holds nothing (STARTTLS's reply
            // was the last thing read; RFC 3207 §4.2 forbids pipelining past it).
            let Session { stream, .. } = s;
            let handshake = connector.connect(name, stream);
            let tls = match tokio::time::timeout(self.timeout, handshake).await {
                Err(_) => {
                    return Err(SubmitError::Timeout {
                        relay,
                        step: "the TLS handshake",
                        secs: self.timeout.as_secs(),
                    });
                }
                Ok(Err(e)) => return Err(SubmitError::Tls { relay, error: e.to_string() }),
                Ok(Ok(t)) => t,
            };
            s = Session {
                stream: Box::new(tls),
                parser: ReplyParser::default(),
                relay: relay.clone(),
                timeout: self.timeout,
            };
            // RFC 3207 §4.2: the client starts again with EHLO.
            s.step("EHLO", &format!("EHLO {}", self.ehlo), 2).await?;
        }
        s.step("MAIL FROM", &format!("MAIL FROM:<{from}>"), 2).await?;
        for rcpt in to {
            s.step("RCPT TO", &format!("RCPT TO:<{rcpt}>"), 2).await?;
        }
        s.step("DATA", "DATA", 3).await?;
        s.write("the message", &dot_stuffed(message)).await?;
        let done = s.read("the end of the message").await?;
        if !done.is_positive() {
            return Err(SubmitError::Refused { relay, step: "the message", reply: done.text() });
        }
        let _ = s.step("QUIT", "QUIT", 2).await;
        Ok(())
    }
}

/// A relay, a sender and recipients: where a program's alert mail goes.
#[derive(Clone, Debug)]
pub struct Mailer {
    /// The relay.
    pub submitter: Submitter,
    /// The envelope and header sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl Mailer {
    /// Sends `message` (RFC 5322 text whose headers name the same sender and recipients).
    pub async fn send(&self, message: &[u8]) -> Result<(), SubmitError> {
        self.submitter.send(&self.from, &self.to, message).await
    }

    /// The RFC 5322 headers of a plain UTF-8 text mail from this mailer with `subject`
    /// (which must hold no line break) at `now`, ending with the blank line.
    pub fn headers(&self, subject: &str, now: time::OffsetDateTime) -> String {
        let date = now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
        let subject = subject.replace(['\r', '\n'], " ");
        format!(
            "From: {}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: <{}.{}@mtasts>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\
             Auto-Submitted: auto-generated\r\n\r\n",
            self.from,
            self.to.join(", "),
            now.unix_timestamp_nanos(),
            std::process::id()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed_and_lines_end_in_crlf() {
        assert_eq!(dot_stuffed(b"a\n.b\r\n..c\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuffed(b"no newline"), b"no newline\r\n.\r\n");
    }
}
