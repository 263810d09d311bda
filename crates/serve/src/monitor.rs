//! Monitoring: every hosted domain re-checked periodically, as a sender sees it, with the
//! check's own gathering and judges (`mtasts check`), plus what only the hosting knows.
//!
//! A round runs under the `monitor` lease (one instance of several checks). For each domain
//! the problems are:
//! - the check's findings of severity error or warning (stable codes, `docs/findings.md`):
//!   MX drift under the live policy (`mx-not-covered`, the case that breaks delivery under
//!   `enforce`), MX certificates expired or expiring, STARTTLS missing, the policy host
//!   unreachable or its certificate failing, the `_mta-sts` TXT record removed, the TLS-RPT
//!   record removed, … — except [`EXPECTED`], the hosting's own deliberate choices;
//! - the hosting's: the TXT record announcing another id than the one served
//!   (`hosting-txt-id-stale`), the `mta-sts` CNAME not pointing at the service
//!   (`hosting-cname`), the stored policy-host certificate missing or within
//!   `certificate_warn_days` of its end (`hosting-certificate`; ACME renews 30 days ahead,
//!   so this means renewal is failing).
//!
//! Problems are stored per domain ([`HostingStore::replace_problems`]); one that appears or
//! goes away is alerted once (a webhook, and mail through a relay), and the counts are
//! Prometheus gauges.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use mtasts_check::{Severity, judge::judge};
use mtasts_proto::DomainName;
use mtasts_reports::alert::Webhook;
use mtasts_store::hosting::{DomainProblem, HostedDomain, HostingError, HostingStore};
use serde::Serialize;
use time::OffsetDateTime;

use crate::domains::Manager;

/// Finding codes that describe the hosting's own choices, not problems: a new domain starts
/// in `testing` with a one-day `max_age` on purpose, and a retired one publishes `none`.
pub const EXPECTED: &[&str] = &["policy-max-age-short", "policy-mode-none", "sts-txt-delegated"];

/// The name of the monitoring lease.
const LOCK: &str = "monitor";
/// How long the lease lasts without renewal.
const LEASE_SECS: i64 = 900;

/// How monitoring runs.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// Time between rounds (default 6 hours).
    pub every: Duration,
    /// Warn when the stored policy-host certificate has fewer days left (default 14).
    pub certificate_warn_days: i64,
    /// Domains checked at once (default 8).
    pub concurrency: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self { every: Duration::from_secs(6 * 3600), certificate_warn_days: 14, concurrency: 8 }
    }
}

/// One alert: a problem that appeared or went away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MonitorAlert {
    /// A problem not seen at the previous check.
    DomainProblem {
        /// The problem.
        #[serde(flatten)]
        problem: DomainProblem,
    },
    /// A problem seen at the previous check and gone now.
    DomainProblemResolved {
        /// The problem as it was.
        #[serde(flatten)]
        problem: DomainProblem,
    },
}

/// Where alert mail goes: a relay (`net::submit`), a sender and recipients.
pub use mtasts_net::submit::Mailer as MailAlerts;

/// The alert mail for `alerts` (RFC 5322, plain UTF-8 text): counts in the subject, each
/// problem in the body with its domain, severity, code and subject.
pub fn alert_mail(mailer: &MailAlerts, alerts: &[MonitorAlert], now: OffsetDateTime) -> Vec<u8> {
    let (mut new, mut resolved) = (Vec::new(), Vec::new());
    for a in alerts {
        match a {
            MonitorAlert::DomainProblem { problem } => new.push(problem),
            MonitorAlert::DomainProblemResolved { problem } => resolved.push(problem),
        }
    }
    let line = |p: &DomainProblem| {
        let subject = if p.subject.is_empty() { String::new() } else { format!(" {}:", p.subject) };
        // One line each; a message never carries line breaks into the mail.
        let message = p.message.replace(['\r', '\n'], " ");
        format!("  {} {}{subject} {message} [{}]\r\n", p.severity.to_uppercase(), p.domain, p.code)
    };
    let mut mail = mailer.headers(
        &format!("mtasts serve: {} new problem(s), {} resolved", new.len(), resolved.len()),
        now,
    );
    if !new.is_empty() {
        mail.push_str("New problems:\r\n");
        new.iter().for_each(|p| mail.push_str(&line(p)));
        mail.push_str("\r\n");
    }
    if !resolved.is_empty() {
        mail.push_str("Resolved:\r\n");
        resolved.iter().for_each(|p| mail.push_str(&line(p)));
        mail.push_str("\r\n");
    }
    mail.push_str("Details and fixes: mtasts domain show DOMAIN, or the dashboard.\r\n");
    mail.into_bytes()
}

/// Why a round did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] HostingError),
    /// The DNS servers do not answer: nothing is judged (every domain would look broken).
    #[error("monitoring skipped: {0}")]
    DnsDown(String),
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonitorRound {
    /// Another instance held the lease: nothing was done.
    pub busy: bool,
    /// Domains checked.
    pub checked: usize,
    /// The alerts raised.
    pub alerts: Vec<MonitorAlert>,
}

/// The monitor of one instance.
#[derive(Debug)]
pub struct Monitor {
    manager: Manager,
    options: MonitorOptions,
    webhook: Option<Webhook>,
    mail: Option<MailAlerts>,
    holder: String,
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl Monitor {
    /// A monitor of `manager`'s domains (its checker does the looking), alerting `webhook`.
    pub fn new(
        manager: Manager,
        options: MonitorOptions,
        webhook: Option<Webhook>,
        holder: impl Into<String>,
    ) -> Self {
        Self { manager, options, webhook, mail: None, holder: holder.into() }
    }

    /// Also mails the alerts.
    pub fn with_mail(mut self, mail: MailAlerts) -> Self {
        self.mail = Some(mail);
        self
    }

    fn hosting(&self) -> &HostingStore {
        self.manager.hosting()
    }

    /// What is wrong with `d` now. `None` when the domain could not be checked (no network).
    pub async fn problems_of(
        &self,
        d: &HostedDomain,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<DomainProblem>>, HostingError> {
        let Some(checker) = self.manager.checker() else { return Ok(None) };
        let Ok(name) = DomainName::parse_ascii(&d.domain) else { return Ok(None) };
        let t = unix(now);
        let problem = |code: &str, subject: &str, severity: &str, message: String| DomainProblem {
            domain: d.domain.clone(),
            code: code.to_owned(),
            subject: subject.to_owned(),
            severity: severity.to_owned(),
            message,
            first_seen: t,
            last_seen: t,
        };
        let obs = checker.gatherer().gather(&name).await;
        let report = judge(name.as_str(), &obs, now);
        let mut found: Vec<DomainProblem> = report
            .findings
            .iter()
            .filter(|f| matches!(f.severity, Severity::Error | Severity::Warning))
            .filter(|f| !EXPECTED.contains(&f.code.as_str()))
            .map(|f| {
                let severity = if f.severity == Severity::Error { "error" } else { "warning" };
                problem(
                    f.code.as_str(),
                    f.subject.as_deref().unwrap_or(""),
                    severity,
                    f.message.clone(),
                )
            })
            .collect();
        let live = self.manager.live_dns(checker, &name, d).await;
        for p in live.problems {
            // MX drift and a missing TXT record are the check's findings already.
            if matches!(p.code, "hosting-txt-id-stale" | "hosting-cname") {
                found.push(problem(p.code, &p.subject, "warning", p.message));
            }
        }
        let host = name.policy_host();
        match self.hosting().certificate(&d.domain).await? {
            None => found.push(problem(
                "hosting-certificate",
                &host,
                "error",
                format!("no certificate is stored for {host}: senders cannot fetch the policy"),
            )),
            Some(c) => {
                let days = (c.not_after - t).div_euclid(86_400);
                if days < self.options.certificate_warn_days {
                    found.push(problem(
                        "hosting-certificate",
                        &host,
                        if c.not_after <= t { "error" } else { "warning" },
                        format!(
                            "the {} certificate of {host} ends in {days} day(s){}",
                            c.source,
                            if c.source == "acme" {
                                ": ACME renewal is failing (see `mtasts domain show`)"
                            } else {
                                ": store a new one with `mtasts domain cert`"
                            }
                        ),
                    ));
                }
            }
        }
        found.sort_by(|a, b| (&a.code, &a.subject).cmp(&(&b.code, &b.subject)));
        found.dedup_by(|a, b| a.code == b.code && a.subject == b.subject);
        Ok(Some(found))
    }

    /// One round over every hosted domain (see the module docs).
    pub async fn round(&self, now: OffsetDateTime) -> Result<MonitorRound, MonitorError> {
        if !self.hosting().try_lock(LOCK, &self.holder, unix(now), LEASE_SECS).await? {
            return Ok(MonitorRound { busy: true, ..MonitorRound::default() });
        }
        let result = self.round_locked(now).await;
        if let Err(e) = self.hosting().unlock(LOCK, &self.holder).await {
            tracing::warn!(error = %e, "cannot release the monitoring lease (it expires by itself)");
        }
        result
    }

    async fn round_locked(&self, now: OffsetDateTime) -> Result<MonitorRound, MonitorError> {
        let mut round = MonitorRound::default();
        // A dead DNS server is said once, not as a problem of every domain.
        if let Some(checker) = self.manager.checker() {
            checker.dns_reachable().await.map_err(|e| MonitorError::DnsDown(e.to_string()))?;
        }
        // Several domains at a time (a dead MX host costs its timeouts); each check records
        // its own result, so the loop below never awaits the database while checks are
        // suspended holding pooled connections.
        let domains = self.hosting().list(None).await?;
        let mut checks = futures::stream::iter(domains.into_iter().map(|d| async move {
            let Some(found) = self.problems_of(&d, now).await? else {
                return Ok::<_, HostingError>(None);
            };
            let changes = self.hosting().replace_problems(&d.domain, &found, unix(now)).await?;
            self.hosting()
                .try_lock(LOCK, &self.holder, unix(OffsetDateTime::now_utc()), LEASE_SECS)
                .await?;
            Ok(Some(changes))
        }))
        .buffer_unordered(self.options.concurrency.max(1));
        let mut all_changes = Vec::new();
        while let Some(result) = checks.next().await {
            if let Some(changes) = result? {
                round.checked += 1;
                all_changes.push(changes);
            }
        }
        drop(checks);
        for changes in all_changes {
            for p in changes.new {
                tracing::warn!(domain = %p.domain, code = %p.code, subject = %p.subject, "{}", p.message);
                round.alerts.push(MonitorAlert::DomainProblem { problem: p });
            }
            for p in changes.resolved {
                tracing::info!(domain = %p.domain, code = %p.code, subject = %p.subject, "resolved: {}", p.message);
                round.alerts.push(MonitorAlert::DomainProblemResolved { problem: p });
            }
        }
        if let Some(hook) = &self.webhook
            && !round.alerts.is_empty()
            && let Err(e) = hook.send_json(&round.alerts).await
        {
            tracing::warn!("{e}; the problems stay recorded (mtasts domain show)");
        }
        if let Some(m) = &self.mail
            && !round.alerts.is_empty()
        {
            let message = alert_mail(m, &round.alerts, now);
            if let Err(e) = m.send(&message).await {
                tracing::warn!(
                    "alert mail not sent: {e}; the problems stay recorded (mtasts domain show)"
                );
            }
        }
        let all = self.hosting().problems(None).await?;
        for severity in ["error", "warning"] {
            let n = all.iter().filter(|p| p.severity == severity).count();
            metrics::gauge!("mtasts_serve_domain_problems", "severity" => severity).set(n as f64);
        }
        metrics::gauge!("mtasts_serve_monitor_last_round_seconds").set(unix(now) as f64);
        Ok(round)
    }

    /// Runs a round at once and then every `options.every` until `shutdown` resolves; a round
    /// that fails (the database gone) is logged once until one works again.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            match self.round(OffsetDateTime::now_utc()).await {
                Ok(r) => {
                    if failing {
                        tracing::info!("monitoring works again");
                        failing = false;
                    }
                    if !r.busy {
                        tracing::info!(
                            checked = r.checked,
                            alerts = r.alerts.len(),
                            "monitoring round done"
                        );
                    }
                }
                Err(e) if !failing => {
                    tracing::error!(error = %e, "monitoring round failed; retrying every round");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.options.every) => {}
            }
        }
    }
}
