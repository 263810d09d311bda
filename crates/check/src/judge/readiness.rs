//! May a `mode: testing` policy move to `enforce`? (RFC 8461 §5.) Yes when the TXT record is
//! valid, every MX host matches the policy and every one passed STARTTLS with a valid
//! certificate. What the TLS-RPT reports say is for the caller to add (`serve` has them).

use mtasts_proto::generate::{ENFORCE_MAX_AGE, amended_policy};
use mtasts_proto::{Mode, Policy};

use super::{Judging, StsState};
use crate::finding::{Code, Finding};
use crate::fix::Fix;
use crate::report::MxView;

/// Whether every MX host in `mx` is covered by the policy and passed the TLS checks.
pub fn mx_ready(mx: &[MxView]) -> bool {
    !mx.is_empty() && mx.iter().all(|m| m.matched_by.is_some() && m.tls_ok == Some(true))
}

pub(crate) fn judge(j: &mut Judging<'_>, sts: &StsState, policy: Option<&Policy>) {
    let Some(policy) = policy else { return };
    if policy.mode() != Mode::Testing || !matches!(sts, StsState::Valid(_)) {
        return;
    }
    if !mx_ready(&j.out.report.mx) {
        return;
    }
    let max_age = policy.max_age().seconds().max(ENFORCE_MAX_AGE);
    let mut finding = Finding::new(
        Code::PolicyReadyToEnforce,
        "every MX host matches the policy and passes STARTTLS with a valid certificate; \
         if your TLS-RPT reports show no failures, switch to enforce",
    );
    if let Ok(enforce) = amended_policy(policy, Mode::Enforce, &[], Some(max_age)) {
        finding = finding.fix(Fix::policy_change(
            "Switch to mode: enforce.",
            &j.obs.domain,
            &enforce,
            j.now,
        ));
    }
    j.push(finding);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::Code;
    use crate::observations::{Observations, Probes};
    use mtasts_proto::{Mode, Policy};

    #[test]
    fn testing_policy_with_good_hosts_is_ready() {
        let r = run(&Observations { policy: fetched(TESTING), ..good() });
        let f = r.findings.iter().find(|f| f.code == Code::PolicyReadyToEnforce).unwrap();
        let p = Policy::parse(f.fix.as_ref().unwrap().policy().unwrap()).unwrap().value;
        assert_eq!(p.mode(), Mode::Enforce);
    }

    #[test]
    fn not_ready_without_probes_or_with_a_failing_host() {
        let r = run(&Observations { policy: fetched(TESTING), probes: Probes::Off, ..good() });
        assert_eq!(severity_of(&r, Code::PolicyReadyToEnforce), None);
        let r = run(&Observations {
            policy: fetched(TESTING),
            probes: Probes::Done(vec![no_starttls_probe("mx1.example.com")]),
            ..good()
        });
        assert_eq!(severity_of(&r, Code::PolicyReadyToEnforce), None);
        // Already enforce: nothing to say.
        assert_eq!(severity_of(&run(&good()), Code::PolicyReadyToEnforce), None);
    }
}
