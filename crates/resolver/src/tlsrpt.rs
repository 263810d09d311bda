//! The resolver's own TLS-RPT results (RFC 8460 §4.3.2.2): a policy fetch that fails
//! (`sts-policy-fetch-error`), a policy that does not parse or is not `text/plain`
//! (`sts-policy-invalid`), a policy host whose certificate does not validate
//! (`sts-webpki-invalid`). Postfix before 3.10 emits no TLS-RPT data at all, and Postfix 3.10
//! does not know why the plug-in found no policy, so these failures would go unreported: with
//! `--tlsrpt-socket` the resolver sends each as a libtlsrpt datagram
//! ([`mtasts_proto::datagram`]) to the collector's socket (`mtasts reporter collect`), with the
//! domain's `_smtp._tls` record looked up like an MTA does.
//!
//! One datagram per failed fetch (the resolver backs off for 5 minutes after one, §3.3), not
//! per delivery attempt: the count is of failures seen, the domain learns what is broken.
//! Sending never blocks a lookup: a full or absent socket drops the datagram (counted in
//! `mtasts_resolver_tlsrpt_datagrams_total{outcome="dropped"}`), as libtlsrpt does.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;

use mtasts_net::DnsClient;
use mtasts_proto::datagram::{Datagram, Failure, PolicyOutcome};
use mtasts_proto::report::PolicyType;
use mtasts_proto::{DomainName, ResultType, select_tlsrpt_record};

/// Where the resolver's TLS-RPT datagrams go.
#[derive(Clone)]
pub struct TlsRptSink {
    socket: Arc<UnixDatagram>,
    path: PathBuf,
    dns: Arc<dyn DnsClient>,
}

impl std::fmt::Debug for TlsRptSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRptSink").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The TLSRPT record text of `domain` as an MTA finds it: the one valid record at
/// `_smtp._tls.<domain>` (RFC 8460 §3 selection, `proto::select_tlsrpt_record`); empty when
/// there is none, several or an invalid one (no report can be sent then).
pub async fn tlsrpt_record_text(dns: &dyn DnsClient, domain: &DomainName) -> String {
    match dns.txt(&format!("_smtp._tls.{}", domain.as_str())).await {
        Ok(answer) => select_tlsrpt_record(&answer.records).map(|d| d.raw).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

impl TlsRptSink {
    /// A sink sending to the collector socket at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>, dns: Arc<dyn DnsClient>) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket: Arc::new(socket), path: path.into(), dns })
    }

    /// Reports a policy failure for `domain` in the background.
    pub fn report(&self, domain: &DomainName, result_type: ResultType, reason: &str) {
        let this = self.clone();
        let domain = domain.clone();
        let reason: String = reason.chars().take(512).collect();
        tokio::spawn(async move {
            let record = tlsrpt_record_text(this.dns.as_ref(), &domain).await;
            let d = Datagram {
                domain: domain.clone(),
                record,
                policies: vec![PolicyOutcome {
                    policy_type: PolicyType::Sts,
                    strings: Vec::new(),
                    domain: Some(domain.as_str().to_owned()),
                    mx_hosts: Vec::new(),
                    failures: vec![Failure {
                        result_type,
                        sending_ip: None,
                        mx_hostname: None,
                        helo: None,
                        receiving_ip: None,
                        additional: None,
                        reason: Some(reason),
                    }],
                    failed: true,
                }],
            };
            let outcome = match this.socket.send_to(d.to_json().as_bytes(), &this.path) {
                Ok(_) => "sent",
                Err(e) => {
                    tracing::debug!("TLS-RPT datagram to {} not sent: {e}", this.path.display());
                    "dropped"
                }
            };
            metrics::counter!("mtasts_resolver_tlsrpt_datagrams_total", "outcome" => outcome)
                .increment(1);
        });
    }
}
