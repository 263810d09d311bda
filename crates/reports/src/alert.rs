//! Alerts on received reports: a domain whose failure rate in a report is above a threshold,
//! or a kind of failure (RFC 8460 §4.3 result type) never reported for it before, is sent to a
//! webhook as JSON. Deciding is pure ([`evaluate`]); sending never fails an ingestion (a dead
//! webhook is logged).

use std::collections::HashSet;

use mtasts_store::reports::NewReport;
use serde::Serialize;

/// When to alert.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertRules {
    /// Failed share of a report's sessions for a domain above which to alert (0.05: 5 %).
    pub failure_rate: f64,
    /// Sessions a report must have for its rate to count (small samples are noise).
    pub min_sessions: i64,
    /// Alert on a result type never seen for the domain.
    pub new_kinds: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self { failure_rate: 0.05, min_sessions: 10, new_kinds: true }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Alert {
    /// Too many sessions failed.
    FailureRate {
        /// The policy domain.
        domain: String,
        /// Who reported.
        organization: String,
        /// Their report-id.
        report_id: String,
        /// Failed sessions.
        failed: i64,
        /// All sessions.
        total: i64,
        /// `failed / total`.
        rate: f64,
        /// In words.
        message: String,
    },
    /// A kind of failure not reported for this domain before.
    NewFailureKind {
        /// The policy domain.
        domain: String,
        /// The RFC 8460 §4.3 result type.
        result_type: String,
        /// Who reported it.
        organization: String,
        /// Their report-id.
        report_id: String,
        /// Failed sessions of that kind.
        failed: i64,
        /// In words.
        message: String,
    },
}

/// The alerts `report` raises for `domain` (one of its policy domains), given the result types
/// already known for it.
pub fn evaluate(
    report: &NewReport,
    domain: &str,
    known: &HashSet<String>,
    rules: &AlertRules,
) -> Vec<Alert> {
    let mut out = Vec::new();
    let policies: Vec<_> =
        report.policies.iter().filter(|p| p.policy_domain.as_deref() == Some(domain)).collect();
    let failed: i64 = policies.iter().map(|p| p.failed).sum();
    let total: i64 = policies.iter().map(|p| p.successful + p.failed).sum();
    if total >= rules.min_sessions && total > 0 {
        let rate = failed as f64 / total as f64;
        if rate > rules.failure_rate {
            out.push(Alert::FailureRate {
                domain: domain.to_owned(),
                organization: report.organization.clone(),
                report_id: report.report_id.clone(),
                failed,
                total,
                rate,
                message: format!(
                    "{domain}: {failed} of {total} sessions failed ({:.1}%) in {}'s report {}; under mode: enforce that mail would not be delivered",
                    rate * 100.0,
                    report.organization,
                    report.report_id
                ),
            });
        }
    }
    if rules.new_kinds {
        let mut seen = HashSet::new();
        for f in policies.iter().flat_map(|p| &p.failures) {
            if known.contains(&f.result_type) || !seen.insert(f.result_type.clone()) {
                continue;
            }
            let n: i64 = policies
                .iter()
                .flat_map(|p| &p.failures)
                .filter(|g| g.result_type == f.result_type)
                .map(|g| g.failed_sessions)
                .sum();
            out.push(Alert::NewFailureKind {
                domain: domain.to_owned(),
                result_type: f.result_type.clone(),
                organization: report.organization.clone(),
                report_id: report.report_id.clone(),
                failed: n,
                message: format!(
                    "{domain}: a new kind of failure, {} ({n} sessions), reported by {}",
                    f.result_type, report.organization
                ),
            });
        }
    }
    out
}

/// Where alerts go: `POST` of `{"alerts": [...]}` as JSON.
#[derive(Clone, Debug)]
pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

impl Webhook {
    /// A webhook at `url`, posted with `client` (its TLS roots and timeouts are the caller's).
    pub fn new(url: impl Into<String>, client: reqwest::Client) -> Self {
        Self { url: url.into(), client }
    }

    /// Posts `alerts`; an error says why in words (the caller logs it).
    pub async fn send(&self, alerts: &[Alert]) -> Result<(), String> {
        self.send_json(alerts).await
    }

    /// Posts `{"alerts": [...]}` of any alert type (`serve`'s monitoring posts its own).
    pub async fn send_json<T: Serialize>(&self, alerts: &[T]) -> Result<(), String> {
        if alerts.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "alerts": alerts }))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the alert webhook {} did not answer: {e}", self.url))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the alert webhook {} answered {}", self.url, response.status()))
        }
    }
}

impl Alert {
    /// The policy domain it is about.
    pub fn domain(&self) -> &str {
        match self {
            Self::FailureRate { domain, .. } | Self::NewFailureKind { domain, .. } => domain,
        }
    }

    /// In words.
    pub fn message(&self) -> &str {
        match self {
            Self::FailureRate { message, .. } | Self::NewFailureKind { message, .. } => message,
        }
    }
}

/// The alert mail for `alerts` (RFC 5322, plain UTF-8 text): the count and domains in the
/// subject, one line per alert in the body.
pub fn alert_mail(
    mailer: &mtasts_net::submit::Mailer,
    alerts: &[Alert],
    now: time::OffsetDateTime,
) -> Vec<u8> {
    let mut domains: Vec<&str> = alerts.iter().map(Alert::domain).collect();
    domains.sort_unstable();
    domains.dedup();
    let mut mail = mailer
        .headers(&format!("TLS-RPT: {} alert(s) for {}", alerts.len(), domains.join(", ")), now);
    for a in alerts {
        mail.push_str(&format!("  {}: {}\r\n", a.domain(), a.message().replace(['\r', '\n'], " ")));
    }
    mail.push_str("\r\nDetails: mtasts report summary --domain DOMAIN\r\n");
    mail.into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mtasts_store::reports::{NewFailure, NewPolicy};

    fn report(ok: i64, failures: &[(&str, i64)]) -> NewReport {
        NewReport {
            organization: "Google Inc.".into(),
            report_id: "r1".into(),
            start: 0,
            end: 86_399,
            contact_info: None,
            channel: "mail".into(),
            submitter: None,
            report_domain: None,
            dkim: None,
            warnings_json: "[]".into(),
            raw_json: "{}".into(),
            received_at: 0,
            policies: vec![NewPolicy {
                policy_type: "sts".into(),
                policy_domain: Some("example.com".into()),
                policy_strings_json: "[]".into(),
                mx_hosts_json: "[]".into(),
                successful: ok,
                failed: failures.iter().map(|f| f.1).sum(),
                extra_json: "{}".into(),
                failures: failures
                    .iter()
                    .map(|(t, n)| NewFailure {
                        result_type: (*t).into(),
                        sending_ip: None,
                        receiving_mx_hostname: None,
                        receiving_mx_helo: None,
                        receiving_ip: None,
                        failed_sessions: *n,
                        additional_information: None,
                        failure_reason_code: None,
                        extra_json: "{}".into(),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn rate_and_new_kinds() {
        let rules = AlertRules::default();
        let none = HashSet::new();
        let a = evaluate(&report(90, &[("certificate-expired", 10)]), "example.com", &none, &rules);
        assert!(matches!(&a[0], Alert::FailureRate { failed: 10, total: 100, .. }), "{a:?}");
        assert!(
            matches!(&a[1], Alert::NewFailureKind { result_type, .. } if result_type == "certificate-expired")
        );
        let known: HashSet<String> = ["certificate-expired".to_owned()].into();
        let a =
            evaluate(&report(1000, &[("certificate-expired", 10)]), "example.com", &known, &rules);
        assert!(a.is_empty(), "1% and a known kind: {a:?}");
        // Too few sessions for a rate; other domains are not this one's business.
        let a = evaluate(&report(2, &[("certificate-expired", 2)]), "example.com", &known, &rules);
        assert!(a.is_empty(), "{a:?}");
        assert!(evaluate(&report(0, &[("x", 50)]), "other.example", &none, &rules).is_empty());
    }
}
