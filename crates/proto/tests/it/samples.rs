//! Real-world TLS-RPT reports (tests/data/tlsrpt, provenance in MANIFEST.tsv).

use std::path::PathBuf;

use mtasts_proto::{PolicyType, Report, ReportErrorKind, ResultType};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tlsrpt")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (file, tolerated codes in order, strict error path if strict parsing fails)
const EXPECTED: &[(&str, &[&str], Option<&str>)] = &[
    ("dmarc-report-viewer__testdata__smtp-tls-reports__google.json", &[], None),
    ("dmarc-report-viewer__testdata__smtp-tls-reports__no-policy.json", &[], None),
    (
        "dmarc-report-viewer__testdata__smtp-tls-reports__rfc-example.json",
        &["failure-detail-field-missing"],
        None,
    ),
    ("mox__testdata__tlsreports__example_google_extracted.json", &[], None),
    (
        "mox__testdata__tlsreports__microsoft_extracted.json",
        &["datetime-no-timezone", "datetime-no-timezone"],
        Some("date-range.start-datetime"),
    ),
    ("parsedmarc__smtp_tls__google.com_extracted.json", &[], None),
    (
        "parsedmarc__smtp_tls__mail.ru.json",
        &[
            "date-range-end-next-day",
            "policy-string-missing",
            "failure-detail-field-missing",
            "failure-detail-field-missing",
            "failure-detail-field-missing",
            "failure-detail-field-missing",
            "failure-detail-field-missing",
            "failure-detail-field-missing",
            "failure-count-mismatch",
        ],
        Some("policies[0].policy.policy-string"),
    ),
    (
        "parsedmarc__smtp_tls__rfc8460.json",
        &["mx-host-string", "failure-detail-field-missing"],
        Some("policies[0].policy.mx-host"),
    ),
    ("parsedmarc__smtp_tls__smtp_tls.json", &[], None),
    ("stalwart-mail-auth__resources__tlsrpt__rpt01.json", &["failure-detail-field-missing"], None),
    ("stalwart-mail-auth__resources__tlsrpt__rpt02.json", &[], None),
    (
        "stalwart-mail-auth__resources__tlsrpt__rpt03.json",
        &[
            "policy-domain-missing",
            "count-missing",
            "policy-type-unknown",
            "policy-string-missing",
            "policy-domain-missing",
            "count-missing",
        ],
        Some("policies[0].policy.policy-domain"),
    ),
];

#[test]
fn every_sample_is_listed_with_its_licence() {
    let manifest = std::fs::read_to_string(data_dir().join("MANIFEST.tsv")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    listed.sort_unstable();
    assert_eq!(files, listed);
    for f in &files {
        let line = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{f}\t")))
            .unwrap_or_else(|| panic!("{f} not in MANIFEST.tsv"));
        assert_eq!(line.split('\t').count(), 7, "{line}");
    }
}

#[test]
fn every_sample_parses_leniently_with_expected_tolerations() {
    for (name, codes, strict_error) in EXPECTED {
        let bytes = read(name);
        let (report, tolerated) =
            Report::parse_lenient(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<&str> = tolerated.iter().map(|t| t.code).collect();
        assert_eq!(&got, codes, "{name}: {tolerated:#?}");
        let strict = Report::parse_strict(&bytes);
        match strict_error {
            None => {
                assert_eq!(strict.unwrap_or_else(|e| panic!("{name}: {e}")), report, "{name}");
                assert!(tolerated.iter().all(|t| !t.rfc_violation), "{name}");
            }
            Some(path) => {
                let e = strict.expect_err(name);
                assert_eq!(e.path, *path, "{name}: {e}");
                assert!(tolerated.iter().any(|t| t.rfc_violation), "{name}");
            }
        }
    }
}

#[test]
fn microsoft_dates_without_timezone_are_read_as_utc() {
    let (r, t) =
        Report::parse_lenient(&read("mox__testdata__tlsreports__microsoft_extracted.json"))
            .unwrap();
    assert_eq!(t[0].path, "date-range.start-datetime");
    assert_eq!(t[1].path, "date-range.end-datetime");
    let out = serde_json::to_value(&r).unwrap();
    assert_eq!(out["date-range"]["start-datetime"], "2023-01-10T00:00:00Z");
    assert_eq!(out["date-range"]["end-datetime"], "2023-01-10T23:59:59Z");
    let e = Report::parse_strict(&read("mox__testdata__tlsreports__microsoft_extracted.json"))
        .unwrap_err();
    assert!(matches!(e.kind, ReportErrorKind::MissingTimezone { .. }), "{e}");
}

#[test]
fn rfc_example_parses_strictly() {
    // Appendix B with mx-host corrected to an array (erratum EID 6241).
    let r =
        Report::parse_strict(&read("stalwart-mail-auth__resources__tlsrpt__rpt01.json")).unwrap();
    assert_eq!(r.organization_name, "Company-X");
    assert_eq!(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    let p = &r.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(p.policy.policy_domain.as_ref().unwrap().as_str(), "company-y.example");
    assert_eq!(p.policy.mx_host, vec!["*.mail.company-y.example"]);
    assert_eq!(p.summary.total_successful_session_count, 5326);
    assert_eq!(p.summary.total_failure_session_count, 303);
    let kinds: Vec<&ResultType> = p.failure_details.iter().map(|d| &d.result_type).collect();
    assert_eq!(
        kinds,
        vec![
            &ResultType::CertificateExpired,
            &ResultType::StartTlsNotSupported,
            &ResultType::ValidationFailure
        ]
    );
    assert_eq!(
        p.failure_details[2].failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );
    // The verbatim Appendix B has mx-host as a string and is rejected strictly.
    let e = Report::parse_strict(&read("parsedmarc__smtp_tls__rfc8460.json")).unwrap_err();
    assert_eq!(e.path, "policies[0].policy.mx-host");
}

#[test]
fn lenient_parsed_reports_serialise_to_strict_json() {
    for (name, _, _) in EXPECTED {
        let (report, _) = Report::parse_lenient(&read(name)).unwrap();
        let json = serde_json::to_vec_pretty(&report).unwrap();
        let (again, _) = Report::parse_lenient(&json).unwrap();
        assert_eq!(again, report, "{name}");
        match Report::parse_strict(&json) {
            Ok(strict) => assert_eq!(strict, report, "{name}"),
            // Only a report lacking policy-domain cannot be made conformant:
            // the data is simply not there.
            Err(e) => {
                assert!(name.ends_with("rpt03.json"), "{name}: {e}");
                assert_eq!(e.path, "policies[0].policy.policy-domain");
            }
        }
    }
}
