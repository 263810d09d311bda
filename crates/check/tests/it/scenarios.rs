//! Every scenario of the test world, checked end to end: the findings (code and severity) and
//! the exit code.

use mtasts_check::{Code, Outcome, Severity, exit_code};
use mtasts_testkit::Scenario;

use crate::support::{absent, dump, expect, nothing_worse_than, run};

use Code as C;
use Severity::{Error as E, Info as I, Ok as O, Warning as W};

/// `scenario!(name, Scenario, exit, [(code, severity)...], absent [codes...])`
macro_rules! scenario {
    ($test:ident, $scenario:expr, exit $exit:expr, [$(($code:expr, $sev:expr)),* $(,)?] $(, absent [$($no:expr),* $(,)?])?) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let (_world, r) = run($scenario).await;
            $( expect(&r, $code, $sev); )*
            $($( absent(&r, $no); )*)?
            assert_eq!(exit_code([&r]), $exit, "{}: exit code; findings:\n{}", r.input, dump(&r));
        }
    };
}

scenario!(good, Scenario::Good, exit 0,
    [(C::StsTxtOk, O), (C::PolicyOk, O), (C::MxCovered, O), (C::MxTlsOk, O), (C::TlsRptOk, O), (C::DnssecStatus, I)],
    absent [C::StsNotDeployed, C::PolicyModeTesting]);
scenario!(good_split_txt, Scenario::GoodSplitTxt, exit 0, [(C::StsTxtOk, O), (C::PolicyOk, O)]);
scenario!(good_wildcard, Scenario::GoodWildcard, exit 0, [(C::MxCovered, O), (C::MxTlsOk, O)], absent [C::MxPatternUnused]);
scenario!(good_cname_delegated, Scenario::GoodCnameDelegated, exit 0,
    [(C::StsTxtDelegated, I), (C::StsTxtOk, O), (C::PolicyOk, O)]);
scenario!(https_chunked, Scenario::HttpsChunked, exit 0, [(C::PolicyOk, O)]);
scenario!(no_mta_sts, Scenario::NoMtaSts, exit 0, [(C::StsNotDeployed, W), (C::TlsRptMissing, W)],
    absent [C::PolicyHostMissing, C::PolicyUnreachable, C::StsTxtMissing, C::PolicyOk]);
scenario!(txt_missing, Scenario::TxtMissing, exit 1, [(C::StsTxtMissing, E), (C::PolicyOk, O)], absent [C::StsNotDeployed]);
scenario!(txt_duplicate, Scenario::TxtDuplicate, exit 1, [(C::StsTxtMultiple, E)]);
scenario!(txt_invalid_id, Scenario::TxtInvalidId, exit 1, [(C::StsTxtInvalid, E)]);
scenario!(txt_missing_id, Scenario::TxtMissingId, exit 1, [(C::StsTxtInvalid, E)]);
scenario!(txt_not_first, Scenario::TxtNotFirst, exit 1, [(C::StsTxtDiscarded, W), (C::StsTxtMissing, E)]);
scenario!(txt_unrelated_only, Scenario::TxtUnrelatedOnly, exit 1, [(C::StsTxtMissing, E)], absent [C::StsTxtDiscarded]);
scenario!(policy_host_nxdomain, Scenario::PolicyHostNxdomain, exit 1, [(C::StsTxtOk, O), (C::PolicyHostMissing, E)]);
scenario!(policy_host_unreachable, Scenario::PolicyHostUnreachable, exit 1, [(C::PolicyUnreachable, E)]);
scenario!(https_untrusted_cert, Scenario::HttpsUntrustedCert, exit 1, [(C::PolicyCertUntrusted, E)]);
scenario!(https_expired_cert, Scenario::HttpsExpiredCert, exit 1, [(C::PolicyCertExpired, E)]);
scenario!(https_wrong_name_cert, Scenario::HttpsWrongNameCert, exit 1, [(C::PolicyCertWrongName, E)]);
scenario!(https_404, Scenario::Https404, exit 1, [(C::PolicyHttpStatus, E)]);
scenario!(https_500, Scenario::Https500, exit 1, [(C::PolicyHttpStatus, E)]);
scenario!(https_content_type_html, Scenario::HttpsContentTypeHtml, exit 1, [(C::PolicyContentType, E), (C::PolicyOk, O)]);
scenario!(https_content_type_charset, Scenario::HttpsContentTypeCharset, exit 0, [(C::PolicyOk, O)], absent [C::PolicyContentType]);
scenario!(https_too_large, Scenario::HttpsTooLarge, exit 1, [(C::PolicyTooLarge, E)]);
scenario!(https_hang, Scenario::HttpsHang, exit 1, [(C::PolicyTimeout, E)]);
scenario!(https_slow, Scenario::HttpsSlow, exit 1, [(C::PolicyTimeout, E)]);
scenario!(policy_syntax_error, Scenario::PolicySyntaxError, exit 1, [(C::PolicyInvalid, E)], absent [C::PolicyOk]);
scenario!(policy_missing_max_age, Scenario::PolicyMissingMaxAge, exit 1, [(C::PolicyInvalid, E)]);
scenario!(policy_ip_mx, Scenario::PolicyIpMx, exit 1, [(C::PolicyInvalid, E)]);
scenario!(policy_version_not_first, Scenario::PolicyVersionNotFirst, exit 0, [(C::PolicyWarning, W), (C::PolicyOk, O)]);
scenario!(policy_max_age_too_large, Scenario::PolicyMaxAgeTooLarge, exit 1, [(C::PolicyInvalid, E)]);
scenario!(policy_max_age_short, Scenario::PolicyMaxAgeShort, exit 0, [(C::PolicyMaxAgeShort, W)]);
scenario!(policy_mode_testing, Scenario::PolicyModeTesting, exit 0, [(C::PolicyModeTesting, I), (C::PolicyReadyToEnforce, I)]);
scenario!(policy_mode_none, Scenario::PolicyModeNone, exit 0, [(C::PolicyModeNone, W)], absent [C::MxNotCovered, C::MxCovered]);
scenario!(mx_not_covered, Scenario::MxNotCovered, exit 1, [(C::MxNotCovered, E), (C::MxTlsOk, O)], absent [C::MxCovered]);
scenario!(mx_pattern_unused, Scenario::MxPatternUnused, exit 0, [(C::MxPatternUnused, W), (C::MxCovered, O)]);
scenario!(mx_wildcard_too_deep, Scenario::MxWildcardTooDeep, exit 1, [(C::MxWildcardTooDeep, E)], absent [C::MxNotCovered]);
scenario!(mx_no_starttls, Scenario::MxNoStarttls, exit 1, [(C::MxStartTlsMissing, E)], absent [C::MxTlsOk]);
scenario!(mx_cert_untrusted, Scenario::MxCertUntrusted, exit 1, [(C::MxCertUntrusted, E)], absent [C::MxTlsOk]);
scenario!(mx_cert_expired, Scenario::MxCertExpired, exit 1, [(C::MxCertExpired, E)]);
scenario!(mx_cert_wrong_name, Scenario::MxCertWrongName, exit 1, [(C::MxCertWrongName, E)]);
scenario!(mx_cert_self_signed, Scenario::MxCertSelfSigned, exit 1, [(C::MxCertUntrusted, E)]);
scenario!(mx_cert_bad_testing_mode, Scenario::MxCertBadTestingMode, exit 0,
    [(C::MxCertWrongName, W), (C::PolicyModeTesting, I)], absent [C::PolicyReadyToEnforce]);
scenario!(mx_silent, Scenario::MxSilent, exit 0, [(C::MxTimeout, W)], absent [C::MxTlsOk]);
scenario!(mx_unreachable, Scenario::MxUnreachable, exit 0, [(C::MxUnreachable, W)]);
scenario!(implicit_mx, Scenario::ImplicitMx, exit 0, [(C::MxImplicit, I), (C::MxCovered, O), (C::MxTlsOk, O)]);
scenario!(tlsrpt_missing, Scenario::TlsrptMissing, exit 0, [(C::TlsRptMissing, W)], absent [C::TlsRptOk]);
scenario!(tlsrpt_invalid, Scenario::TlsrptInvalid, exit 1, [(C::TlsRptInvalid, E)]);
scenario!(tlsrpt_duplicate, Scenario::TlsrptDuplicate, exit 1, [(C::TlsRptMultiple, E)]);
scenario!(dane_tlsa, Scenario::DaneTlsa, exit 0, [(C::DaneTlsa, I), (C::MxTlsOk, O)]);
scenario!(dns_servfail, Scenario::DnsServfail, exit 2, [(C::StsTxtDnsError, E)], absent [C::StsNotDeployed]);
// Issue 15, defect 1, end to end through the DNS server: a null-MX domain is not told to
// deploy anything; a null MX among real ones is an error, and the root is never an MX host.
scenario!(defect_1_null_mx, Scenario::NullMx, exit 0, [(C::MxNull, I)],
    absent [C::StsNotDeployed, C::TlsRptMissing, C::MxHostUnresolvable, C::MxNotCovered]);
scenario!(defect_1_null_mx_mixed, Scenario::NullMxMixed, exit 1, [(C::MxNullMixed, E), (C::MxCovered, O), (C::MxTlsOk, O)],
    absent [C::MxHostUnresolvable, C::MxNotCovered, C::MxUnreachable]);
scenario!(dns_timeout, Scenario::DnsTimeout, exit 2, [(C::StsTxtDnsError, E)], absent [C::StsNotDeployed]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_is_reported_and_never_followed() {
    let (world, r) = run(Scenario::HttpsRedirect).await;
    expect(&r, C::PolicyRedirect, E);
    assert_eq!(exit_code([&r]), 1);
    let requests = world.https().requests();
    assert_eq!(requests.len(), 1, "exactly one request, the redirect not followed: {requests:?}");
    assert_eq!(requests[0].path, "/.well-known/mta-sts.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_deployment_is_clean_and_uses_the_right_names() {
    let (world, r) = run(Scenario::Good).await;
    nothing_worse_than(&r, Severity::Info, &[]);
    assert_eq!(r.outcome, Outcome::Checked);
    assert_eq!(r.policy.mode.as_deref(), Some("enforce"));
    assert!(r.suggestions.is_empty(), "nothing to suggest for a good domain: {:?}", r.suggestions);
    // RFC 8461 §7.1: SNI mta-sts.<domain> for HTTPS and the MX name for SMTP.
    let requests = world.https().requests();
    assert!(requests.iter().any(|q| q.sni == "mta-sts.good.test"), "{requests:?}");
    let smtp = world.smtp("mx1.good.test").expect("mx1 server");
    let sessions = smtp.sessions();
    assert!(
        sessions.iter().any(|s| s.sni.as_deref() == Some("mx1.good.test") && s.starttls && s.quit),
        "{sessions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mta_sts_gets_complete_records_from_live_mx() {
    let (_world, r) = run(Scenario::NoMtaSts).await;
    let s = &r.suggestions;
    let txt = s.sts_txt.as_deref().expect("TXT suggestion");
    assert!(txt.starts_with("_mta-sts.no-mta-sts.test. 3600 IN TXT \"v=STSv1; id="), "{txt}");
    let policy = s.policy.as_deref().expect("policy suggestion");
    let parsed = mtasts_proto::Policy::parse(policy).expect("suggested policy parses").value;
    assert_eq!(parsed.mode(), mtasts_proto::Mode::Testing);
    assert!(parsed.matching_pattern("mx1.no-mta-sts.test").is_some(), "{policy}");
    assert!(s.tlsrpt_txt.as_deref().is_some_and(|t| t.contains("v=TLSRPTv1; rua=mailto:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncovered_mx_gets_the_corrected_policy() {
    let (_world, r) = run(Scenario::MxNotCovered).await;
    let f = r.findings.iter().find(|f| f.code == C::MxNotCovered).unwrap();
    assert_eq!(f.subject.as_deref(), Some("backup.mx-not-covered.test"));
    let fix = f.fix.as_ref().unwrap();
    assert!(fix.text().contains("mx: backup.mx-not-covered.test"));
    assert_eq!(fix.policy(), r.suggestions.policy.as_deref());
    let policy = r.suggestions.policy.as_deref().expect("amended policy");
    let parsed = mtasts_proto::Policy::parse(policy).unwrap().value;
    assert!(parsed.matching_pattern("backup.mx-not-covered.test").is_some());
    assert!(parsed.matching_pattern("mx1.mx-not-covered.test").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_could_not_check() {
    let world = mtasts_testkit::World::builder().build().await;
    let checker = crate::support::checker_for(&world);
    for bad in ["", "exa mple.test", "192.0.2.1", "a..b.test", &format!("{}.test", "x".repeat(64))]
    {
        let r = checker.check(bad).await;
        expect(&r, C::DomainInvalid, E);
        assert_eq!(exit_code([&r]), 2, "{bad:?}");
    }
    // A domain that does not exist is an answer (issue 10): outcome does-not-exist, exit 1.
    let r = checker.check("nonexistent.test").await;
    expect(&r, C::DomainNotFound, E);
    assert_eq!(r.outcome, Outcome::DoesNotExist);
    assert_eq!(exit_code([&r]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_in_one_world_concurrently() {
    // All scenarios share one world, checked 16 at a time: shared MX hosts and the single
    // HTTPS listener must not confuse results, and each finishes within its deadlines.
    let mut builder = mtasts_testkit::World::builder();
    for s in Scenario::ALL {
        builder = builder.scenario(*s);
    }
    let world = builder.build().await;
    let checker = crate::support::checker_for(&world);
    let started = std::time::Instant::now();
    let mut reports: Vec<mtasts_check::DomainReport> = Vec::new();
    let domains: Vec<String> = Scenario::ALL.iter().map(Scenario::domain).collect();
    let Ok(_) = checker.check_all(domains.clone(), 16, &mut reports).await;
    assert_eq!(reports.len(), domains.len());
    for (r, d) in reports.iter().zip(&domains) {
        assert_eq!(&r.input, d, "reports come back in input order");
    }
    let good = reports.iter().find(|r| r.input == "good.test").unwrap();
    nothing_worse_than(good, Severity::Info, &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// Issue 15, defect 4: the text output prints a fix's policy and records so that the pasted
/// text parses with the project's own parsers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_4_pasted_fixes_parse() {
    use mtasts_check::render::{END_CAPTION, POLICY_CAPTION, RECORDS_CAPTION, TextRenderer};
    for scenario in [Scenario::MxNotCovered, Scenario::NoMtaSts, Scenario::PolicyModeTesting] {
        let (_world, r) = run(scenario).await;
        let mut out = Vec::new();
        let mut sink = TextRenderer::new(&mut out, false);
        mtasts_check::Sink::report(&mut sink, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        let block = |caption: &str| -> Vec<String> {
            let mut blocks = Vec::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find(caption) {
                let after = &rest[start + caption.len()..];
                let after = &after[after.find('\n').unwrap() + 1..];
                let end = after.find(&format!("          {END_CAPTION}\n")).unwrap();
                blocks.push(after[..end].to_owned());
                rest = &after[end..];
            }
            blocks
        };
        let policies = block(POLICY_CAPTION);
        assert!(!policies.is_empty(), "{scenario:?}: no policy printed:\n{text}");
        for pasted in policies {
            let p = mtasts_proto::Policy::parse(&pasted).unwrap_or_else(|e| {
                panic!("{scenario:?}: pasted policy does not parse: {e}\n{pasted}")
            });
            assert!(!p.value.mx().is_empty());
        }
        for pasted in block(RECORDS_CAPTION) {
            for line in pasted.lines() {
                assert!(!line.starts_with(char::is_whitespace), "indented zone-file line {line:?}");
                let value = line.split('"').nth(1).unwrap();
                assert!(
                    mtasts_proto::StsRecord::parse(value).is_ok()
                        || mtasts_proto::TlsRptRecord::parse(value).is_ok(),
                    "{line}"
                );
            }
        }
    }
}

/// A sink that says stop ends the check: no further reports, and checks in flight are dropped
/// (here a policy host that never answers would otherwise hold the run for its timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_that_stops_ends_the_run() {
    struct First(Vec<String>);
    impl mtasts_check::Sink for First {
        type Error = std::convert::Infallible;
        fn report(&mut self, r: &mtasts_check::DomainReport) -> Result<bool, Self::Error> {
            self.0.push(r.input.clone());
            Ok(false)
        }
    }
    let world = mtasts_testkit::World::builder()
        .scenario(Scenario::Good)
        .scenario(Scenario::HttpsHang)
        .build()
        .await;
    let checker = crate::support::checker_for(&world);
    let mut sink = First(Vec::new());
    let started = std::time::Instant::now();
    let domains =
        vec![Scenario::Good.domain(), Scenario::HttpsHang.domain(), Scenario::HttpsHang.domain()];
    let Ok(status) = checker.check_all(domains, 2, &mut sink).await;
    let stopped_after = started.elapsed();
    assert_eq!(sink.0, [Scenario::Good.domain()]);
    assert_eq!(status, mtasts_check::ExitStatus::Clean);
    // One hanging fetch would take the fetch timeout; stopping must not wait for it.
    let (_, hang) = run(Scenario::HttpsHang).await;
    assert!(
        u128::from(hang.elapsed_ms) > stopped_after.as_millis() * 4,
        "stopping took {stopped_after:?}, a hanging check {} ms",
        hang.elapsed_ms
    );
}

/// Issue 10, defect 6: every message of every scenario in an administrator's words: no
/// library Debug text, no UNIX seconds, no reqwest error chain, one code per finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_6_messages_are_in_an_administrator_s_words() {
    let mut builder = mtasts_testkit::World::builder();
    for s in Scenario::ALL {
        builder = builder.scenario(*s);
    }
    let world = builder.build().await;
    let checker = crate::support::checker_for(&world);
    let mut reports: Vec<mtasts_check::DomainReport> = Vec::new();
    let domains: Vec<String> = Scenario::ALL.iter().map(Scenario::domain).collect();
    let Ok(_) = checker.check_all(domains, 16, &mut reports).await;
    let leaks = [
        "DnsName(",
        "(UNIX)",
        "error sending request",
        "client error (Connect)",
        "os error",
        "TLSv1_",
        "TLS13_",
        "Some(",
        "Error {",
    ];
    for r in &reports {
        for f in &r.findings {
            for leak in leaks {
                assert!(!f.message.contains(leak), "{}: {} says {:?}", r.input, f.code, f.message);
            }
            // A code in brackets inside the message would print as a second code.
            let bracketed = f.message.split('[').skip(1).any(|rest| {
                rest.split(']').next().is_some_and(|c| {
                    c.len() > 3
                        && c.contains('-')
                        && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-')
                })
            });
            assert!(!bracketed, "{}: {} says {:?}", r.input, f.code, f.message);
        }
    }
    let find = |domain: &str, code: Code| {
        reports
            .iter()
            .find(|r| r.input == domain)
            .and_then(|r| r.findings.iter().find(|f| f.code == code))
            .unwrap_or_else(|| panic!("{domain}: no {code}"))
            .clone()
    };
    let refused = find(&Scenario::PolicyHostUnreachable.domain(), C::PolicyUnreachable);
    assert!(refused.message.contains("connection refused on port"), "{}", refused.message);
    let warning = find(&Scenario::PolicyVersionNotFirst.domain(), C::PolicyWarning);
    assert_eq!(warning.warning, Some("policy-version-not-first"));
}
