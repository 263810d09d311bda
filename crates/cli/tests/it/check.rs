//! `mtasts check`.

use std::process::Output;

use mtasts_testkit::{Scenario, World};
use tokio::process::Command;

async fn world(scenarios: &[Scenario]) -> World {
    let mut b = World::builder();
    for s in scenarios {
        b = b.scenario(*s);
    }
    b.build().await
}

/// `mtasts check` pointed at `world` through command-line options.
fn command(world: &World) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.arg("check")
        .arg("--dns-server")
        .arg(world.dns_addr().to_string())
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .arg("--https-port")
        .arg(world.https_port().to_string())
        .arg("--smtp-port")
        .arg(world.smtp_port().to_string())
        .args(["--dns-timeout", "0.8", "--fetch-timeout", "3", "--smtp-timeout", "2"])
        .args(["--connect-timeout", "2"])
        .env_remove("MTASTS_DNS_SERVER")
        .env("NO_COLOR", "1");
    cmd
}

async fn run(cmd: &mut Command) -> Output {
    cmd.output().await.unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_0_1_2() {
    let w = world(&[Scenario::Good, Scenario::MxNotCovered, Scenario::DnsServfail]).await;
    let ok = run(command(&w).arg("good.test")).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("good.test: all good"), "{}", text(&ok));

    let bad = run(command(&w).arg("mx-not-covered.test")).await;
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let out = text(&bad);
    assert!(
        out.contains("[mx-not-covered]")
            && out.contains("fix: Add the line `mx: backup.mx-not-covered.test`"),
        "{out}"
    );

    let unsure = run(command(&w).arg("dns-servfail.test")).await;
    assert_eq!(unsure.status.code(), Some(2), "{}", text(&unsure));

    // Several domains: the worst outcome wins, and every domain is reported.
    let all = run(command(&w).args(["good.test", "mx-not-covered.test"])).await;
    assert_eq!(all.status.code(), Some(1));
    let out = text(&all);
    assert!(
        out.find("good.test:").unwrap() < out.find("mx-not-covered.test:").unwrap(),
        "input order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_document() {
    let w = world(&[Scenario::Good, Scenario::NoMtaSts]).await;
    let out = run(command(&w).args(["--format", "json", "good.test", "no-mta-sts.test"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["exit_code"], 0);
    let domains = doc["domains"].as_array().unwrap();
    assert_eq!(domains[0]["domain"], "good.test");
    assert_eq!(domains[0]["outcome"], "checked");
    assert_eq!(domains[0]["policy"]["mode"], "enforce");
    assert_eq!(domains[0]["mx"][0]["tls_ok"], true);
    let codes: Vec<&str> = domains[1]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"sts-not-deployed"), "{codes:?}");
    assert!(domains[1]["suggestions"]["policy"].as_str().unwrap().contains("mode: testing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_configure_the_network() {
    let w = world(&[Scenario::Good]).await;
    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["check", "good.test", "--format", "json"])
        .env("MTASTS_DNS_SERVER", w.dns_addr().to_string())
        .env("MTASTS_TRUST_ROOTS", w.ca_pem_path())
        .env("MTASTS_HTTPS_PORT", w.https_port().to_string())
        .env("MTASTS_SMTP_PORT", w.smtp_port().to_string())
        .env("MTASTS_DNS_TIMEOUT", "0.8"))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Issue 10: --dane and --no-dane both exist; DANE is on by default for `check`, and the last
/// flag wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_flags_turn_the_lookups_on_and_off() {
    let w = world(&[Scenario::Good]).await;
    for (flags, looked_up) in [
        (&[][..], true),
        (&["--no-dane"][..], false),
        (&["--no-dane", "--dane"][..], true),
        (&["--dane", "--no-dane"][..], false),
    ] {
        let out = run(command(&w).args(flags).arg("good.test")).await;
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", text(&out));
        assert_eq!(text(&out).contains("[dnssec-status]"), looked_up, "{flags:?}: {}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_smtp_skips_probing() {
    let w = world(&[Scenario::MxNoStarttls]).await;
    let out = run(command(&w).args(["--no-smtp", "--format", "json", "mx-no-starttls.test"])).await;
    // Without probing, the missing STARTTLS cannot be seen: no errors.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = doc["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"mx-not-probed") && !codes.contains(&"mx-starttls-missing"),
        "{codes:?}"
    );
    assert!(
        w.smtp("mx1.mx-no-starttls.test").unwrap().sessions().is_empty(),
        "no SMTP connection made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_with_a_clear_message() {
    let w = world(&[]).await;
    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).args([
        "check",
        "--dns-timeout=-1",
        "good.test",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--dns-timeout must be more than 0"), "{}", text(&out));
    // Issue 10 defect 12: 0 is refused in words that do not contradict it, and a bad port is
    // called a bad port (not "invalid IP address syntax").
    let zero = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).args([
        "check",
        "--dns-timeout=0",
        "good.test",
    ]))
    .await;
    assert_eq!(zero.status.code(), Some(2));
    assert!(text(&zero).contains("more than 0 and at most 3600 seconds, got 0"), "{}", text(&zero));
    let port = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).args([
        "check",
        "--dns-server",
        "127.0.0.1:99999",
        "good.test",
    ]))
    .await;
    assert_eq!(port.status.code(), Some(2));
    assert!(text(&port).contains("the port must be a number from 1 to 65535"), "{}", text(&port));
    assert!(!text(&port).contains("syntax"), "{}", text(&port));

    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).args([
        "check",
        "x.test",
        "--trust-roots",
        "/nonexistent.pem",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("/nonexistent.pem"), "{}", text(&out));

    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).arg("check")).await;
    assert_eq!(out.status.code(), Some(2), "missing DOMAIN is a usage error");

    let out = run(command(&w).arg("not a domain")).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("[domain-invalid]"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idn_input_is_converted_to_a_labels() {
    let w = world(&[]).await;
    let out = run(command(&w).args(["--format", "json", "bücher.test"])).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["domains"][0]["domain"], "xn--bcher-kva.test");
}

#[tokio::test]
async fn demo_lists_every_scenario() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_mtasts")).args(["demo", "--list"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout);
    for s in Scenario::ALL {
        assert!(listed.contains(&s.domain()), "{} missing from demo --list", s.name());
    }
}

/// Issue 10 defect 7: the README's first command runs every scenario, exits 0 (the scenarios
/// are meant to fail; the demo did its job) and ends with a tally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_every_scenario_exits_0_and_tallies() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["demo", "--color", "never"])
        .env_remove("MTASTS_LOG")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let tally = err.lines().last().unwrap_or("");
    let n = Scenario::ALL.len();
    assert!(tally.starts_with(&format!("demo: {n} scenarios checked: ")), "{err}");
    assert!(tally.contains("could not be checked") && tally.contains("with errors"), "{tally}");
    // Logs into a pipe carry no colour codes (defect 9).
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["demo", "--color", "never", "dns-servfail"])
        .env("MTASTS_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert!(!out.stderr.contains(&0x1b), "ANSI escapes in piped logs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEBUG"), "no debug logs");
}

/// `mtasts check a b c | head -1`: when the reader goes away, the check stops at the next
/// write and exits quietly with status 0 (as ripgrep does), instead of checking every domain
/// and exiting 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_pipe_stops_quietly() {
    use tokio::io::AsyncBufReadExt;
    let w = world(&[Scenario::Good, Scenario::HttpsHang]).await;
    let started = std::time::Instant::now();
    let mut child = command(&w)
        .args(["--concurrency", "1", "good.test"])
        .args(["https-hang.test"; 3])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    tokio::io::BufReader::new(stdout).read_line(&mut first).await.unwrap();
    assert!(first.starts_with("good.test: all good"), "{first}");
    // The reader is gone now (dropped with the BufReader).
    let out = child.wait_with_output().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // Three hanging policy hosts in a row take 3 x the 3 s fetch timeout; stopping at the first
    // failed write takes one.
    assert!(elapsed < std::time::Duration::from_secs(7), "took {elapsed:?}");
}

/// Issue 10: a DNS server that does not answer is said once ("does not answer"), exit 2, no
/// findings addressed to the domain owner; `scan` stops before a run exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_dns_server_is_named_once() {
    // Nothing listens on this UDP port (bound, then closed).
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let started = std::time::Instant::now();
    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts")).args([
        "check",
        "--dns-server",
        &dead.to_string(),
        "--dns-timeout",
        "2",
        "a.test",
        "b.test",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert_eq!(all.matches("does not answer").count(), 1, "{all}");
    assert!(all.contains(&dead.to_string()), "{all}");
    assert!(!all.contains("a.test") && !all.contains("fix:"), "no domain findings: {all}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "a.test\nb.test\n").unwrap();
    let db = format!("sqlite://{}", dir.path().join("scan.db").display());
    let out = run(Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "--db", &db, "--progress", "none", "--dns-timeout", "2"])
        .args(["--dns-server", &dead.to_string()])
        .arg(&list)
        .env_remove("MTASTS_SCAN_DB"))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not answer"), "{}", text(&out));
    assert!(!dir.path().join("scan.db").exists(), "no run (no database) for a dead resolver");
}

/// Issue 10 defect 5: `check -q` prints warnings and errors only: no empty section headings,
/// no ok or info lines (such as `dnssec-status`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_only_warnings_and_errors() {
    let w = world(&[Scenario::Good, Scenario::TlsrptMissing]).await;
    let out = run(command(&w).args(["-q", "--color", "never", "good.test"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "good.test: all good", "{stdout}");
    let out = run(command(&w).args(["-q", "--color", "never", "tlsrpt-missing.test"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[tlsrpt-missing]"), "{stdout}");
    assert!(!stdout.contains("dnssec-status") && !stdout.contains("[mx-tls-ok]"), "{stdout}");
    // Every heading printed has a finding under it.
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("  ") && !l.starts_with("    ") {
            let next = lines.get(i + 1).copied().unwrap_or("");
            assert!(next.starts_with("    "), "empty section {l:?} in {stdout}");
        }
    }
}
