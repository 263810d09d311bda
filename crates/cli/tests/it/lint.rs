//! `mtasts lint` and `mtasts generate`: offline, no network.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn mtasts(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(args).env("NO_COLOR", "1");
    cmd
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What `generate` prints, `lint` accepts: the round trip an administrator makes before
/// publishing.
#[test]
fn generated_policy_and_records_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("mta-sts.txt");
    let records = dir.path().join("records.zone");
    let args =
        ["generate", "bücher.example", "--mx", "mx1.bücher.example", "--mx", "*.mail.example.net"];
    let out = mtasts(&args).args(["--only", "policy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let body = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        body,
        "version: STSv1\nmode: testing\nmx: mx1.xn--bcher-kva.example\nmx: *.mail.example.net\nmax_age: 86400\n"
    );
    std::fs::write(&policy, &body).unwrap();
    let out = mtasts(&args).args(["--only", "records", "--id", "20261203a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let zone = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        zone,
        "_mta-sts.xn--bcher-kva.example. 3600 IN TXT \"v=STSv1; id=20261203a;\"\n\
         _smtp._tls.xn--bcher-kva.example. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@xn--bcher-kva.example\"\n"
    );
    std::fs::write(&records, &zone).unwrap();

    let out = mtasts(&["lint", "--mx", "mx1.xn--bcher-kva.example", "--mx", "in.mail.example.net"])
        .arg(&policy)
        .arg(&records)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("mta-sts.txt: all good"), "{t}");
    assert!(t.contains("all 2 MX hosts match the policy"), "{t}");
    assert!(t.contains("[policy-mode-testing]"), "{t}");
    assert!(t.contains("records.zone: all good"), "{t}");
    assert!(t.contains("\"v=STSv1; id=20261203a;\"  [sts-txt-ok]"), "{t}");
}

#[test]
fn a_broken_policy_exits_1_with_check_s_finding_and_fix() {
    let policy = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 3600\n";
    let out =
        with_stdin(mtasts(&["lint", "--mx", "mx2.example.com", "--domain", "example.com"]), policy);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("standard input: 1 error(s), "), "{t}");
    assert!(t.contains("MX mx2.example.com is not matched by any mx: line of the policy"), "{t}");
    assert!(t.contains("[policy-max-age-short]"), "{t}");
    // The fix is the amended policy, pasteable, and the new TXT record.
    assert!(t.contains("mx: mx1.example.com\nmx: mx2.example.com\n"), "{t}");
    assert!(t.contains("_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id="), "{t}");

    let out = with_stdin(mtasts(&["lint", "--format", "json"]), "version: STSv1\nmode: enforce\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 1);
    let finding = &doc["domains"][0]["findings"][0];
    assert_eq!(finding["code"], "policy-invalid");
    assert_eq!(finding["subject"], "standard input");
}

#[test]
fn record_text_on_the_command_line() {
    let out = mtasts(&["lint", "--record", "v=STSv1; id=2026-12-03;"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("[sts-txt-invalid]"), "{t}");
    assert!(t.contains("fix: Replace it with:"), "{t}");
    // Several --record values are the records at their names, judged together.
    let out = mtasts(&["lint", "--record", "v=STSv1; id=1;", "--record", "v=STSv1; id=2;"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("[sts-txt-multiple]"), "{}", text(&out));
    let out = mtasts(&["lint", "--record", "v=TLSRPTv1; rua=mailto:reports@example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("[tlsrpt-ok]"), "{}", text(&out));
}

#[test]
fn unreadable_input_exits_2_and_names_the_file() {
    let out = mtasts(&["lint", "/nonexistent/mta-sts.txt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open /nonexistent/mta-sts.txt"), "{err}");
    assert!(!err.contains("Os {") && !err.contains("os error"), "no library text: {err}");
    let out = mtasts(&["lint", "/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /: Is a directory"));
}

#[test]
fn generate_refuses_bad_arguments_in_words() {
    for (args, words) in [
        (&["generate", "example.com"][..], "--mx is required"),
        (&["generate", "example.com", "--mx", "192.0.2.1"], "cannot be an mx: line"),
        (&["generate", "example.com", "--mx", "mx.example.com", "--max-age", "2y"], "unknown unit"),
        (
            &["generate", "example.com", "--mx", "mx.example.com", "--max-age", "53w"],
            "at most 31557600",
        ),
        (
            &["generate", "example.com", "--mx", "mx.example.com", "--rua", "ftp://x"],
            "report address",
        ),
        (&["generate", "example.com", "--mx", "mx.example.com", "--id", "a-b"], "--id"),
        (&["generate", "a..b", "--mx", "mx.example.com"], "not a domain name"),
    ] {
        let out = mtasts(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(words), "{args:?}: {}", text(&out));
    }
    // mode: none needs no hosts; enforce defaults to a week.
    let out = mtasts(&["generate", "example.com", "--mode", "none", "--only", "policy"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "version: STSv1\nmode: none\nmax_age: 604800\n"
    );
    let out = mtasts(&[
        "generate",
        "example.com",
        "--mx",
        "mx.example.com",
        "--mode",
        "enforce",
        "--format",
        "json",
    ])
    .output()
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["max_age"], 604_800);
    assert_eq!(doc["policy_url"], "https://mta-sts.example.com/.well-known/mta-sts.txt");
    assert!(doc["sts_txt"].as_str().unwrap().starts_with("_mta-sts.example.com. 3600 IN TXT"));
}
