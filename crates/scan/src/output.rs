//! Per-domain output of a scan: JSON lines (the `check --format json` domain object, with
//! timings) or CSV (one row of headline facts per domain).

use std::io::Write;

use mtasts_store::ResultRow;

use crate::run::RowSink;

/// One JSON object per line: the domain report as `check --format json` gives it.
#[derive(Debug)]
pub struct JsonLines<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write + Send> RowSink for JsonLines<W> {
    fn row(&mut self, row: &ResultRow) -> std::io::Result<()> {
        self.out.write_all(row.report_json.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: &[&str] = &[
    "domain",
    "category",
    "grade",
    "txt_present",
    "policy_valid",
    "mode",
    "max_age",
    "mx_covered",
    "mx_tls_ok",
    "tlsrpt_present",
    "tlsrpt_valid",
    "provider",
    "error_codes",
    "warning_codes",
    "elapsed_ms",
];

/// Quotes a CSV field when needed (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt_bool(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// The CSV line of a row (without line end).
pub fn csv_line(row: &ResultRow) -> String {
    let fields: [String; 15] = [
        csv_field(&row.domain),
        row.category.as_str().to_owned(),
        row.grade.as_str().to_owned(),
        row.txt_present.to_string(),
        row.policy_valid.to_string(),
        row.mode.clone().unwrap_or_default(),
        row.max_age.map(|m| m.to_string()).unwrap_or_default(),
        opt_bool(row.mx_covered).to_owned(),
        opt_bool(row.mx_tls_ok).to_owned(),
        row.tlsrpt_present.to_string(),
        row.tlsrpt_valid.to_string(),
        csv_field(row.provider.as_deref().unwrap_or("")),
        row.error_codes.join(" "),
        row.warning_codes.join(" "),
        row.elapsed_ms.to_string(),
    ];
    fields.join(",")
}

/// CSV with a header line.
#[derive(Debug)]
pub struct Csv<W: Write + Send> {
    out: W,
    header_written: bool,
}

impl<W: Write + Send> Csv<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        Self { out, header_written: false }
    }

    fn header(&mut self) -> std::io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            writeln!(self.out, "{}", CSV_HEADER.join(","))?;
        }
        Ok(())
    }
}

impl<W: Write + Send> RowSink for Csv<W> {
    fn row(&mut self, row: &ResultRow) -> std::io::Result<()> {
        self.header()?;
        writeln!(self.out, "{}", csv_line(row))
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}
