//! The judges: pure functions from [`Observations`] and the time to [`Finding`]s. No I/O, no
//! clock: the same observations and `now` always give the same report.
//!
//! One module per area, in the order of RFC 8461's discovery:
//!
//! | module | area | rules |
//! |---|---|---|
//! | [`txt`] | the `_mta-sts` TXT record | RFC 8461 §3.1 |
//! | [`policy`] | the policy host and file | §3.2, §3.3, §5, §10.2 |
//! | [`coverage`] | MX records and `mx:` patterns | RFC 5321 §5.1, RFC 7505, RFC 8461 §4.1 |
//! | [`mx_tls`] | STARTTLS and certificates of the MX hosts | §4.2, §5, §7.2 |
//! | [`readiness`] | may a `testing` policy move to `enforce`? | §5 |
//! | [`tlsrpt`] | the `_smtp._tls` TXT record | RFC 8460 §3 |
//! | [`dane`] | DNSSEC and TLSA | RFC 8461 §2, RFC 7672 |
//! | [`deploy`] | starter records for a domain without MTA-STS | §3, §8.1 |

pub mod coverage;
pub mod dane;
pub mod deploy;
pub mod mx_tls;
pub mod policy;
pub mod readiness;
pub mod tlsrpt;
pub mod txt;

use mtasts_proto::{CertificateProblem, Policy, Warning};
use time::OffsetDateTime;

use crate::finding::{Code, Finding};
use crate::observations::Observations;
use crate::report::{DomainReport, ReportBuilder};

pub use txt::StsState;

/// Judges `obs` as of `now` into a report for `input` (the name as the user gave it).
pub fn judge(input: &str, obs: &Observations, now: OffsetDateTime) -> DomainReport {
    judge_into(ReportBuilder::new(input, Some(&obs.domain)), obs, now)
        .finish(std::time::Duration::ZERO)
}

pub(crate) fn judge_into(
    out: ReportBuilder,
    obs: &Observations,
    now: OffsetDateTime,
) -> ReportBuilder {
    let mut j = Judging { obs, now, out };
    if !coverage::domain_exists(&mut j) {
        return j.out;
    }
    let sts = txt::judge(&mut j);
    let policy = policy::judge(&mut j, &sts);
    coverage::judge(&mut j, policy.as_ref());
    mx_tls::judge(&mut j, policy.as_ref());
    readiness::judge(&mut j, &sts, policy.as_ref());
    tlsrpt::judge(&mut j);
    dane::judge(&mut j);
    deploy::judge(&mut j, &sts, policy.as_ref());
    j.out
}

/// One judgement in progress.
pub(crate) struct Judging<'a> {
    pub(crate) obs: &'a Observations,
    pub(crate) now: OffsetDateTime,
    pub(crate) out: ReportBuilder,
}

impl Judging<'_> {
    pub(crate) fn push(&mut self, finding: Finding) {
        self.out.push(finding);
    }

    /// One finding per parser warning: "line N: message", with the parser's own code as the
    /// finding's `warning` (one code per line of text output: the finding's).
    pub(crate) fn push_warnings(&mut self, code: Code, warnings: &[Warning], subject: &str) {
        for w in warnings {
            let at = w.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            self.push(
                Finding::new(code, format!("{at}{}", w.message)).subject(subject).warning(w.code),
            );
        }
    }

    /// MX host names, in preference order (empty when the MX lookup failed).
    pub(crate) fn hosts(&self) -> Vec<String> {
        self.obs.mx.as_ref().map(|s| s.names()).unwrap_or_default()
    }
}

/// What a policy's mode means for a failure at an MX host, in words.
pub(crate) fn consequence(policy: Option<&Policy>) -> &'static str {
    use mtasts_proto::Mode;
    match policy.map(Policy::mode) {
        Some(Mode::Enforce) => "; senders enforcing the policy will not deliver to this host",
        Some(Mode::Testing) => {
            "; senders still deliver under mode: testing and report this by TLS-RPT, but will not deliver once the policy is enforce"
        }
        _ => "; this must be fixed before publishing an MTA-STS policy",
    }
}

/// The one mapping from a certificate problem to a finding code, for the policy host
/// (`policy-cert-*`, RFC 8461 §3.3) or an MX host (`mx-cert-*`, RFC 8461 §4.2).
pub(crate) fn cert_code(problem: &CertificateProblem, mx: bool) -> Code {
    let [untrusted, expired, wrong_name, invalid] = if mx {
        [Code::MxCertUntrusted, Code::MxCertExpired, Code::MxCertWrongName, Code::MxCertInvalid]
    } else {
        [
            Code::PolicyCertUntrusted,
            Code::PolicyCertExpired,
            Code::PolicyCertWrongName,
            Code::PolicyCertInvalid,
        ]
    };
    match problem {
        CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature => untrusted,
        CertificateProblem::Expired | CertificateProblem::NotYetValid => expired,
        CertificateProblem::NameMismatch => wrong_name,
        _ => invalid,
    }
}

pub(crate) fn quote_all(records: &[String]) -> String {
    records.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
}

/// Hand-made observations for the judges' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]

    use mtasts_net::dns::TxtAnswer;
    use mtasts_net::probe::{ProbeFailure, ProbeStep, TlsOutcome};
    use mtasts_net::tls::{CertInfo, TlsParams};
    use mtasts_net::{DnsError, FetchError, FetchedPolicy, ProbeReport};
    use mtasts_proto::{DomainName, MxRecord, MxSet};
    use time::OffsetDateTime;

    use crate::finding::{Code, Severity};
    use crate::observations::{Observations, Probes};
    use crate::report::DomainReport;

    pub(crate) const NOW: OffsetDateTime = time::macros::datetime!(2026-12-03 10:00:00 UTC);
    pub(crate) const DAY: i64 = 86_400;

    pub(crate) fn nodata(name: &str) -> DnsError {
        DnsError::NoData { name: name.into(), rtype: "TXT".into(), negative_ttl: None }
    }

    pub(crate) fn servfail(name: &str) -> DnsError {
        DnsError::ServerFailure { name: name.into(), rcode: "SERVFAIL".into() }
    }

    pub(crate) fn txt(records: &[&str]) -> Result<TxtAnswer, DnsError> {
        Ok(TxtAnswer {
            records: records.iter().map(|r| (*r).to_owned()).collect(),
            cname_chain: vec![],
            ttl: None,
        })
    }

    pub(crate) fn fetched(body: &str) -> Result<FetchedPolicy, FetchError> {
        Ok(FetchedPolicy {
            url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
            body: body.as_bytes().to_vec(),
            content_type: "text/plain".into(),
            certificate: Some(cert("mta-sts.example.com", 60)),
            remote_addr: None,
            elapsed_ms: 1,
        })
    }

    pub(crate) fn cert(name: &str, days_left: i64) -> CertInfo {
        CertInfo {
            subject: format!("CN={name}"),
            issuer: "CN=Test CA".into(),
            dns_names: vec![name.into()],
            not_before: NOW.unix_timestamp() - 30 * DAY,
            not_after: NOW.unix_timestamp() + days_left * DAY + 3600,
        }
    }

    pub(crate) fn good_probe(host: &str) -> ProbeReport {
        ProbeReport {
            host: host.into(),
            addr: None,
            banner: Some("220 ok".into()),
            ehlo_keywords: vec!["STARTTLS".into()],
            starttls_offered: Some(true),
            tls: Some(TlsOutcome {
                params: Some(TlsParams { version: "TLSv1_3".into(), cipher: "AES".into() }),
                chain: vec![cert(host, 60)],
                problem: None,
                problem_detail: None,
            }),
            failure: None,
            elapsed_ms: 1,
        }
    }

    pub(crate) fn no_starttls_probe(host: &str) -> ProbeReport {
        ProbeReport {
            ehlo_keywords: vec![],
            starttls_offered: Some(false),
            tls: None,
            ..good_probe(host)
        }
    }

    pub(crate) fn failed_probe(host: &str, step: ProbeStep, dns_temporary: bool) -> ProbeReport {
        ProbeReport {
            starttls_offered: None,
            tls: None,
            failure: Some(ProbeFailure {
                step,
                timed_out: false,
                dns_temporary,
                message: "it failed".into(),
            }),
            ..good_probe(host)
        }
    }

    pub(crate) const ENFORCE: &str =
        "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n";
    pub(crate) const TESTING: &str =
        "version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 604800\n";

    /// A good `enforce` deployment of example.com with one MX host, probed.
    pub(crate) fn good() -> Observations {
        Observations {
            domain: DomainName::parse_ascii("example.com").unwrap(),
            sts_txt: txt(&["v=STSv1; id=20260101;"]),
            mx: Ok(MxSet::from_records(vec![MxRecord::new(10, "mx1.example.com")])),
            policy: fetched(ENFORCE),
            tlsrpt_txt: txt(&["v=TLSRPTv1; rua=mailto:tlsrpt@example.com"]),
            probes: Probes::Done(vec![good_probe("mx1.example.com")]),
            dane: None,
        }
    }

    /// example.com without MTA-STS.
    pub(crate) fn absent() -> Observations {
        Observations {
            sts_txt: Err(nodata("_mta-sts.example.com")),
            policy: Err(FetchError::Resolve(DnsError::NxDomain {
                name: "mta-sts.example.com".into(),
                negative_ttl: None,
            })),
            tlsrpt_txt: Err(nodata("_smtp._tls.example.com")),
            ..good()
        }
    }

    pub(crate) fn run(obs: &Observations) -> DomainReport {
        super::judge(obs.domain.as_str(), obs, NOW)
    }

    pub(crate) fn severity_of(r: &DomainReport, code: Code) -> Option<Severity> {
        r.findings.iter().find(|f| f.code == code).map(|f| f.severity)
    }

    pub(crate) fn codes(r: &DomainReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.code.as_str()).collect()
    }
}
