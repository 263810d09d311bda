//! The operations on hosted domains, shared by `mtasts domain` and (later) the REST API:
//! `add`, `set`, `promote`, `retire`, `status`. Each gathers what it needs (live MX, SMTP
//! probes, report data), decides with the pure rules ([`crate::lifecycle`], the check
//! judges, [`mtasts_reports::readiness`]) and stores one new version, refused when the
//! domain changed meanwhile.

use mtasts_check::judge::readiness::mx_ready;
use mtasts_check::{Area, Checker, Severity};
use mtasts_net::dns::resolve_mx;
use mtasts_net::fetch::FetchedPolicy;
use mtasts_proto::generate::{STARTER_MAX_AGE, amended_policy, policy_for};
use mtasts_proto::{DomainName, GenerateError, MaxAge, Mode, MxSet, Policy};
use mtasts_reports::readiness::{Criteria, Evidence, judge};
use mtasts_store::hosting::{
    AcmeStatus, DomainProblem, HostedDomain, HostingError, HostingStore, NewVersion, VersionRow,
};
use mtasts_store::reports::{ReportStore, ReportStoreError};
use serde::Serialize;
use time::OffsetDateTime;

use crate::lifecycle::{
    MAX_AGE_STEPS, NameRefusal, RETIRE_MAX_AGE, Records, Retirement, Service, hosted_name, next_id,
    next_max_age, records, retirement, uncovered,
};

/// Why an operation was refused or could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The name cannot be hosted.
    #[error(transparent)]
    Name(#[from] NameRefusal),
    /// The hosting store refused or failed (not hosted, hosted already, changed meanwhile,
    /// database unavailable).
    #[error(transparent)]
    Store(#[from] HostingError),
    /// The report store failed.
    #[error(transparent)]
    Reports(#[from] ReportStoreError),
    /// The MX records could not be looked up (and none were given).
    #[error("cannot look up the MX records of {domain}: {reason}; give the hosts with --mx")]
    MxLookup {
        /// The domain.
        domain: String,
        /// The DNS error.
        reason: String,
    },
    /// The DNS servers do not answer at all (said once, not for every lookup).
    #[error("{0}")]
    DnsDown(String),
    /// The domain publishes the null MX (RFC 7505): it receives no mail, MTA-STS protects
    /// nothing there.
    #[error(
        "{domain} publishes the null MX (RFC 7505: it accepts no mail); MTA-STS protects mail to a domain, so there is nothing to host"
    )]
    NullMx {
        /// The domain.
        domain: String,
    },
    /// No policy could be generated from the request.
    #[error("{domain}: {error}")]
    Policy {
        /// The domain.
        domain: String,
        /// Which rule broke.
        error: Box<GenerateError>,
    },
    /// A policy file given by the administrator does not parse (the parser names the line and
    /// rule).
    #[error("{domain}: the policy does not parse: {reason}")]
    PolicyText {
        /// The domain.
        domain: String,
        /// The strict parser's words.
        reason: String,
    },
    /// The change would not change the policy.
    #[error("{domain}: the policy would not change (version {version} stays current)")]
    NoChange {
        /// The domain.
        domain: String,
        /// The current version.
        version: i64,
    },
    /// A guard refused the change; each reason says what to fix (`--force` overrides).
    #[error("{domain}: refused: {}", reasons.join("; "))]
    Refused {
        /// The domain.
        domain: String,
        /// What stands in the way, one reason each.
        reasons: Vec<String>,
    },
    /// The operation does not apply to the domain's present state.
    #[error("{domain}: {reason}")]
    State {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
}

/// What promotion to `enforce` demands of the report data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guard {
    /// The readiness criteria (clean days, failure rate, reporters).
    pub criteria: Criteria,
    /// Days of report data looked at.
    pub window_days: i64,
}

impl Default for Guard {
    fn default() -> Self {
        Self { criteria: Criteria::default(), window_days: 30 }
    }
}

/// A change asked for by `set`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The `mx:` lines, replacing the current ones.
    pub mx: Option<Vec<String>>,
    /// The mode.
    pub mode: Option<Mode>,
    /// The `max_age`, seconds.
    pub max_age: Option<u32>,
    /// A whole policy file instead (checked by the strict parser).
    pub policy_text: Option<String>,
    /// Why (kept in the history).
    pub reason: Option<String>,
}

/// The result of an operation that published a version.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// The domain as stored now.
    pub domain: HostedDomain,
    /// The records to publish (the TXT with the new id last, RFC 8461 §8.1).
    pub records: Records,
    /// What the administrator should know (overrides used, old TXT still published, …).
    pub warnings: Vec<String>,
}

/// A domain's state for `show`.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// As stored.
    pub domain: HostedDomain,
    /// Records to publish for the current version.
    pub records: Records,
    /// Where retirement stands.
    pub retirement: Retirement,
    /// Every version, oldest first.
    pub history: Vec<VersionRow>,
    /// What DNS says now, when looked up.
    pub dns: Option<LiveDns>,
    /// The policy host's certificate, if one is stored.
    pub certificate: Option<CertificateInfo>,
    /// The last ACME attempt, if any.
    pub acme: Option<AcmeStatus>,
    /// What monitoring found wrong at its last check.
    pub problems: Vec<DomainProblem>,
    /// When monitoring last checked it, unix seconds.
    pub checked_at: Option<i64>,
}

/// A stored certificate, without its key.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateInfo {
    /// `acme` or `manual`.
    pub source: String,
    /// Valid from, unix seconds.
    pub not_before: i64,
    /// Valid until, unix seconds.
    pub not_after: i64,
}

/// What DNS publishes for a hosted domain now.
#[derive(Clone, Debug, Serialize)]
pub struct LiveDns {
    /// The CNAME target of `mta-sts.<domain>`, if any.
    pub cname: Option<String>,
    /// The `id` the `_mta-sts` TXT record announces, if one valid record is published.
    pub announced_id: Option<String>,
    /// The live MX hosts.
    pub mx: Vec<String>,
    /// MX hosts the current policy does not cover.
    pub uncovered_mx: Vec<String>,
    /// What is wrong, each with its code.
    pub problems: Vec<LiveProblem>,
}

/// One thing wrong between the hosting and the live DNS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveProblem {
    /// `hosting-cname` (the delegation), `hosting-txt` (the `_mta-sts` record missing or
    /// invalid), `hosting-txt-id-stale` (it announces another id), `hosting-mx-drift` (a live
    /// MX host the policy does not cover), `hosting-dns-error` (a lookup failed).
    pub code: &'static str,
    /// What MX host or name it is about, or empty.
    pub subject: String,
    /// In words.
    pub message: String,
}

impl std::fmt::Display for LiveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn live(code: &'static str, subject: impl Into<String>, message: String) -> LiveProblem {
    LiveProblem { code, subject: subject.into(), message }
}

/// The hosted domains and what deciding about them needs.
#[derive(Clone, Debug)]
pub struct Manager {
    hosting: HostingStore,
    reports: Option<ReportStore>,
    checker: Option<Checker>,
    service: Service,
    guard: Guard,
}

fn policy_error(domain: &DomainName, error: impl Into<GenerateError>) -> DomainError {
    DomainError::Policy { domain: domain.to_string(), error: Box::new(error.into()) }
}

fn now_unix(now: OffsetDateTime) -> i64 {
    now.unix_timestamp()
}

impl Manager {
    /// A manager on `hosting`; `checker` does the network work (`None`: offline, `add` needs
    /// the MX hosts given and `promote` is refused without `--force`).
    pub fn new(hosting: HostingStore, checker: Option<Checker>, service: Service) -> Self {
        Self { hosting, reports: None, checker, service, guard: Guard::default() }
    }

    /// Reads report data for promotion from `reports`.
    pub fn with_reports(mut self, reports: ReportStore) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Promotion's demands on the report data.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// The hosting store.
    pub fn hosting(&self) -> &HostingStore {
        &self.hosting
    }

    /// The report store, when promotion and the dashboard read reports.
    pub fn reports(&self) -> Option<&ReportStore> {
        self.reports.as_ref()
    }

    /// The checker, when the manager has network access.
    pub fn checker(&self) -> Option<&Checker> {
        self.checker.as_ref()
    }

    /// The service's own records.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The checker, once its DNS servers answer at all.
    async fn network(&self) -> Result<Option<&Checker>, DomainError> {
        let Some(checker) = &self.checker else { return Ok(None) };
        checker.dns_reachable().await.map_err(|e| DomainError::DnsDown(e.to_string()))?;
        Ok(Some(checker))
    }

    async fn live_mx(&self, domain: &DomainName) -> Result<MxSet, DomainError> {
        let Some(checker) = &self.checker else {
            return Err(DomainError::MxLookup {
                domain: domain.to_string(),
                reason: "no network (offline)".into(),
            });
        };
        let set = resolve_mx(checker.gatherer().dns().as_ref(), domain).await.map_err(|e| {
            DomainError::MxLookup { domain: domain.to_string(), reason: e.to_string() }
        })?;
        if !set.accepts_mail() {
            return Err(DomainError::NullMx { domain: domain.to_string() });
        }
        Ok(set)
    }

    async fn hosted(&self, domain: &DomainName) -> Result<HostedDomain, DomainError> {
        self.hosting
            .get(domain.as_str())
            .await?
            .ok_or_else(|| HostingError::NotHosted { domain: domain.to_string() }.into())
    }

    fn parse_current(&self, d: &HostedDomain) -> Result<Policy, DomainError> {
        Policy::parse(&d.policy_text).map(|p| p.value).map_err(|e| DomainError::PolicyText {
            domain: d.domain.clone(),
            reason: e.to_string(),
        })
    }

    fn version(policy: &Policy, id: &str, author: &str, reason: &str, at: i64) -> NewVersion {
        NewVersion {
            policy_id: id.to_owned(),
            policy_text: policy.to_string(),
            mode: policy.mode().as_str().to_owned(),
            max_age: i64::from(policy.max_age().seconds()),
            author: author.to_owned(),
            reason: reason.to_owned(),
            at,
        }
    }

    fn published(&self, d: HostedDomain, warnings: Vec<String>) -> Result<Published, DomainError> {
        let name = DomainName::parse_ascii(&d.domain).map_err(NameRefusal::from_stored)?;
        let id = mtasts_proto::PolicyId::new(&d.policy_id).map_err(|e| DomainError::State {
            domain: d.domain.clone(),
            reason: format!("the stored id is invalid: {e}"),
        })?;
        Ok(Published { records: records(&name, &id, &self.service), domain: d, warnings })
    }

    /// Hosts `input` for `tenant`: `mode: testing` with a one-day `max_age` for the live MX
    /// hosts (or `mx`, when given).
    pub async fn add(
        &self,
        input: &str,
        tenant: &str,
        author: &str,
        mx: Option<Vec<String>>,
        now: OffsetDateTime,
    ) -> Result<Published, DomainError> {
        let domain = hosted_name(input)?;
        let mut warnings = Vec::new();
        if mx.is_none() {
            self.network().await?;
        }
        let hosts = match mx {
            Some(hosts) => {
                if let Ok(live) = self.live_mx(&domain).await {
                    let given = policy_for(Mode::Testing, STARTER_MAX_AGE, &hosts)
                        .map_err(|e| policy_error(&domain, e))?;
                    for host in uncovered(&given, &live) {
                        warnings.push(format!("the live MX host {host} is not in the policy"));
                    }
                }
                hosts
            }
            None => self.live_mx(&domain).await?.names(),
        };
        let policy = policy_for(Mode::Testing, STARTER_MAX_AGE, &hosts)
            .map_err(|e| policy_error(&domain, e))?;
        let id = next_id(now, None);
        let first = Self::version(&policy, id.as_str(), author, "added", now_unix(now));
        let stored = self.hosting.add(domain.as_str(), tenant, &first).await?;
        self.published(stored, warnings)
    }

    /// Applies `change` to `input`: a new version with a new id. A change to `enforce` from
    /// another mode passes promotion's guard; an `enforce` policy that would leave out a live
    /// MX host is refused. `force` overrides both, with a warning.
    pub async fn set(
        &self,
        input: &str,
        change: &Change,
        author: &str,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Published, DomainError> {
        let domain = hosted_name(input)?;
        let current = self.hosted(&domain).await?;
        let old = self.parse_current(&current)?;
        let policy_err = |error| policy_error(&domain, error);
        let next = match &change.policy_text {
            Some(text) => Policy::parse(text).map(|p| p.value).map_err(|e| {
                DomainError::PolicyText { domain: domain.to_string(), reason: e.to_string() }
            })?,
            None => {
                let mode = change.mode.unwrap_or(old.mode());
                let max_age = change.max_age.unwrap_or(old.max_age().seconds());
                match &change.mx {
                    Some(hosts) => policy_for(mode, max_age, hosts)
                        .and_then(|p| Ok(p.with_extensions(old.extensions().to_vec())?))
                        .map_err(policy_err)?,
                    None => amended_policy(&old, mode, &[], Some(max_age)).map_err(policy_err)?,
                }
            }
        };
        if next.to_string() == current.policy_text {
            return Err(DomainError::NoChange {
                domain: domain.to_string(),
                version: current.version,
            });
        }
        let mut warnings = Vec::new();
        if next.mode() == Mode::Enforce {
            let reasons = if old.mode() == Mode::Enforce {
                self.coverage_reasons(&domain, &next).await
            } else {
                self.promotion_reasons(&domain, &old, &next, now).await?
            };
            self.overridable(&domain, reasons, force, &mut warnings)?;
        }
        let reason = change.reason.clone().unwrap_or_else(|| "changed".into());
        self.publish(&current, &next, author, &reason, now, warnings).await
    }

    fn overridable(
        &self,
        domain: &DomainName,
        reasons: Vec<String>,
        force: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(), DomainError> {
        if reasons.is_empty() {
            return Ok(());
        }
        if !force {
            return Err(DomainError::Refused { domain: domain.to_string(), reasons });
        }
        warnings.extend(reasons.into_iter().map(|r| {
            format!("--force: {r} (under enforce, senders will not deliver mail affected by this)")
        }));
        Ok(())
    }

    async fn publish(
        &self,
        current: &HostedDomain,
        next: &Policy,
        author: &str,
        reason: &str,
        now: OffsetDateTime,
        warnings: Vec<String>,
    ) -> Result<Published, DomainError> {
        let id = next_id(now, Some(&current.policy_id));
        let version = Self::version(next, id.as_str(), author, reason, now_unix(now));
        let stored = self.hosting.publish(&current.domain, current.version, &version).await?;
        self.published(stored, warnings)
    }

    /// Moves `input` from `testing` to `enforce` with a one-week `max_age`, or, when it
    /// enforces already, grows `max_age` to the next step ([`MAX_AGE_STEPS`]). Refused unless
    /// every live MX host is covered and passes the check's TLS judges, and the reports show
    /// no failures for the guard's period; `force` overrides with a warning.
    pub async fn promote(
        &self,
        input: &str,
        author: &str,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Published, DomainError> {
        let domain = hosted_name(input)?;
        let current = self.hosted(&domain).await?;
        let old = self.parse_current(&current)?;
        let max_age = match old.mode() {
            Mode::Testing => old.max_age().seconds().max(MAX_AGE_STEPS[0]),
            Mode::Enforce => {
                next_max_age(old.max_age().seconds()).ok_or_else(|| DomainError::State {
                    domain: domain.to_string(),
                    reason: "enforces already with the longest max_age".into(),
                })?
            }
            Mode::None => {
                return Err(DomainError::State {
                    domain: domain.to_string(),
                    reason: "is retired (mode: none); set it to testing first".into(),
                });
            }
        };
        let next = amended_policy(&old, Mode::Enforce, &[], Some(max_age))
            .map_err(|error| policy_error(&domain, error))?;
        let reasons = self.promotion_reasons(&domain, &old, &next, now).await?;
        let mut warnings = Vec::new();
        self.overridable(&domain, reasons, force, &mut warnings)?;
        let reason = match old.mode() {
            Mode::Enforce => format!("max_age grown to {max_age}"),
            _ => "promoted to enforce".to_owned(),
        };
        self.publish(&current, &next, author, &reason, now, warnings).await
    }

    /// Live MX hosts `next` leaves out, as reasons.
    async fn coverage_reasons(&self, domain: &DomainName, next: &Policy) -> Vec<String> {
        match self.live_mx(domain).await {
            Ok(live) => uncovered(next, &live)
                .into_iter()
                .map(|h| format!("the live MX host {h} is not covered by the policy"))
                .collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    /// What stands between `domain` and `next` (an `enforce` policy): the live MX hosts it
    /// leaves out, the hosts failing the check's TLS judges, and the report data.
    async fn promotion_reasons(
        &self,
        domain: &DomainName,
        current: &Policy,
        next: &Policy,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, DomainError> {
        let mut reasons = Vec::new();
        match self.network().await? {
            None => reasons.push("the MX hosts could not be checked (offline)".to_owned()),
            Some(checker) => {
                let mut obs = checker.gatherer().gather(domain).await;
                match &obs.mx {
                    Ok(set) if !set.accepts_mail() => {
                        return Err(DomainError::NullMx { domain: domain.to_string() });
                    }
                    Ok(set) => reasons.extend(
                        uncovered(next, set)
                            .into_iter()
                            .map(|h| format!("the live MX host {h} is not covered by the policy")),
                    ),
                    Err(e) => reasons.push(format!("the MX records cannot be looked up: {e}")),
                }
                if obs.mx.is_err() {
                    // Said once above; the judges would repeat it.
                    return Ok(reasons);
                }
                // Judge the MX hosts against the policy to be published, with the check's own
                // judges (RFC 8461 §4, §5: under enforce, a TLS failure is undelivered mail).
                obs.policy = Ok(FetchedPolicy {
                    url: domain.policy_url(),
                    body: next.to_string().into_bytes(),
                    content_type: "text/plain".into(),
                    certificate: None,
                    remote_addr: None,
                    elapsed_ms: 0,
                });
                let report = mtasts_check::judge::judge(domain.as_str(), &obs, now);
                for f in report.findings.iter().filter(|f| f.area == Area::Mx) {
                    if f.severity == Severity::Error {
                        let subject =
                            f.subject.as_deref().map(|s| format!("{s}: ")).unwrap_or_default();
                        reasons.push(format!("{subject}{} [{}]", f.message, f.code));
                    }
                }
                if reasons.is_empty() && !mx_ready(&report.mx) {
                    reasons
                        .push("not every MX host passed STARTTLS with a valid certificate".into());
                }
            }
        }
        match &self.reports {
            None => reasons.push("no TLS-RPT report data to judge by (no report store)".into()),
            Some(store) => {
                let today = now_unix(now) - now_unix(now).rem_euclid(86_400);
                let since = today - self.guard.window_days.max(1) * 86_400;
                let evidence = Evidence::gather(
                    store,
                    domain.as_str(),
                    since,
                    Some(current.to_policy_lines()),
                )
                .await?;
                let verdict = judge(&evidence, &self.guard.criteria, today);
                reasons.extend(
                    verdict
                        .reasons
                        .into_iter()
                        .filter(|r| r.blocking)
                        .map(|r| format!("reports: {} [{}]", r.message, r.code)),
                );
            }
        }
        Ok(reasons)
    }

    /// Retires `input` (RFC 8461 §8.3): publishes `mode: none` with a new id and a one-day
    /// `max_age`; the policy keeps being served until the longest `max_age` ever published has
    /// passed ([`Status::retirement`] says when the records may go).
    pub async fn retire(
        &self,
        input: &str,
        author: &str,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Published, DomainError> {
        let domain = hosted_name(input)?;
        let current = self.hosted(&domain).await?;
        let old = self.parse_current(&current)?;
        if old.mode() == Mode::None {
            return Err(DomainError::State {
                domain: domain.to_string(),
                reason: "is retired already".into(),
            });
        }
        let age = MaxAge::new(RETIRE_MAX_AGE).map_err(|e| policy_error(&domain, e))?;
        let next = Policy::new(Mode::None, age, old.mx().to_vec())
            .and_then(|p| p.with_extensions(old.extensions().to_vec()))
            .map_err(|e| policy_error(&domain, e))?;
        self.publish(&current, &next, author, reason.unwrap_or("retired"), now, Vec::new()).await
    }

    /// Waits until `https://mta-sts.<domain>/.well-known/mta-sts.txt`, fetched as a sender
    /// fetches it (DNS, TLS, RFC 8461 §3.3 rules), serves exactly `text`: the new policy is
    /// live before the TXT record announces its id (§8.1). The last fetch's problem on
    /// timeout.
    pub async fn wait_served(
        &self,
        domain: &str,
        text: &str,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let Some(checker) = &self.checker else { return Err("no network (offline)".into()) };
        let name = DomainName::parse_ascii(domain).map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match checker.gatherer().fetcher().fetch(&name).await {
                Ok(f) if f.body == text.as_bytes() => return Ok(()),
                Ok(_) => "an older policy is still served".to_owned(),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// A domain's state, with what DNS publishes now when `live` (and a checker) is given.
    pub async fn status(
        &self,
        input: &str,
        live: bool,
        now: OffsetDateTime,
    ) -> Result<Status, DomainError> {
        let domain = hosted_name(input)?;
        let d = self.hosted(&domain).await?;
        let history = self.hosting.history(&d.domain).await?;
        let dns = match live {
            true => match self.network().await? {
                Some(checker) => Some(self.live_dns(checker, &domain, &d).await),
                None => None,
            },
            false => None,
        };
        let certificate = self.hosting.certificate(&d.domain).await?.map(|c| CertificateInfo {
            source: c.source,
            not_before: c.not_before,
            not_after: c.not_after,
        });
        let acme = self.hosting.acme_status(&d.domain).await?;
        let problems = self.hosting.problems(Some(&d.domain)).await?;
        let checked_at = self.hosting.checked_at(&d.domain).await?;
        let published = self.published(d, Vec::new())?;
        Ok(Status {
            certificate,
            acme,
            problems,
            checked_at,
            retirement: retirement(
                published.domain.retired_at,
                published.domain.longest_max_age,
                now_unix(now),
            ),
            domain: published.domain,
            records: published.records,
            history,
            dns,
        })
    }

    /// What DNS publishes now for `d`, compared with what is hosted.
    pub(crate) async fn live_dns(
        &self,
        checker: &Checker,
        domain: &DomainName,
        d: &HostedDomain,
    ) -> LiveDns {
        let dns = checker.gatherer().dns();
        let host = domain.policy_host();
        let txt_name = domain.mta_sts_txt_name();
        let (cname, txt, mx) =
            tokio::join!(dns.cname(&host), dns.txt(&txt_name), resolve_mx(dns.as_ref(), domain));
        let mut problems = Vec::new();
        let cname = match cname {
            Ok(c) => c.map(|c| c.trim_end_matches('.').to_ascii_lowercase()),
            Err(e) => {
                if !e.is_not_found() {
                    problems.push(live("hosting-dns-error", host.clone(), e.to_string()));
                }
                None
            }
        };
        if let Some(target) = &self.service.cname_target
            && cname.as_deref() != Some(target.as_str())
        {
            problems.push(live(
                "hosting-cname",
                host.clone(),
                match &cname {
                    Some(other) => format!("{host} is a CNAME for {other}, not {target}"),
                    None => format!("{host} is not a CNAME for {target}: publish {}", {
                        let id = mtasts_proto::PolicyId::new(&d.policy_id);
                        id.map(|id| records(domain, &id, &self.service).cname.unwrap_or_default())
                            .unwrap_or_default()
                    }),
                },
            ));
        }
        let announced_id = match txt {
            Ok(answer) => match mtasts_proto::select_sts_record(&answer.records) {
                Ok(found) => Some(found.record.value.id().as_str().to_owned()),
                Err(e) => {
                    let name = domain.mta_sts_txt_name();
                    problems.push(live("hosting-txt", name.clone(), format!("{name}: {e}")));
                    None
                }
            },
            Err(e) => {
                let name = domain.mta_sts_txt_name();
                let code = if e.is_not_found() { "hosting-txt" } else { "hosting-dns-error" };
                problems.push(live(code, name.clone(), format!("{name}: {e}")));
                None
            }
        };
        if let Some(id) = &announced_id
            && *id != d.policy_id
        {
            problems.push(live(
                "hosting-txt-id-stale",
                domain.mta_sts_txt_name(),
                format!(
                    "the TXT record announces id {id}, not the current {}: senders keep the previous policy until it is updated",
                    d.policy_id
                ),
            ));
        }
        let (mx, uncovered_mx) = match mx {
            Ok(set) => {
                let names = set.names();
                let uncovered = Policy::parse(&d.policy_text)
                    .map(|p| uncovered(&p.value, &set))
                    .unwrap_or_default();
                for h in &uncovered {
                    problems.push(live(
                        "hosting-mx-drift",
                        h.clone(),
                        format!("MX drift: the live MX host {h} is not covered by the policy"),
                    ));
                }
                (names, uncovered)
            }
            Err(e) => {
                problems.push(live("hosting-dns-error", domain.as_str(), e.to_string()));
                (Vec::new(), Vec::new())
            }
        };
        LiveDns { cname, announced_id, mx, uncovered_mx, problems }
    }
}

impl NameRefusal {
    fn from_stored(e: mtasts_proto::DomainError) -> Self {
        Self::Invalid { input: String::new(), reason: e.to_string() }
    }
}
