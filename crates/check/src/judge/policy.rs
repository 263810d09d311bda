//! The policy host and the policy file: the HTTPS fetch rules (RFC 8461 §3.3), the file's syntax
//! (§3.2), its mode (§5) and its lifetime (§3.2, §10.2).

use mtasts_net::FetchError;
use mtasts_proto::generate::{amended_policy, policy_id, sts_txt};
use mtasts_proto::{Mode, Policy};

use super::{Judging, StsState, cert_code};
use crate::finding::{Code, Finding};
use crate::fix::Fix;

/// Certificates expiring within this many days get a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// `max_age` below this is a warning: one day (RFC 8461 §10.2: long-lived caches resist
/// downgrades).
pub const MAX_AGE_SHORT: u32 = 86_400;

/// `max_age` below this is noted for an `enforce` policy: one week.
pub const MAX_AGE_LOW: u32 = 604_800;

/// Judges the fetch and the file; returns the policy when it parsed.
pub(crate) fn judge(j: &mut Judging<'_>, sts: &StsState) -> Option<Policy> {
    let domain = j.obs.domain.clone();
    let host = domain.policy_host();
    // Findings about the file name what was fetched (`check`: the policy URL; `lint`: the file).
    let url = match &j.obs.policy {
        Ok(f) => f.url.clone(),
        Err(_) => domain.policy_url(),
    };
    let body = match &j.obs.policy {
        Ok(f) => {
            if let Some(cert) = &f.certificate {
                let days = cert.days_left(j.now.unix_timestamp());
                if days < EXPIRY_WARNING_DAYS {
                    j.push(
                        Finding::new(
                            Code::PolicyCertExpiring,
                            format!("the certificate of {host} expires in {days} days"),
                        )
                        .subject(&host)
                        .fix(
                            "Renew the certificate (check that automatic renewal covers this name)",
                        ),
                    );
                }
            }
            f.body.clone()
        }
        Err(e) => {
            // Without a TXT record, a failing policy host is just "not deployed"; don't drown
            // the administrator in consequences of one absence.
            if *sts == StsState::Absent {
                return None;
            }
            fetch_finding(j, &host, &url, e)?
        }
    };
    j.out.report.policy.text = Some(String::from_utf8_lossy(&body).into_owned());
    if *sts == StsState::Absent {
        let record = sts_txt(&domain, &policy_id(j.now));
        j.push(
            Finding::new(
                Code::StsTxtMissing,
                format!(
                    "{url} serves a policy, but {} has no v=STSv1 record",
                    domain.mta_sts_txt_name()
                ),
            )
            .subject(domain.mta_sts_txt_name())
            .fix(Fix::new("Publish:").publish(record.clone())),
        );
        j.out.report.suggestions.sts_txt = Some(record);
    }
    // RFC 8461 §3.2 and the strict parser decide, from the bytes as served (non-UTF-8 is the
    // parser's error, not silently replaced).
    let parsed = match Policy::parse_bytes(&body) {
        Ok(p) => p,
        Err(e) => {
            j.push(
                Finding::new(Code::PolicyInvalid, e.to_string())
                    .subject(&url)
                    .fix("Correct the line named above; the policy must have version: STSv1, mode, max_age and (unless mode: none) mx: lines, one field per line"),
            );
            return None;
        }
    };
    j.push_warnings(Code::PolicyWarning, &parsed.warnings, &url);
    let policy = parsed.value;
    let view = &mut j.out.report.policy;
    view.mode = Some(policy.mode().to_string());
    view.max_age = Some(policy.max_age().seconds());
    view.mx = policy.mx().iter().map(ToString::to_string).collect();
    let mx_list = if view.mx.is_empty() { "(none)".to_owned() } else { view.mx.join(", ") };
    j.push(
        Finding::new(
            Code::PolicyOk,
            format!(
                "mode: {}, max_age: {}, mx: {mx_list}",
                policy.mode(),
                policy.max_age().seconds()
            ),
        )
        .subject(&url),
    );
    judge_mode(j, &policy);
    judge_max_age(j, &policy);
    Some(policy)
}

fn judge_mode(j: &mut Judging<'_>, policy: &Policy) {
    match policy.mode() {
        Mode::Testing => j.push(Finding::new(
            Code::PolicyModeTesting,
            "senders deliver even when validation fails and report the failures by TLS-RPT; \
             watch the reports, then move to mode: enforce",
        )),
        Mode::None => j.push(
            Finding::new(
                Code::PolicyModeNone,
                "senders treat the domain as having no policy; this is right only while removing MTA-STS (RFC 8461 §8.3)",
            )
            .fix("If you meant to protect mail, publish mode: testing (then enforce) with mx: lines and a new id"),
        ),
        Mode::Enforce => {}
    }
}

fn judge_max_age(j: &mut Judging<'_>, policy: &Policy) {
    if policy.mode() == Mode::None {
        return;
    }
    let max_age = policy.max_age().seconds();
    let (code, message, target) = if max_age < MAX_AGE_SHORT {
        let target = if policy.mode() == Mode::Enforce { MAX_AGE_LOW } else { MAX_AGE_SHORT };
        (
            Code::PolicyMaxAgeShort,
            format!("max_age: {max_age} is under a day; senders forget the policy that quickly"),
            target,
        )
    } else if max_age < MAX_AGE_LOW && policy.mode() == Mode::Enforce {
        (Code::PolicyMaxAgeLow, format!("max_age: {max_age} is under a week"), MAX_AGE_LOW)
    } else {
        return;
    };
    let mut finding = Finding::new(code, message);
    if let Ok(amended) = amended_policy(policy, policy.mode(), &[], Some(target)) {
        finding = finding.fix(Fix::policy_change(
            format!("Set max_age: {target} (or more, up to 31557600)."),
            &j.obs.domain,
            &amended,
            j.now,
        ));
    }
    j.push(finding);
}

/// Turns a fetch failure into a finding; returns the body when it can still be validated.
fn fetch_finding(j: &mut Judging<'_>, host: &str, url: &str, e: &FetchError) -> Option<Vec<u8>> {
    let message = e.to_string();
    let (code, fix): (Code, String) = match e {
        FetchError::Resolve(dns) if dns.is_not_found() => (
            Code::PolicyHostMissing,
            format!("Add an A/AAAA record (or a CNAME to your policy host) for {host}"),
        ),
        FetchError::Resolve(_) => {
            j.out.incomplete();
            (Code::PolicyHostDnsError, String::new())
        }
        FetchError::Connect { .. } => {
            (Code::PolicyUnreachable, format!("Serve HTTPS on port 443 of {host}"))
        }
        FetchError::Timeout { .. } => (
            Code::PolicyTimeout,
            format!("Make {url} answer promptly; senders give up after their timeout"),
        ),
        FetchError::Certificate { problem, .. } => (
            cert_code(problem, false),
            format!(
                "Install a certificate for {host} from a public CA (e.g. by ACME), with the full chain"
            ),
        ),
        FetchError::Tls { .. } => {
            (Code::PolicyTlsFailed, format!("Offer TLS 1.2 or 1.3 on {host}"))
        }
        FetchError::Redirect { .. } => (
            Code::PolicyRedirect,
            format!(
                "Serve the policy directly at {url} with status 200 (exempt this path from HTTP→HTTPS or www redirects)"
            ),
        ),
        FetchError::Status { .. } => {
            (Code::PolicyHttpStatus, format!("Serve the policy file at {url} with status 200"))
        }
        FetchError::ContentType { body, .. } => {
            j.push(
                Finding::new(Code::PolicyContentType, message)
                    .subject(url)
                    .fix("Send the header: Content-Type: text/plain (nginx: `default_type text/plain;` in the location; Apache: `ForceType text/plain`)"),
            );
            return Some(body.clone());
        }
        FetchError::TooLarge { .. } => (
            Code::PolicyTooLarge,
            "Serve only the policy: a few lines of version, mode, mx and max_age".to_owned(),
        ),
        _ => (Code::PolicyFetchFailed, String::new()),
    };
    let mut f = Finding::new(code, message).subject(url);
    if !fix.is_empty() {
        f = f.fix(fix);
    }
    j.push(f);
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use crate::observations::Observations;
    use crate::report::Outcome;
    use mtasts_net::{DnsError, FetchError};
    use mtasts_proto::Policy;

    #[test]
    fn valid_enforce_policy() {
        let r = run(&good());
        assert_eq!(severity_of(&r, Code::PolicyOk), Some(Severity::Ok));
        assert_eq!(r.policy.mode.as_deref(), Some("enforce"));
        assert_eq!(r.policy.mx, ["mx1.example.com"]);
    }

    #[test]
    fn fetch_failures_map_to_codes() {
        for (err, code) in [
            (FetchError::Status { status: 404 }, Code::PolicyHttpStatus),
            (FetchError::Redirect { status: 301, location: None }, Code::PolicyRedirect),
            (FetchError::TooLarge { limit: 65536, announced: None }, Code::PolicyTooLarge),
            (FetchError::Connect { reason: "refused".into() }, Code::PolicyUnreachable),
            (
                FetchError::Resolve(DnsError::NxDomain {
                    name: "mta-sts.example.com".into(),
                    negative_ttl: None,
                }),
                Code::PolicyHostMissing,
            ),
        ] {
            let r = run(&Observations { policy: Err(err), ..good() });
            assert_eq!(severity_of(&r, code), Some(Severity::Error), "{code}: {:?}", codes(&r));
            assert_eq!(severity_of(&r, Code::PolicyOk), None);
        }
    }

    #[test]
    fn policy_host_dns_failure_is_incomplete() {
        let r = run(&Observations {
            policy: Err(FetchError::Resolve(servfail("mta-sts.example.com"))),
            ..good()
        });
        assert_eq!(severity_of(&r, Code::PolicyHostDnsError), Some(Severity::Error));
        assert_eq!(r.outcome, Outcome::CouldNotCheck);
    }

    #[test]
    fn wrong_content_type_is_still_validated() {
        let r = run(&Observations {
            policy: Err(FetchError::ContentType {
                found: Some("text/html".into()),
                body: ENFORCE.as_bytes().to_vec(),
            }),
            ..good()
        });
        assert_eq!(severity_of(&r, Code::PolicyContentType), Some(Severity::Error));
        assert_eq!(severity_of(&r, Code::PolicyOk), Some(Severity::Ok));
    }

    /// Issue 15, defect 6: the body is parsed from bytes; non-UTF-8 is the parser's error.
    #[test]
    fn defect_6_non_utf8_policy_is_the_parsers_error() {
        let mut obs = good();
        if let Ok(f) = &mut obs.policy {
            f.body = b"version: STSv1\nmode: enforce\nmx: mx1.ex\xffample.com\nmax_age: 604800\n"
                .to_vec();
        }
        let r = run(&obs);
        let f = r.findings.iter().find(|f| f.code == Code::PolicyInvalid).unwrap();
        assert!(f.message.contains("UTF-8"), "{}", f.message);
        assert!(f.message.contains("line 3"), "{}", f.message);
    }

    /// Issue 15, defect 7: a max_age fix keeps the extension fields and says to change the id.
    #[test]
    fn defect_7_max_age_fix_keeps_extensions_and_changes_the_id() {
        let mut obs = good();
        if let Ok(f) = &mut obs.policy {
            f.body = b"version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 3600\nx-owner: ops\n".to_vec();
        }
        let r = run(&obs);
        let f = r.findings.iter().find(|f| f.code == Code::PolicyMaxAgeShort).unwrap();
        let fix = f.fix.as_ref().unwrap();
        let p = Policy::parse(fix.policy().unwrap()).unwrap().value;
        assert_eq!(p.max_age().seconds(), super::MAX_AGE_LOW);
        assert_eq!(p.extensions()[0].name(), "x-owner");
        assert!(fix.text().contains("change the TXT record's id"), "{}", fix.text());
        assert!(fix.records()[0].contains("id=20261203100000"), "{:?}", fix.records());
    }

    #[test]
    fn modes_and_lifetimes() {
        let mut obs = good();
        obs.policy = fetched(TESTING);
        assert_eq!(severity_of(&run(&obs), Code::PolicyModeTesting), Some(Severity::Info));
        obs.policy = fetched("version: STSv1\nmode: none\nmax_age: 86400\n");
        assert_eq!(severity_of(&run(&obs), Code::PolicyModeNone), Some(Severity::Warning));
        obs.policy =
            fetched("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 86400\n");
        assert_eq!(severity_of(&run(&obs), Code::PolicyMaxAgeLow), Some(Severity::Info));
    }

    #[test]
    fn expiring_policy_certificate() {
        let mut obs = good();
        if let Ok(f) = &mut obs.policy {
            f.certificate = Some(cert("mta-sts.example.com", 3));
        }
        assert_eq!(severity_of(&run(&obs), Code::PolicyCertExpiring), Some(Severity::Warning));
    }

    #[test]
    fn policy_without_txt_record() {
        let obs = Observations { sts_txt: Err(nodata("_mta-sts.example.com")), ..good() };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::StsTxtMissing), Some(Severity::Error));
        assert!(r.suggestions.sts_txt.is_some());
    }
}
