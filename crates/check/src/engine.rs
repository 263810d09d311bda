//! The check engine: runs the lookups for a domain concurrently, then judges what came back
//! into [`Finding`]s.
//!
//! The order of judgement follows RFC 8461's discovery: the TXT record (§3.1), the policy host
//! and file (§3.2, §3.3), MX matching (§4.1), MX certificate validation (§4.2), then TLS-RPT
//! (RFC 8460 §3) and DANE (RFC 8461 §2).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use mtasts_net::dns::{DnsClient, DnssecStatus, MxSet, RecordType, resolve_mx};
use mtasts_net::probe::ProbeStep;
use mtasts_net::{
    DnsError, FetchError, FetchedPolicy, HickoryDns, IpLimiter, MxProbe, NetConfig, PolicyFetcher,
    ProbeCache, ProbeReport,
};
use mtasts_proto::{
    CertificateProblem, DomainName, Mode, Policy, StsDiscoveryError, TlsRptDiscoveryError,
    select_sts_record, select_tlsrpt_record,
};
use time::OffsetDateTime;

use crate::finding::{Code, Finding, Severity};
use crate::report::{DomainReport, MxView, Outcome, PolicyView, Sink, Suggestions};
use crate::suggest;

/// Certificates expiring within this many days get a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// `max_age` below this is a warning: one day (RFC 8461 §10.2: long-lived caches resist
/// downgrades).
pub const MAX_AGE_SHORT: u32 = 86_400;

/// `max_age` below this is noted for an `enforce` policy: one week.
pub const MAX_AGE_LOW: u32 = 604_800;

/// MX hosts probed at once for one domain.
pub const PROBES_PER_DOMAIN: usize = 4;

/// Knobs of a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Probe MX hosts over SMTP (`--no-smtp` turns it off).
    pub probe_smtp: bool,
    /// Look up TLSA and DNSSEC status.
    pub dane: bool,
    /// Share MX probe results between domains (a scan: each MX host probed once).
    pub probe_cache: Option<Arc<ProbeCache>>,
    /// At most this many SMTP connections per IP address at once.
    pub smtp_per_ip: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { probe_smtp: true, dane: true, probe_cache: None, smtp_per_ip: None }
    }
}

/// Why a checker could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Trust roots could not be loaded.
    #[error(transparent)]
    Trust(#[from] mtasts_net::trust::TrustError),
    /// The DNS client could not be built.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// The HTTPS client could not be built.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// The checker: reusable across many domains (its HTTPS client pools connections).
#[derive(Clone, Debug)]
pub struct Checker {
    inner: Arc<Inner>,
}

struct Inner {
    dns: Arc<dyn DnsClient>,
    fetcher: PolicyFetcher,
    probe: MxProbe,
    options: CheckOptions,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").field("options", &self.options).finish()
    }
}

/// What the TXT record step concluded.
enum Sts {
    Valid,
    Absent,
    Broken,
    Unknown,
}

impl Checker {
    /// A checker for the world described by `config`.
    pub fn new(config: &NetConfig, options: CheckOptions) -> Result<Self, SetupError> {
        let dns: Arc<dyn DnsClient> =
            Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns)?);
        Self::with_dns(config, dns, options)
    }

    /// A checker that resolves through `dns`.
    pub fn with_dns(
        config: &NetConfig,
        dns: Arc<dyn DnsClient>,
        options: CheckOptions,
    ) -> Result<Self, SetupError> {
        let roots = config.trust.load()?;
        let fetcher = PolicyFetcher::new(config, roots.clone(), dns.clone())?;
        let mut probe = MxProbe::new(config.clone(), roots, dns.clone());
        if let Some(per_ip) = options.smtp_per_ip {
            probe = probe.with_ip_limit(IpLimiter::new(per_ip));
        }
        Ok(Self { inner: Arc::new(Inner { dns, fetcher, probe, options }) })
    }

    /// Checks `inputs` with at most `concurrency` domains in flight, handing each report to
    /// `sink` in input order. Returns the exit code (see [`crate::report::exit_code`]).
    pub async fn check_all(
        &self,
        inputs: Vec<String>,
        concurrency: usize,
        sink: &mut dyn Sink,
    ) -> u8 {
        let mut code = 0;
        let mut stream = futures::stream::iter(inputs)
            .map(|input| {
                let this = self.clone();
                async move { this.check(&input).await }
            })
            .buffered(concurrency.max(1));
        while let Some(report) = stream.next().await {
            code = code.max(crate::report::exit_code([&report]));
            sink.report(&report);
        }
        code
    }

    /// Checks one domain, giving up after `deadline`: the report then says so
    /// ([`Code::DomainDeadline`]) and counts as could-not-check.
    pub async fn check_with_deadline(
        &self,
        input: &str,
        deadline: std::time::Duration,
    ) -> DomainReport {
        let started = Instant::now();
        match tokio::time::timeout(deadline, self.check(input)).await {
            Ok(report) => report,
            Err(_) => {
                let domain =
                    DomainName::from_user_input(input.trim()).ok().map(|d| d.as_str().to_owned());
                DomainReport {
                    input: input.to_owned(),
                    domain,
                    outcome: Outcome::CouldNotCheck,
                    sts_record: None,
                    policy: PolicyView::default(),
                    mx: Vec::new(),
                    tlsrpt_record: None,
                    findings: vec![Finding::new(
                        Code::DomainDeadline,
                        format!("the check did not finish within {} s", deadline.as_secs_f64()),
                    )],
                    suggestions: Suggestions::default(),
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            }
        }
    }

    /// Checks one domain.
    pub async fn check(&self, input: &str) -> DomainReport {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut ctx = Ctx {
            report: DomainReport {
                input: input.to_owned(),
                domain: None,
                outcome: Outcome::Checked,
                sts_record: None,
                policy: PolicyView::default(),
                mx: Vec::new(),
                tlsrpt_record: None,
                findings: Vec::new(),
                suggestions: Suggestions::default(),
                elapsed_ms: 0,
            },
            now,
        };
        match DomainName::from_user_input(input.trim()) {
            Ok(domain) => {
                ctx.report.domain = Some(domain.as_str().to_owned());
                self.inner.run(&domain, &mut ctx).await;
            }
            Err(e) => {
                ctx.push(Finding::new(Code::DomainInvalid, format!("{input:?}: {e}")));
                ctx.report.outcome = Outcome::CouldNotCheck;
            }
        }
        ctx.report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        ctx.report
    }
}

struct Ctx {
    report: DomainReport,
    now: OffsetDateTime,
}

impl Ctx {
    fn push(&mut self, f: Finding) {
        self.report.findings.push(f);
    }

    fn incomplete(&mut self) {
        self.report.outcome = Outcome::CouldNotCheck;
    }
}

/// The one mapping from a certificate problem to a finding code, for the policy host
/// (`policy-cert-*`, RFC 8461 §3.3) or an MX host (`mx-cert-*`, RFC 8461 §4.2).
fn cert_code(problem: &CertificateProblem, mx: bool) -> Code {
    let [untrusted, expired, wrong_name, invalid] = if mx {
        [Code::MxCertUntrusted, Code::MxCertExpired, Code::MxCertWrongName, Code::MxCertInvalid]
    } else {
        [
            Code::PolicyCertUntrusted,
            Code::PolicyCertExpired,
            Code::PolicyCertWrongName,
            Code::PolicyCertInvalid,
        ]
    };
    match problem {
        CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature => untrusted,
        CertificateProblem::Expired | CertificateProblem::NotYetValid => expired,
        CertificateProblem::NameMismatch => wrong_name,
        _ => invalid,
    }
}

impl Inner {
    async fn run(&self, domain: &DomainName, ctx: &mut Ctx) {
        let d = domain.as_str();
        let sts_name = domain.mta_sts_txt_name();
        let rpt_name = domain.tlsrpt_txt_name();
        let (txt, mx, rpt, fetched) = tokio::join!(
            self.dns.txt(&sts_name),
            resolve_mx(self.dns.as_ref(), d),
            self.dns.txt(&rpt_name),
            self.fetcher.fetch(d),
        );

        // The domain itself: without MX information nothing else means much.
        let mx_set = match mx {
            Ok(set) => Some(set),
            Err(e) if e.is_nx_domain() => {
                ctx.push(Finding::new(
                    Code::DomainNotFound,
                    format!("{d} does not exist (NXDOMAIN)"),
                ));
                ctx.incomplete();
                return;
            }
            Err(e) if e.is_not_found() => {
                ctx.push(Finding::new(
                    Code::DomainNotFound,
                    format!("{d} has neither MX nor address records: it receives no mail"),
                ));
                ctx.incomplete();
                return;
            }
            Err(e) => {
                ctx.push(Finding::new(Code::MxDnsError, e.to_string()));
                ctx.incomplete();
                None
            }
        };

        let sts = self.judge_sts_record(domain, txt, ctx);
        let policy = self.judge_policy(domain, &sts, fetched, ctx);
        let hosts: Vec<(u16, String)> = mx_set
            .as_ref()
            .map(|s| s.hosts.iter().map(|h| (h.preference, h.exchange.clone())).collect())
            .unwrap_or_default();
        if let Some(set) = &mx_set {
            self.judge_mx_set(d, set, ctx);
        }
        self.judge_coverage(domain, policy.as_ref(), &hosts, ctx);
        self.judge_probes(domain, policy.as_ref(), &hosts, ctx).await;
        self.judge_readiness(domain, &sts, policy.as_ref(), ctx);
        self.judge_tlsrpt(domain, rpt, ctx);
        if self.options.dane {
            self.judge_dane(d, &hosts, ctx).await;
        }
        if matches!(sts, Sts::Absent) && policy.is_none() {
            let names: Vec<String> = hosts.iter().map(|(_, h)| h.clone()).collect();
            ctx.report.suggestions.sts_txt = Some(suggest::sts_txt(domain, ctx.now));
            ctx.report.suggestions.policy =
                suggest::policy_for(Mode::Testing, suggest::STARTER_MAX_AGE, &names);
            let mut fix = format!(
                "Publish, in this order (RFC 8461 §8.1: policy before TXT):\n\
                 1. an HTTPS host mta-sts.{d} (A/AAAA or CNAME) with a certificate valid for that name\n\
                 2. the policy at https://mta-sts.{d}/.well-known/mta-sts.txt, served as text/plain:\n"
            );
            if let Some(p) = &ctx.report.suggestions.policy {
                for line in p.lines() {
                    fix.push_str("     ");
                    fix.push_str(line);
                    fix.push('\n');
                }
            }
            fix.push_str("3. the TXT record: ");
            fix.push_str(&suggest::sts_txt(domain, ctx.now));
            ctx.push(
                Finding::new(
                    Code::StsNotDeployed,
                    format!("{d} publishes no MTA-STS policy: a man in the middle can strip STARTTLS undetected"),
                )
                .fix(fix),
            );
        }
    }

    fn judge_sts_record(
        &self,
        domain: &DomainName,
        txt: Result<mtasts_net::dns::TxtAnswer, DnsError>,
        ctx: &mut Ctx,
    ) -> Sts {
        let name = domain.mta_sts_txt_name();
        let answer = match txt {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Sts::Absent,
            Err(e) => {
                ctx.push(Finding::new(Code::StsTxtDnsError, e.to_string()).subject(&name));
                ctx.incomplete();
                return Sts::Unknown;
            }
        };
        if let Some(target) = answer.cname_chain.last() {
            ctx.push(
                Finding::new(Code::StsTxtDelegated, format!("{name} is a CNAME to {target}"))
                    .subject(&name),
            );
        }
        let fresh = suggest::sts_txt(domain, ctx.now);
        match select_sts_record(&answer.records) {
            Ok(found) => {
                for discarded in &found.discarded {
                    note_discarded(ctx, &name, discarded);
                }
                for w in &found.record.warnings {
                    ctx.push(
                        Finding::new(Code::StsTxtWarning, format!("{} [{}]", w.message, w.code))
                            .subject(&name),
                    );
                }
                ctx.push(Finding::new(Code::StsTxtOk, format!("\"{}\"", found.raw)).subject(&name));
                ctx.report.sts_record = Some(found.raw);
                Sts::Valid
            }
            Err(StsDiscoveryError::NoRecord { discarded }) => {
                for d in &discarded {
                    note_discarded(ctx, &name, d);
                }
                Sts::Absent
            }
            Err(StsDiscoveryError::Multiple { records }) => {
                ctx.push(
                    Finding::new(
                        Code::StsTxtMultiple,
                        format!("{} v=STSv1 records: {}", records.len(), quote_all(&records)),
                    )
                    .subject(&name)
                    .fix(format!("Delete all but one, e.g. keep only: {fresh}")),
                );
                Sts::Broken
            }
            Err(StsDiscoveryError::Invalid { raw, error }) => {
                ctx.push(
                    Finding::new(Code::StsTxtInvalid, format!("\"{raw}\": {error}"))
                        .subject(&name)
                        .fix(format!("Replace it with: {fresh}")),
                );
                Sts::Broken
            }
            Err(other) => {
                ctx.push(Finding::new(Code::StsTxtInvalid, other.to_string()).subject(&name));
                Sts::Broken
            }
        }
    }

    fn judge_policy(
        &self,
        domain: &DomainName,
        sts: &Sts,
        fetched: Result<FetchedPolicy, FetchError>,
        ctx: &mut Ctx,
    ) -> Option<Policy> {
        let host = domain.policy_host();
        let url = domain.policy_url();
        let body = match fetched {
            Ok(f) => {
                if let Some(cert) = &f.certificate {
                    let days = cert.days_left(ctx.now.unix_timestamp());
                    if days < EXPIRY_WARNING_DAYS {
                        ctx.push(
                            Finding::new(
                                Code::PolicyCertExpiring,
                                format!("the certificate of {host} expires in {days} days"),
                            )
                            .subject(&host)
                            .fix("Renew the certificate (check that automatic renewal covers this name)"),
                        );
                    }
                }
                f.body
            }
            Err(e) => {
                // Without a TXT record, a failing policy host is just "not deployed"; don't
                // drown the administrator in consequences of one absence.
                if matches!(sts, Sts::Absent) {
                    return None;
                }
                self.fetch_finding(&host, &url, e, ctx)?
            }
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        ctx.report.policy.text = Some(text.clone());
        if matches!(sts, Sts::Absent) {
            ctx.push(
                Finding::new(
                    Code::StsTxtMissing,
                    format!(
                        "{url} serves a policy, but {} has no v=STSv1 record",
                        domain.mta_sts_txt_name()
                    ),
                )
                .subject(domain.mta_sts_txt_name())
                .fix(format!("Publish: {}", suggest::sts_txt(domain, ctx.now))),
            );
            ctx.report.suggestions.sts_txt = Some(suggest::sts_txt(domain, ctx.now));
        }
        let parsed = match Policy::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                ctx.push(
                    Finding::new(Code::PolicyInvalid, e.to_string())
                        .subject(&url)
                        .fix("Correct the line named above; the policy must have version: STSv1, mode, max_age and (unless mode: none) mx: lines, one field per line"),
                );
                return None;
            }
        };
        for w in &parsed.warnings {
            let at = w.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            ctx.push(
                Finding::new(Code::PolicyWarning, format!("{at}{} [{}]", w.message, w.code))
                    .subject(&url),
            );
        }
        let policy = parsed.value;
        ctx.report.policy.mode = Some(policy.mode().to_string());
        ctx.report.policy.max_age = Some(policy.max_age().seconds());
        ctx.report.policy.mx = policy.mx().iter().map(ToString::to_string).collect();
        ctx.push(
            Finding::new(
                Code::PolicyOk,
                format!(
                    "mode: {}, max_age: {}, mx: {}",
                    policy.mode(),
                    policy.max_age().seconds(),
                    if policy.mx().is_empty() {
                        "(none)".to_owned()
                    } else {
                        ctx.report.policy.mx.join(", ")
                    }
                ),
            )
            .subject(&url),
        );
        let max_age = policy.max_age().seconds();
        match policy.mode() {
            Mode::Testing => ctx.push(Finding::new(
                Code::PolicyModeTesting,
                "senders deliver even when validation fails and report the failures by TLS-RPT; \
                 watch the reports, then move to mode: enforce",
            )),
            Mode::None => ctx.push(
                Finding::new(
                    Code::PolicyModeNone,
                    "senders treat the domain as having no policy; this is right only while removing MTA-STS (RFC 8461 §8.3)",
                )
                .fix("If you meant to protect mail, publish mode: testing (then enforce) with mx: lines and a new id"),
            ),
            Mode::Enforce => {}
        }
        if policy.mode() != Mode::None {
            if max_age < MAX_AGE_SHORT {
                ctx.push(
                    Finding::new(
                        Code::PolicyMaxAgeShort,
                        format!("max_age: {max_age} is under a day; senders forget the policy that quickly"),
                    )
                    .fix(format!("max_age: {}", if policy.mode() == Mode::Enforce { MAX_AGE_LOW } else { MAX_AGE_SHORT })),
                );
            } else if max_age < MAX_AGE_LOW && policy.mode() == Mode::Enforce {
                ctx.push(
                    Finding::new(
                        Code::PolicyMaxAgeLow,
                        format!("max_age: {max_age} is under a week"),
                    )
                    .fix(format!("max_age: {MAX_AGE_LOW} (or more, up to 31557600)")),
                );
            }
        }
        Some(policy)
    }

    /// Turns a fetch failure into a finding; returns the body when it can still be validated.
    fn fetch_finding(
        &self,
        host: &str,
        url: &str,
        e: FetchError,
        ctx: &mut Ctx,
    ) -> Option<Vec<u8>> {
        let message = e.to_string();
        let (code, fix): (Code, String) = match e {
            FetchError::Resolve(dns) if dns.is_not_found() => (
                Code::PolicyHostMissing,
                format!("Add an A/AAAA record (or a CNAME to your policy host) for {host}"),
            ),
            FetchError::Resolve(_) => {
                ctx.incomplete();
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
                cert_code(&problem, false),
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
                ctx.push(
                    Finding::new(Code::PolicyContentType, message)
                        .subject(url)
                        .fix("Send the header: Content-Type: text/plain (nginx: `default_type text/plain;` in the location; Apache: `ForceType text/plain`)"),
                );
                return Some(body);
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
        ctx.push(f);
        None
    }

    fn judge_mx_set(&self, d: &str, set: &MxSet, ctx: &mut Ctx) {
        if set.null_mx {
            ctx.push(Finding::new(
                Code::MxNull,
                format!("{d} has a null MX (\"0 .\"): it accepts no mail"),
            ));
        }
        if set.implicit {
            ctx.push(Finding::new(
                Code::MxImplicit,
                format!("{d} has no MX records; senders deliver to {d} itself"),
            ));
        }
    }

    fn judge_coverage(
        &self,
        domain: &DomainName,
        policy: Option<&Policy>,
        hosts: &[(u16, String)],
        ctx: &mut Ctx,
    ) {
        let mut seen: Vec<&str> = Vec::new();
        for (preference, host) in hosts {
            if seen.contains(&host.as_str()) {
                continue;
            }
            seen.push(host);
            ctx.report.mx.push(MxView {
                host: host.clone(),
                preference: *preference,
                matched_by: policy.and_then(|p| p.matching_pattern(host)).map(ToString::to_string),
                tls_ok: None,
                probe: None,
            });
        }
        let Some(policy) = policy else { return };
        if policy.mode() == Mode::None || hosts.is_empty() {
            return;
        }
        let severity =
            if policy.mode() == Mode::Enforce { Severity::Error } else { Severity::Warning };
        let mut uncovered = Vec::new();
        for view in &ctx.report.mx {
            if view.matched_by.is_none() {
                uncovered.push(view.host.clone());
            }
        }
        let amended = suggest::amended_policy(policy, policy.mode(), &uncovered, None);
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
            let mut fix = format!(
                "Add the line `mx: {host}` to the policy, then change the id in the TXT record"
            );
            if let Some(text) = &amended {
                fix.push_str(":\n");
                for line in text.lines() {
                    fix.push_str("     ");
                    fix.push_str(line);
                    fix.push('\n');
                }
                fix.push_str("   ");
                fix.push_str(&suggest::sts_txt(domain, ctx.now));
            }
            let what = if policy.mode() == Mode::Enforce {
                "; senders enforcing MTA-STS will not deliver to it"
            } else {
                "; senders will report failures for it"
            };
            ctx.push(
                Finding::new(code, format!("{message}{what}"))
                    .subject(host)
                    .severity(severity)
                    .fix(fix),
            );
        }
        if !uncovered.is_empty() {
            ctx.report.suggestions.policy = amended;
            ctx.report.suggestions.sts_txt = Some(suggest::sts_txt(domain, ctx.now));
        } else {
            ctx.push(Finding::new(
                Code::MxCovered,
                format!("all {} MX hosts match the policy", ctx.report.mx.len()),
            ));
        }
        for pattern in policy.mx() {
            if !hosts.iter().any(|(_, h)| pattern.matches(h)) {
                ctx.push(
                    Finding::new(
                        Code::MxPatternUnused,
                        format!("mx: {pattern} matches none of the MX hosts ({})", hosts.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(", ")),
                    )
                    .subject(pattern.to_string())
                    .fix(format!("Remove `mx: {pattern}` if the host is retired (and change the id), or restore its MX record")),
                );
            }
        }
    }

    async fn judge_probes(
        &self,
        domain: &DomainName,
        policy: Option<&Policy>,
        hosts: &[(u16, String)],
        ctx: &mut Ctx,
    ) {
        if hosts.is_empty() {
            return;
        }
        if !self.options.probe_smtp {
            ctx.push(Finding::new(
                Code::MxNotProbed,
                "SMTP probing was turned off; STARTTLS and certificates were not checked",
            ));
            return;
        }
        let names: Vec<String> = ctx.report.mx.iter().map(|m| m.host.clone()).collect();
        let reports: Vec<ProbeReport> = futures::stream::iter(names)
            .map(|h| {
                let probe = self.probe.clone();
                let cache = self.options.probe_cache.clone();
                async move {
                    match cache {
                        Some(cache) => cache.probe(&probe, &h).await,
                        None => probe.probe(&h).await,
                    }
                }
            })
            .buffered(PROBES_PER_DOMAIN)
            .collect()
            .await;
        let mode = policy.map(Policy::mode);
        let enforcing = mode == Some(Mode::Enforce);
        let in_force = matches!(mode, Some(Mode::Enforce | Mode::Testing));
        let now = ctx.now.unix_timestamp();
        let _ = domain;
        for report in reports {
            let host = report.host.clone();
            let consequence = match mode {
                Some(Mode::Enforce) => {
                    "; senders enforcing the policy will not deliver to this host"
                }
                Some(Mode::Testing) => {
                    "; senders report this by TLS-RPT, and will not deliver once the policy is enforce"
                }
                _ => "; this must be fixed before publishing an MTA-STS policy",
            };
            let sev = if enforcing { Severity::Error } else { Severity::Warning };
            let tls_ok = report.tls_ok();
            if let Some(fail) = &report.failure {
                let handshake = fail.step == ProbeStep::Handshake;
                let (code, sev) = match fail.step {
                    ProbeStep::Resolve => (Code::MxHostUnresolvable, Severity::Error),
                    ProbeStep::Connect if fail.timed_out => {
                        (Code::MxUnreachable, Severity::Warning)
                    }
                    ProbeStep::Connect => (Code::MxUnreachable, Severity::Warning),
                    ProbeStep::Handshake => (
                        Code::MxTlsFailed,
                        if in_force { Severity::Error } else { Severity::Warning },
                    ),
                    _ if fail.timed_out => (Code::MxTimeout, Severity::Warning),
                    _ => (Code::MxSmtpError, Severity::Warning),
                };
                let mut msg = format!("{host}: {} failed: {}", fail.step, fail.message);
                if matches!(fail.step, ProbeStep::Connect) {
                    msg.push_str(" (outbound port 25 may be blocked where this check runs)");
                }
                if handshake {
                    msg.push_str(consequence);
                }
                ctx.push(Finding::new(code, msg).subject(&host).severity(sev));
            }
            if report.starttls_offered == Some(false) {
                ctx.push(
                    Finding::new(Code::MxStartTlsMissing, format!("{host} does not offer STARTTLS{consequence}"))
                        .subject(&host)
                        .severity(if in_force { Severity::Error } else { Severity::Warning })
                        .fix(format!("Enable STARTTLS on {host} with a certificate valid for {host} (Postfix: smtpd_tls_security_level = may, smtpd_tls_chain_files = …)")),
                );
            }
            if let Some(tls) = &report.tls {
                if let Some(problem) = &tls.problem {
                    let detail =
                        tls.problem_detail.clone().unwrap_or_else(|| format!("{problem:?}"));
                    let presented = tls
                        .chain
                        .first()
                        .map(|c| {
                            format!(
                                " (presented: {}; names: {})",
                                c.subject,
                                c.dns_names.join(", ")
                            )
                        })
                        .unwrap_or_default();
                    ctx.push(
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
                    ctx.push(
                        Finding::new(
                            Code::MxTlsOk,
                            format!(
                                "{host}: STARTTLS, {} {}, certificate valid for {} more days",
                                params.version, params.cipher, days
                            ),
                        )
                        .subject(&host),
                    );
                    if days < EXPIRY_WARNING_DAYS {
                        ctx.push(
                            Finding::new(Code::MxCertExpiring, format!("{host}: the certificate expires in {days} days"))
                                .subject(&host)
                                .fix("Renew the certificate (check that automatic renewal covers this name)"),
                        );
                    }
                }
            }
            if let Some(view) = ctx.report.mx.iter_mut().find(|m| m.host == host) {
                view.tls_ok = Some(tls_ok);
                view.probe = Some(report);
            }
        }
    }

    fn judge_readiness(
        &self,
        domain: &DomainName,
        sts: &Sts,
        policy: Option<&Policy>,
        ctx: &mut Ctx,
    ) {
        let Some(policy) = policy else { return };
        if policy.mode() != Mode::Testing || !matches!(sts, Sts::Valid) || !self.options.probe_smtp
        {
            return;
        }
        let all_good = !ctx.report.mx.is_empty()
            && ctx.report.mx.iter().all(|m| m.matched_by.is_some() && m.tls_ok == Some(true));
        if all_good {
            let mut fix = String::from("Serve this policy, then publish the new TXT record:\n");
            if let Some(text) = suggest::amended_policy(
                policy,
                Mode::Enforce,
                &[],
                Some(policy.max_age().seconds().max(suggest::ENFORCE_MAX_AGE)),
            ) {
                for line in text.lines() {
                    fix.push_str("     ");
                    fix.push_str(line);
                    fix.push('\n');
                }
            }
            fix.push_str("   ");
            fix.push_str(&suggest::sts_txt(domain, ctx.now));
            ctx.push(
                Finding::new(
                    Code::PolicyReadyToEnforce,
                    "every MX host matches the policy and passes STARTTLS with a valid certificate; \
                     if your TLS-RPT reports show no failures, switch to enforce",
                )
                .fix(fix),
            );
        }
    }

    fn judge_tlsrpt(
        &self,
        domain: &DomainName,
        rpt: Result<mtasts_net::dns::TxtAnswer, DnsError>,
        ctx: &mut Ctx,
    ) {
        let name = domain.tlsrpt_txt_name();
        let fresh = suggest::tlsrpt_txt(domain);
        let records = match rpt {
            Ok(a) => a.records,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => {
                ctx.push(Finding::new(Code::TlsRptDnsError, e.to_string()).subject(&name));
                return;
            }
        };
        match select_tlsrpt_record(&records) {
            Ok(found) => {
                for w in &found.record.warnings {
                    ctx.push(
                        Finding::new(Code::TlsRptWarning, format!("{} [{}]", w.message, w.code))
                            .subject(&name),
                    );
                }
                ctx.push(Finding::new(Code::TlsRptOk, format!("\"{}\"", found.raw)).subject(&name));
                ctx.report.tlsrpt_record = Some(found.raw);
            }
            Err(TlsRptDiscoveryError::NoRecord { .. }) => {
                ctx.push(
                    Finding::new(Code::TlsRptMissing, format!("{name} has no v=TLSRPTv1 record"))
                        .subject(&name)
                        .fix(format!("Publish (any mailbox you read will do): {fresh}")),
                );
                ctx.report.suggestions.tlsrpt_txt = Some(fresh);
            }
            Err(TlsRptDiscoveryError::Multiple { records }) => ctx.push(
                Finding::new(
                    Code::TlsRptMultiple,
                    format!("{} v=TLSRPTv1 records: {}", records.len(), quote_all(&records)),
                )
                .subject(&name)
                .fix("Merge them into one record; several rua URIs can be listed, comma-separated"),
            ),
            Err(TlsRptDiscoveryError::Invalid { raw, error }) => ctx.push(
                Finding::new(Code::TlsRptInvalid, format!("\"{raw}\": {error}"))
                    .subject(&name)
                    .fix(format!("Replace it with: {fresh}")),
            ),
            Err(other) => {
                ctx.push(Finding::new(Code::TlsRptInvalid, other.to_string()).subject(&name))
            }
        }
    }

    async fn judge_dane(&self, d: &str, hosts: &[(u16, String)], ctx: &mut Ctx) {
        let status = self.dns.dnssec_status(d, RecordType::MX).await;
        let text = match status {
            DnssecStatus::Authenticated => {
                "the resolver validated the MX answer with DNSSEC (AD bit set)"
            }
            DnssecStatus::NotAuthenticated => {
                "the MX answer is not DNSSEC-authenticated (unsigned zone, or a non-validating resolver)"
            }
            DnssecStatus::Unknown => "DNSSEC status could not be learned from the resolver",
        };
        ctx.push(Finding::new(Code::DnssecStatus, text).subject(d));
        let mut seen = Vec::new();
        for (_, host) in hosts {
            if seen.contains(host) {
                continue;
            }
            seen.push(host.clone());
            let name = format!("_25._tcp.{host}");
            if let Ok(records) = self.dns.tlsa(&name).await {
                let list: Vec<String> = records.iter().map(ToString::to_string).collect();
                ctx.push(
                    Finding::new(
                        Code::DaneTlsa,
                        format!(
                            "{name}: {}; DANE-capable senders validate with these, and a valid MTA-STS result must not override a failing DANE check",
                            list.join(" | ")
                        ),
                    )
                    .subject(host),
                );
            }
        }
    }
}

fn note_discarded(ctx: &mut Ctx, name: &str, record: &str) {
    // Only records that look like a failed attempt at an STS record deserve a word.
    if record.to_ascii_lowercase().contains("stsv1") {
        ctx.push(
            Finding::new(
                Code::StsTxtDiscarded,
                format!("\"{record}\" is ignored: a record must begin with exactly v=STSv1"),
            )
            .subject(name),
        );
    }
}

fn quote_all(records: &[String]) -> String {
    records.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
}
