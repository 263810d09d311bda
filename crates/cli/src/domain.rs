//! `mtasts domain`: the domains `mtasts serve` hosts. Arguments and output only; the
//! operations are `mtasts_serve::domains`.
//!
//! Exit status: 0 done, 1 refused (a guard, bad input: the reason on stderr), 2 could not
//! run (database, network).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use mtasts_check::{CheckOptions, Checker};
use mtasts_proto::{DomainName, Mode};
use mtasts_reports::readiness::Criteria;
use mtasts_serve::domains::{Change, DomainError, Guard, Manager, Published, Status};
use mtasts_serve::lifecycle::{Retirement, Service};
use mtasts_store::hosting::{HostingError, HostingStore};
use mtasts_store::reports::ReportStore;
use mtasts_store::{Database, DatabaseUrl};

use crate::net_args::NetArgs;

/// Where hosted domains are stored unless `--db` says otherwise (shared with `mtasts serve`).
pub(crate) const DEFAULT_DB: &str = "sqlite://mtasts-serve.db";

/// Arguments of `mtasts domain`.
#[derive(Debug, Args)]
pub(crate) struct DomainArgs {
    /// The hosting database `mtasts serve` serves from: `sqlite://PATH` (created if missing)
    /// or `postgres://…` (several serve instances).
    #[arg(long, global = true, env = "MTASTS_SERVE_DB", default_value = DEFAULT_DB)]
    db: String,
    /// Where TLS-RPT reports are stored, for `promote`'s guard (default: the hosting
    /// database, where `mtasts serve` stores the reports it receives).
    #[arg(long, global = true, env = "MTASTS_REPORTS_DB")]
    reports_db: Option<String>,
    /// This service's host name, the target of each customer's `mta-sts.<domain>` CNAME
    /// (printed in the records to publish; `show` checks the delegation against it).
    #[arg(long, global = true, env = "MTASTS_SERVICE_HOST")]
    service_host: Option<String>,
    /// Where TLS-RPT reports for hosted domains go (`mailto:` or `https:` URIs, comma
    /// separated; RFC 8460 §3), printed as each domain's `_smtp._tls` record. `{domain}`
    /// stands for each domain: `https://mta-sts.{domain}/v1/tlsrpt` has each domain's reports
    /// posted to its own policy host (`mtasts serve --receive-reports` takes them there).
    #[arg(long, global = true, env = "MTASTS_REPORT_URI", value_delimiter = ',')]
    rua: Vec<String>,
    /// Who makes the change, kept in the policy history (default: $USER).
    #[arg(long, global = true, env = "MTASTS_AUTHOR")]
    author: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(subcommand)]
    command: DomainCommand,
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Host a domain: discover its live MX hosts, publish `mode: testing` with a one-day
    /// `max_age`, and print the records to publish.
    Add {
        /// The mail domain, e.g. example.com.
        domain: String,
        /// The tenant that owns it.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The MX hosts to list instead of the live ones (comma separated; `*.example.com`
        /// covers one label).
        #[arg(long, value_delimiter = ',')]
        mx: Option<Vec<String>>,
    },
    /// List the hosted domains.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// A domain's policy, records, retirement state and history, and what DNS publishes now
    /// (CNAME delegation, the TXT id, MX drift).
    Show {
        /// The domain.
        domain: String,
        /// Do not look at DNS.
        #[arg(long)]
        no_dns: bool,
    },
    /// Change a domain's policy: each change is a new version with a new `id`. Moving to
    /// `enforce` passes the same guard as `promote`.
    Set {
        /// The domain.
        domain: String,
        /// The `mx:` lines (comma separated), replacing the current ones.
        #[arg(long, value_delimiter = ',')]
        mx: Option<Vec<String>>,
        /// `testing`, `enforce` or `none`.
        #[arg(long)]
        mode: Option<String>,
        /// `max_age` in seconds (at most 31557600, RFC 8461 §3.2).
        #[arg(long)]
        max_age: Option<u32>,
        /// A whole policy file instead (checked by the strict parser).
        #[arg(long, conflicts_with_all = ["mx", "mode", "max_age"])]
        policy: Option<PathBuf>,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
        /// Publish even when a guard refuses (each reason is printed as a warning).
        #[arg(long)]
        force: bool,
        /// Wait up to this many seconds until https://mta-sts.<domain>/ serves the new policy
        /// before printing the TXT record to update (RFC 8461 §8.1: policy first, id last).
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Move a domain from `testing` to `enforce` (one-week `max_age`), or grow an enforcing
    /// domain's `max_age` one step (30 days, then a year). Refused unless every live MX host
    /// is covered and passes STARTTLS with a valid certificate, and the TLS-RPT reports show
    /// no failures for the clean period.
    Promote {
        /// The domain.
        domain: String,
        /// Days of clean reports needed.
        #[arg(long, default_value_t = 14)]
        clean_days: u32,
        /// Distinct reporting organisations needed.
        #[arg(long, default_value_t = 1)]
        min_reporters: usize,
        /// Days of report data looked at.
        #[arg(long, default_value_t = 30)]
        window_days: i64,
        /// Promote even when refused (each reason is printed as a warning).
        #[arg(long)]
        force: bool,
    },
    /// Stop MTA-STS for a domain (RFC 8461 §8.3): publish `mode: none` with a new id; it is
    /// served until the longest `max_age` ever published has passed, then `show` says the
    /// records may be removed.
    Retire {
        /// The domain.
        domain: String,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Store a certificate for `mta-sts.<domain>` from PEM files (instead of ACME); every
    /// serve instance on the database presents it after its next reload.
    Cert {
        /// The domain.
        domain: String,
        /// The certificate chain, leaf first (PEM).
        #[arg(long)]
        chain: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// API tokens for `mtasts serve --api-listen` (stored hashed; shown once when made).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token for one tenant (it sees and changes only that tenant's domains), or with
    /// `--operator` for every tenant. The token is printed once and stored only as a hash.
    Create {
        /// The tenant it acts for.
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        tenant: Option<String>,
        /// A token for every tenant.
        #[arg(long)]
        operator: bool,
        /// What it is for (shown in listings and in the history of changes made with it).
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by its id (the part after `mtasts_`, as `list` shows it).
    Revoke {
        /// The token id.
        id: String,
    },
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn open_hosting(url: &str) -> anyhow::Result<(HostingStore, Database)> {
    let url: DatabaseUrl = url.parse()?;
    let db = Database::open(&url).await?;
    Ok((HostingStore::with_database(db.clone()).await?, db))
}

/// `--service-host` as a name.
pub(crate) fn service_host(given: Option<&String>) -> anyhow::Result<Option<DomainName>> {
    given
        .map(|h| {
            DomainName::from_user_input(h.trim())
                .map_err(|e| anyhow::anyhow!("--service-host {h:?}: {e}"))
        })
        .transpose()
}

/// `--rua` as checked report URIs (RFC 8460 §3).
pub(crate) fn report_uris(given: &[String]) -> anyhow::Result<Vec<String>> {
    let rua: Vec<String> =
        given.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    // `{domain}` stands for each hosted domain: check each URI with an example name, and
    // name the URI as given when it is refused.
    for uri in &rua {
        let sample = uri.replace(mtasts_serve::lifecycle::DOMAIN_PLACEHOLDER, "example.com");
        mtasts_proto::TlsRptRecord::parse(&format!("v=TLSRPTv1; rua={sample}"))
            .map_err(|e| anyhow::anyhow!("--rua {uri:?}: {e}"))?;
    }
    Ok(rua)
}

fn service(args: &DomainArgs) -> anyhow::Result<Service> {
    let cname_target = service_host(args.service_host.as_ref())?;
    Ok(Service { cname_target, rua: report_uris(&args.rua)? })
}

/// Runs `mtasts domain`.
pub(crate) async fn run(args: DomainArgs) -> anyhow::Result<u8> {
    let (hosting, db) = open_hosting(&args.db).await?;
    let author = args
        .author
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let needs_network = matches!(
        &args.command,
        DomainCommand::Add { mx: None, .. }
            | DomainCommand::Promote { .. }
            | DomainCommand::Set { .. }
            | DomainCommand::Show { no_dns: false, .. }
    );
    let checker = if needs_network {
        let config = args.net.config()?;
        Some(
            Checker::new(&config, CheckOptions { dane: false, ..CheckOptions::default() })
                .context("cannot set up DNS and TLS")?,
        )
    } else {
        None
    };
    let mut manager = Manager::new(hosting.clone(), checker, service(&args)?);
    if let DomainCommand::Promote { clean_days, min_reporters, window_days, .. } = &args.command {
        let reports = match &args.reports_db {
            Some(url) => {
                let url: DatabaseUrl = url.parse()?;
                ReportStore::with_database(Database::open_existing(&url).await?).await?
            }
            None => ReportStore::with_database(db.clone()).await?,
        };
        let criteria = Criteria {
            clean_days: *clean_days,
            min_reporters: *min_reporters,
            ..Criteria::default()
        };
        manager =
            manager.with_reports(reports).with_guard(Guard { criteria, window_days: *window_days });
    }
    let json = args.json;
    let result = match args.command {
        DomainCommand::Add { domain, tenant, mx } => manager
            .add(&domain, &tenant, &author, mx, now())
            .await
            .map(|p| Done::Published(Box::new(p), "added")),
        DomainCommand::List { tenant } => return list(&hosting, tenant.as_deref(), json).await,
        DomainCommand::Show { domain, no_dns } => {
            manager.status(&domain, !no_dns, now()).await.map(|s| Done::Status(Box::new(s)))
        }
        DomainCommand::Set { domain, mx, mode, max_age, policy, reason, force, wait } => {
            let mode =
                match mode.as_deref().map(str::trim) {
                    None => None,
                    Some(m) => Some(m.parse::<Mode>().map_err(|_| {
                        anyhow::anyhow!("--mode {m:?}: use testing, enforce or none")
                    })?),
                };
            let policy_text = match policy {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                ),
                None => None,
            };
            let change = Change { mx, mode, max_age, policy_text, reason };
            match manager.set(&domain, &change, &author, force, now()).await {
                Ok(p) => {
                    if let Some(secs) = wait {
                        wait_served(&manager, &p, secs).await;
                    }
                    Ok(Done::Published(Box::new(p), "changed"))
                }
                Err(e) => Err(e),
            }
        }
        DomainCommand::Promote { domain, force, .. } => manager
            .promote(&domain, &author, force, now())
            .await
            .map(|p| Done::Published(Box::new(p), "promoted")),
        DomainCommand::Retire { domain, reason } => manager
            .retire(&domain, &author, reason.as_deref(), now())
            .await
            .map(|p| Done::Published(Box::new(p), "retired")),
        DomainCommand::Cert { domain, chain, key } => {
            return cert(&hosting, &domain, &chain, &key).await;
        }
        DomainCommand::Token(command) => return token(&hosting, command, json).await,
    };
    match result {
        Ok(done) => {
            done.print(json)?;
            Ok(0)
        }
        Err(e) => Ok(refused(&e, json)?),
    }
}

/// Prints a refusal; 1 when the request was refused, 2 when the work could not be done.
fn refused(e: &DomainError, json: bool) -> anyhow::Result<u8> {
    let could_not_run = matches!(
        e,
        DomainError::Store(HostingError::Db(_) | HostingError::Query { .. })
            | DomainError::Reports(_)
            | DomainError::DnsDown(_)
    );
    if json {
        let body = match e {
            DomainError::Refused { domain, reasons } => {
                serde_json::json!({"domain": domain, "refused": reasons})
            }
            other => serde_json::json!({"error": other.to_string()}),
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &body)?;
        writeln!(out)?;
    }
    match e {
        DomainError::Refused { domain, reasons } => {
            eprintln!("mtasts domain: {domain}: refused:");
            for r in reasons {
                eprintln!("  ✗ {r}");
            }
            eprintln!("  (fix these, or give --force to publish anyway)");
        }
        other => eprintln!("mtasts domain: {other}"),
    }
    Ok(if could_not_run { 2 } else { 1 })
}

async fn wait_served(manager: &Manager, p: &Published, secs: u64) {
    let domain = p.domain.domain.clone();
    match manager
        .wait_served(&domain, &p.domain.policy_text, std::time::Duration::from_secs(secs))
        .await
    {
        Ok(()) => eprintln!("mtasts domain: https://mta-sts.{domain}/ serves the new policy"),
        Err(e) => eprintln!(
            "mtasts domain: warning: the new policy is not served yet ({e}); update the TXT record only once it is (RFC 8461 §8.1)"
        ),
    }
}

enum Done {
    Published(Box<Published>, &'static str),
    Status(Box<Status>),
}

fn days(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s => format!("{s} s"),
    }
}

fn utc(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

impl Done {
    fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            match self {
                Self::Published(p, _) => serde_json::to_writer_pretty(&mut out, p.as_ref())?,
                Self::Status(s) => serde_json::to_writer_pretty(&mut out, s)?,
            }
            writeln!(out)?;
            return Ok(());
        }
        match self {
            Self::Published(p, what) => {
                let d = &p.domain;
                for w in &p.warnings {
                    eprintln!("mtasts domain: warning: {w}");
                }
                writeln!(
                    out,
                    "{} {what}: version {}, mode {}, max_age {} ({}), id {}\n",
                    d.domain,
                    d.version,
                    d.mode,
                    d.max_age,
                    days(d.max_age),
                    d.policy_id
                )?;
                writeln!(
                    out,
                    "Policy served at https://mta-sts.{}/.well-known/mta-sts.txt:\n",
                    d.domain
                )?;
                write!(out, "{}", d.policy_text)?;
                writeln!(out)?;
                if *what == "added" {
                    writeln!(
                        out,
                        "Publish these DNS records, in this order (RFC 8461 §8.1: the policy host first, the TXT record last):\n"
                    )?;
                    if let Some(c) = &p.records.cname {
                        writeln!(out, "{c}")?;
                    } else {
                        writeln!(
                            out,
                            "; point mta-sts.{} (A/AAAA or CNAME) at this service",
                            d.domain
                        )?;
                    }
                    if let Some(t) = &p.records.tlsrpt_txt {
                        writeln!(out, "{t}")?;
                    }
                } else {
                    writeln!(
                        out,
                        "Every `mtasts serve` on this database serves it after its next reload (2 s by default).\nThen update the TXT record (RFC 8461 §8.1: the policy first, the new id last):\n"
                    )?;
                }
                writeln!(out, "{}", p.records.sts_txt)?;
                if *what == "retired" {
                    writeln!(
                        out,
                        "\nKeep the records and this service until {} (the longest max_age published, {}, after today); `mtasts domain show {}` says when they may go.",
                        utc(d.updated_at + d.longest_max_age),
                        days(d.longest_max_age),
                        d.domain
                    )?;
                }
            }
            Self::Status(s) => print_status(&mut out, s)?,
        }
        Ok(())
    }
}

fn print_status(out: &mut impl std::io::Write, s: &Status) -> anyhow::Result<()> {
    let d = &s.domain;
    writeln!(
        out,
        "{} (tenant {}): version {}, mode {}, max_age {} ({}), id {}, since {}",
        d.domain,
        d.tenant,
        d.version,
        d.mode,
        d.max_age,
        days(d.max_age),
        d.policy_id,
        utc(d.updated_at)
    )?;
    match s.retirement {
        Retirement::Active => {}
        Retirement::Draining { until } => writeln!(
            out,
            "retired: keep the records and the policy host until {} (senders may cache the old policy until then)",
            utc(until)
        )?,
        Retirement::Removable { since } => writeln!(
            out,
            "retired: since {} every cached policy has expired; remove the _mta-sts TXT record, then the mta-sts CNAME, then `mtasts domain` can forget it",
            utc(since)
        )?,
    }
    match &s.certificate {
        Some(c) => writeln!(
            out,
            "certificate: {} (mta-sts.{}), valid until {}",
            c.source,
            d.domain,
            utc(c.not_after)
        )?,
        None => writeln!(
            out,
            "certificate: none yet (mtasts serve --acme-directory orders one, or mtasts domain cert --chain --key)"
        )?,
    }
    if let Some(a) = &s.acme
        && let Some(e) = &a.last_error
    {
        writeln!(
            out,
            "ACME: {} failed attempt(s), the last at {}: {e}; next attempt after {}",
            a.failures,
            utc(a.last_attempt),
            utc(a.next_attempt)
        )?;
    }
    writeln!(out, "\nPolicy:\n{}", d.policy_text)?;
    writeln!(out, "Records:")?;
    for r in [&s.records.cname, &s.records.tlsrpt_txt].into_iter().flatten() {
        writeln!(out, "  {r}")?;
    }
    writeln!(out, "  {}", s.records.sts_txt)?;
    if let Some(live) = &s.dns {
        writeln!(out, "\nDNS now:")?;
        writeln!(
            out,
            "  MX: {}",
            if live.mx.is_empty() { "(none)".into() } else { live.mx.join(", ") }
        )?;
        writeln!(out, "  TXT id: {}", live.announced_id.as_deref().unwrap_or("(none)"))?;
        if live.problems.is_empty() {
            writeln!(out, "  ✓ the delegation, the TXT id and the MX hosts match")?;
        }
        for p in &live.problems {
            writeln!(out, "  ✗ {p}")?;
        }
    }
    match s.checked_at {
        None => writeln!(
            out,
            "\nMonitoring: not checked yet (mtasts serve checks every domain every --monitor-every)"
        )?,
        Some(t) if s.problems.is_empty() => {
            writeln!(out, "\nMonitoring: no problems at the last check, {}", utc(t))?;
        }
        Some(t) => {
            writeln!(
                out,
                "\nMonitoring: {} problem(s) at the last check, {}:",
                s.problems.len(),
                utc(t)
            )?;
            for p in &s.problems {
                let subject =
                    if p.subject.is_empty() { String::new() } else { format!("{}: ", p.subject) };
                writeln!(
                    out,
                    "  {} {subject}{} [{}] (since {})",
                    p.severity.to_uppercase(),
                    p.message,
                    p.code,
                    utc(p.first_seen)
                )?;
            }
        }
    }
    writeln!(out, "\nHistory:")?;
    for v in &s.history {
        writeln!(
            out,
            "  v{} {} {} max_age {} id {} by {}: {}",
            v.version,
            utc(v.created_at),
            v.mode,
            v.max_age,
            v.policy_id,
            v.author,
            v.reason
        )?;
    }
    Ok(())
}

async fn token(hosting: &HostingStore, command: TokenCommand, json: bool) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match command {
        TokenCommand::Create { tenant, operator: _, label } => {
            if let Some(t) = &tenant
                && (t.trim().is_empty() || t.len() > 64)
            {
                bail!("--tenant must be 1 to 64 characters");
            }
            let (row, secret) = mtasts_serve::tenants::issue(
                hosting,
                tenant.as_deref(),
                &label,
                now().unix_timestamp(),
            )
            .await?;
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({"token": secret, "row": row}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(out, "{secret}")?;
                eprintln!(
                    "token {} for {} ({}): shown this once; stored only as a hash. Use it as `Authorization: Bearer …`.",
                    row.id,
                    row.tenant
                        .as_deref()
                        .map_or("every tenant (operator)".to_owned(), |t| format!("tenant {t}")),
                    row.label
                );
            }
            Ok(0)
        }
        TokenCommand::List { tenant } => {
            let rows = hosting.tokens(tenant.as_deref()).await?;
            if json {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
                return Ok(0);
            }
            writeln!(
                out,
                "{:<16}  {:<16} {:<24} {:<25} revoked",
                "id", "tenant", "label", "created"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<16}  {:<16} {:<24} {:<25} {}",
                    r.id,
                    r.tenant.as_deref().unwrap_or("(operator)"),
                    r.label,
                    utc(r.created_at),
                    r.revoked_at.map(utc).unwrap_or_else(|| "-".into())
                )?;
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => {
            let id = id.trim().trim_start_matches("mtasts_");
            let id = id.split('_').next().unwrap_or(id);
            if hosting.revoke_token(id, now().unix_timestamp()).await? {
                eprintln!("token {id} revoked: every request with it is refused from now on");
                Ok(0)
            } else {
                eprintln!("mtasts domain token revoke: no token {id}, or it was revoked already");
                Ok(1)
            }
        }
    }
}

async fn list(hosting: &HostingStore, tenant: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let rows = hosting.list(tenant).await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!("mtasts domain: no hosted domains (add one with `mtasts domain add DOMAIN`)");
        return Ok(0);
    }
    writeln!(
        out,
        "{:<32} {:<12} {:<8} {:>10} {:>4}  {:<18} updated",
        "domain", "tenant", "mode", "max_age", "ver", "id"
    )?;
    for d in rows {
        writeln!(
            out,
            "{:<32} {:<12} {:<8} {:>10} {:>4}  {:<18} {}",
            d.domain,
            d.tenant,
            d.mode,
            d.max_age,
            d.version,
            d.policy_id,
            utc(d.updated_at)
        )?;
    }
    Ok(0)
}

async fn cert(
    hosting: &HostingStore,
    domain: &str,
    chain: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<u8> {
    let name = mtasts_serve::lifecycle::hosted_name(domain)?;
    let chain_pem = std::fs::read_to_string(chain)
        .with_context(|| format!("cannot read {}", chain.display()))?;
    let key_pem =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let t = now().unix_timestamp();
    let cert = match mtasts_serve::catalog::checked_certificate(
        name.as_str(),
        &chain_pem,
        &key_pem,
        "manual",
        t,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mtasts domain: {e}");
            return Ok(1);
        }
    };
    match hosting.put_certificate(&cert).await {
        Ok(()) => {}
        Err(e @ HostingError::NotHosted { .. }) => {
            eprintln!("mtasts domain: {e} (add it first)");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    }
    println!("mta-sts.{}: certificate stored, valid until {}", name.as_str(), utc(cert.not_after));
    Ok(0)
}
