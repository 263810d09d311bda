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
    /// The domain does not exist (NXDOMAIN): an answer, not a failure to check.
    DoesNotExist,
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

/// Builds a [`DomainReport`]: the one place a report is made, whether the check ran, hit its
/// deadline or was given an invalid name.
#[derive(Debug)]
pub(crate) struct ReportBuilder {
    pub(crate) report: DomainReport,
}

impl ReportBuilder {
    /// An empty, complete report for `input`.
    pub(crate) fn new(input: &str, domain: Option<&mtasts_proto::DomainName>) -> Self {
        Self {
            report: DomainReport {
                input: input.to_owned(),
                domain: domain.map(|d| d.as_str().to_owned()),
                outcome: Outcome::Checked,
                sts_record: None,
                policy: PolicyView::default(),
                mx: Vec::new(),
                tlsrpt_record: None,
                findings: Vec::new(),
                suggestions: Suggestions::default(),
                elapsed_ms: 0,
            },
        }
    }

    /// Adds a finding.
    pub(crate) fn push(&mut self, finding: Finding) {
        self.report.findings.push(finding);
    }

    /// Marks the domain as non-existent (NXDOMAIN): the check is over, and complete.
    pub(crate) fn does_not_exist(&mut self) {
        if self.report.outcome == Outcome::Checked {
            self.report.outcome = Outcome::DoesNotExist;
        }
    }

    /// Marks the check as incomplete: a temporary failure kept a step from an answer.
    pub(crate) fn incomplete(&mut self) {
        self.report.outcome = Outcome::CouldNotCheck;
    }

    /// The finished report.
    pub(crate) fn finish(mut self, elapsed: std::time::Duration) -> DomainReport {
        self.report.elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.report
    }
}

/// Receives domain reports as the engine finishes them (ripgrep's `Sink`: the engine decides
/// nothing about output, and the sink can stop the engine or fail it).
pub trait Sink {
    /// What can go wrong delivering a report (an I/O error for a writer).
    type Error;

    /// One domain is done. `Ok(true)`: go on; `Ok(false)`: stop checking, quietly; `Err`: stop
    /// and fail with the error.
    fn report(&mut self, report: &DomainReport) -> Result<bool, Self::Error>;
}

impl Sink for Vec<DomainReport> {
    type Error = std::convert::Infallible;

    fn report(&mut self, report: &DomainReport) -> Result<bool, Self::Error> {
        self.push(report.clone());
        Ok(true)
    }
}

/// What a check or a scan means for the process exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitStatus {
    /// 0: no errors.
    #[default]
    Clean,
    /// 1: errors found.
    Problems,
    /// 2: could not check (a temporary failure, an invalid input, a setup problem).
    CouldNotCheck,
}

impl ExitStatus {
    /// The status for one report.
    pub fn of(report: &DomainReport) -> Self {
        if report.outcome == Outcome::CouldNotCheck {
            Self::CouldNotCheck
        } else if report.worst() == Severity::Error {
            Self::Problems
        } else {
            Self::Clean
        }
    }

    /// The worst status over `reports`.
    pub fn of_all<'a>(reports: impl IntoIterator<Item = &'a DomainReport>) -> Self {
        reports.into_iter().map(Self::of).max().unwrap_or_default()
    }

    /// The process exit code: 0, 1 or 2.
    pub fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Problems => 1,
            Self::CouldNotCheck => 2,
        }
    }
}

/// The process exit code for a set of reports: 0 no errors, 1 errors found, 2 could not check.
pub fn exit_code<'a>(reports: impl IntoIterator<Item = &'a DomainReport>) -> u8 {
    ExitStatus::of_all(reports).code()
}
