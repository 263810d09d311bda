//! From a [`DomainReport`] to the stored and exported [`ResultRow`]: adoption category, grade
//! and mail provider.

use mtasts_store::{Category, Grade, ResultRow};

use mtasts_check::{Code, DomainReport, Outcome, Severity};

/// The adoption category of a report.
pub fn category(r: &DomainReport) -> Category {
    if r.has(Code::DomainInvalid) {
        return Category::InvalidName;
    }
    if r.outcome == Outcome::CouldNotCheck {
        return Category::CouldNotCheck;
    }
    if r.outcome == Outcome::DoesNotExist {
        return Category::DoesNotExist;
    }
    let txt_valid = r.sts_record.is_some();
    let txt_present = txt_valid || r.has(Code::StsTxtMultiple) || r.has(Code::StsTxtInvalid);
    match r.policy.mode.as_deref() {
        Some(mode) if txt_valid => match mode {
            "enforce" => Category::Enforce,
            "testing" => Category::Testing,
            _ => Category::None,
        },
        // A policy and no TXT record at all: senders never look for it.
        Some(_) if !txt_present => Category::PolicyWithoutTxt,
        // A policy with an unusable TXT record: senders never apply it.
        Some(_) => Category::InvalidPolicy,
        None if r.has(Code::PolicyInvalid) => Category::InvalidPolicy,
        None if txt_present => Category::TxtWithoutPolicy,
        None => Category::NoMtaSts,
    }
}

/// The grade of a report (see [`Grade`]).
pub fn grade(r: &DomainReport, category: Category) -> Grade {
    let (errors, warnings) = r.counts();
    match category {
        Category::InvalidName | Category::CouldNotCheck | Category::DoesNotExist => Grade::Unknown,
        Category::NoMtaSts => Grade::F,
        Category::InvalidPolicy | Category::TxtWithoutPolicy | Category::PolicyWithoutTxt => {
            Grade::D
        }
        Category::None => Grade::C,
        Category::Enforce if errors > 0 => Grade::C,
        Category::Enforce if warnings > 0 => Grade::B,
        Category::Enforce => Grade::A,
        Category::Testing if errors > 0 => Grade::C,
        Category::Testing => Grade::B,
    }
}

/// What each grade means: the rules of [`grade`], in words.
pub const GRADE_MEANINGS: &[(Grade, &str)] = &[
    (Grade::A, "`enforce`, no errors and no warnings"),
    (Grade::B, "`enforce` with warnings, or `testing` without errors"),
    (Grade::C, "a valid policy with errors (MX not covered, MX TLS problems), or `mode: none`"),
    (
        Grade::D,
        "MTA-STS attempted but broken: senders ignore it (`invalid-policy`, `txt-without-policy`, `policy-without-txt`)",
    ),
    (Grade::F, "no MTA-STS (`no-mta-sts`)"),
    (Grade::Unknown, "not graded: `could-not-check`, `does-not-exist`, `invalid-name`"),
];

/// `docs/scan-categories.md`: every category and grade, generated from the code (a test keeps
/// the file equal to it).
pub fn categories_markdown() -> String {
    let mut out = String::from(
        "# Scan categories and grades\n\n\
         Generated from `crates/scan/src/row.rs` (`MTASTS_UPDATE_DOCS=1 cargo test -p mtasts-scan` \
         rewrites it). Each domain of a scan gets one category (its MTA-STS deployment) and one \
         grade; `scan` summaries, CSV, JSON lines and the HTML report use these names.\n\n\
         | category | meaning |\n|---|---|\n",
    );
    for c in Category::ALL {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            c.as_str(),
            crate::html::category_description(*c)
        ));
    }
    out.push_str("\n| grade | meaning |\n|---|---|\n");
    for (g, meaning) in GRADE_MEANINGS {
        out.push_str(&format!("| {} | {} |\n", g.as_str(), meaning));
    }
    out
}

/// Second-level labels under which registrations happen one level deeper (`example.co.uk`).
const SECOND_LEVEL: &[&str] = &["co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go"];

/// The mail provider of a host: its registrable domain, approximated without the public
/// suffix list (`aspmx.l.google.com` → `google.com`, `mx.example.co.uk` → `example.co.uk`).
pub fn provider(host: &str) -> String {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    let take = if n >= 3 && labels[n - 1].len() == 2 && SECOND_LEVEL.contains(&labels[n - 2]) {
        3
    } else {
        2
    };
    labels[n.saturating_sub(take)..].join(".")
}

/// The row to store for a report.
pub fn result_row(r: &DomainReport) -> ResultRow {
    let category = category(r);
    let codes = |sev: Severity| -> Vec<String> {
        let mut v: Vec<String> = r
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .map(|f| f.code.as_str().to_owned())
            .collect();
        v.dedup();
        v
    };
    let policy_valid = r.policy.mode.is_some();
    let mx_covered = (policy_valid && r.policy.mode.as_deref() != Some("none"))
        .then(|| !(r.has(Code::MxNotCovered) || r.has(Code::MxWildcardTooDeep)));
    let probed: Vec<bool> = r.mx.iter().filter_map(|m| m.tls_ok).collect();
    let mx_tls_ok = (!probed.is_empty()).then(|| probed.iter().all(|ok| *ok));
    ResultRow {
        domain: r.domain.clone().unwrap_or_else(|| r.input.chars().take(255).collect()),
        category,
        grade: grade(r, category),
        txt_present: r.sts_record.is_some()
            || r.has(Code::StsTxtMultiple)
            || r.has(Code::StsTxtInvalid),
        policy_valid,
        mode: r.policy.mode.clone(),
        max_age: r.policy.max_age,
        mx_covered,
        mx_tls_ok,
        tlsrpt_present: r.tlsrpt_record.is_some()
            || r.has(Code::TlsRptInvalid)
            || r.has(Code::TlsRptMultiple),
        tlsrpt_valid: r.tlsrpt_record.is_some(),
        provider: r.mx.first().map(|m| provider(&m.host)),
        error_codes: codes(Severity::Error),
        warning_codes: codes(Severity::Warning),
        report_json: serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        elapsed_ms: r.elapsed_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers() {
        assert_eq!(provider("aspmx.l.google.com"), "google.com");
        assert_eq!(provider("example-com.mail.protection.outlook.com."), "outlook.com");
        assert_eq!(provider("mx.example.co.uk"), "example.co.uk");
        assert_eq!(provider("mx1.good.test"), "good.test");
        assert_eq!(provider("localhost"), "localhost");
    }
}
