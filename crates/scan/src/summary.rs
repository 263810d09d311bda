//! Scan statistics: counts per category, the most frequent findings, MX and TLS-RPT problems,
//! and adoption by mail provider.

use std::collections::BTreeMap;

use futures::StreamExt;
use mtasts_store::{Category, Grade, ResultRow, RunId, ScanStore, StoreError};
use serde::Serialize;

/// Domains per provider, by category.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProviderStats {
    /// The provider (registrable suffix of the primary MX host), e.g. `google.com`.
    pub provider: String,
    /// Domains using it.
    pub domains: u64,
    /// Of those, with `mode: enforce`.
    pub enforce: u64,
    /// With `mode: testing`.
    pub testing: u64,
    /// With any other category (none, broken, absent).
    pub other: u64,
}

/// The summary of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Domains with a result (input lines that are not domain names are not domains: they are
    /// counted in `invalid_lines`, and no percentage is of them).
    pub total: u64,
    /// Input lines that are not domain names (`invalid-name`).
    pub invalid_lines: u64,
    /// The first [`INVALID_EXAMPLES`] of those lines, as given.
    pub invalid_examples: Vec<String>,
    /// Domains per category (every category present, zero or not).
    pub by_category: BTreeMap<Category, u64>,
    /// Domains per grade.
    pub by_grade: BTreeMap<Grade, u64>,
    /// Domains with a valid policy where some MX is not covered.
    pub mx_not_covered: u64,
    /// MX TLS problems by finding code (`mx-starttls-missing`, `mx-cert-expired`, …): domains.
    pub mx_tls_problems: BTreeMap<String, u64>,
    /// Domains with a TLS-RPT record.
    pub tlsrpt_present: u64,
    /// Domains whose TLS-RPT record is invalid.
    pub tlsrpt_invalid: u64,
    /// Most frequent error and warning codes: (code, domains), most frequent first.
    pub top_codes: Vec<(String, u64)>,
    /// Adoption by provider, most domains first.
    pub providers: Vec<ProviderStats>,
    /// Median and 95th-percentile check time in ms.
    pub elapsed_p50_ms: u64,
    /// 95th percentile.
    pub elapsed_p95_ms: u64,
}

/// How many codes and providers a summary lists.
pub const TOP_N: usize = 15;

/// Builds a summary incrementally from rows (memory: one counter per distinct code, provider
/// and a bounded reservoir of timings).
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    summary: Summary,
    codes: BTreeMap<String, u64>,
    providers: BTreeMap<String, ProviderStats>,
    timings: Vec<u64>,
    seen: u64,
}

/// The warning and error findings of a check report (JSON), at most [`FINDINGS_KEPT`], as a
/// JSON array of objects with `severity`, `code`, `subject`, `message`, `fix`, `fix_policy` and
/// `fix_records` (the check JSON's finding keys); `[]` when the report does not parse.
pub fn problem_findings(report_json: &str) -> String {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(report_json) else {
        return "[]".to_owned();
    };
    let keys = ["severity", "code", "subject", "message", "fix", "fix_policy", "fix_records"];
    let kept: Vec<serde_json::Value> = report["findings"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|f| matches!(f["severity"].as_str(), Some("warning" | "error")))
                .take(FINDINGS_KEPT)
                .map(|f| {
                    let mut m = serde_json::Map::new();
                    for k in keys {
                        if let Some(v) = f.get(k) {
                            m.insert(k.to_owned(), v.clone());
                        }
                    }
                    serde_json::Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::Value::Array(kept).to_string()
}

/// The summary of a whole run (every worker's results), streamed from the store so memory
/// does not grow with the run, and the first `keep_problems` domains with errors or warnings,
/// worst first: most errors, then most warnings, then by name. Input lines that are not domain
/// names are not among them (the summary counts them apart). A kept row's `report_json` is
/// cut down to its warning and error findings ([`problem_findings`]), so the rows stay small.
pub async fn summarize(
    store: &ScanStore,
    run: RunId,
    keep_problems: usize,
) -> Result<(Summary, Vec<ResultRow>), StoreError> {
    let mut builder = SummaryBuilder::default();
    let mut problems: Vec<ResultRow> = Vec::new();
    let rows = store.results(run);
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        let mut row = row?;
        builder.add(&row);
        if problems.len() < keep_problems
            && row.category != Category::InvalidName
            && (!row.error_codes.is_empty() || !row.warning_codes.is_empty())
        {
            row.report_json = problem_findings(&row.report_json);
            problems.push(row);
        }
    }
    problems.sort_by(|a, b| {
        (b.error_codes.len(), b.warning_codes.len(), &a.domain).cmp(&(
            a.error_codes.len(),
            a.warning_codes.len(),
            &b.domain,
        ))
    });
    Ok((builder.finish(), problems))
}

/// Invalid input lines kept as examples for the reports.
pub const INVALID_EXAMPLES: usize = 20;

/// Findings kept per problem domain for the HTML report.
pub const FINDINGS_KEPT: usize = 20;

/// Timings kept for percentiles (reservoir sampling beyond this).
const TIMING_SAMPLES: usize = 10_000;

impl SummaryBuilder {
    /// Adds one domain.
    pub fn add(&mut self, row: &ResultRow) {
        let s = &mut self.summary;
        if row.category == Category::InvalidName {
            s.invalid_lines += 1;
            if s.invalid_examples.len() < INVALID_EXAMPLES {
                s.invalid_examples.push(row.domain.clone());
            }
            return;
        }
        s.total += 1;
        *s.by_category.entry(row.category).or_default() += 1;
        *s.by_grade.entry(row.grade).or_default() += 1;
        if row.policy_valid && row.mx_covered == Some(false) {
            s.mx_not_covered += 1;
        }
        let mut tls_codes: Vec<&String> = row
            .error_codes
            .iter()
            .chain(&row.warning_codes)
            .filter(|c| {
                c.starts_with("mx-cert-")
                    || c.as_str() == "mx-starttls-missing"
                    || c.as_str() == "mx-tls-failed"
            })
            .collect();
        tls_codes.sort();
        tls_codes.dedup();
        for c in tls_codes {
            *s.mx_tls_problems.entry(c.clone()).or_default() += 1;
        }
        if row.tlsrpt_present {
            s.tlsrpt_present += 1;
            if !row.tlsrpt_valid {
                s.tlsrpt_invalid += 1;
            }
        }
        let mut codes: Vec<&String> = row.error_codes.iter().chain(&row.warning_codes).collect();
        codes.sort();
        codes.dedup();
        for c in codes {
            *self.codes.entry(c.clone()).or_default() += 1;
        }
        if let Some(p) = &row.provider {
            let e = self
                .providers
                .entry(p.clone())
                .or_insert_with(|| ProviderStats { provider: p.clone(), ..Default::default() });
            e.domains += 1;
            match row.category {
                Category::Enforce => e.enforce += 1,
                Category::Testing => e.testing += 1,
                _ => e.other += 1,
            }
        }
        self.seen += 1;
        if self.timings.len() < TIMING_SAMPLES {
            self.timings.push(row.elapsed_ms);
        } else {
            // Deterministic reservoir: replace slot (seen * golden ratio) mod n when it falls
            // inside the reservoir's share.
            let slot = self.seen.wrapping_mul(0x9E37_79B9_7F4A_7C15) % self.seen;
            if let Ok(slot) = usize::try_from(slot)
                && slot < TIMING_SAMPLES
            {
                self.timings[slot] = row.elapsed_ms;
            }
        }
    }

    /// The summary.
    pub fn finish(mut self) -> Summary {
        for c in Category::ALL {
            self.summary.by_category.entry(*c).or_default();
        }
        let mut codes: Vec<(String, u64)> = self.codes.into_iter().collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        codes.truncate(TOP_N);
        self.summary.top_codes = codes;
        let mut providers: Vec<ProviderStats> = self.providers.into_values().collect();
        providers
            .sort_by(|a, b| b.domains.cmp(&a.domains).then_with(|| a.provider.cmp(&b.provider)));
        providers.truncate(TOP_N);
        self.summary.providers = providers;
        self.timings.sort_unstable();
        let pct = |p: usize| -> u64 {
            if self.timings.is_empty() {
                0
            } else {
                self.timings[(self.timings.len() - 1) * p / 100]
            }
        };
        self.summary.elapsed_p50_ms = pct(50);
        self.summary.elapsed_p95_ms = pct(95);
        self.summary
    }
}

impl Summary {
    /// Percentage of `n` in the total, one decimal.
    pub fn percent(&self, n: u64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        // Counts are far below 2^52: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let p = (n as f64) * 100.0 / (self.total as f64);
        (p * 10.0).round() / 10.0
    }

    /// Domains in `category`.
    pub fn count(&self, category: Category) -> u64 {
        self.by_category.get(&category).copied().unwrap_or(0)
    }
}

impl Summary {
    /// The summary as text for a terminal or a log.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Scanned {} (check time p50 {} ms, p95 {} ms)",
            domains(self.total),
            self.elapsed_p50_ms,
            self.elapsed_p95_ms
        );
        if self.invalid_lines > 0 {
            let _ = writeln!(
                s,
                "Not domain names, not counted: {} input line{} (category invalid-name)",
                self.invalid_lines,
                if self.invalid_lines == 1 { "" } else { "s" }
            );
        }
        let _ = writeln!(s, "\nMTA-STS adoption:");
        for c in Category::ALL.iter().filter(|c| **c != Category::InvalidName) {
            let n = self.count(*c);
            let _ = writeln!(s, "  {:<20} {:>8}  {:>5.1}%", c.as_str(), n, self.percent(n));
        }
        let _ = writeln!(s, "\nGrades:");
        for (g, n) in &self.by_grade {
            let _ = writeln!(s, "  {:<20} {:>8}  {:>5.1}%", g.as_str(), n, self.percent(*n));
        }
        let _ = writeln!(
            s,
            "\nMX not covered by the policy: {} ({:.1}%)",
            self.mx_not_covered,
            self.percent(self.mx_not_covered)
        );
        if !self.mx_tls_problems.is_empty() {
            let _ = writeln!(s, "MX TLS problems (domains):");
            for (code, n) in &self.mx_tls_problems {
                let _ = writeln!(s, "  {code:<28} {n:>8}  {:>5.1}%", self.percent(*n));
            }
        }
        let _ = writeln!(
            s,
            "TLS-RPT: present {} ({:.1}%), invalid {}",
            self.tlsrpt_present,
            self.percent(self.tlsrpt_present),
            self.tlsrpt_invalid
        );
        if !self.top_codes.is_empty() {
            let _ = writeln!(s, "\nMost frequent findings (domains):");
            for (code, n) in &self.top_codes {
                let _ = writeln!(s, "  {code:<28} {n:>8}  {:>5.1}%", self.percent(*n));
            }
        }
        if !self.providers.is_empty() {
            let _ = writeln!(s, "\nBy mail provider (primary MX):");
            let _ = writeln!(
                s,
                "  {:<32} {:>8} {:>8} {:>8} {:>8}",
                "provider", "domains", "enforce", "testing", "other"
            );
            for p in &self.providers {
                let _ = writeln!(
                    s,
                    "  {:<32} {:>8} {:>8} {:>8} {:>8}",
                    p.provider, p.domains, p.enforce, p.testing, p.other
                );
            }
        }
        s
    }
}

/// `1 domain`, `2 domains`.
pub fn domains(n: u64) -> String {
    if n == 1 { "1 domain".to_owned() } else { format!("{n} domains") }
}
