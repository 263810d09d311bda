//! `mtasts reporter` end to end: the collector as a process (SIGTERM drains and writes, kill -9
//! keeps what was written, a stale socket is taken over), `status`, `send --dry-run` and
//! delivery through a sendmail program; refusals in words.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mtasts(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(args).env("MTASTS_LOG", "warn");
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn datagram(domain: &str, failed: bool) -> String {
    let record = format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}");
    let details = if failed {
        r#""failure-details":[{"c":204,"r": "192.0.2.1","n": "mx.example"}],"t":1,"f":1"#
    } else {
        r#""t":0,"f":0"#
    };
    format!(
        r#"{{"dpv": "1","d": "{domain}","pr": "{record}","policies":[{{"policy-type":2,"policy-domain": "{domain}","policy-string":["version: STSv1","mode: testing","mx: mx.{domain}","max_age: 86400"],"mx-host":["mx.{domain}"],{details}}}]}}"#
    )
}

fn collector(socket: &Path, db: &str) -> Child {
    let child = mtasts(&[
        "reporter",
        "collect",
        "--socket",
        socket.to_str().unwrap(),
        "--db",
        db,
        "--flush-every",
        "0.1",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    // Live: a datagram socket accepts a connect only while someone has it bound.
    while UnixDatagram::unbound().unwrap().connect(socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the collector did not bind {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn send(socket: &Path, datagrams: &[String]) {
    let s = UnixDatagram::unbound().unwrap();
    for d in datagrams {
        s.send_to(d.as_bytes(), socket).unwrap();
    }
}

fn status(db: &str) -> serde_json::Value {
    let out = mtasts(&["reporter", "status", "--db", db, "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sessions(doc: &serde_json::Value) -> i64 {
    doc["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["successes"].as_i64().unwrap() + d["failures"].as_i64().unwrap())
        .sum()
}

#[test]
fn collect_status_dry_run_and_send_through_sendmail() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tlsrpt.sock");
    let db = format!("sqlite://{}", dir.path().join("r.db").display());

    // SIGTERM: drained and written, the totals on stderr, the socket file removed.
    let child = collector(&socket, &db);
    let mut datagrams = vec![datagram("a.example", false); 30];
    datagrams.push(datagram("a.example", true));
    datagrams.push("{ not a datagram".into());
    send(&socket, &datagrams);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("32 datagrams received, 1 refused, 31 stored"), "{}", text(&out));
    assert!(!socket.exists());
    assert_eq!(sessions(&status(&db)), 31);

    // kill -9: what was written stays; the stale socket is taken over by the next collector.
    let mut child = collector(&socket, &db);
    send(&socket, &vec![datagram("a.example", false); 10]);
    let start = Instant::now();
    while sessions(&status(&db)) < 41 {
        assert!(start.elapsed() < Duration::from_secs(10), "not written within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(socket.exists(), "kill -9 leaves the socket file");
    let child = collector(&socket, &db);
    assert!(
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success()
    );
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(sessions(&status(&db)), 41);

    let day = status(&db)["days"][0]["day"].as_str().unwrap().to_owned();
    let who = ["--organization", "Test Sender", "--contact", "tlsrpt@sender.test"];

    // --dry-run prints the report, strictly valid, and sends nothing.
    let mut args = vec!["reporter", "send", "--db", &db, "--day", &day, "--dry-run"];
    args.extend(who);
    let out = mtasts(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["domain"], "a.example");
    assert_eq!(line["destinations"][0], "mailto:tlsrpt@a.example");
    let report = serde_json::to_vec(&line["report"]).unwrap();
    let parsed = mtasts_proto::Report::parse_strict(&report).unwrap();
    assert_eq!(parsed.policies[0].summary.total_successful_session_count, 40);
    assert_eq!(parsed.policies[0].summary.total_failure_session_count, 1);
    assert!(status(&db)["deliveries"].as_array().unwrap().is_empty());

    // Mail without a DKIM key is refused, in words.
    let mut args =
        vec!["reporter", "send", "--db", &db, "--day", &day, "--once", "--sendmail", "/bin/true"];
    args.extend(who);
    let out = mtasts(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("must be DKIM-signed (RFC 8460 §3)"), "{}", text(&out));

    // Through a sendmail program (the relay signs: --no-dkim).
    let script = dir.path().join("sendmail");
    let saved = dir.path().join("mail.eml");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\n", saved.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut args = vec![
        "reporter",
        "send",
        "--db",
        &db,
        "--day",
        &day,
        "--once",
        "--spread",
        "0",
        "--no-dkim",
        "--sendmail",
        script.to_str().unwrap(),
    ];
    args.extend(who);
    let out = mtasts(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 delivered"), "{}", text(&out));
    let mail = std::fs::read_to_string(&saved).unwrap();
    assert!(mail.contains("TLS-Report-Domain: a.example\r\n"), "{mail}");
    assert!(mail.contains("TLS-Report-Submitter: sender.test\r\n"), "{mail}");
    let argv = std::fs::read_to_string(format!("{}.args", saved.display())).unwrap();
    assert_eq!(argv.trim(), "-i -f tlsrpt@sender.test -- tlsrpt@a.example");
    let deliveries = status(&db)["deliveries"].clone();
    assert_eq!(deliveries[0]["state"], "sent");
    // A second run sends nothing again.
    let out = mtasts(&args).output().unwrap();
    assert!(text(&out).contains("0 delivered"), "{}", text(&out));
}

#[test]
fn bad_input_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let out = mtasts(&[
        "reporter",
        "send",
        "--db",
        &db,
        "--organization",
        "O",
        "--contact",
        "a@b.test",
        "--day",
        "yesterday",
        "--dry-run",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--day \"yesterday\" is not a date (YYYY-MM-DD)"),
        "{}",
        text(&out)
    );
    let out = mtasts(&["reporter", "send", "--db", &db, "--dry-run"]).output().unwrap();
    assert!(text(&out).contains("--organization is required"), "{}", text(&out));
    // A listing of a database that does not exist says so and creates nothing.
    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = mtasts(&["reporter", "status", "--db", &missing]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no database at"), "{}", text(&out));
    assert!(!dir.path().join("typo.db").exists());
    // A regular file where the socket should be is not removed.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "x").unwrap();
    let out = mtasts(&["reporter", "collect", "--socket", file.to_str().unwrap(), "--db", &db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("exists and is not a socket; not removing it"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
