//! Delivering one report to one `rua` destination: by mail (RFC 8460 §5.3: signed, handed to
//! a relay by SMTP or to the local `sendmail`) or by HTTPS POST (§5.4: the gzip body as
//! `application/tlsrpt+gzip`, a 2xx answer is success).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mtasts_net::dns::DnsClient;
use mtasts_net::submit::Submitter;
use mtasts_proto::tlsrpt_record::ReportUri;
use rustls::RootCertStore;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use crate::compose::{self, DayReport, Identity};
use crate::sign::Signer;

/// How report mail leaves this host.
#[derive(Clone)]
pub enum MailRoute {
    /// SMTP to a relay (submission), STARTTLS as configured there.
    Relay(Submitter),
    /// A sendmail-compatible program, run as `PROGRAM -i -f FROM -- TO` with the message on
    /// its standard input.
    Sendmail(PathBuf),
}

/// Everything a delivery needs.
#[derive(Clone)]
pub struct Delivery {
    /// Who reports.
    pub identity: Identity,
    /// The envelope and header sender of report mail.
    pub from: String,
    /// How mail leaves; `None`: `mailto:` destinations are not served (and fail).
    pub mail: Option<MailRoute>,
    /// The DKIM signer; `None` sends unsigned mail (receivers MUST ignore it, §3).
    pub signer: Option<Arc<Signer>>,
    /// The HTTPS client.
    pub https: reqwest::Client,
    /// Time allowed per delivery.
    pub timeout: Duration,
}

/// The HTTPS client for `rua=https:` destinations: certificates verified against `roots`,
/// names looked up through `dns`, no redirects, no proxies.
pub fn https_client(
    roots: Arc<RootCertStore>,
    dns: Arc<dyn DnsClient>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_net::tls::strict_client_config(roots))
        .dns_resolver(mtasts_net::fetch::reqwest_resolver(dns))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("mtasts/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTPS client: {e}"))
}

impl Delivery {
    /// The signed report mail for `to`.
    pub fn mail(
        &self,
        r: &DayReport,
        to: &str,
        gz: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, String> {
        let mail = compose::report_mail(&self.identity, &self.from, to, r, gz, now);
        match &self.signer {
            Some(s) => s.sign(&mail).map_err(|e| e.to_string()),
            None => Ok(mail),
        }
    }

    /// Delivers `r` (already gzip-compressed as `gz`) to `destination`.
    pub async fn deliver(
        &self,
        r: &DayReport,
        destination: &ReportUri,
        gz: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), String> {
        match destination {
            ReportUri::Https(url) => self.post(url, gz).await,
            ReportUri::Mailto(uri) => {
                let to = compose::mailto_address(uri)
                    .ok_or_else(|| format!("{uri}: not a single mail address"))?;
                let message = self.mail(r, &to, gz, now)?;
                match &self.mail {
                    None => Err(format!("{uri}: no mail route (give --smtp-relay or --sendmail)")),
                    Some(MailRoute::Relay(s)) => {
                        s.send(&self.from, &[to], &message).await.map_err(|e| e.to_string())
                    }
                    Some(MailRoute::Sendmail(p)) => {
                        tokio::time::timeout(self.timeout, sendmail(p, &self.from, &to, &message))
                            .await
                            .map_err(|_| {
                                format!(
                                    "{}: no exit within {} s",
                                    p.display(),
                                    self.timeout.as_secs()
                                )
                            })?
                    }
                }
            }
        }
    }

    async fn post(&self, url: &str, gz: &[u8]) -> Result<(), String> {
        let answer = self
            .https
            .post(url)
            .header("Content-Type", "application/tlsrpt+gzip")
            .body(gz.to_vec())
            .send()
            .await
            .map_err(|e| format!("{url}: {}", words(&e)))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            let body = answer.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            Err(format!("{url}: answered {status}: {}", body.trim()))
        }
    }
}

fn words(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut out = if e.is_timeout() { "timed out".to_owned() } else { "failed".to_owned() };
    let mut source = e.source();
    while let Some(s) = source {
        out = format!("{out}: {s}");
        source = s.source();
    }
    out
}

async fn sendmail(program: &PathBuf, from: &str, to: &str, message: &[u8]) -> Result<(), String> {
    let mut child = tokio::process::Command::new(program)
        .args(["-i", "-f", from, "--", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(message).await.map_err(|e| format!("{}: {e}", program.display()))?;
    }
    let out = child.wait_with_output().await.map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} exited with {}: {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
