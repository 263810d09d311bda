//! `mtasts reporter`: the sending side of TLS-RPT (RFC 8460) for a Postfix site. `collect`
//! is the collector (a drop-in for tlsrpt-collectd on the libtlsrpt socket), `send` plans and
//! delivers the daily reports (or prints them with `--dry-run`), `status` lists the days and
//! deliveries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use mtasts_net::submit::Submitter;
use mtasts_reporter::deliver::{self, MailRoute};
use mtasts_reporter::send::Planned;
use mtasts_reporter::sign::Signer;
use mtasts_reporter::{Collector, CollectorConfig, Delivery, Identity, Reporter, Schedule};
use mtasts_store::outbound::OutboundStore;
use mtasts_store::{Database, DatabaseUrl};
use time::OffsetDateTime;

use crate::net_args::NetArgs;
use crate::report::ListFormat;

/// Where results are stored unless `--db` says otherwise.
const DEFAULT_DB: &str = "sqlite://mtasts-reporter.db";

#[derive(Debug, Args)]
pub(crate) struct ReporterArgs {
    #[command(subcommand)]
    command: ReporterCommand,
}

#[derive(Debug, Subcommand)]
enum ReporterCommand {
    /// Collect delivery results from the MTA: a drop-in for tlsrpt-collectd on the same unix
    /// datagram socket (Postfix ≥ 3.10: `smtp_tlsrpt_enable = yes`,
    /// `smtp_tlsrpt_socket_name = PATH`).
    ///
    /// Results are summed in memory per UTC day, recipient domain, TLSRPT record and policy,
    /// and added to the database every --flush-every seconds: the reading thread never waits
    /// for the disk, so the MTA (whose library sends without blocking) loses nothing while
    /// the database is slow; when it is gone, results wait in memory and are written when it
    /// is back. Malformed datagrams are counted and logged, never fatal. SIGTERM or Ctrl-C:
    /// the socket is drained and everything written before exit. Several collectors (one per
    /// MTA host) may share one PostgreSQL database; one `send` reports their sum.
    Collect(CollectArgs),
    /// Send the daily reports: after each UTC day closes (plus --grace), one RFC 8460 report
    /// per recipient domain and TLSRPT record, to every `rua` of the record: by mail (gzip
    /// attached, DKIM-signed, through --smtp-relay or --sendmail) or HTTPS POST. Deliveries
    /// are spread over --spread seconds, retried with back-off (5 min doubling, at most 2 h)
    /// and given up a day after the first attempt (§5.5).
    ///
    /// Runs as a daemon; --once does one round and exits; --day DAY plans that day at once;
    /// --dry-run prints the reports of --day (default: yesterday) as JSON and sends nothing.
    Send(Box<SendArgs>),
    /// List the days with results (sessions, failures, whether planned) and the deliveries.
    Status {
        /// The database.
        #[arg(long, env = "MTASTS_REPORTER_DB", default_value = DEFAULT_DB)]
        db: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

#[derive(Debug, Args)]
struct CollectArgs {
    /// The socket to read (the MTA's `smtp_tlsrpt_socket_name`). A stale socket file is
    /// replaced; a socket another collector reads is refused.
    #[arg(long, env = "MTASTS_REPORTER_SOCKET", default_value = "/run/mtasts/tlsrpt.sock")]
    socket: PathBuf,
    /// The socket file's mode, octal. The default lets the socket's group write: run the
    /// collector with the MTA's group (e.g. `postfix`), or make it 0666.
    #[arg(long, default_value = "0660", value_name = "OCTAL")]
    socket_mode: String,
    /// The database (sqlite://PATH, created if missing, or postgres://…).
    #[arg(long, env = "MTASTS_REPORTER_DB", default_value = DEFAULT_DB)]
    db: String,
    /// Seconds between writes to the database (a `kill -9` loses at most this much).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    flush_every: f64,
    /// Socket receive buffer asked of the kernel, bytes (capped by net.core.rmem_max). A burst
    /// larger than the socket queue (net.unix.max_dgram_qlen datagrams) is lost by the
    /// sender if the collector cannot keep up; this one reads as fast as datagrams come.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    recv_buffer: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (datagrams by outcome, drops, write
    /// failures, results waiting for the database).
    #[arg(long, env = "MTASTS_REPORTER_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// The database the collectors write.
    #[arg(long, env = "MTASTS_REPORTER_DB", default_value = DEFAULT_DB)]
    db: String,
    /// `organization-name` of the reports.
    #[arg(long, env = "MTASTS_REPORTER_ORGANIZATION")]
    organization: Option<String>,
    /// `contact-info` of the reports: an address (its domain is the submitter) or a URI.
    #[arg(long, env = "MTASTS_REPORTER_CONTACT")]
    contact: Option<String>,
    /// The submitter domain (TLS-Report-Submitter; default: the domain of --contact).
    #[arg(long, env = "MTASTS_REPORTER_SUBMITTER")]
    submitter: Option<String>,
    /// The sender of report mail (default: --contact when it is an address).
    #[arg(long, env = "MTASTS_REPORTER_FROM")]
    from: Option<String>,
    /// Send report mail through this relay, HOST or HOST:PORT (default port 25).
    #[arg(long, env = "MTASTS_REPORTER_SMTP_RELAY", conflicts_with = "sendmail")]
    smtp_relay: Option<String>,
    /// TLS to the relay: `required` (STARTTLS, its certificate verified), `opportunistic`
    /// or `none` (a relay on loopback).
    #[arg(long, default_value = "opportunistic", value_parser = ["required", "opportunistic", "none"])]
    smtp_tls: String,
    /// Hand report mail to this sendmail-compatible program instead (`-i -f FROM -- TO`).
    #[arg(long, env = "MTASTS_REPORTER_SENDMAIL", value_name = "PATH")]
    sendmail: Option<PathBuf>,
    /// DKIM private key (PEM: Ed25519 or RSA). RFC 8460 §3: receivers MUST ignore unsigned
    /// report mail, so mail is not sent without a key unless --no-dkim.
    #[arg(long, env = "MTASTS_REPORTER_DKIM_KEY", value_name = "PEM")]
    dkim_key: Option<PathBuf>,
    /// DKIM selector (`s=`).
    #[arg(long, env = "MTASTS_REPORTER_DKIM_SELECTOR", default_value = "tlsrpt")]
    dkim_selector: String,
    /// DKIM signing domain (`d=`; default: the submitter domain).
    #[arg(long, env = "MTASTS_REPORTER_DKIM_DOMAIN")]
    dkim_domain: Option<String>,
    /// Send report mail unsigned (when the relay signs it).
    #[arg(long)]
    no_dkim: bool,
    /// Plan this UTC day (YYYY-MM-DD) now, whatever the time; with --dry-run, the day shown.
    #[arg(long, value_name = "DAY")]
    day: Option<String>,
    /// Print the reports of --day (default: yesterday) as JSON lines, send nothing.
    #[arg(long)]
    dry_run: bool,
    /// One round (plan what is due, send what is due), then exit.
    #[arg(long)]
    once: bool,
    /// Seconds over which a day's deliveries are spread (0: at once).
    #[arg(long, default_value_t = 14_400)]
    spread: u64,
    /// Seconds after a day's end before it is planned (collectors' last writes).
    #[arg(long, default_value_t = 600)]
    grace: u64,
    /// Seconds between rounds of the daemon.
    #[arg(long, default_value_t = 60)]
    every: u64,
    /// Seconds allowed per delivery (SMTP steps, HTTPS POST, sendmail).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    net: NetArgs,
}

impl ReporterArgs {
    /// Whether this runs as a daemon (logs what it does at info): `collect`, and `send`
    /// without --once or --dry-run.
    pub(crate) fn is_daemon(&self) -> bool {
        match &self.command {
            ReporterCommand::Collect(_) => true,
            ReporterCommand::Send(a) => !(a.once || a.dry_run),
            ReporterCommand::Status { .. } => false,
        }
    }
}

pub(crate) async fn run(args: ReporterArgs) -> anyhow::Result<u8> {
    match args.command {
        ReporterCommand::Collect(a) => collect(a).await,
        ReporterCommand::Send(a) => send(*a).await,
        ReporterCommand::Status { db, format } => status(&db, format).await,
    }
}

async fn open(db: &str) -> anyhow::Result<OutboundStore> {
    let url: DatabaseUrl = db.parse()?;
    let db = Database::open(&url).await?;
    Ok(OutboundStore::with_database(db).await?)
}

async fn collect(a: CollectArgs) -> anyhow::Result<u8> {
    let mode = u32::from_str_radix(a.socket_mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .with_context(|| format!("--socket-mode {:?} is not an octal mode", a.socket_mode))?;
    if !(a.flush_every.is_finite() && a.flush_every > 0.0 && a.flush_every <= 3600.0) {
        bail!("--flush-every must be more than 0 and at most 3600 seconds");
    }
    let stop = shutdown();
    let store = open(&a.db).await?;
    let mut config = CollectorConfig::new(&a.socket);
    config.socket_mode = mode;
    config.recv_buffer = a.recv_buffer;
    config.flush_every = Duration::from_secs_f64(a.flush_every);
    let collector = Collector::bind(config)?;
    if let Some(addr) = a.metrics_listen {
        serve_metrics(addr).await?;
    }
    tracing::info!(
        socket = %a.socket.display(),
        db = %store.database().url(),
        recv_buffer = collector.recv_buffer(),
        "mtasts reporter collect: reading"
    );
    let stats = collector.run(store, stop).await;
    eprintln!(
        "mtasts reporter collect: {} datagrams received, {} refused, {} stored, {} results dropped, {} failed writes",
        stats.received, stats.malformed, stats.stored, stats.dropped, stats.write_failures
    );
    Ok(if stats.stored + stats.malformed == stats.received { 0 } else { 2 })
}

/// Prometheus `GET /metrics` on its own listener at `addr` (`--metrics-listen` of `serve`
/// and `reporter collect`).
pub(crate) async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let render: mtasts_reports::http::MetricsRender = Arc::new(move || handle.render());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
    tokio::spawn(mtasts_reports::http::serve(
        listener,
        None,
        mtasts_reports::http::metrics_router(render),
        mtasts_reports::http::ServeOptions::default(),
        std::future::pending(),
    ));
    Ok(())
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called (before the socket is
/// bound), so a signal that comes at once is not the default, fatal one.
fn shutdown() -> impl Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

fn parse_day(day: &str) -> anyhow::Result<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, fmt).with_context(|| format!("--day {day:?} is not a date (YYYY-MM-DD)"))
}

fn domain_of(address: &str) -> Option<String> {
    let a = address.strip_prefix("mailto:").unwrap_or(address);
    let (_, d) = a.rsplit_once('@')?;
    let d = d.trim_end_matches('>').trim();
    mtasts_proto::DomainName::from_user_input(d).ok().map(|d| d.as_str().to_owned())
}

async fn send(a: SendArgs) -> anyhow::Result<u8> {
    let organization = a
        .organization
        .clone()
        .context("--organization is required (the organization-name of the reports)")?;
    let contact =
        a.contact.clone().context("--contact is required (the contact-info of the reports)")?;
    let submitter = match &a.submitter {
        Some(s) => mtasts_proto::DomainName::from_user_input(s)
            .with_context(|| format!("--submitter {s:?} is not a domain"))?
            .as_str()
            .to_owned(),
        None => domain_of(&contact)
            .context("--submitter is required when --contact is not a mail address")?,
    };
    let identity =
        Identity { organization, contact: contact.clone(), submitter: submitter.clone() };
    let from = a
        .from
        .clone()
        .or_else(|| contact.contains('@').then(|| contact.trim_start_matches("mailto:").to_owned()))
        .context("--from is required when --contact is not a mail address")?;
    let config = a.net.config()?;
    let roots = config.trust.load().context("cannot load the trust roots")?;
    let dns: Arc<dyn mtasts_net::DnsClient> = Arc::new(
        mtasts_net::HickoryDns::new(&config.dns_servers, config.timeouts.dns)
            .context("cannot set up DNS")?,
    );
    let timeout = Duration::from_secs(a.timeout.max(1));
    let mail = match (&a.smtp_relay, &a.sendmail) {
        (Some(spec), _) => {
            let relay = crate::alert_mail::relay(spec, &a.smtp_tls, "--smtp-relay")?;
            let me = crate::alert_mail::host_name();
            Some(MailRoute::Relay(Submitter::new(relay, roots.clone(), me, timeout)))
        }
        (None, Some(p)) => Some(MailRoute::Sendmail(p.clone())),
        (None, None) => None,
    };
    let signer = match (&a.dkim_key, a.no_dkim) {
        (Some(path), _) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --dkim-key {}", path.display()))?;
            let domain = a.dkim_domain.clone().unwrap_or_else(|| submitter.clone());
            Some(Arc::new(
                Signer::from_pem(&pem, &domain, &a.dkim_selector)
                    .with_context(|| format!("--dkim-key {}", path.display()))?,
            ))
        }
        (None, true) => None,
        (None, false) if mail.is_some() && !a.dry_run => {
            bail!(
                "report mail must be DKIM-signed (RFC 8460 §3): give --dkim-key, or --no-dkim when the relay signs"
            )
        }
        (None, false) => None,
    };
    let https = deliver::https_client(roots, dns, timeout).map_err(anyhow::Error::msg)?;
    let delivery = Delivery { identity, from, mail, signer, https, timeout };
    let schedule = Schedule {
        grace: Duration::from_secs(a.grace),
        spread: Duration::from_secs(a.spread),
        ..Schedule::default()
    };
    let store = open(&a.db).await?;
    let reporter = Reporter::new(store, delivery, schedule);
    let now = OffsetDateTime::now_utc();
    if a.dry_run {
        let day = match &a.day {
            Some(d) => parse_day(d)?,
            None => now.date().previous_day().context("no day before today")?,
        };
        let reports = reporter.reports(day).await?;
        if reports.is_empty() {
            eprintln!("mtasts reporter send: no results collected for {day}");
        }
        let mut out = std::io::stdout().lock();
        for r in reports {
            use std::io::Write as _;
            let line = serde_json::json!({
                "domain": r.domain,
                "destinations": r.destinations.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                "undeliverable": r.no_destination,
                "report": r.report,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(0);
    }
    if let Some(day) = &a.day {
        let mut planned = Planned::default();
        if !reporter.plan_day(parse_day(day)?, now, &mut planned).await? {
            eprintln!("mtasts reporter send: {day} was planned already");
        }
        say_planned(&planned);
    }
    if a.once {
        let planned = reporter.plan(now).await?;
        say_planned(&planned);
        let mut total = mtasts_reporter::send::Sent::default();
        loop {
            let sent = reporter.send_due(OffsetDateTime::now_utc(), 100).await?;
            let n = sent.delivered + sent.retrying + sent.given_up;
            total.delivered += sent.delivered;
            total.retrying += sent.retrying;
            total.given_up += sent.given_up;
            if n < 100 {
                break;
            }
        }
        eprintln!(
            "mtasts reporter send: {} delivered, {} to retry, {} given up",
            total.delivered, total.retrying, total.given_up
        );
        return Ok(if total.retrying + total.given_up == 0 { 0 } else { 1 });
    }
    tracing::info!("mtasts reporter send: running, a round every {} s", a.every);
    reporter.run(Duration::from_secs(a.every.max(1)), shutdown()).await;
    Ok(0)
}

fn say_planned(p: &Planned) {
    if !p.days.is_empty() {
        eprintln!(
            "mtasts reporter send: planned {} reports ({} deliveries) for {}",
            p.reports,
            p.deliveries,
            p.days.join(", ")
        );
    }
    for (domain, why) in &p.undeliverable {
        eprintln!("mtasts reporter send: no report for {domain}: {why}");
    }
}

async fn status(db: &str, format: ListFormat) -> anyhow::Result<u8> {
    // A listing never creates a database: a wrong --db is said, not answered with nothing.
    let url: DatabaseUrl = db.parse()?;
    let store = OutboundStore::with_database(Database::open_existing(&url).await?).await?;
    let days = store.days().await?;
    let deliveries = store.deliveries(None).await?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            let doc = serde_json::json!({ "days": days, "deliveries": deliveries });
            writeln!(out, "{doc}")?;
        }
        ListFormat::Csv => {
            writeln!(out, "day,domains,successes,failures,planned")?;
            for d in &days {
                writeln!(
                    out,
                    "{},{},{},{},{}",
                    d.day, d.domains, d.successes, d.failures, d.planned
                )?;
            }
        }
        ListFormat::Text => {
            writeln!(
                out,
                "{:<12} {:>8} {:>12} {:>10}  planned",
                "day", "domains", "successful", "failed"
            )?;
            for d in &days {
                writeln!(
                    out,
                    "{:<12} {:>8} {:>12} {:>10}  {}",
                    d.day,
                    d.domains,
                    d.successes,
                    d.failures,
                    if d.planned { "yes" } else { "no" }
                )?;
            }
            if !deliveries.is_empty() {
                writeln!(out)?;
                for d in &deliveries {
                    let when = match d.state.as_str() {
                        "pending" => format!("next attempt at {}", d.due_at),
                        "sent" => format!("after {} attempts", d.attempts),
                        _ => format!("{} attempts", d.attempts),
                    };
                    let why =
                        d.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                    writeln!(
                        out,
                        "{} {} → {}: {} {when}{why}",
                        d.day, d.domain, d.destination, d.state
                    )?;
                }
            }
        }
    }
    Ok(0)
}
