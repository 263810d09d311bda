//! The MX set (RFC 5321 §5.1, RFC 7505) and whether the policy's `mx:` patterns cover it
//! (RFC 8461 §4.1).

use mtasts_proto::generate::amended_policy;
use mtasts_proto::{Mode, MxKind, Policy};

use super::Judging;
use crate::finding::{Code, Finding, Severity};
use crate::fix::Fix;
use crate::report::MxView;

/// Judges the MX answer for the domain itself. Returns false when the domain does not exist or
/// receives no mail by any route, so there is nothing more to judge.
pub(crate) fn domain_exists(j: &mut Judging<'_>) -> bool {
    let d = j.obs.domain.as_str().to_owned();
    match &j.obs.mx {
        Ok(set) => {
            match set.kind {
                MxKind::Null => j.push(Finding::new(
                    Code::MxNull,
                    format!("{d} has a null MX (\"0 .\"): it accepts no mail, so it needs neither MTA-STS nor TLS-RPT"),
                )),
                MxKind::NullMixed => j.push(
                    Finding::new(
                        Code::MxNullMixed,
                        format!(
                            "{d} publishes a null MX (\"0 .\") beside {}: senders may refuse to deliver at all",
                            set.names().join(", ")
                        ),
                    )
                    .fix(format!(
                        "Delete the \"0 .\" MX record if {d} receives mail, or every other MX record if it does not"
                    )),
                ),
                MxKind::Implicit => j.push(Finding::new(
                    Code::MxImplicit,
                    format!("{d} has no MX records; senders deliver to {d} itself"),
                )),
                _ => {}
            }
            true
        }
        Err(e) if e.is_nx_domain() => {
            j.push(Finding::new(Code::DomainNotFound, format!("{d} does not exist (NXDOMAIN)")));
            j.out.does_not_exist();
            false
        }
        Err(e) if e.is_not_found() => {
            j.push(Finding::new(
                Code::DomainNotFound,
                format!("{d} has neither MX nor address records: it receives no mail"),
            ));
            false
        }
        Err(e) => {
            j.push(Finding::new(Code::MxDnsError, e.to_string()));
            j.out.incomplete();
            true
        }
    }
}

/// Builds the MX views and judges the `mx:` patterns against the MX hosts.
pub(crate) fn judge(j: &mut Judging<'_>, policy: Option<&Policy>) {
    let Ok(set) = &j.obs.mx else { return };
    let hosts = set.hosts.clone();
    j.out.report.mx = hosts
        .iter()
        .map(|h| MxView {
            host: h.exchange.clone(),
            preference: h.preference,
            matched_by: policy
                .and_then(|p| p.matching_pattern(&h.exchange))
                .map(ToString::to_string),
            tls_ok: None,
            probe: None,
        })
        .collect();
    let Some(policy) = policy else { return };
    if policy.mode() == Mode::None || hosts.is_empty() {
        return;
    }
    let severity = if policy.mode() == Mode::Enforce { Severity::Error } else { Severity::Warning };
    let uncovered: Vec<String> =
        j.out.report.mx.iter().filter(|v| v.matched_by.is_none()).map(|v| v.host.clone()).collect();
    let amended = amended_policy(policy, policy.mode(), &uncovered, None).ok();
    for host in &uncovered {
        let too_deep = policy
            .mx()
            .iter()
            .find(|p| p.is_wildcard() && host.ends_with(&format!(".{}", p.domain().as_str())));
        let (code, message) = match too_deep {
            Some(p) => (
                Code::MxWildcardTooDeep,
                format!(
                    "MX {host} is not matched: {p} covers exactly one label (e.g. x.{}), not {host}",
                    p.domain().as_str()
                ),
            ),
            None => (
                Code::MxNotCovered,
                format!("MX {host} is not matched by any mx: line of the policy"),
            ),
        };
        let what = if policy.mode() == Mode::Enforce {
            "; senders enforcing MTA-STS will not deliver to it"
        } else {
            "; senders will report failures for it"
        };
        let words = format!("Add the line `mx: {host}` to the policy.");
        let fix = match &amended {
            Some(p) => Fix::policy_change(words, &j.obs.domain, p, j.now),
            None => Fix::new(format!("{words} Then change the id in the TXT record.")),
        };
        j.push(
            Finding::new(code, format!("{message}{what}"))
                .subject(host)
                .severity(severity)
                .fix(fix),
        );
    }
    if uncovered.is_empty() {
        let n = j.out.report.mx.len();
        j.push(Finding::new(Code::MxCovered, format!("all {n} MX hosts match the policy")));
    } else if let Some(p) = &amended {
        j.out.report.suggestions.policy = Some(p.to_string());
        j.out.report.suggestions.sts_txt = Some(mtasts_proto::generate::sts_txt(
            &j.obs.domain,
            &mtasts_proto::generate::policy_id(j.now),
        ));
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.exchange.as_str()).collect();
    for pattern in policy.mx() {
        if !names.iter().any(|h| pattern.matches(h)) {
            j.push(
                Finding::new(
                    Code::MxPatternUnused,
                    format!("mx: {pattern} matches none of the MX hosts ({})", names.join(", ")),
                )
                .subject(pattern.to_string())
                .fix(format!("Remove `mx: {pattern}` if the host is retired (and change the id), or restore its MX record")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use crate::observations::{Observations, Probes};
    use crate::report::Outcome;
    use mtasts_net::DnsError;
    use mtasts_proto::{MxRecord, MxSet, Policy};

    fn with_mx(records: &[(u16, &str)], policy: &str) -> Observations {
        let recs = records.iter().map(|(p, h)| MxRecord::new(*p, *h)).collect();
        let set = MxSet::from_records(recs);
        let probes = Probes::Done(set.names().iter().map(|h| good_probe(h)).collect());
        Observations { mx: Ok(set), policy: fetched(policy), probes, ..good() }
    }

    #[test]
    fn covered_hosts() {
        let r = run(&good());
        assert_eq!(severity_of(&r, Code::MxCovered), Some(Severity::Ok));
        assert_eq!(r.mx[0].matched_by.as_deref(), Some("mx1.example.com"));
    }

    #[test]
    fn uncovered_host_under_enforce_and_testing() {
        let obs = with_mx(&[(10, "mx1.example.com"), (20, "backup.example.com")], ENFORCE);
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::MxNotCovered), Some(Severity::Error));
        let f = r.findings.iter().find(|f| f.code == Code::MxNotCovered).unwrap();
        let p = Policy::parse(f.fix.as_ref().unwrap().policy().unwrap()).unwrap().value;
        assert!(p.matching_pattern("backup.example.com").is_some());
        assert_eq!(r.suggestions.policy.as_deref(), f.fix.as_ref().unwrap().policy());
        let obs = with_mx(&[(10, "mx1.example.com"), (20, "backup.example.com")], TESTING);
        assert_eq!(severity_of(&run(&obs), Code::MxNotCovered), Some(Severity::Warning));
    }

    #[test]
    fn wildcard_covers_one_label_only() {
        let policy = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 604800\n";
        let r = run(&with_mx(&[(10, "a.b.example.com")], policy));
        assert_eq!(severity_of(&r, Code::MxWildcardTooDeep), Some(Severity::Error));
        assert_eq!(severity_of(&r, Code::MxPatternUnused), Some(Severity::Warning));
    }

    /// Issue 15, defect 1: a domain with only a null MX accepts no mail.
    #[test]
    fn defect_1_null_mx_is_not_told_to_deploy() {
        let obs = Observations {
            mx: Ok(MxSet::from_records(vec![MxRecord::new(0, ".")])),
            probes: Probes::Done(vec![]),
            ..absent()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::MxNull), Some(Severity::Info));
        for code in [Code::StsNotDeployed, Code::TlsRptMissing] {
            assert_eq!(severity_of(&r, code), None, "{code}: {:?}", codes(&r));
        }
        assert!(r.mx.is_empty());
        assert!(r.suggestions.policy.is_none());
        assert_eq!(crate::exit_code([&r]), 0);
    }

    /// Issue 15, defect 1: a null MX beside others is its own error, and no empty mx: line.
    #[test]
    fn defect_1_null_mx_mixed_with_others() {
        let mut obs = with_mx(&[(0, "."), (10, "mx1.example.com")], ENFORCE);
        obs.sts_txt = Err(nodata("_mta-sts.example.com"));
        obs.policy = absent().policy;
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::MxNullMixed), Some(Severity::Error));
        assert_eq!(r.mx.len(), 1);
        let starter = r.suggestions.policy.as_deref().unwrap();
        assert!(!starter.lines().any(|l| l.trim() == "mx:"), "{starter}");
        assert!(starter.contains("mx: mx1.example.com"));
        assert!(r.mx.iter().all(|m| !m.host.is_empty()));
    }

    #[test]
    fn implicit_mx_and_missing_domain() {
        let d = mtasts_proto::DomainName::parse_ascii("example.com").unwrap();
        let obs = Observations { mx: Ok(MxSet::implicit(&d)), ..good() };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::MxImplicit), Some(Severity::Info));
        let obs = Observations {
            mx: Err(DnsError::NxDomain { name: "example.com".into(), negative_ttl: None }),
            ..good()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::DomainNotFound), Some(Severity::Error));
        assert_eq!(r.findings.len(), 1);
        // NXDOMAIN is an answer, not "could not check" (issue 10).
        assert_eq!(r.outcome, Outcome::DoesNotExist);
        assert_eq!(crate::ExitStatus::of(&r), crate::ExitStatus::Problems);
        let obs = Observations { mx: Err(servfail("example.com")), ..good() };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::MxDnsError), Some(Severity::Error));
        assert_eq!(r.outcome, Outcome::CouldNotCheck);
    }
}
