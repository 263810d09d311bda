//! The `_mta-sts` TXT record (RFC 8461 §3.1): selection among the TXT records at the name,
//! syntax, and CNAME delegation (§8.2).

use mtasts_proto::generate::{policy_id, sts_txt};
use mtasts_proto::{PolicyId, StsDiscoveryError, select_sts_record};

use super::{Judging, quote_all};
use crate::finding::{Code, Finding};
use crate::fix::Fix;

/// What the TXT record step concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StsState {
    /// One valid record, with this id.
    Valid(PolicyId),
    /// No `v=STSv1;` record: the domain has no MTA-STS as far as senders know.
    Absent,
    /// Records exist but senders ignore them (several, or invalid).
    Broken,
    /// The DNS could not answer.
    Unknown,
}

pub(crate) fn judge(j: &mut Judging<'_>) -> StsState {
    let domain = &j.obs.domain;
    let name = domain.mta_sts_txt_name();
    let answer = match &j.obs.sts_txt {
        Ok(a) => a,
        Err(e) if e.is_not_found() => return StsState::Absent,
        Err(e) => {
            j.push(Finding::new(Code::StsTxtDnsError, e.to_string()).subject(&name));
            j.out.incomplete();
            return StsState::Unknown;
        }
    };
    if let Some(target) = answer.cname_chain.last() {
        j.push(
            Finding::new(Code::StsTxtDelegated, format!("{name} is a CNAME to {target}"))
                .subject(&name),
        );
    }
    let fresh = sts_txt(domain, &policy_id(j.now));
    match select_sts_record(&answer.records) {
        Ok(found) => {
            for discarded in &found.discarded {
                note_discarded(j, &name, discarded);
            }
            j.push_warnings(Code::StsTxtWarning, &found.record.warnings, &name);
            j.push(Finding::new(Code::StsTxtOk, format!("\"{}\"", found.raw)).subject(&name));
            j.out.report.sts_record = Some(found.raw);
            StsState::Valid(found.record.value.id().clone())
        }
        Err(StsDiscoveryError::NoRecord { discarded }) => {
            for d in &discarded {
                note_discarded(j, &name, d);
            }
            StsState::Absent
        }
        Err(StsDiscoveryError::Multiple { records }) => {
            j.push(
                Finding::new(
                    Code::StsTxtMultiple,
                    format!("{} v=STSv1 records: {}", records.len(), quote_all(&records)),
                )
                .subject(&name)
                .fix(Fix::new("Delete all but one, e.g. keep only this one:").publish(fresh)),
            );
            StsState::Broken
        }
        Err(StsDiscoveryError::Invalid { raw, error }) => {
            j.push(
                Finding::new(Code::StsTxtInvalid, format!("\"{raw}\": {error}"))
                    .subject(&name)
                    .fix(Fix::new("Replace it with:").publish(fresh)),
            );
            StsState::Broken
        }
        Err(other) => {
            j.push(Finding::new(Code::StsTxtInvalid, other.to_string()).subject(&name));
            StsState::Broken
        }
    }
}

fn note_discarded(j: &mut Judging<'_>, name: &str, record: &str) {
    // Only records that look like a failed attempt at an STS record deserve a word.
    if record.to_ascii_lowercase().contains("stsv1") {
        j.push(
            Finding::new(
                Code::StsTxtDiscarded,
                format!("\"{record}\" is ignored: a record must begin with exactly v=STSv1;"),
            )
            .subject(name),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use crate::report::Outcome;

    #[test]
    fn one_valid_record() {
        let r = run(&good());
        assert_eq!(severity_of(&r, Code::StsTxtOk), Some(Severity::Ok));
        assert_eq!(r.sts_record.as_deref(), Some("v=STSv1; id=20260101;"));
    }

    #[test]
    fn two_records_are_multiple() {
        let obs = crate::observations::Observations {
            sts_txt: txt(&["v=STSv1; id=1;", "v=STSv1; id=2;"]),
            ..good()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::StsTxtMultiple), Some(Severity::Error));
        let fix = r.findings.iter().find(|f| f.code == Code::StsTxtMultiple).unwrap();
        assert!(
            fix.fix.as_ref().unwrap().records()[0].starts_with("_mta-sts.example.com. 3600 IN TXT")
        );
    }

    /// Issue 15, defect 3, as the checker reports it.
    #[test]
    fn defect_3_version_without_semicolon_is_discarded_not_multiple() {
        let obs = crate::observations::Observations {
            sts_txt: txt(&["v=STSv1", "v=STSv1; id=20240101"]),
            ..good()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::StsTxtOk), Some(Severity::Ok), "{:?}", codes(&r));
        assert_eq!(severity_of(&r, Code::StsTxtDiscarded), Some(Severity::Warning));
        assert_eq!(severity_of(&r, Code::StsTxtMultiple), None);
    }

    #[test]
    fn invalid_record_and_dns_failure() {
        let obs =
            crate::observations::Observations { sts_txt: txt(&["v=STSv1; id=a-b;"]), ..good() };
        assert_eq!(severity_of(&run(&obs), Code::StsTxtInvalid), Some(Severity::Error));
        let obs = crate::observations::Observations {
            sts_txt: Err(servfail("_mta-sts.example.com")),
            ..good()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::StsTxtDnsError), Some(Severity::Error));
        assert_eq!(r.outcome, Outcome::CouldNotCheck);
    }

    #[test]
    fn delegated_record_is_noted() {
        let mut obs = good();
        if let Ok(a) = &mut obs.sts_txt {
            a.cname_chain = vec!["_mta-sts.provider.example".into()];
        }
        assert_eq!(severity_of(&run(&obs), Code::StsTxtDelegated), Some(Severity::Info));
    }
}
