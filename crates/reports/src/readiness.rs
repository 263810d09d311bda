//! May a domain move from `mode: testing` to `mode: enforce`? A pure verdict from the report
//! data (RFC 8461 §5: under `testing`, senders deliver anyway and report failures by TLS-RPT;
//! under `enforce`, each of those failures is mail not delivered). `serve` uses it to guard
//! promotion; `mtasts report readiness` prints it.
//!
//! Ready when, over the window:
//! - there are reports on at least [`Criteria::clean_days`] of the last days, and the most
//!   recent run of days with reports has no failed session (more precisely: a failure rate at
//!   most [`Criteria::max_failure_rate`]);
//! - at least [`Criteria::min_reporters`] organisations reported (one big sender alone may not
//!   reach every MX);
//! - no sender reported, in the clean period demanded (the last [`Criteria::clean_days`] days
//!   reported), a policy other than the one published now (a
//!   sender on a stale policy would enforce the old `mx:` list), when the current policy is
//!   known.

use mtasts_store::reports::{DayRow, PolicySeen};
use serde::Serialize;

/// What "ready" demands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    /// Days of clean report data needed.
    pub clean_days: u32,
    /// Largest failure rate accepted in those days (0.0: none).
    pub max_failure_rate: f64,
    /// Distinct reporting organisations needed.
    pub min_reporters: usize,
}

impl Default for Criteria {
    fn default() -> Self {
        Self { clean_days: 14, max_failure_rate: 0.0, min_reporters: 1 }
    }
}

/// What the verdict is based on.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// Sessions per UTC day for the domain (any order).
    pub days: Vec<DayRow>,
    /// Failed sessions by result type over the window.
    pub failures_by_type: Vec<(String, i64)>,
    /// Policies as each organisation reported them.
    pub policies_seen: Vec<PolicySeen>,
    /// The policy published now, one line per element (as senders put it in `policy-string`),
    /// when known.
    pub current_policy: Option<Vec<String>>,
}

impl Evidence {
    /// The evidence for `domain` in `store` from `since` (unix seconds), with the policy
    /// published now when known.
    pub async fn gather(
        store: &mtasts_store::reports::ReportStore,
        domain: &str,
        since: i64,
        current_policy: Option<Vec<String>>,
    ) -> Result<Self, mtasts_store::reports::ReportStoreError> {
        use mtasts_store::reports::FailureKey;
        Ok(Self {
            days: store.days(Some(domain), since).await?,
            failures_by_type: store
                .failures(FailureKey::ResultType, Some(domain), since)
                .await?
                .into_iter()
                .map(|g| (g.key, g.failed))
                .collect(),
            policies_seen: store.policies_seen(domain, since).await?,
            current_policy,
        })
    }
}

/// One reason for (or against) the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable code.
    pub code: &'static str,
    /// In words, with the numbers.
    pub message: String,
    /// Whether it stands in the way.
    pub blocking: bool,
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    /// Ready for `mode: enforce`.
    pub ready: bool,
    /// Consecutive days with reports and no failures (over the rate), ending at the last day
    /// reported.
    pub clean_days: u32,
    /// Organisations that reported.
    pub reporters: Vec<String>,
    /// Why, in order.
    pub reasons: Vec<Reason>,
}

const DAY: i64 = 86_400;

fn normalise(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> =
        lines.iter().map(|l| l.trim().to_ascii_lowercase()).filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

/// The verdict for `evidence` as of `today` (unix seconds of a UTC midnight).
pub fn judge(evidence: &Evidence, criteria: &Criteria, today: i64) -> Readiness {
    let mut days = evidence.days.clone();
    days.sort_by_key(|d| d.day);
    // Sum per day (several rows a day when the caller merged domains).
    let mut per_day: Vec<(i64, i64, i64)> = Vec::new();
    for d in &days {
        match per_day.last_mut() {
            Some((day, ok, failed)) if *day == d.day => {
                *ok += d.successful;
                *failed += d.failed;
            }
            _ => per_day.push((d.day, d.successful, d.failed)),
        }
    }
    let clean = |ok: i64, failed: i64| {
        let total = ok + failed;
        total > 0 && (failed as f64) <= criteria.max_failure_rate * total as f64
    };
    let mut clean_days = 0u32;
    let mut expected = per_day.last().map(|d| d.0);
    for &(day, ok, failed) in per_day.iter().rev() {
        if Some(day) != expected || !clean(ok, failed) {
            break;
        }
        clean_days += 1;
        expected = Some(day - DAY);
    }
    let clean_since = per_day.last().map(|d| d.0 - i64::from(clean_days.saturating_sub(1)) * DAY);
    let mut reporters: Vec<String> =
        evidence.policies_seen.iter().map(|p| p.organization.clone()).collect();
    reporters.sort();
    reporters.dedup();

    let mut reasons = Vec::new();
    let total_failed: i64 = per_day.iter().map(|d| d.2).sum();
    let total: i64 = per_day.iter().map(|d| d.1 + d.2).sum();
    if per_day.is_empty() {
        reasons.push(Reason {
            code: "no-reports",
            message: "no TLS-RPT reports yet: publish a _smtp._tls record and wait for senders' daily reports".into(),
            blocking: true,
        });
    } else if clean_days < criteria.clean_days {
        reasons.push(Reason {
            code: "too-few-clean-days",
            message: format!(
                "{clean_days} clean day(s) of reports so far; {} needed",
                criteria.clean_days
            ),
            blocking: true,
        });
    } else {
        reasons.push(Reason {
            code: "clean-days",
            message: format!("{clean_days} consecutive days of reports without failures"),
            blocking: false,
        });
    }
    if total_failed > 0 {
        let kinds: Vec<String> =
            evidence.failures_by_type.iter().map(|(k, n)| format!("{k} {n}")).collect();
        reasons.push(Reason {
            code: "failures",
            message: format!(
                "{total_failed} of {total} sessions failed in the window ({}); under enforce that mail would not be delivered",
                if kinds.is_empty() { "kinds unknown".to_owned() } else { kinds.join(", ") }
            ),
            // Failures before the clean period are history; they inform, they do not block.
            blocking: clean_days < criteria.clean_days,
        });
    }
    if !per_day.is_empty() && reporters.len() < criteria.min_reporters {
        reasons.push(Reason {
            code: "too-few-reporters",
            message: format!(
                "reports from {} organisation(s) ({}); {} needed",
                reporters.len(),
                reporters.join(", "),
                criteria.min_reporters
            ),
            blocking: true,
        });
    }
    // A sender on another policy counts when it reported it within the clean period demanded
    // (the last `clean_days` days reported): one that moved to the current policy since is
    // not stale.
    let stale_since = per_day.last().map(|d| {
        let period = d.0 - i64::from(criteria.clean_days.saturating_sub(1)) * DAY;
        clean_since.map_or(period, |since| since.max(period))
    });
    if let Some(current) = &evidence.current_policy {
        let want = normalise(current);
        let stale: Vec<String> = evidence
            .policies_seen
            .iter()
            .filter(|p| p.policy_type == "sts")
            .filter(|p| stale_since.is_none_or(|since| p.last_day >= since))
            .filter(|p| {
                let lines: Vec<String> =
                    serde_json::from_str(&p.policy_strings_json).unwrap_or_default();
                normalise(&lines) != want
            })
            .map(|p| p.organization.clone())
            .collect();
        if !stale.is_empty() {
            reasons.push(Reason {
                code: "stale-policy",
                message: format!(
                    "senders reported a policy other than the one published now: {} (they cache the old one until its max_age runs out)",
                    stale.join(", ")
                ),
                blocking: true,
            });
        }
    }
    if let Some(last) = per_day.last().map(|d| d.0)
        && today - last > 3 * DAY
    {
        reasons.push(Reason {
            code: "reports-stopped",
            message: format!("the last report covers a day {} days ago", (today - last) / DAY),
            blocking: true,
        });
    }
    let ready = !reasons.iter().any(|r| r.blocking);
    Readiness { ready, clean_days, reporters, reasons }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TODAY: i64 = 20_000 * DAY;

    fn day(n: i64, ok: i64, failed: i64) -> DayRow {
        DayRow {
            domain: "example.com".into(),
            day: TODAY - n * DAY,
            successful: ok,
            failed,
            reports: 1,
        }
    }

    fn seen(org: &str, lines: &[&str], last: i64) -> PolicySeen {
        PolicySeen {
            organization: org.into(),
            policy_type: "sts".into(),
            policy_strings_json: serde_json::to_string(lines).unwrap(),
            last_day: TODAY - last * DAY,
            sessions: 10,
        }
    }

    const POLICY: [&str; 4] =
        ["version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"];

    fn evidence(days: Vec<DayRow>) -> Evidence {
        Evidence {
            days,
            failures_by_type: vec![],
            policies_seen: vec![seen("Google", &POLICY, 1)],
            current_policy: Some(POLICY.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn fourteen_clean_days_are_ready() {
        let r = judge(
            &evidence((1..=14).map(|n| day(n, 100, 0)).collect()),
            &Criteria::default(),
            TODAY,
        );
        assert!(r.ready, "{r:?}");
        assert_eq!(r.clean_days, 14);
    }

    #[test]
    fn a_recent_failure_resets_the_clean_run() {
        let mut days: Vec<DayRow> = (1..=20).map(|n| day(n, 100, 0)).collect();
        days[2] = day(3, 100, 2);
        let mut e = evidence(days);
        e.failures_by_type = vec![("certificate-expired".into(), 2)];
        let r = judge(&e, &Criteria::default(), TODAY);
        assert!(!r.ready);
        assert_eq!(r.clean_days, 2);
        let codes: Vec<_> = r.reasons.iter().map(|r| r.code).collect();
        assert_eq!(codes, ["too-few-clean-days", "failures"]);
        assert!(r.reasons[1].message.contains("certificate-expired 2"));
        // Old failures before 14 clean days inform without blocking.
        let mut days: Vec<DayRow> = (1..=20).map(|n| day(n, 100, 0)).collect();
        days[17] = day(18, 100, 2);
        let r = judge(&evidence(days), &Criteria::default(), TODAY);
        assert!(r.ready, "{r:?}");
        assert!(r.reasons.iter().any(|x| x.code == "failures" && !x.blocking));
    }

    #[test]
    fn a_gap_a_stale_sender_no_data_and_silence_block() {
        let mut days: Vec<DayRow> = (1..=20).map(|n| day(n, 100, 0)).collect();
        days.remove(5);
        let r = judge(&evidence(days), &Criteria::default(), TODAY);
        assert_eq!(r.clean_days, 5, "a day without reports ends the run");
        let mut e = evidence((1..=14).map(|n| day(n, 100, 0)).collect());
        e.policies_seen.push(seen(
            "Microsoft",
            &["version: STSv1", "mode: testing", "mx: old.example.com", "max_age: 86400"],
            2,
        ));
        let r = judge(&e, &Criteria::default(), TODAY);
        assert!(!r.ready);
        assert!(
            r.reasons.iter().any(|x| x.code == "stale-policy" && x.message.contains("Microsoft")),
            "{r:?}"
        );
        let r = judge(&evidence(vec![]), &Criteria::default(), TODAY);
        assert_eq!(r.reasons[0].code, "no-reports");
        let r = judge(
            &evidence((10..=30).map(|n| day(n, 100, 0)).collect()),
            &Criteria::default(),
            TODAY,
        );
        assert!(r.reasons.iter().any(|x| x.code == "reports-stopped"), "{r:?}");
        let c = Criteria { min_reporters: 2, ..Criteria::default() };
        let r = judge(&evidence((1..=14).map(|n| day(n, 100, 0)).collect()), &c, TODAY);
        assert!(r.reasons.iter().any(|x| x.code == "too-few-reporters"));
    }
}
