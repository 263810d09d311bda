//! `mtasts report ingest|list|show|summary`: TLS-RPT reports received (RFC 8460).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use mtasts_reports::dkim::{DkimPolicy, DkimVerifier};
use mtasts_reports::http::HttpLimits;
use mtasts_reports::imap::ImapSource;
use mtasts_reports::page::day_text as day;
use mtasts_reports::readiness::{Criteria, Evidence};
use mtasts_reports::source::{self, Item};
use mtasts_reports::{IngestError, Ingestor, Limits};
use mtasts_scan::output::csv_field;
use mtasts_store::reports::{FailureKey, ReportStore};
use mtasts_store::{Database, DatabaseUrl};

/// Where reports are stored unless `--db` says otherwise.
const DEFAULT_DB: &str = "sqlite://mtasts-reports.db";

/// Exit status for a rejected report (sysexits EX_DATAERR): a Postfix `pipe` bounces it.
const EX_DATAERR: u8 = 65;
/// Exit status when the database is unavailable (sysexits EX_TEMPFAIL): Postfix retries.
const EX_TEMPFAIL: u8 = 75;

/// Arguments of `mtasts report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(subcommand)]
    pub(crate) command: ReportCommand,
}

/// Output format of the listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// A table for people.
    Text,
    /// JSON (one document).
    Json,
    /// CSV with a header line.
    Csv,
}

/// Alerts on received reports (both `ingest` and `receive`).
#[derive(Debug, Clone, Args)]
pub(crate) struct AlertArgs {
    /// POST alerts as JSON to this URL: a report whose failure rate for a domain is above
    /// --alert-failure-rate, or a kind of failure never reported for the domain before.
    #[arg(long, env = "MTASTS_ALERT_WEBHOOK", value_name = "URL")]
    alert_webhook: Option<String>,
    /// Failed share of a report's sessions above which to alert (0 to 1).
    #[arg(long, default_value_t = 0.05, value_name = "RATE")]
    alert_failure_rate: f64,
    /// Sessions a report needs before its failure rate counts.
    #[arg(long, default_value_t = 10, value_name = "N")]
    alert_min_sessions: i64,
    /// No alert for a kind of failure seen for the first time.
    #[arg(long)]
    no_alert_new_kinds: bool,
    #[command(flatten)]
    mail: crate::alert_mail::AlertMailArgs,
    /// Trust roots for the alert webhook and mail relay: `webpki`, `system` or a PEM file.
    #[arg(long = "alert-trust-roots", env = "MTASTS_ALERT_TRUST_ROOTS", default_value = "webpki")]
    alert_trust_roots: String,
}

impl AlertArgs {
    /// `ing` with the alerts, when a webhook or alert mail is set.
    fn apply(&self, mut ing: Ingestor) -> anyhow::Result<Ingestor> {
        let mailer = self.mail.mailer(&self.alert_trust_roots)?;
        if self.alert_webhook.is_none() && mailer.is_none() {
            return Ok(ing);
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.alert_failure_rate),
            "--alert-failure-rate must be from 0 to 1, got {}",
            self.alert_failure_rate
        );
        let rules = mtasts_reports::alert::AlertRules {
            failure_rate: self.alert_failure_rate,
            min_sessions: self.alert_min_sessions,
            new_kinds: !self.no_alert_new_kinds,
        };
        if let Some(url) = &self.alert_webhook {
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "--alert-webhook {url:?} is not an http(s) URL"
            );
            let roots = mtasts_net::TrustRoots::from_arg(&self.alert_trust_roots).load()?;
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(mtasts_net::tls::strict_client_config(roots))
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .context("cannot set up the alert webhook client")?;
            ing = ing.with_alerts(rules, mtasts_reports::alert::Webhook::new(url.clone(), client));
        }
        if let Some(m) = mailer {
            ing = ing.with_alert_mail(rules, m);
        }
        Ok(ing)
    }
}

/// What to do about DKIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DkimArg {
    /// Do not verify.
    Off,
    /// Verify and store the result; keep the report either way.
    Flag,
    /// Refuse report mail without a passing signature.
    Require,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Store report e-mails or report files: one message per FILE or on standard input (for a
    /// Postfix `pipe` transport or an alias), a maildir (its new/ and cur/), an mbox, or
    /// `.json` / `.json.gz` reports as saved from a mail.
    ///
    /// RFC 8460 §5.3 mail (multipart/report; report-type=tlsrpt, application/tlsrpt+gzip or
    /// +json) and what real senders send (other media types, a .json or .gz name, an HTML
    /// part). A report delivered twice is stored once.
    ///
    /// With --imap, also (or only) the messages of an IMAP mailbox, once or every
    /// --imap-poll seconds.
    ///
    /// Exit status: 0 every report stored (or already stored); 65 something was rejected (not
    /// a report, malformed, too large, unsigned under --dkim require: the reason is on stderr,
    /// so a pipe transport bounces it); 75 the database is unavailable or a DKIM key could not
    /// be looked up (try again later: Postfix retries).
    Ingest {
        /// Messages, report files, maildirs or mboxes; `-` or nothing: one message on stdin.
        #[arg(value_name = "INPUT")]
        inputs: Vec<String>,
        /// The database (sqlite://PATH, created if missing, or postgres://…).
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
        /// Largest message accepted, in bytes (compressed, as received).
        #[arg(long, default_value_t = Limits::default().max_message, value_name = "BYTES")]
        max_message: usize,
        /// Largest report after decompression, in bytes (gzip bombs stop here).
        #[arg(long, default_value_t = Limits::default().max_report, value_name = "BYTES")]
        max_report: usize,
        /// Move maildir messages that were stored (or already stored) into this directory.
        #[arg(long, value_name = "DIR")]
        move_processed: Option<PathBuf>,
        /// Print one JSON object per report on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        alerts: AlertArgs,
        /// DKIM on report mail (RFC 8460 §3 requires senders to sign): `flag` verifies and
        /// stores the result with the report, `require` refuses unsigned or failing mail (65;
        /// 75 when the key cannot be looked up), `off` does not verify.
        #[arg(long, value_enum, default_value_t = DkimArg::Flag)]
        dkim: DkimArg,
        /// DNS server for the DKIM keys (IP or IP:PORT; repeatable). Default: the system's.
        #[arg(long = "dns-server", env = "MTASTS_DNS_SERVER", value_delimiter = ',')]
        dns_servers: Vec<String>,
        /// Also take report mail from this IMAP mailbox:
        /// `imaps://USER[:PASSWORD]@HOST[:993]/MAILBOX` (`imap://` for a server on loopback).
        /// Stored and already-stored messages move to --imap-processed, rejected ones to
        /// --imap-rejected; a database failure leaves them for the next poll.
        #[arg(long, value_name = "URL", env = "MTASTS_IMAP_URL")]
        imap: Option<String>,
        /// The IMAP password, when not in the URL.
        #[arg(long, env = "MTASTS_IMAP_PASSWORD", hide_env_values = true)]
        imap_password: Option<String>,
        /// Folder for processed messages (created if missing).
        #[arg(long, default_value = "TLSRPT-Processed")]
        imap_processed: String,
        /// Folder for rejected messages (created if missing).
        #[arg(long, default_value = "TLSRPT-Rejected")]
        imap_rejected: String,
        /// Poll the IMAP mailbox every SECONDS until stopped (Ctrl-C, SIGTERM); without it, once.
        #[arg(long, value_name = "SECONDS")]
        imap_poll: Option<u64>,
        /// Trust roots for imaps://: `webpki` (Mozilla's, built in), `system`, or a PEM file.
        #[arg(long, env = "MTASTS_TRUST_ROOTS", default_value = "webpki")]
        trust_roots: String,
        /// Seconds per DNS query for the DKIM keys.
        #[arg(long, env = "MTASTS_DNS_TIMEOUT", default_value_t = 5.0)]
        dns_timeout: f64,
    },
    /// Receive reports by HTTPS POST (RFC 8460 §5.4): `application/tlsrpt+gzip` or
    /// `+json` at any path, committed before the 200; duplicates acknowledged and stored once.
    ///
    /// Publish `rua=https://HOST/v1/tlsrpt` (any path works). Serve TLS with --tls-cert and
    /// --tls-key, or --plain behind a reverse proxy that terminates TLS.
    Receive {
        /// Address to listen on, e.g. 0.0.0.0:443 or [::]:8443.
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Certificate chain (PEM), leaf first.
        #[arg(long, value_name = "FILE", requires = "tls_key", required_unless_present = "plain")]
        tls_cert: Option<PathBuf>,
        /// Private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Plain HTTP, for use behind a reverse proxy that terminates TLS.
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        plain: bool,
        /// Also serve the analysis API (`GET /api/v1/reports`, `/api/v1/reports/ID`,
        /// `/api/v1/domains/DOMAIN/days`, `/api/v1/domains/DOMAIN/readiness`) to clients that
        /// send `Authorization: Bearer TOKEN`. Without it, no API.
        #[arg(long, env = "MTASTS_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
        api_token: Option<String>,
        #[command(flatten)]
        alerts: AlertArgs,
        /// Serve Prometheus metrics at `GET /metrics`: reports received by outcome, sessions
        /// by domain and result, failed sessions by domain and result type.
        #[arg(long)]
        metrics: bool,
        /// Reports one client address may post per minute.
        #[arg(long, default_value_t = 60, value_name = "N")]
        per_client_per_minute: u32,
        /// Connections served at once; more are refused until one ends.
        #[arg(long, default_value_t = 1024, value_name = "N")]
        max_connections: usize,
        /// Seconds allowed for a request's headers to arrive (slow clients are cut off).
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        header_timeout: u64,
        /// Seconds allowed for a request body to arrive (slow clients are cut off).
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        body_timeout: u64,
        /// Largest body accepted, in bytes (compressed).
        #[arg(long, default_value_t = Limits::default().max_message, value_name = "BYTES")]
        max_message: usize,
        /// Largest report after decompression, in bytes.
        #[arg(long, default_value_t = Limits::default().max_report, value_name = "BYTES")]
        max_report: usize,
        /// The database (created if missing).
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// May DOMAIN move from mode: testing to mode: enforce? Judged from the reports: days of
    /// clean data, failures by kind, reporters seen, senders on a stale policy.
    ///
    /// Exit status: 0 ready, 1 not ready (the reasons are printed), 2 could not judge.
    Readiness {
        /// The policy domain.
        domain: String,
        /// The policy file published now (to find senders on an older one).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Days of clean report data needed.
        #[arg(long, default_value_t = Criteria::default().clean_days)]
        clean_days: u32,
        /// Largest failure rate accepted, 0 to 1 (0: no failures).
        #[arg(long, default_value_t = 0.0)]
        max_failure_rate: f64,
        /// Distinct reporting organisations needed.
        #[arg(long, default_value_t = Criteria::default().min_reporters)]
        min_reporters: usize,
        /// Days of data to look at.
        #[arg(long, default_value_t = 60)]
        days: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// The database.
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// List stored reports, newest first.
    List {
        /// Only reports with a policy for this domain.
        #[arg(long)]
        domain: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// The database.
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// One stored report, whole: every field as received, the tolerated deviations, receipts.
    Show {
        /// The report's id (from `list`).
        id: i64,
        /// Print the report exactly as received instead.
        #[arg(long)]
        raw: bool,
        /// The database.
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// Per domain: sessions per UTC day, successful and failed, and failures by result type,
    /// sending organisation, receiving MX and receiving IP.
    Summary {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Days back from today (UTC).
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Output format (CSV: one line per domain and day).
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Also write one self-contained HTML page with the charts (sessions per day,
        /// failures per day by result type, failure breakdowns) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// The database.
        #[arg(long, env = "MTASTS_REPORTS_DB", default_value = DEFAULT_DB)]
        db: String,
    },
}

pub(crate) async fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let result = match args.command {
        ReportCommand::Ingest {
            inputs,
            db,
            max_message,
            max_report,
            move_processed,
            json,
            alerts,
            dkim,
            dns_servers,
            dns_timeout,
            imap,
            imap_password,
            imap_processed,
            imap_rejected,
            imap_poll,
            trust_roots,
        } => {
            let limits = Limits { max_message, max_report };
            let dkim = match dkim {
                DkimArg::Off => None,
                policy => {
                    let servers = dns_servers
                        .iter()
                        .map(|s| crate::net_args::parse_server(s))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let verifier = DkimVerifier::new(
                        &servers,
                        std::time::Duration::from_secs_f64(dns_timeout.clamp(0.05, 60.0)),
                    )?;
                    let policy = if policy == DkimArg::Require {
                        DkimPolicy::Require
                    } else {
                        DkimPolicy::Flag
                    };
                    Some((verifier, policy))
                }
            };
            let imap = match imap {
                Some(url) => {
                    let roots = mtasts_net::TrustRoots::from_arg(&trust_roots).load()?;
                    let tls = Arc::new(mtasts_net::tls::strict_client_config(roots));
                    let mut source = ImapSource::from_url(&url, imap_password, tls)?;
                    source.processed = imap_processed;
                    source.rejected = imap_rejected;
                    Some((source, imap_poll))
                }
                None => None,
            };
            let store = match open_for_ingest(&db).await? {
                Ok(store) => store,
                Err(code) => return Ok(code),
            };
            let mut ing = alerts.apply(Ingestor::new(store, limits))?;
            if let Some((verifier, policy)) = dkim {
                ing = ing.with_dkim(verifier, policy);
            }
            let setup =
                IngestSetup { ing, limits, move_processed: move_processed.as_deref(), json };
            ingest(setup, inputs, imap).await
        }
        ReportCommand::Receive {
            listen,
            tls_cert,
            tls_key,
            plain: _,
            api_token,
            alerts,
            metrics,
            per_client_per_minute,
            max_connections,
            header_timeout,
            body_timeout,
            max_message,
            max_report,
            db,
        } => {
            let limits = Limits { max_message, max_report };
            let serve = mtasts_reports::http::ServeOptions {
                max_connections,
                header_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
            };
            let http = HttpLimits {
                per_client_per_minute,
                body_timeout: std::time::Duration::from_secs(body_timeout),
            };
            let api = api_token.as_deref();
            let url: DatabaseUrl = db.parse()?;
            let store = ReportStore::with_database(Database::open(&url).await?).await?;
            let ingestor = alerts.apply(Ingestor::new(store.clone(), limits))?;
            let tls = tls_cert.zip(tls_key);
            receive(store, ingestor, listen, tls, (http, serve), api, metrics).await
        }
        ReportCommand::Readiness {
            domain,
            policy,
            clean_days,
            max_failure_rate,
            min_reporters,
            days,
            format,
            db,
        } => {
            let criteria = Criteria { clean_days, max_failure_rate, min_reporters };
            readiness(&open(&db).await?, &domain, policy.as_deref(), criteria, days, format).await
        }
        ReportCommand::List { domain, limit, format, db } => {
            list(&open(&db).await?, domain.as_deref(), limit, format).await
        }
        ReportCommand::Show { id, raw, db } => show(&open(&db).await?, id, raw).await,
        ReportCommand::Summary { domain, days, format, html, db } => {
            let store = open(&db).await?;
            // The page first: a reader that stops early (`| head`) must not cost the file.
            if let Some(path) = html {
                summary_page(&store, domain.as_deref(), days, &path).await?;
            }
            summary(&store, domain.as_deref(), days, format).await
        }
    };
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(0),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// An existing database (reading commands never create one).
async fn open(db: &str) -> anyhow::Result<ReportStore> {
    let url: DatabaseUrl = db.parse()?;
    let db = Database::open_existing(&url).await?;
    Ok(ReportStore::with_database(db).await?)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How `ingest` takes reports in: the ingestor (store, DKIM, alerts), the limits, where
/// processed maildir files go, and whether to print JSON lines.
struct IngestSetup<'a> {
    ing: Ingestor,
    limits: Limits,
    move_processed: Option<&'a std::path::Path>,
    json: bool,
}

/// The store `ingest` writes to, created if missing; `Err(75)` after saying why when the
/// database is unavailable (the MTA retries).
async fn open_for_ingest(db: &str) -> anyhow::Result<Result<ReportStore, u8>> {
    let url: DatabaseUrl = db.parse()?;
    let store = match Database::open(&url).await {
        Ok(db) => ReportStore::with_database(db).await,
        Err(e) => Err(e.into()),
    };
    Ok(store.map_err(|e| {
        eprintln!("mtasts report ingest: not stored (try again later): {e}");
        EX_TEMPFAIL
    }))
}

async fn ingest(
    setup: IngestSetup<'_>,
    inputs: Vec<String>,
    imap: Option<(ImapSource, Option<u64>)>,
) -> anyhow::Result<u8> {
    let IngestSetup { ing, limits, move_processed, json } = setup;
    if let Some((source, poll)) = imap {
        let mut status = 0u8;
        // Files given beside --imap are ingested first, once.
        if !inputs.is_empty() {
            status = ingest_inputs(&ing, &inputs, limits, move_processed, json).await?;
        }
        return Ok(status.max(poll_imap(&ing, &source, poll).await));
    }
    let inputs = if inputs.is_empty() { vec!["-".to_owned()] } else { inputs };
    ingest_inputs(&ing, &inputs, limits, move_processed, json).await
}

/// Polls `source` once, or every `poll` seconds until Ctrl-C / SIGTERM; the exit status of
/// the last poll (0, or 75 when the server could not be read).
async fn poll_imap(ing: &Ingestor, source: &ImapSource, poll: Option<u64>) -> u8 {
    loop {
        let last = match source.poll(ing).await {
            Ok(s) => {
                eprintln!(
                    "mtasts report ingest: {}/{}: {} stored, {} already stored, {} rejected, {} left for later",
                    source.host, source.mailbox, s.stored, s.duplicates, s.rejected, s.deferred
                );
                if s.deferred > 0 {
                    EX_TEMPFAIL
                } else if s.rejected > 0 {
                    EX_DATAERR
                } else {
                    0
                }
            }
            Err(e) => {
                eprintln!("mtasts report ingest: {e}");
                EX_TEMPFAIL
            }
        };
        let Some(secs) = poll else { return last };
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return last,
            () = terminated() => return last,
        }
    }
}

/// Resolves on SIGTERM (systemd's stop).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

async fn ingest_inputs(
    ing: &Ingestor,
    inputs: &[String],
    limits: Limits,
    move_processed: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<u8> {
    let mut status = 0u8;
    let mut out = std::io::stdout().lock();
    // One line per report: buffered, written at the end of each batch rather than one
    // system call per line.
    let mut log = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr().lock());
    let workers = mtasts_reports::ingest::default_workers();
    for input in inputs {
        let pending = match source::plan(input, limits.max_message) {
            Ok(pending) => pending,
            Err(e) => {
                writeln!(log, "mtasts report ingest: {e}")?;
                status = status.max(EX_DATAERR);
                continue;
            }
        };
        // Stored a batch at a time (one transaction each): a maildir of thousands of
        // messages costs a few hundred commits, not one per message; reading and parsing
        // run on the other cores meanwhile.
        let done = |item: &Item, result: Result<Vec<mtasts_reports::Ingested>, IngestError>| {
            match result {
                Ok(reports) => {
                    for r in &reports {
                        let what = if r.duplicate { "already stored" } else { "stored" };
                        writeln!(
                            log,
                            "mtasts report ingest: {}: {what} report {} ({:?} from {}, for {})",
                            item.origin,
                            r.id,
                            r.report_id,
                            r.organization,
                            if r.domains.is_empty() {
                                "no policy domain".to_owned()
                            } else {
                                r.domains.join(", ")
                            }
                        )?;
                        for t in &r.tolerated {
                            writeln!(log, "    accepted with a warning: {t}")?;
                        }
                        if json {
                            writeln!(
                                out,
                                "{}",
                                serde_json::json!({
                                    "input": item.origin, "id": r.id, "duplicate": r.duplicate,
                                    "organization": r.organization, "report_id": r.report_id,
                                    "domains": r.domains, "warnings": r.tolerated, "dkim": r.dkim,
                                })
                            )?;
                        }
                    }
                    move_done(item, move_processed)?;
                }
                Err(e) => {
                    writeln!(log, "mtasts report ingest: {}: {e}", item.origin)?;
                    let code = if e.is_temporary() { EX_TEMPFAIL } else { EX_DATAERR };
                    // A database failure is worse than a bad report: retrying helps it.
                    status = if code == EX_TEMPFAIL || status == EX_TEMPFAIL {
                        EX_TEMPFAIL
                    } else {
                        code
                    };
                }
            }
            anyhow::Ok(())
        };
        ing.pipeline(pending, (BATCH, workers), now, done).await?;
    }
    log.flush()?;
    Ok(status)
}

/// Messages stored per transaction by `ingest`.
const BATCH: usize = 256;

async fn receive(
    store: ReportStore,
    ingestor: Ingestor,
    listen: std::net::SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    (http, serve): (HttpLimits, mtasts_reports::http::ServeOptions),
    api_token: Option<&str>,
    metrics: bool,
) -> anyhow::Result<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let acceptor = match &tls {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| {
                    anyhow::anyhow!("cannot read the certificate {}: {e}", cert.display())
                })?;
            anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow::anyhow!("cannot read the key {}: {e}", key.display()))?;
            Some(mtasts_reports::http::tls_acceptor(chain, key).map_err(|e| {
                anyhow::anyhow!("the certificate and key do not work together: {e}")
            })?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    eprintln!(
        "mtasts report receive: {scheme}://{} into {}",
        listener.local_addr().unwrap_or(listen),
        store.database()
    );
    let mut app = mtasts_reports::http::router(ingestor, http);
    if metrics {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        let render: mtasts_reports::http::MetricsRender = Arc::new(move || handle.render());
        app = mtasts_reports::http::metrics_router(render).merge(app);
    }
    if let Some(token) = api_token {
        anyhow::ensure!(token.len() >= 16, "--api-token must be at least 16 characters");
        // The API's GET routes are more specific than the receiver's catch-all.
        app = mtasts_reports::api::router(store, token).merge(app);
    }
    mtasts_reports::http::serve(listener, acceptor, app, serve, async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated() => {}
        }
    })
    .await?;
    Ok(0)
}

async fn readiness(
    store: &ReportStore,
    domain: &str,
    policy: Option<&std::path::Path>,
    criteria: Criteria,
    days: i64,
    format: ListFormat,
) -> anyhow::Result<u8> {
    let domain = mtasts_proto::DomainName::from_user_input(domain.trim())
        .map_err(|e| anyhow::anyhow!("{domain:?} is not a domain name: {e}"))?;
    let current_policy = match policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Some(text.lines().map(str::to_owned).collect())
        }
        None => None,
    };
    let today = now() - now().rem_euclid(86_400);
    let since = today - days.max(1) * 86_400;
    let d = domain.as_str();
    let evidence = Evidence::gather(store, d, since, current_policy).await?;
    let verdict = mtasts_reports::readiness::judge(&evidence, &criteria, today);
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Text {
        let word =
            if verdict.ready { "ready for mode: enforce" } else { "not ready for mode: enforce" };
        writeln!(out, "{d}: {word}")?;
        for r in &verdict.reasons {
            let mark = if r.blocking { "  ✗" } else { "  ✓" };
            writeln!(out, "{mark} {}  [{}]", r.message, r.code)?;
        }
        if !verdict.reporters.is_empty() {
            writeln!(out, "  reporters: {}", verdict.reporters.join(", "))?;
        }
    } else {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"domain": d, "verdict": verdict}),
        )?;
        writeln!(out)?;
    }
    Ok(if verdict.ready { 0 } else { 1 })
}

fn move_done(item: &Item, to: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (Some(file), Some(dir)) = (&item.maildir_file, to) else { return Ok(()) };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = file.file_name().unwrap_or_default();
    std::fs::rename(file, dir.join(name))
        .with_context(|| format!("cannot move {} to {}", file.display(), dir.display()))
}

/// Unix seconds as RFC 3339 UTC (the seconds themselves if out of range).
fn utc(secs: i64) -> String {
    crate::scan::rfc3339(secs).unwrap_or_else(|| secs.to_string())
}

async fn list(
    store: &ReportStore,
    domain: Option<&str>,
    limit: i64,
    format: ListFormat,
) -> anyhow::Result<u8> {
    let rows = store.list(domain, limit).await?;
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        ListFormat::Csv => {
            writeln!(
                out,
                "id,organization,report_id,start,end,domains,successful,failed,channel,dkim,receipts,received_at"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.id,
                    csv_field(&r.organization),
                    csv_field(&r.report_id),
                    utc(r.start),
                    utc(r.end),
                    csv_field(&r.domains),
                    r.successful,
                    r.failed,
                    r.channel,
                    r.dkim.as_deref().unwrap_or(""),
                    r.receipts,
                    utc(r.received_at)
                )?;
            }
        }
        ListFormat::Text => {
            writeln!(
                out,
                "{:>6}  {:<10}  {:<28}  {:>10}  {:>7}  domains",
                "id", "day", "organization", "successful", "failed"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:>6}  {:<10}  {:<28}  {:>10}  {:>7}  {}",
                    r.id,
                    day(r.start),
                    r.organization.chars().take(28).collect::<String>(),
                    r.successful,
                    r.failed,
                    r.domains
                )?;
            }
            if rows.is_empty() {
                writeln!(
                    out,
                    "(no reports stored{})",
                    domain.map(|d| format!(" for {d}")).unwrap_or_default()
                )?;
            }
        }
    }
    Ok(0)
}

async fn show(store: &ReportStore, id: i64, raw: bool) -> anyhow::Result<u8> {
    let Some(d) = store.get(id).await? else {
        eprintln!("mtasts report show: no report {id} in {}", store.database());
        return Ok(1);
    };
    let mut out = std::io::stdout().lock();
    if raw {
        out.write_all(d.raw_json.as_bytes())?;
        return Ok(0);
    }
    let doc = serde_json::json!({
        "id": d.row.id,
        "organization": d.row.organization,
        "report_id": d.row.report_id,
        "start": utc(d.row.start),
        "end": utc(d.row.end),
        "channel": d.row.channel,
        "receipts": d.row.receipts,
        "received_at": utc(d.row.received_at),
        "submitter": d.submitter,
        "report_domain": d.report_domain,
        "dkim": d.row.dkim,
        "warnings": serde_json::from_str::<serde_json::Value>(&d.warnings_json).unwrap_or_default(),
        "report": mtasts_reports::record::parsed_document(&d.raw_json),
    });
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)?;
    Ok(0)
}

const BREAKDOWNS: [(FailureKey, &str, &str); 5] = [
    (FailureKey::ResultType, "result_type", "by result type"),
    (FailureKey::Organization, "organization", "by sending organisation"),
    (FailureKey::ReceivingMx, "receiving_mx", "by receiving MX"),
    (FailureKey::ReceivingIp, "receiving_ip", "by receiving IP"),
    // Certificate and validation details as the sender words them (e.g. X509 error names).
    (FailureKey::ReasonCode, "reason_code", "by failure reason code"),
];

async fn summary_page(
    store: &ReportStore,
    domain: Option<&str>,
    days: i64,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let today = now() - now().rem_euclid(86_400);
    let since = today - days.max(0) * 86_400;
    let title = match domain {
        Some(d) => format!("TLS-RPT reports for {d}"),
        None => "TLS-RPT reports".to_owned(),
    };
    let page = mtasts_reports::page::load(store, domain, &title, &utc(now()), since).await?;
    let html = page.html().map_err(|e| anyhow::anyhow!("rendering the page: {e}"))?;
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("mtasts report summary: HTML page in {}", path.display());
    Ok(())
}

async fn summary(
    store: &ReportStore,
    domain: Option<&str>,
    days: i64,
    format: ListFormat,
) -> anyhow::Result<u8> {
    let today = now() - now().rem_euclid(86_400);
    let since = today - days.max(0) * 86_400;
    let rows = store.days(domain, since).await?;
    let mut breakdowns: BTreeMap<(String, &str), Vec<(String, i64)>> = BTreeMap::new();
    for (key, name, _) in BREAKDOWNS {
        for g in store.failures(key, domain, since).await? {
            breakdowns.entry((g.domain, name)).or_default().push((g.key, g.failed));
        }
    }
    let mut domains: Vec<String> = rows.iter().map(|r| r.domain.clone()).collect();
    domains.dedup();
    // The policies senders reported using, per domain: a sender on an old policy shows here.
    let mut seen = BTreeMap::new();
    for d in domains.iter().filter(|d| !d.is_empty()) {
        seen.insert(d.clone(), store.policies_seen(d, since).await?);
    }
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Csv => {
            writeln!(out, "domain,day,successful,failed,reports")?;
            for r in &rows {
                writeln!(
                    out,
                    "{},{},{},{},{}",
                    csv_field(&r.domain),
                    day(r.day),
                    r.successful,
                    r.failed,
                    r.reports
                )?;
            }
        }
        ListFormat::Json => {
            let docs: Vec<serde_json::Value> = domains
                .iter()
                .map(|d| {
                    let days: Vec<_> = rows
                        .iter()
                        .filter(|r| &r.domain == d)
                        .map(|r| serde_json::json!({"day": day(r.day), "successful": r.successful, "failed": r.failed, "reports": r.reports}))
                        .collect();
                    let mut failures = serde_json::Map::new();
                    for (_, name, _) in BREAKDOWNS {
                        let list: Vec<_> = breakdowns
                            .get(&(d.clone(), name))
                            .map(|v| v.iter().map(|(k, n)| serde_json::json!({"key": k, "failed": n})).collect())
                            .unwrap_or_default();
                        failures.insert(name.to_owned(), serde_json::Value::Array(list));
                    }
                    let policies: Vec<_> = seen
                        .get(d)
                        .map(|v| {
                            v.iter()
                                .map(|p| {
                                    serde_json::json!({
                                        "organization": p.organization,
                                        "policy_type": p.policy_type,
                                        "policy_strings": serde_json::from_str::<serde_json::Value>(&p.policy_strings_json).unwrap_or_default(),
                                        "last_day": day(p.last_day),
                                        "sessions": p.sessions,
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    serde_json::json!({"domain": d, "days": days, "failures": failures, "policies_reported": policies})
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({"since": day(since), "domains": docs}),
            )?;
            writeln!(out)?;
        }
        ListFormat::Text => {
            if domains.is_empty() {
                writeln!(
                    out,
                    "No reports since {}{}.",
                    day(since),
                    domain.map(|d| format!(" for {d}")).unwrap_or_default()
                )?;
            }
            for d in &domains {
                let mine: Vec<_> = rows.iter().filter(|r| &r.domain == d).collect();
                let ok: i64 = mine.iter().map(|r| r.successful).sum();
                let failed: i64 = mine.iter().map(|r| r.failed).sum();
                let total = ok + failed;
                let pct = if total > 0 { 100.0 * failed as f64 / total as f64 } else { 0.0 };
                let name = if d.is_empty() { "(no policy domain)" } else { d.as_str() };
                writeln!(
                    out,
                    "{name}: {ok} successful, {failed} failed sessions ({pct:.2}% failed) since {}",
                    day(since)
                )?;
                writeln!(
                    out,
                    "  {:<10}  {:>10}  {:>7}  {:>7}",
                    "day", "successful", "failed", "reports"
                )?;
                for r in &mine {
                    writeln!(
                        out,
                        "  {:<10}  {:>10}  {:>7}  {:>7}",
                        day(r.day),
                        r.successful,
                        r.failed,
                        r.reports
                    )?;
                }
                for (_, name, title) in BREAKDOWNS {
                    if let Some(list) = breakdowns.get(&(d.clone(), name)) {
                        let shown: Vec<String> =
                            list.iter().take(10).map(|(k, n)| format!("{k} {n}")).collect();
                        writeln!(out, "  failures {title}: {}", shown.join(", "))?;
                    }
                }
                for p in seen.get(d).into_iter().flatten() {
                    let lines: Vec<String> =
                        serde_json::from_str(&p.policy_strings_json).unwrap_or_default();
                    writeln!(
                        out,
                        "  policy reported by {} (last {}, {} sessions): {}",
                        p.organization,
                        day(p.last_day),
                        p.sessions,
                        if lines.is_empty() { p.policy_type.clone() } else { lines.join("; ") }
                    )?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(0)
}
