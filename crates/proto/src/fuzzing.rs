//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus
//! replay test, so both run identical code.
//!
//! Each function feeds the parser the raw bytes and the same bytes mapped
//! into a small alphabet of the grammar's characters, so that the fuzzer
//! reaches deep parser states quickly. Each asserts invariants: a value that
//! parses re-parses from its canonical form to an equal value. The
//! assertions are the point of these functions; they panic only when an
//! invariant is broken.

use crate::diag::Warning;
use crate::policy::Policy;
use crate::report::Report;
use crate::sts_record::{StsRecord, select_sts_record};
use crate::tlsrpt_record::{TlsRptRecord, select_tlsrpt_record};

const STS_ALPHABET: &[u8] = b"v=STSv1; id=abcXYZ0129_-.!\t \x00";
const POLICY_ALPHABET: &[u8] = b"abcdefmxvSTv1=;:. *\n\r0123456789_-";
const TLSRPT_ALPHABET: &[u8] = b"v=TLSRPTv1; rua=mailto:htps/@.,%2Cexample!\t";
const REPORT_ALPHABET: &[u8] = b"{}[]\",:0123456789.-eZT \nabcdeghilmnoprstuyx";

fn map_alphabet(data: &[u8], alphabet: &[u8]) -> Vec<u8> {
    data.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()]).collect()
}

/// The canonical form may only repeat warnings the input already had (for
/// example a field named `ID`); formatting warnings must disappear.
fn assert_no_new_warnings(before: &[Warning], after: &[Warning], shown: &str) {
    for w in after {
        assert!(
            before.iter().any(|b| b.code == w.code),
            "canonical form {shown:?} raises new warning {w}"
        );
    }
}

fn lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

fn sts_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = StsRecord::parse(text) {
        let shown = parsed.value.to_string();
        let again = StsRecord::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip of {text:?}");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
    }
    let _ = select_sts_record(&lines(text));
}

/// Fuzzes [`StsRecord::parse`] and [`select_sts_record`].
pub fn sts_record(data: &[u8]) {
    sts_one(data);
    sts_one(&map_alphabet(data, STS_ALPHABET));
}

fn policy_one(data: &[u8]) {
    if let Ok(parsed) = Policy::parse_bytes(data) {
        let shown = parsed.value.to_string();
        let again = Policy::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
        for mx in parsed.value.mx() {
            let host = mx.to_string().replace('*', "x");
            assert!(parsed.value.matching_pattern(&host).is_some(), "{mx} does not match {host}");
        }
    }
}

/// Fuzzes [`Policy::parse_bytes`].
pub fn policy(data: &[u8]) {
    policy_one(data);
    policy_one(&map_alphabet(data, POLICY_ALPHABET));
}

fn tlsrpt_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = TlsRptRecord::parse(text) {
        let shown = parsed.value.to_string();
        let again = TlsRptRecord::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip of {text:?}");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
    }
    let _ = select_tlsrpt_record(&lines(text));
}

/// Fuzzes [`TlsRptRecord::parse`] and [`select_tlsrpt_record`].
pub fn tlsrpt_record(data: &[u8]) {
    tlsrpt_one(data);
    tlsrpt_one(&map_alphabet(data, TLSRPT_ALPHABET));
}

fn report_one(data: &[u8]) {
    let strict = Report::parse_strict(data);
    let lenient = Report::parse_lenient(data);
    match (&strict, &lenient) {
        (Ok(s), Ok((l, _))) => assert_eq!(s, l, "strict and lenient disagree"),
        (Ok(_), Err(e)) => panic!("strict accepted what lenient rejected: {e}"),
        _ => {}
    }
    if let Ok((report, _)) = lenient {
        let json = serde_json::to_vec(&report)
            .unwrap_or_else(|e| panic!("lenient-parsed report does not serialise: {e}"));
        let (again, _) = Report::parse_lenient(&json)
            .unwrap_or_else(|e| panic!("serialised report does not parse: {e}"));
        assert_eq!(again, report, "serialise/parse round trip");
    }
    if let Ok(report) = strict {
        let json = serde_json::to_vec(&report)
            .unwrap_or_else(|e| panic!("strict-parsed report does not serialise: {e}"));
        let again = Report::parse_strict(&json)
            .unwrap_or_else(|e| panic!("serialised strict report does not parse strictly: {e}"));
        assert_eq!(again, report, "strict round trip");
    }
}

/// Fuzzes [`Report::parse_strict`] and [`Report::parse_lenient`].
pub fn report(data: &[u8]) {
    report_one(data);
    report_one(&map_alphabet(data, REPORT_ALPHABET));
}
