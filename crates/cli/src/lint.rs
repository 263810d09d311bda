//! `mtasts lint [FILE...]`: a policy file or TXT records, checked before they are published.

use std::io::Read;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mtasts_check::lint::{Kind, LintOptions, lint};
use mtasts_check::render::{JsonRenderer, TextRenderer};
use mtasts_check::{DomainReport, ExitStatus, Sink};
use mtasts_proto::{DomainName, io_words};

use crate::check::{Color, Format};

/// Larger inputs are refused unread: a policy is at most 64 KiB (RFC 8461 §3.3).
const READ_LIMIT: u64 = 1024 * 1024;

/// What the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KindArg {
    /// TXT records when the first line looks like one (`v=…`, a quoted string, a zone-file
    /// TXT line), else a policy file.
    Auto,
    /// A policy file (RFC 8461 §3.2).
    Policy,
    /// `_mta-sts` TXT records, one per line (RFC 8461 §3.1).
    Sts,
    /// `_smtp._tls` TXT records, one per line (RFC 8460 §3).
    Tlsrpt,
}

/// Arguments of `mtasts lint`.
#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Files to check: a policy file, or TXT records (zone-file lines such as `mtasts generate
    /// --only records` prints, quoted strings or bare record text, one record per line). `-` or
    /// nothing: standard input.
    #[arg(value_name = "FILE")]
    pub(crate) files: Vec<String>,
    /// Record text to check, given here instead of in a file (repeatable: the records at one
    /// name, judged together; e.g. `--record 'v=STSv1; id=20261203;'`).
    #[arg(long, value_name = "TEXT")]
    pub(crate) record: Vec<String>,
    /// How to read the input.
    #[arg(long, value_enum, default_value_t = KindArg::Auto)]
    pub(crate) kind: KindArg,
    /// The domain the input is for; names the records in suggested fixes (default: the owner
    /// name of a zone-file line, else example.com).
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) domain: Option<String>,
    /// An MX host the policy must cover (repeatable): judged as `check` judges live MX records
    /// (RFC 8461 §4.1).
    #[arg(long, value_name = "HOST")]
    pub(crate) mx: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
    /// Show only warnings and errors.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Exit status: 0 no errors, 1 errors found, 2 an input could not be read.
pub(crate) fn run(args: LintArgs) -> anyhow::Result<u8> {
    let domain = match &args.domain {
        Some(d) => Some(
            DomainName::from_user_input(d.trim())
                .map_err(|e| anyhow::anyhow!("--domain {d:?} is not a domain name: {e}"))?,
        ),
        None => None,
    };
    let kind = match args.kind {
        KindArg::Auto => Kind::Auto,
        KindArg::Policy => Kind::Policy,
        KindArg::Sts => Kind::Sts,
        KindArg::Tlsrpt => Kind::TlsRpt,
    };
    let options = LintOptions { kind, domain, mx: args.mx.iter().map(|h| mx_host(h)).collect() };
    let now = time::OffsetDateTime::now_utc();
    let mut reports = Vec::new();
    let mut unreadable = false;
    // The --record values are the TXT records at their names, judged together (two v=STSv1
    // records at one name are one too many, RFC 8461 §3.1).
    if !args.record.is_empty() {
        let options = LintOptions {
            kind: if kind == Kind::Auto || kind == Kind::Policy { Kind::Sts } else { kind },
            ..options.clone()
        };
        let text =
            args.record.iter().map(|r| r.replace(['\n', '\r'], " ")).collect::<Vec<_>>().join("\n");
        reports.push(lint("--record", text.as_bytes(), &options, now));
    }
    let mut files = args.files;
    if files.is_empty() && args.record.is_empty() {
        files.push("-".into());
    }
    for file in &files {
        match read(file) {
            Ok(bytes) => reports.push(lint(display_name(file), &bytes, &options, now)),
            Err(e) => {
                eprintln!("mtasts: {e:#}");
                unreadable = true;
            }
        }
    }
    let written = render(&reports, args.format, args.color, args.quiet);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(e).context("writing the report"),
    }
    Ok(if unreadable { 2 } else { ExitStatus::of_all(&reports).code() })
}

/// An MX host or `*.` pattern as typed: A-labels for IDNs, lower case, no trailing dot. A
/// name that is not a domain name is passed on as typed, for the policy parser to name its
/// fault.
pub(crate) fn mx_host(typed: &str) -> String {
    let t = typed.trim().trim_end_matches('.');
    let (wild, name) = match t.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", t),
    };
    match DomainName::from_user_input(name) {
        Ok(d) => format!("{wild}{}", d.as_str()),
        Err(_) => t.to_owned(),
    }
}

fn display_name(file: &str) -> &str {
    if file == "-" { "standard input" } else { file }
}

fn read(file: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(file)
                .map_err(|e| anyhow::anyhow!("cannot open {file}: {}", io_words(&e)))?,
        )
    };
    reader
        .take(READ_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {}", display_name(file), io_words(&e)))?;
    if bytes.len() as u64 > READ_LIMIT {
        anyhow::bail!(
            "{} is larger than 1 MiB: not a policy file (at most 64 KiB) or TXT records",
            display_name(file)
        );
    }
    Ok(bytes)
}

fn render(
    reports: &[DomainReport],
    format: Format,
    color: Color,
    quiet: bool,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    match format {
        Format::Text => {
            let mut sink = TextRenderer::new(stdout.lock(), color.enabled());
            sink.verbose = !quiet;
            for r in reports {
                sink.report(r)?;
            }
            Ok(())
        }
        Format::Json => {
            let mut sink = JsonRenderer::default();
            for r in reports {
                let Ok(_) = sink.report(r);
            }
            sink.finish(stdout.lock())
        }
    }
}
