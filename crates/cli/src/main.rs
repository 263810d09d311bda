//! `mtasts`: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for domain owners, hosting providers,
//! mail operators and auditors.
//!
//! This binary only parses arguments and renders output; the work is in the library crates.
//! Each subcommand has its own module.

mod alert_mail;
mod check;
mod demo;
mod domain;
mod generate;
mod lint;
mod man;
mod net_args;
mod report;
mod reporter;
mod resolver;
mod scan;
mod serve;

use std::process::ExitCode;

/// mimalloc rather than the C library's allocator: parsing many small reports at once on every
/// core allocates and frees many small buffers, and glibc's allocator spent a fifth of
/// `report ingest`'s time there (perf, `bench/ingest-vs-parsedmarc.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// MTA-STS and TLS-RPT: check domains, and (later) host policies, enforce them for Postfix and
/// collect reports.
#[derive(Debug, Parser)]
#[command(name = "mtasts", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Log lines on stderr as `text` or `json` (one object per line: timestamp, level, target,
    /// message; for journald, Loki, Elasticsearch). What is logged: MTASTS_LOG, e.g.
    /// `MTASTS_LOG=debug` or `MTASTS_LOG=mtasts_resolver=debug` (default: warnings; the
    /// resolver daemon logs info too).
    #[arg(long, global = true, env = "MTASTS_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check domains' MTA-STS and TLS-RPT deployment and say exactly what to fix.
    ///
    /// Exit status: 0 no errors, 1 errors found, 2 could not check.
    Check(check::CheckArgs),
    /// Check a policy file or TXT records offline, before publishing them: the same parsers,
    /// findings and fixes as `check`.
    ///
    /// Exit status: 0 no errors, 1 errors found, 2 an input could not be read.
    Lint(lint::LintArgs),
    /// Print the policy file and DNS records that deploy MTA-STS and TLS-RPT for a domain,
    /// from the MX hosts you give (no network).
    Generate(generate::GenerateArgs),
    /// Check whole domain lists: fast, polite, resumable, with adoption statistics, CSV/JSON
    /// lines and an HTML report. `mtasts scan diff A B` compares two runs.
    ///
    /// Exit status: 0 the run finished (domains with problems are results, in the summary,
    /// the rows and the HTML report), 2 the scan could not run (unreadable list, DNS server
    /// not answering, database error), 130 interrupted by Ctrl-C (`--resume` continues).
    Scan(Box<scan::ScanArgs>),
    /// TLS-RPT reports received (RFC 8460): take them in by mail (files, stdin for a Postfix
    /// pipe, maildir, mbox, IMAP) or HTTPS, list and show them, summarise sessions and failures
    /// per domain and day (text, JSON, CSV, an HTML page), and say whether a domain is ready
    /// for mode: enforce.
    Report(Box<report::ReportArgs>),
    /// The Postfix MTA-STS policy daemon (socketmap): outbound mail to MTA-STS domains goes
    /// only over verified TLS to the MX hosts their policy allows.
    ///
    /// main.cf: `smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix`.
    /// `mtasts resolver query DOMAIN` prints what it would answer.
    Resolver(Box<resolver::ResolverArgs>),
    /// Send TLS-RPT reports (RFC 8460) about this site's deliveries: `collect` takes the MTA's
    /// delivery results (a drop-in for tlsrpt-collectd: Postfix ≥ 3.10, libtlsrpt), `send`
    /// mails (DKIM-signed) or POSTs one report per recipient domain after each UTC day,
    /// `status` lists days and deliveries.
    Reporter(Box<reporter::ReporterArgs>),
    /// Host MTA-STS policies: the HTTPS server for `https://mta-sts.<domain>/` of every
    /// domain managed with `mtasts domain`, certificates chosen by SNI from the database.
    ///
    /// Certificates by ACME with --acme-directory; every domain re-checked every
    /// --monitor-every seconds, problems alerted by --alert-webhook and --alert-mail-to; the
    /// REST API and the dashboard on --api-listen; TLS-RPT reports taken on the policy hosts
    /// with --receive-reports. Several instances on one PostgreSQL serve the same domains and
    /// certificates (one of them orders certificates and monitors at a time).
    Serve(Box<serve::ServeArgs>),
    /// Manage hosted domains: add (records to publish), list, show, set (every change a new
    /// policy id), promote to enforce (guarded by the MX checks and the TLS-RPT reports),
    /// retire, and store certificates.
    ///
    /// Exit status: 0 done, 1 refused (the reasons on stderr), 2 could not run.
    Domain(Box<domain::DomainArgs>),
    /// Print the manual page (or write one page per command into a directory).
    Man(man::ManArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(man::CompletionsArgs),
    /// Start a self-contained test world on loopback (DNS, HTTPS policy hosts, SMTP servers)
    /// and check every scenario in it: what `check` says about each classic mistake.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A daemon says what it does (refreshes, failed fetches); one-shot commands only warn.
    let daemon = matches!(&cli.command, Command::Resolver(r) if r.command.is_none())
        || matches!(&cli.command, Command::Serve(_))
        || matches!(&cli.command, Command::Reporter(r) if r.is_daemon());
    let filter = tracing_subscriber::EnvFilter::try_from_env("MTASTS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if daemon { "info" } else { "warn" })
    });
    // Colour only for a person at a terminal, never into a file or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    mtasts_net::install_crypto_provider();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mtasts: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Lint(args) => lint::run(args),
            Command::Man(args) => man::man(&args),
            Command::Completions(args) => man::completions(&args),
            Command::Generate(args) => generate::run(args),
            Command::Scan(args) => scan::run(*args).await,
            Command::Resolver(args) => resolver::run(*args).await,
            Command::Reporter(args) => reporter::run(*args).await,
            Command::Report(args) => report::run(*args).await,
            Command::Serve(args) => serve::run(*args).await,
            Command::Domain(args) => domain::run(*args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // `mtasts domain list | head`: the reader has what it wanted; a quiet, successful end.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mtasts: {e:#}");
            ExitCode::from(2)
        }
    }
}
