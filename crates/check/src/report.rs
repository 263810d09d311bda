//! The result of checking one domain, and the sink that receives results.

use serde::Serialize;

use crate::finding::{Code, Finding, Severity};

/// Version of the JSON output schema (`docs/check-json.md`). Bumped on any breaking change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Whether the check could run to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step ran; the findings are complete.
    Checked,
    /// A temporary failure (DNS down, invalid input) kept the check from finishing.
    CouldNotCheck,
}

/// The observed MTA-STS policy, as far as it could be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    /// `enforce`, `testing` or `none`, when the policy parsed.
    pub mode: Option<String>,
    /// `max_age` in seconds.
    pub max_age: Option<u32>,
    /// The `mx:` patterns.
    pub mx: Vec<String>,
    /// The policy text as served (at most 64 KiB, lossily decoded).
    pub text: Option<String>,
}

/// One MX host as seen by the checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxView {
    /// The exchange name.
    pub host: String,
    /// Its preference.
    pub preference: u16,
    /// The policy pattern that matches it, if any.
    pub matched_by: Option<String>,
    /// Whether STARTTLS with a valid certificate was seen (`None` when not probed).
    pub tls_ok: Option<bool>,
    /// The probe's details (`None` when not probed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<mtasts_net::ProbeReport>,
}

/// Records and files to publish, generated for the domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Suggestions {
    /// The `_mta-sts` TXT record, in zone-file form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_txt: Option<String>,
    /// The policy file to serve at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The `_smtp._tls` TXT record, in zone-file form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlsrpt_txt: Option<String>,
}

impl Suggestions {
    /// True when there is nothing to suggest.
    pub fn is_empty(&self) -> bool {
        self.sts_txt.is_none() && self.policy.is_none() && self.tlsrpt_txt.is_none()
    }
}

/// Everything the checker learned about one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainReport {
    /// The domain as given.
    pub input: String,
    /// The domain as checked (lower-case A-labels), when the input was valid.
    pub domain: Option<String>,
    /// Whether the check ran to the end.
    pub outcome: Outcome,
    /// The `_mta-sts` TXT record in use.
    pub sts_record: Option<String>,
    /// The policy.
    pub policy: PolicyView,
    /// The MX hosts.
    pub mx: Vec<MxView>,
    /// The TLS-RPT record in use.
    pub tlsrpt_record: Option<String>,
    /// Everything found, in check order.
    pub findings: Vec<Finding>,
    /// What to publish.
    #[serde(skip_serializing_if = "Suggestions::is_empty")]
    pub suggestions: Suggestions,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

impl DomainReport {
    /// The worst severity among the findings.
    pub fn worst(&self) -> Severity {
        self.findings.iter().map(|f| f.severity).max().unwrap_or(Severity::Ok)
    }

    /// Counts of findings by severity: (errors, warnings).
    pub fn counts(&self) -> (usize, usize) {
        let errors = self.findings.iter().filter(|f| f.severity == Severity::Error).count();
        let warnings = self.findings.iter().filter(|f| f.severity == Severity::Warning).count();
        (errors, warnings)
    }

    /// Whether a finding with `code` was reported.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}

/// Receives domain reports as the engine finishes them (ripgrep's Searcher/Sink split: the
/// engine decides nothing about output).
pub trait Sink {
    /// One domain is done.
    fn report(&mut self, report: &DomainReport);
}

impl Sink for Vec<DomainReport> {
    fn report(&mut self, report: &DomainReport) {
        self.push(report.clone());
    }
}

/// The process exit code for a set of reports: 0 no errors, 1 errors found, 2 could not check.
pub fn exit_code<'a>(reports: impl IntoIterator<Item = &'a DomainReport>) -> u8 {
    let mut code = 0;
    for r in reports {
        if r.outcome == Outcome::CouldNotCheck {
            return 2;
        }
        if r.worst() == Severity::Error {
            code = 1;
        }
    }
    code
}
