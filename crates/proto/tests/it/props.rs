//! Property tests: canonical forms re-parse to equal values, MX matching
//! agrees with a reference model, and no parser panics.

use mtasts_proto::fuzzing;
use mtasts_proto::policy::PolicyExtension;
use mtasts_proto::{
    DomainName, Extension, MAX_AGE_MAX, MaxAge, Mode, MxPattern, Policy, PolicyId, ReportUri,
    StsRecord, TlsRptRecord,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    // No "--" in the third and fourth positions: such labels are reserved (RFC 5891
    // §4.2.3.1), and an `xn--` label must be valid Punycode, which a random one is not.
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
        .prop_filter("reserved label (\"??--\")", |l| l.get(2..4) != Some("--"))
}

fn domain() -> impl Strategy<Value = String> {
    (vec(label(), 1..4), "[a-z]{2,6}").prop_map(|(mut labels, tld)| {
        labels.push(tld);
        labels.join(".")
    })
}

fn mx_pattern() -> impl Strategy<Value = MxPattern> {
    (any::<bool>(), domain()).prop_map(|(wild, d)| {
        let d = DomainName::parse_ascii(&d).unwrap();
        if wild { MxPattern::wildcard(d) } else { MxPattern::exact(d) }
    })
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)]
}

fn ext_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}"
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        mode(),
        0..=MAX_AGE_MAX,
        vec(mx_pattern(), 0..5),
        vec((ext_name(), "[!-~é€]([ !-~é€]{0,20}[!-~é€])?"), 0..4),
    )
        .prop_map(|(mode, max_age, mx, exts)| {
            let mode = if mx.is_empty() { Mode::None } else { mode };
            let mut seen = std::collections::HashSet::new();
            let exts: Vec<PolicyExtension> = exts
                .into_iter()
                .filter(|(n, _)| !["version", "mode", "mx", "max_age"].contains(&n.as_str()))
                .filter(|(n, _)| seen.insert(n.clone()))
                .map(|(n, v)| PolicyExtension::new(&n, &v).unwrap())
                .collect();
            Policy::new(mode, MaxAge::new(max_age).unwrap(), mx)
                .unwrap()
                .with_extensions(exts)
                .unwrap()
        })
}

fn sts_record() -> impl Strategy<Value = StsRecord> {
    ("[A-Za-z0-9]{1,32}", vec((ext_name(), "[!-:<>-~]{1,20}"), 0..4)).prop_map(|(id, exts)| {
        let exts = exts
            .into_iter()
            .filter(|(n, _)| n != "id")
            .map(|(n, v)| Extension::new(&n, &v).unwrap())
            .collect();
        StsRecord::new(PolicyId::new(&id).unwrap()).with_extensions(exts)
    })
}

fn report_uri() -> impl Strategy<Value = ReportUri> {
    prop_oneof![
        ("[a-z0-9.+]{1,10}", domain())
            .prop_map(|(l, d)| ReportUri::parse(&format!("mailto:{l}@{d}")).unwrap()),
        (domain(), "([a-z0-9/]|%2C){0,8}")
            .prop_map(|(d, p)| ReportUri::parse(&format!("https://{d}/{p}")).unwrap()),
    ]
}

fn tlsrpt_record() -> impl Strategy<Value = TlsRptRecord> {
    (vec(report_uri(), 1..4), vec((ext_name(), "[!-:<>-~]{1,20}"), 0..3)).prop_map(|(rua, exts)| {
        let exts = exts
            .into_iter()
            .filter(|(n, _)| n != "rua" && n != "v")
            .map(|(n, v)| Extension::new(&n, &v).unwrap())
            .collect();
        TlsRptRecord::new(rua).unwrap().with_extensions(exts).unwrap()
    })
}

/// Reference model of RFC 8461 §4.1 matching, written label-wise.
fn reference_matches(pattern: &MxPattern, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let host_labels: Vec<&str> = host.split('.').collect();
    let pat_labels: Vec<&str> = pattern.domain().labels().collect();
    if pattern.is_wildcard() {
        host_labels.len() == pat_labels.len() + 1
            && !host_labels[0].is_empty()
            && host_labels[1..] == pat_labels[..]
    } else {
        host_labels == pat_labels
    }
}

fn host_for(pattern: MxPattern) -> impl Strategy<Value = (MxPattern, String)> {
    let d = pattern.domain().as_str().to_owned();
    prop_oneof![
        Just(d.clone()),
        label().prop_map({
            let d = d.clone();
            move |l| format!("{l}.{d}")
        }),
        (label(), label()).prop_map({
            let d = d.clone();
            move |(a, b)| format!("{a}.{b}.{d}")
        }),
        Just(format!("{}.", d.to_ascii_uppercase())),
        Just(format!("X.{}.", d.to_ascii_uppercase())),
        Just(format!(".{d}")),
        domain(),
        "[a-z.]{0,12}",
    ]
    .prop_map(move |h| (pattern.clone(), h))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn policy_round_trip(p in policy()) {
        let text = p.to_string();
        let parsed = Policy::parse(&text).unwrap();
        prop_assert_eq!(&parsed.value, &p);
        let crlf = text.replace('\n', "\r\n");
        prop_assert_eq!(Policy::parse(&crlf).unwrap().value, p);
    }

    #[test]
    fn sts_record_round_trip(r in sts_record()) {
        let parsed = StsRecord::parse(&r.to_string()).unwrap();
        prop_assert_eq!(parsed.value, r);
        // Only an extension named like "ID" or "V" may warn.
        prop_assert!(parsed.warnings.iter().all(|w| w.code == "sts-field-wrong-case"));
    }

    #[test]
    fn tlsrpt_record_round_trip(r in tlsrpt_record()) {
        let parsed = TlsRptRecord::parse(&r.to_string()).unwrap();
        prop_assert_eq!(parsed.value, r);
        prop_assert!(parsed.warnings.iter().all(|w| w.code == "tlsrpt-field-wrong-case"));
    }

    #[test]
    fn mx_pattern_round_trip(p in mx_pattern()) {
        prop_assert_eq!(MxPattern::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn mx_matching_agrees_with_reference((pattern, host) in mx_pattern().prop_flat_map(host_for)) {
        prop_assert_eq!(pattern.matches(&host), reference_matches(&pattern, &host), "{} vs {:?}", pattern, host);
    }

    #[test]
    fn parsers_never_panic_on_bytes(data in vec(any::<u8>(), 0..300)) {
        fuzzing::sts_record(&data);
        fuzzing::policy(&data);
        fuzzing::tlsrpt_record(&data);
        fuzzing::report(&data);
        fuzzing::socketmap(&data);
    }

    #[test]
    fn parsers_never_panic_on_text(text in "\\PC{0,200}") {
        fuzzing::sts_record(text.as_bytes());
        fuzzing::policy(text.as_bytes());
        fuzzing::tlsrpt_record(text.as_bytes());
        fuzzing::report(text.as_bytes());
        let _ = DomainName::from_user_input(&text);
        let _ = MxPattern::parse(&text);
    }
}
