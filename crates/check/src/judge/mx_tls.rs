//! STARTTLS and certificates of the MX hosts: RFC 8461 §4.2 (the certificate must be valid for
//! the MX name and chain to a trusted root), §7.2 (TLS 1.2 or later), and §5 (what the policy
//! mode makes of a failure).
//!
//! Severity follows the mode, RFC 8461 §5: under `enforce` a sender "MUST NOT deliver" to a
//! host that fails, so a failure is an error; under `testing` senders deliver anyway and report
//! the failure by TLS-RPT, so it is a warning that says enforce would break delivery; without a
//! policy it is a warning to fix before publishing one.

use mtasts_net::probe::ProbeStep;
use mtasts_proto::{Mode, Policy};

use super::policy::EXPIRY_WARNING_DAYS;
use super::{Judging, cert_code, consequence};
use crate::finding::{Code, Finding, Severity};
use crate::observations::Probes;

pub(crate) fn judge(j: &mut Judging<'_>, policy: Option<&Policy>) {
    let reports = match &j.obs.probes {
        Probes::Off => {
            if !j.out.report.mx.is_empty() {
                j.push(Finding::new(
                    Code::MxNotProbed,
                    "SMTP probing was turned off; STARTTLS and certificates were not checked",
                ));
            }
            return;
        }
        Probes::Done(reports) => reports,
    };
    let enforcing = policy.map(Policy::mode) == Some(Mode::Enforce);
    let sev = if enforcing { Severity::Error } else { Severity::Warning };
    let consequence = consequence(policy);
    let now = j.now.unix_timestamp();
    for report in reports {
        let host = report.host.clone();
        if let Some(fail) = &report.failure {
            let (code, sev) = match fail.step {
                ProbeStep::Resolve => (Code::MxHostUnresolvable, Severity::Error),
                ProbeStep::Connect => (Code::MxUnreachable, Severity::Warning),
                ProbeStep::Handshake => (Code::MxTlsFailed, sev),
                _ if fail.timed_out => (Code::MxTimeout, Severity::Warning),
                _ => (Code::MxSmtpError, Severity::Warning),
            };
            if fail.step == ProbeStep::Resolve && fail.dns_temporary {
                // The DNS could not answer: the host's addresses are unknown, not absent.
                j.push(
                    Finding::new(
                        Code::MxDnsError,
                        format!("{host}: the address lookup failed: {}", fail.message),
                    )
                    .subject(&host),
                );
                j.out.incomplete();
                continue;
            }
            let mut msg = format!("{host}: {} failed: {}", fail.step, fail.message);
            if fail.step == ProbeStep::Resolve {
                msg = format!("{host} has no address: {}", fail.message);
            }
            if fail.step == ProbeStep::Connect {
                msg.push_str(" (outbound port 25 may be blocked where this check runs)");
            }
            if fail.step == ProbeStep::Handshake {
                msg.push_str(consequence);
            }
            j.push(Finding::new(code, msg).subject(&host).severity(sev));
        }
        if report.starttls_offered == Some(false) {
            j.push(
                Finding::new(Code::MxStartTlsMissing, format!("{host} does not offer STARTTLS{consequence}"))
                    .subject(&host)
                    .severity(sev)
                    .fix(format!("Enable STARTTLS on {host} with a certificate valid for {host} (Postfix: smtpd_tls_security_level = may, smtpd_tls_chain_files = …)")),
            );
        }
        if let Some(tls) = &report.tls {
            if let Some(problem) = &tls.problem {
                let detail = tls.problem_detail.clone().unwrap_or_else(|| format!("{problem:?}"));
                let presented = tls
                    .chain
                    .first()
                    .map(|c| {
                        format!(" (presented: {}; names: {})", c.subject, c.dns_names.join(", "))
                    })
                    .unwrap_or_default();
                j.push(
                    Finding::new(
                        cert_code(problem, true),
                        format!("{host}: {detail}{presented}{consequence}"),
                    )
                    .subject(&host)
                    .severity(sev)
                    .fix(format!(
                        "Install a certificate for {host} from a public CA, with its full chain"
                    )),
                );
            } else if let (Some(params), Some(leaf)) = (&tls.params, tls.chain.first()) {
                let days = leaf.days_left(now);
                j.push(
                    Finding::new(
                        Code::MxTlsOk,
                        format!(
                            "{host}: STARTTLS, {}, certificate valid for {} more days",
                            tls_words(&params.version, &params.cipher),
                            days
                        ),
                    )
                    .subject(&host),
                );
                if days < EXPIRY_WARNING_DAYS {
                    j.push(
                        Finding::new(
                            Code::MxCertExpiring,
                            format!("{host}: the certificate expires in {days} days"),
                        )
                        .subject(&host)
                        .fix(
                            "Renew the certificate (check that automatic renewal covers this name)",
                        ),
                    );
                }
            }
        }
        let tls_ok = report.tls_ok();
        if let Some(view) = j.out.report.mx.iter_mut().find(|m| m.host == host) {
            view.tls_ok = Some(tls_ok);
            view.probe = Some(report.clone());
        }
    }
}

/// The negotiated protocol and cipher suite as an administrator reads them (`TLS 1.3,
/// TLS_AES_256_GCM_SHA384`: the IANA suite name), not as the TLS library spells them
/// (`TLSv1_3 TLS13_AES_256_GCM_SHA384`).
fn tls_words(version: &str, cipher: &str) -> String {
    let version = match version {
        "TLSv1_3" => "TLS 1.3",
        "TLSv1_2" => "TLS 1.2",
        "TLSv1_1" => "TLS 1.1",
        "TLSv1_0" => "TLS 1.0",
        other => other,
    };
    let cipher =
        cipher.strip_prefix("TLS13_").map_or_else(|| cipher.to_owned(), |c| format!("TLS_{c}"));
    format!("{version}, {cipher}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;

    use crate::finding::{Code, Severity};
    use crate::observations::{Observations, Probes};
    use crate::report::Outcome;
    use mtasts_net::probe::{ProbeStep, TlsOutcome};
    use mtasts_proto::CertificateProblem;

    fn probed(policy: &str, probe: mtasts_net::ProbeReport) -> Observations {
        Observations { policy: fetched(policy), probes: Probes::Done(vec![probe]), ..good() }
    }

    #[test]
    fn tls_parameters_in_an_administrators_words() {
        assert_eq!(
            super::tls_words("TLSv1_3", "TLS13_AES_256_GCM_SHA384"),
            "TLS 1.3, TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            super::tls_words("TLSv1_2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn good_host() {
        let r = run(&good());
        assert_eq!(severity_of(&r, Code::MxTlsOk), Some(Severity::Ok));
        assert_eq!(r.mx[0].tls_ok, Some(true));
    }

    /// Issue 15, defect 2: under testing, no STARTTLS and a failed handshake are warnings.
    #[test]
    fn defect_2_testing_mode_severities() {
        let host = "mx1.example.com";
        for (policy, expected) in [(TESTING, Severity::Warning), (ENFORCE, Severity::Error)] {
            let r = run(&probed(policy, no_starttls_probe(host)));
            assert_eq!(severity_of(&r, Code::MxStartTlsMissing), Some(expected), "{policy}");
            let r = run(&probed(policy, failed_probe(host, ProbeStep::Handshake, false)));
            assert_eq!(severity_of(&r, Code::MxTlsFailed), Some(expected), "{policy}");
            if expected == Severity::Warning {
                let f = r.findings.iter().find(|f| f.code == Code::MxTlsFailed).unwrap();
                assert!(f.message.contains("once the policy is enforce"), "{}", f.message);
            }
        }
    }

    #[test]
    fn certificate_problems_follow_the_mode() {
        let mut probe = good_probe("mx1.example.com");
        probe.tls = Some(TlsOutcome {
            params: None,
            chain: vec![cert("other.example.net", 30)],
            problem: Some(CertificateProblem::NameMismatch),
            problem_detail: Some("the certificate is not valid for mx1.example.com".into()),
        });
        let r = run(&probed(ENFORCE, probe.clone()));
        assert_eq!(severity_of(&r, Code::MxCertWrongName), Some(Severity::Error));
        let r = run(&probed(TESTING, probe));
        assert_eq!(severity_of(&r, Code::MxCertWrongName), Some(Severity::Warning));
        assert_eq!(r.mx[0].tls_ok, Some(false));
    }

    /// Issue 15, defect 5: SERVFAIL or a timeout on the MX host's address is "could not check".
    #[test]
    fn defect_5_temporary_mx_address_failure_is_could_not_check() {
        let r = run(&probed(ENFORCE, failed_probe("mx1.example.com", ProbeStep::Resolve, true)));
        assert_eq!(r.outcome, Outcome::CouldNotCheck);
        assert_eq!(severity_of(&r, Code::MxHostUnresolvable), None, "{:?}", codes(&r));
        assert_eq!(severity_of(&r, Code::MxDnsError), Some(Severity::Error));
        assert_eq!(crate::exit_code([&r]), 2);
        // NXDOMAIN for the host is an answer: the host has no address.
        let r = run(&probed(ENFORCE, failed_probe("mx1.example.com", ProbeStep::Resolve, false)));
        assert_eq!(r.outcome, Outcome::Checked);
        assert_eq!(severity_of(&r, Code::MxHostUnresolvable), Some(Severity::Error));
    }

    #[test]
    fn expiring_certificate_and_probing_off() {
        let mut probe = good_probe("mx1.example.com");
        if let Some(tls) = &mut probe.tls {
            tls.chain = vec![cert("mx1.example.com", 5)];
        }
        assert_eq!(
            severity_of(&run(&probed(ENFORCE, probe)), Code::MxCertExpiring),
            Some(Severity::Warning)
        );
        let r = run(&Observations { probes: Probes::Off, ..good() });
        assert_eq!(severity_of(&r, Code::MxNotProbed), Some(Severity::Info));
        assert_eq!(r.mx[0].tls_ok, None);
    }
}
