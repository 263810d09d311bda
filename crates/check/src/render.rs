//! Renderers: sinks that turn [`DomainReport`]s into text for people or JSON for programs.

use std::io::Write;

use serde::Serialize;

use crate::finding::{Area, Severity};
use crate::report::{DomainReport, JSON_SCHEMA_VERSION, Outcome, Sink, exit_code};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";

fn colour(sev: Severity) -> &'static str {
    match sev {
        Severity::Ok => "\x1b[32m",
        Severity::Info => "\x1b[36m",
        Severity::Warning => "\x1b[33m",
        Severity::Error => "\x1b[31m",
    }
}

fn mark(sev: Severity) -> &'static str {
    match sev {
        Severity::Ok => "ok",
        Severity::Info => "info",
        Severity::Warning => "warn",
        Severity::Error => "ERROR",
    }
}

/// Readable text, grouped by part of the deployment; ANSI colours when `color` is set.
///
/// A fix's policy file and records are printed flush left, without colour, between captions,
/// so that they can be pasted as they stand (the policy parser rejects indented lines; an
/// indented zone-file line means "same owner as the line before").
pub struct TextRenderer<W: Write> {
    out: W,
    color: bool,
    /// Show `ok` findings too (otherwise only the count).
    pub verbose: bool,
}

impl<W: Write> TextRenderer<W> {
    /// A renderer writing to `out`.
    pub fn new(out: W, color: bool) -> Self {
        Self { out, color, verbose: true }
    }

    fn paint(&self, code: &'static str, text: &str) -> String {
        if self.color { format!("{code}{text}{RESET}") } else { text.to_owned() }
    }

    fn write_report(&mut self, r: &DomainReport) -> std::io::Result<()> {
        let name = r.domain.clone().unwrap_or_else(|| r.input.clone());
        let (errors, warnings) = r.counts();
        let verdict = match (r.outcome, errors, warnings) {
            (Outcome::CouldNotCheck, _, _) => {
                self.paint(colour(Severity::Error), "could not check completely")
            }
            (Outcome::DoesNotExist, _, _) => self.paint(colour(Severity::Error), "does not exist"),
            (_, 0, 0) => self.paint(colour(Severity::Ok), "all good"),
            (_, 0, w) => self.paint(colour(Severity::Warning), &format!("{w} warning(s)")),
            (_, e, w) => {
                self.paint(colour(Severity::Error), &format!("{e} error(s), {w} warning(s)"))
            }
        };
        let title = self.paint(BOLD, &name);
        writeln!(self.out, "{title}: {verdict}")?;
        // Quiet (`-q`) shows warnings and errors only: ok and info lines, and the headings of
        // areas left empty, are not printed.
        let shown = |f: &&crate::finding::Finding| {
            self.verbose || !matches!(f.severity, Severity::Ok | Severity::Info)
        };
        let mut areas: Vec<Area> = r.findings.iter().filter(shown).map(|f| f.area).collect();
        areas.sort();
        areas.dedup();
        for area in areas {
            let heading = self.paint(BOLD, area.title());
            writeln!(self.out, "  {heading}")?;
            for f in r.findings.iter().filter(|f| f.area == area).filter(shown) {
                let tag = self.paint(colour(f.severity), &format!("{:>5}", mark(f.severity)));
                let code = self.paint(DIM, &format!("[{}] {}", f.code, f.rfc));
                writeln!(self.out, "    {tag} {}  {code}", f.message)?;
                if let Some(fix) = &f.fix {
                    let mut lines = fix.text().lines();
                    if let Some(first) = lines.next() {
                        writeln!(self.out, "          fix: {first}")?;
                    }
                    for line in lines {
                        writeln!(self.out, "               {line}")?;
                    }
                    if let Some(policy) = fix.policy() {
                        writeln!(self.out, "          {}", self.paint(DIM, POLICY_CAPTION))?;
                        self.out.write_all(policy.as_bytes())?;
                        writeln!(self.out, "          {}", self.paint(DIM, END_CAPTION))?;
                    }
                    if !fix.records().is_empty() {
                        writeln!(self.out, "          {}", self.paint(DIM, RECORDS_CAPTION))?;
                        for record in fix.records() {
                            writeln!(self.out, "{record}")?;
                        }
                        writeln!(self.out, "          {}", self.paint(DIM, END_CAPTION))?;
                    }
                }
            }
        }
        writeln!(self.out)?;
        self.out.flush()
    }
}

impl<W: Write> Sink for TextRenderer<W> {
    type Error = std::io::Error;

    fn report(&mut self, report: &DomainReport) -> std::io::Result<bool> {
        self.write_report(report)?;
        Ok(true)
    }
}

/// The line before a fix's policy file in the text output.
pub const POLICY_CAPTION: &str = "--- policy file (paste as is) ---";
/// The line before a fix's DNS records in the text output.
pub const RECORDS_CAPTION: &str = "--- DNS records, zone-file lines (paste as is) ---";
/// The line after a verbatim block in the text output.
pub const END_CAPTION: &str = "---";

/// The JSON document printed by `mtasts check --format json` (schema in `docs/check-json.md`).
#[derive(Debug, Serialize)]
pub struct JsonDocument<'a> {
    /// Schema version ([`JSON_SCHEMA_VERSION`]).
    pub schema: u32,
    /// The exit code the command returns.
    pub exit_code: u8,
    /// One entry per domain, in input order.
    pub domains: &'a [DomainReport],
}

/// Collects reports and writes one JSON document at the end.
#[derive(Debug, Default)]
pub struct JsonRenderer {
    reports: Vec<DomainReport>,
}

impl JsonRenderer {
    /// Writes the document.
    pub fn finish<W: Write>(self, mut out: W) -> std::io::Result<()> {
        let doc = JsonDocument {
            schema: JSON_SCHEMA_VERSION,
            exit_code: exit_code(&self.reports),
            domains: &self.reports,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()
    }
}

impl Sink for JsonRenderer {
    type Error = std::convert::Infallible;

    fn report(&mut self, report: &DomainReport) -> Result<bool, Self::Error> {
        self.reports.push(report.clone());
        Ok(true)
    }
}
