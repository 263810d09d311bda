//! `mtasts check DOMAIN...`

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mtasts_check::render::{JsonRenderer, TextRenderer};
use mtasts_check::{CheckOptions, Checker};

use crate::net_args::NetArgs;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Readable text, grouped by topic.
    Text,
    /// One JSON document (schema: docs/check-json.md).
    Json,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to colour standard output.
    pub(crate) fn enabled(self) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// Arguments of `mtasts check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Domains to check (IDNs are accepted and converted to A-labels).
    #[arg(required = true, value_name = "DOMAIN")]
    pub(crate) domains: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
    /// Show only warnings and errors (no ok or info lines, no empty sections).
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Do not connect to MX hosts (no STARTTLS or certificate checks).
    #[arg(long)]
    pub(crate) no_smtp: bool,
    /// Look up TLSA records and the DNSSEC status of the MX answer (RFC 8461 §2: DANE takes
    /// precedence). On by default for `check`, off by default for `scan`; the last of --dane
    /// and --no-dane wins.
    #[arg(long, overrides_with = "no_dane")]
    pub(crate) dane: bool,
    /// Skip TLSA and DNSSEC lookups.
    #[arg(long, overrides_with = "dane")]
    pub(crate) no_dane: bool,
    /// Domains checked at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

pub(crate) async fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let config = args.net.config()?;
    let options =
        CheckOptions { probe_smtp: !args.no_smtp, dane: !args.no_dane, ..CheckOptions::default() };
    let checker = Checker::new(&config, options).context("cannot set up the checker")?;
    // A dead resolver is the operator's problem: said once, exit 2, no domain findings.
    if let Err(e) = checker.dns_reachable().await {
        eprintln!("mtasts: {e}");
        return Ok(2);
    }
    let mut tally = Tally::default();
    let (format, color, quiet) = (args.format, args.color, args.quiet);
    run_tallied(&checker, args.domains, format, color, quiet, args.concurrency, &mut tally).await
}

/// How many domains ended which way (`mtasts demo`'s closing line).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) clean: usize,
    pub(crate) problems: usize,
    pub(crate) could_not_check: usize,
}

impl Tally {
    fn count(&mut self, report: &mtasts_check::DomainReport) {
        match mtasts_check::ExitStatus::of(report) {
            mtasts_check::ExitStatus::Clean => self.clean += 1,
            mtasts_check::ExitStatus::Problems => self.problems += 1,
            _ => self.could_not_check += 1,
        }
    }
}

/// A sink that counts what passes through it.
struct Counted<'a, S> {
    inner: S,
    tally: &'a mut Tally,
}

impl<S: mtasts_check::Sink> mtasts_check::Sink for Counted<'_, S> {
    type Error = S::Error;

    fn report(&mut self, report: &mtasts_check::DomainReport) -> Result<bool, Self::Error> {
        self.tally.count(report);
        self.inner.report(report)
    }
}

/// Checks `domains` and renders the reports to stdout, counting the outcomes into `tally`.
pub(crate) async fn run_tallied(
    checker: &Checker,
    domains: Vec<String>,
    format: Format,
    color: Color,
    quiet: bool,
    concurrency: usize,
    tally: &mut Tally,
) -> anyhow::Result<u8> {
    let stdout = std::io::stdout();
    let written = match format {
        Format::Text => {
            let mut sink = TextRenderer::new(stdout.lock(), color.enabled());
            sink.verbose = !quiet;
            let mut sink = Counted { inner: sink, tally };
            checker.check_all(domains, concurrency, &mut sink).await
        }
        Format::Json => {
            let mut sink = Counted { inner: JsonRenderer::default(), tally };
            let Ok(status) = checker.check_all(domains, concurrency, &mut sink).await;
            sink.inner.finish(stdout.lock()).map(|()| status)
        }
    };
    match written {
        Ok(status) => Ok(status.code()),
        // The reader went away (`mtasts check … | head`): stop quietly, as ripgrep does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e).context("writing the report"),
    }
}
