//! A domain without MTA-STS: the records and the starter policy to publish, in RFC 8461 §8.1's
//! order (policy host, then policy, then TXT record). A domain that receives no mail (RFC 7505
//! null MX) is left alone.

use mtasts_proto::generate::{STARTER_MAX_AGE, policy_for, policy_id, sts_txt};
use mtasts_proto::{Mode, MxKind, Policy};

use super::{Judging, StsState};
use crate::finding::{Code, Finding};
use crate::fix::Fix;

pub(crate) fn judge(j: &mut Judging<'_>, sts: &StsState, policy: Option<&Policy>) {
    if *sts != StsState::Absent || policy.is_some() || j.obs.policy.is_ok() {
        return;
    }
    if matches!(&j.obs.mx, Ok(set) if set.kind == MxKind::Null) {
        return;
    }
    let d = j.obs.domain.clone();
    let record = sts_txt(&d, &policy_id(j.now));
    let starter = policy_for(Mode::Testing, STARTER_MAX_AGE, &j.hosts()).ok();
    j.out.report.suggestions.sts_txt = Some(record.clone());
    j.out.report.suggestions.policy = starter.as_ref().map(ToString::to_string);
    let mut fix = Fix::new(format!(
        "Publish, in this order (RFC 8461 §8.1: policy before TXT):\n\
         1. an HTTPS host {} (A/AAAA or CNAME) with a certificate valid for that name\n\
         2. the policy below at {}, served as text/plain\n\
         3. the TXT record below",
        d.policy_host(),
        d.policy_url()
    ));
    if let Some(p) = &starter {
        fix = fix.serve_policy(p);
    }
    j.push(
        Finding::new(
            Code::StsNotDeployed,
            format!(
                "{} publishes no MTA-STS policy: a man in the middle can strip STARTTLS undetected",
                d.as_str()
            ),
        )
        .fix(fix.publish(record)),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use mtasts_proto::{Mode, Policy};

    #[test]
    fn starter_records_for_a_domain_without_mta_sts() {
        let r = run(&absent());
        assert_eq!(severity_of(&r, Code::StsNotDeployed), Some(Severity::Warning));
        let f = r.findings.iter().find(|f| f.code == Code::StsNotDeployed).unwrap();
        let fix = f.fix.as_ref().unwrap();
        let p = Policy::parse(fix.policy().unwrap()).unwrap().value;
        assert_eq!(p.mode(), Mode::Testing);
        assert!(p.matching_pattern("mx1.example.com").is_some());
        assert!(fix.records()[0].starts_with("_mta-sts.example.com. 3600 IN TXT"));
        // Nothing about the unreachable policy host: it is one absence, said once.
        assert_eq!(severity_of(&r, Code::PolicyHostMissing), None);
    }
}
