//! `mtasts scan [FILE|-]` and `mtasts scan diff RUN_A RUN_B`: the arguments, and where the
//! output goes. The scan itself is `mtasts_scan::job`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mtasts_scan::output::{Csv, JsonLines};
use mtasts_scan::{
    CheckSettings, InputSource, JobOptions, NoRows, RowSink, RunChoice, ScanJob, ScanProgress,
};
use mtasts_store::{DatabaseUrl, RunId, ScanStore};

use crate::net_args::NetArgs;

/// Default database: a SQLite file in the current directory.
const DEFAULT_DB: &str = "sqlite://mtasts-scan.db";

/// Per-domain output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RowFormat {
    /// One JSON object per domain per line (the `check --format json` domain object).
    Jsonl,
    /// One CSV row per domain.
    Csv,
    /// No per-domain output (summary only).
    None,
}

/// Progress display on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// A bar when stderr is a terminal, log lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// Periodic log lines.
    Log,
    /// Nothing.
    None,
}

/// Arguments of `mtasts scan`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ScanArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ScanCommand>,
    /// The domain list: one per line (`#` comments), or CSV with --column; `-` for stdin.
    /// May be omitted with --resume to work on a run that is already loaded.
    pub(crate) input: Option<String>,
    /// Take domains from this CSV column (the first line is the header).
    #[arg(long)]
    pub(crate) column: Option<String>,
    /// Where runs and results are stored: sqlite://PATH or postgres://…
    #[arg(long, env = "MTASTS_SCAN_DB", default_value = DEFAULT_DB)]
    pub(crate) db: String,
    /// Continue an interrupted run (the latest unfinished one, or RUN) without redoing
    /// finished domains.
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = "latest")]
    pub(crate) resume: Option<String>,
    /// Per-domain output on stdout (or --output).
    #[arg(long, value_enum, default_value_t = RowFormat::Jsonl)]
    pub(crate) format: RowFormat,
    /// Write per-domain output to this file instead of stdout.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// Also write a self-contained HTML report here.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
    /// Domains checked at once. Protects this machine (memory, sockets); what others receive
    /// is bounded per destination: DNS pacing per DNS server (--dns-rate), --smtp-per-ip per MX
    /// address, and each policy host (mta-sts.DOMAIN) is fetched once.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// DNS queries per second to each DNS server, at most. Protects your own resolver (the one
    /// DNS server all queries go to). Default: no fixed cap; the rate adapts per server anyway:
    /// lost, truncated, REFUSED or SERVFAIL answers lower it, and it recovers when they stop.
    #[arg(long)]
    pub(crate) dns_rate: Option<u32>,
    /// Seconds one domain may take before it is recorded as `domain-deadline`.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) deadline: f64,
    /// SMTP connections per MX IP address at once. Protects the receiving mail servers (each
    /// MX host is also probed only once per scan).
    #[arg(long, default_value_t = 4)]
    pub(crate) smtp_per_ip: usize,
    /// Do not connect to MX hosts.
    #[arg(long)]
    pub(crate) no_smtp: bool,
    /// Look up TLSA records and the DNSSEC status of the MX answer too (more DNS queries per
    /// domain). Off by default for `scan`, on by default for `check`; the last of --dane and
    /// --no-dane wins.
    #[arg(long, overrides_with = "no_dane")]
    pub(crate) dane: bool,
    /// No TLSA or DNSSEC lookups (the default for `scan`).
    #[arg(long, overrides_with = "dane")]
    pub(crate) no_dane: bool,
    /// Domains claimed from the queue at a time.
    #[arg(long, default_value_t = 32)]
    pub(crate) batch: usize,
    /// Seconds a claim is held without renewal (a dead worker's batch is taken over after it).
    #[arg(long, default_value_t = 60.0)]
    pub(crate) lease: f64,
    /// This worker's name (default host:pid).
    #[arg(long)]
    pub(crate) worker: Option<String>,
    /// Progress on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// Subcommands of `mtasts scan`.
#[derive(Debug, Subcommand)]
pub(crate) enum ScanCommand {
    /// Domains that adopted, broke, were fixed or changed mode between two runs.
    Diff {
        /// The earlier run.
        run_a: i64,
        /// The later run.
        run_b: i64,
        /// Database.
        #[arg(long, env = "MTASTS_SCAN_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// List the runs in the database.
    Runs {
        /// Database.
        #[arg(long, env = "MTASTS_SCAN_DB", default_value = DEFAULT_DB)]
        db: String,
        /// `text` (a table with a header, UTC times) or `json` (one object per run).
        #[arg(long, value_enum, default_value_t = RunsFormat::Text)]
        format: RunsFormat,
    },
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && (1.0..=86_400.0).contains(&v)) {
        bail!("--{name} must be between 1 and 86400 seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

pub(crate) async fn run(args: ScanArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(ScanCommand::Diff { run_a, run_b, db }) => {
            return diff(&db, RunId(run_a), RunId(run_b)).await;
        }
        Some(ScanCommand::Runs { db, format }) => return runs(&db, format).await,
        None => {}
    }
    let run = match args.resume.as_deref() {
        Some("latest") => RunChoice::Latest,
        Some(id) => RunChoice::Id(RunId(
            id.parse().with_context(|| format!("--resume {id:?} is not a run id"))?,
        )),
        None if args.input.is_none() => {
            bail!("give a domain list (a file, or - for stdin), or --resume")
        }
        None => RunChoice::New,
    };
    let options = JobOptions {
        db: args.db.parse::<DatabaseUrl>()?,
        run,
        input: args.input.as_deref().map(|i| match i {
            "-" => InputSource::Stdin,
            path => InputSource::File(PathBuf::from(path)),
        }),
        column: args.column.clone(),
        net: args.net.config()?,
        check: CheckSettings {
            probe_smtp: !args.no_smtp,
            dane: args.dane && !args.no_dane,
            smtp_per_ip: args.smtp_per_ip,
            dns_rate: args.dns_rate,
        },
        concurrency: args.concurrency,
        batch: args.batch,
        lease: secs("lease", args.lease)?,
        deadline: secs("deadline", args.deadline)?,
        worker: args.worker.clone(),
    };

    let job = ScanJob::prepare(options).await?;
    eprintln!("mtasts scan: run {} in {} ({})", job.run_id(), job.database(), job.info().input);
    for r in job.released() {
        eprintln!(
            "mtasts scan: released {} domains claimed by dead worker {}",
            r.domains, r.worker
        );
    }
    let sink = row_sink(args.format, args.output.as_deref())?;
    let progress = spawn_progress(job.progress(), args.progress);
    let run_id = job.run_id();
    let db_shown = job.database().to_string();
    let outcome = tokio::select! {
        outcome = job.run(sink, args.html.is_some()) => outcome,
        _ = tokio::signal::ctrl_c() => {
            // Results are committed as they complete; the domains in flight are checked
            // again on resume (a dead worker's claims come back).
            progress.stop();
            eprintln!(
                "\nmtasts scan: interrupted; the results so far are saved. Continue with: mtasts scan --resume {run_id} --db {db_shown}"
            );
            return Ok(130);
        }
    };
    progress.stop();
    let outcome = outcome?;
    let stats = outcome.load;
    if stats.invalid > 0 || stats.read > 0 {
        eprintln!(
            "mtasts scan: read {} ({} new in the queue), {} invalid line{}",
            mtasts_scan::summary::domains(stats.read),
            stats.queued,
            stats.invalid,
            if stats.invalid == 1 { "" } else { "s" }
        );
    }
    eprintln!("mtasts scan: {} MX probes run for this process's domains", outcome.probes_run);
    eprintln!("\n{}", outcome.summary.render_text());
    if let Some(path) = &args.html {
        std::fs::write(path, outcome.html_report())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("mtasts scan: HTML report in {}", path.display());
    }
    Ok(0)
}

/// Per-domain output: `format` to `output`, or to stdout.
fn row_sink(format: RowFormat, output: Option<&Path>) -> anyhow::Result<Box<dyn RowSink>> {
    let out: Box<dyn Write + Send> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    Ok(match format {
        RowFormat::Jsonl => Box::new(JsonLines::new(out)),
        RowFormat::Csv => Box::new(Csv::new(out)),
        RowFormat::None => Box::new(NoRows),
    })
}

/// The progress task, and the bar it draws (cleared when the scan ends).
struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn stop(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One progress line: `120/1000 domains, 48.2 domains/s, ETA 18 s, 3 with errors`. The rate
/// counts this process's domains only (not those a resumed run had already done).
fn progress_line(all: u64, total: u64, done_here: u64, secs: f64, errors: u64) -> String {
    if total == 0 {
        return "reading the domain list…".to_owned();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = done_here as f64 / secs.max(0.001);
    let eta = if rate > 0.0 {
        #[allow(clippy::cast_precision_loss)]
        let left = total.saturating_sub(all) as f64 / rate;
        format!("ETA {left:.0} s")
    } else {
        "ETA unknown".to_owned()
    };
    format!("{all}/{total} domains, {rate:.1} domains/s, {eta}, {errors} with errors")
}

fn spawn_progress(p: Arc<ScanProgress>, mode: ProgressMode) -> Progress {
    let bar = match mode {
        ProgressMode::Bar => true,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Log | ProgressMode::None => false,
    };
    if mode == ProgressMode::None {
        return Progress { task: tokio::spawn(async {}), bar: None };
    }
    let line = move |p: &ScanProgress| {
        let done = p.done.load(Ordering::Relaxed);
        progress_line(
            p.done_all.load(Ordering::Relaxed).max(done),
            p.queued.load(Ordering::Relaxed),
            done,
            p.started.elapsed().as_secs_f64(),
            p.with_errors.load(Ordering::Relaxed),
        )
    };
    if bar {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {msg}") {
            pb.set_style(style);
        }
        let drawn = pb.clone();
        let task = tokio::spawn(async move {
            loop {
                drawn.set_length(p.queued.load(Ordering::Relaxed));
                drawn.set_position(
                    p.done_all.load(Ordering::Relaxed).max(p.done.load(Ordering::Relaxed)),
                );
                drawn.set_message(line(&p));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { task, bar: Some(pb) }
    } else {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!("mtasts scan: {}", line(&p));
            }
        });
        Progress { task, bar: None }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines_read_well() {
        assert_eq!(
            super::progress_line(500, 1000, 100, 2.0, 3),
            "500/1000 domains, 50.0 domains/s, ETA 10 s, 3 with errors"
        );
        assert_eq!(super::progress_line(0, 0, 0, 1.0, 0), "reading the domain list…");
        assert!(super::progress_line(0, 10, 0, 1.0, 0).contains("ETA unknown"));
    }
}

async fn diff(db: &str, a: RunId, b: RunId) -> anyhow::Result<u8> {
    let store = ScanStore::open_existing(db).await?;
    let (ra, rb) = (store.run_info(a).await?, store.run_info(b).await?);
    // Options that change what is looked at make "fixed" or "broke" meaningless (a run with
    // --no-smtp has no MX TLS findings to compare).
    let compared = |o: &str| -> Vec<(String, serde_json::Value)> {
        let v: serde_json::Value = serde_json::from_str(o).unwrap_or_default();
        ["no_smtp", "dane", "deadline"]
            .iter()
            .map(|k| ((*k).to_owned(), v.get(*k).cloned().unwrap_or_default()))
            .collect()
    };
    let (oa, ob) = (compared(&ra.options_json), compared(&rb.options_json));
    for ((k, va), (_, vb)) in oa.iter().zip(&ob) {
        if va != vb {
            eprintln!(
                "warning: the runs used different options ({k}: {va} in run {a}, {vb} in run {b}); changes below may come from that, not from the domains"
            );
        }
    }
    let rows = store.diff(a, b).await?;
    let mut out = std::io::stdout().lock();
    let side = |s: &Option<(mtasts_store::Category, mtasts_store::Grade)>| match s {
        Some((c, g)) => format!("{} {}", c.as_str(), g.as_str()),
        None => "(absent)".to_owned(),
    };
    for r in &rows {
        writeln!(
            out,
            "{:<40} {:<28} {} -> {}",
            r.domain,
            r.change.to_string(),
            side(&r.before),
            side(&r.after)
        )?;
    }
    eprintln!("{} domains changed between run {a} and run {b}", rows.len());
    Ok(0)
}

/// Output of `scan runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RunsFormat {
    Text,
    Json,
}

/// Unix seconds as `2026-12-03 13:45:00 UTC`.
fn utc(secs: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix seconds as RFC 3339.
pub(crate) fn rfc3339(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

async fn runs(db: &str, format: RunsFormat) -> anyhow::Result<u8> {
    let store = ScanStore::open_existing(db).await?;
    let mut out = std::io::stdout().lock();
    if format == RunsFormat::Text {
        writeln!(
            out,
            "{:>6}  {:<23}  {:<23}  {:>15}  input",
            "run", "started", "finished", "done"
        )?;
    }
    for r in store.runs().await? {
        let p = store.progress(r.id).await?;
        let written = match format {
            RunsFormat::Text => writeln!(
                out,
                "{:>6}  {:<23}  {:<23}  {:>15}  {}",
                r.id,
                utc(r.started_at),
                r.finished_at.map_or_else(|| "(unfinished)".to_owned(), utc),
                format!("{}/{}", p.done, p.queued),
                r.input
            ),
            RunsFormat::Json => writeln!(
                out,
                "{}",
                serde_json::json!({
                    "run": r.id.0,
                    "input": r.input,
                    "started_at": rfc3339(r.started_at),
                    "finished_at": r.finished_at.and_then(rfc3339),
                    "loaded": r.loaded,
                    "done": p.done,
                    "queued": p.queued,
                    "options": serde_json::from_str::<serde_json::Value>(&r.options_json).ok(),
                })
            ),
        };
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            other => other?,
        }
    }
    Ok(0)
}
