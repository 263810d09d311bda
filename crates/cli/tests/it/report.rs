//! `mtasts report`: ingest's exit statuses for a Postfix `pipe`, maildir and mbox inputs, and
//! the listings.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/data").join(name)
}

fn mtasts(db: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    // DKIM keys are looked up only on loopback, where nothing answers: hermetic.
    cmd.arg("report")
        .args(args)
        .env("MTASTS_REPORTS_DB", db)
        .env("MTASTS_DNS_SERVER", "127.0.0.1:9")
        .env("MTASTS_DNS_TIMEOUT", "0.2");
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn piped(mut cmd: Command, input: &[u8]) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

const GOOGLE: &str = "mox__testdata__tlsreports__example.eml";
const MICROSOFT: &str = "mox__testdata__tlsreports__microsoft.eml";

#[test]
fn ingest_exit_statuses_for_a_pipe_transport() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    // One message on stdin, as Postfix's pipe(8) delivers it: stored, exit 0.
    let out = piped(mtasts(&db, &["ingest", "--json"]), &std::fs::read(data(GOOGLE)).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["duplicate"], false);
    assert_eq!(line["domains"][0], "test.xmox.nl");
    assert_eq!(line["dkim"], "temperror", "no DNS answers for the key: flagged, kept");
    // DKIM required and the key cannot be looked up: 75, the MTA retries later.
    let mut strict = mtasts(&db, &["ingest", "--dkim", "require"]);
    strict.arg(data(MICROSOFT));
    let out = strict.output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    // Again: already stored, still 0 (the sender must not retry).
    let out = piped(mtasts(&db, &["ingest"]), &std::fs::read(data(GOOGLE)).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already stored report 1"), "{}", text(&out));
    // Not a report: 65 (EX_DATAERR, bounced), the reason on stderr.
    let out = piped(mtasts(&db, &["ingest"]), b"From: a@example.com\nSubject: hi\n\nhello\n");
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a TLS-RPT report"),
        "{}",
        text(&out)
    );
    // Too large: 65 too.
    let out = piped(
        mtasts(&db, &["ingest", "--max-message", "1000"]),
        &std::fs::read(data(MICROSOFT)).unwrap(),
    );
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(text(&out).contains("-byte limit"), "{}", text(&out));
    // A bad alert setting is said before anything is read.
    let out = mtasts(&db, &["ingest", "--alert-webhook", "ftp://hooks.example"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--alert-webhook \"ftp://hooks.example\" is not an http(s) URL"),
        "{}",
        text(&out)
    );
    // The database is down: 75 (EX_TEMPFAIL, Postfix retries), said once.
    let dead = "postgres://postgres@127.0.0.1:9/test";
    let out = piped(mtasts(dead, &["ingest"]), &std::fs::read(data(GOOGLE)).unwrap());
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1, "{}", text(&out));
}

#[test]
fn maildir_and_mbox_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let maildir = dir.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::copy(data(GOOGLE), maildir.join("new/1.eml")).unwrap();
    std::fs::copy(data(MICROSOFT), maildir.join("cur/2.eml:2,S")).unwrap();
    std::fs::write(maildir.join("new/3.eml"), "From: x@example.com\nSubject: spam\n\nbuy\n")
        .unwrap();
    let done = dir.path().join("done");
    let out = mtasts(
        &db,
        &["ingest", "--move-processed", done.to_str().unwrap(), maildir.to_str().unwrap()],
    )
    .output()
    .unwrap();
    // One message was not a report: 65; the two reports are stored and moved, the spam stays.
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(done.join("1.eml").exists() && done.join("2.eml:2,S").exists(), "{}", text(&out));
    assert!(maildir.join("new/3.eml").exists());

    // An mbox of two messages, one already stored.
    let mut mbox = Vec::new();
    for name in [GOOGLE, "stalwart-mail-auth__resources__tlsrpt__rpt01.eml"] {
        mbox.extend_from_slice(b"From sender@example.net Thu Dec  3 10:00:00 2026\n");
        mbox.extend_from_slice(&std::fs::read(data(name)).unwrap());
        mbox.extend_from_slice(b"\n");
    }
    let file = dir.path().join("reports.mbox");
    std::fs::write(&file, mbox).unwrap();
    let out = mtasts(&db, &["ingest", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("reports.mbox#1: already stored") && t.contains("reports.mbox#2: stored"),
        "{t}"
    );

    let out = mtasts(&db, &["list", "--format", "json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
    let out = mtasts(
        &db,
        &["summary", "--days", "100000", "--domain", "company-y.example", "--format", "json"],
    )
    .output()
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &doc["domains"][0];
    assert_eq!(d["days"][0]["failed"], 303, "{doc}");
    assert_eq!(d["failures"]["result_type"][0]["key"], "starttls-not-supported", "{doc}");
    assert_eq!(
        d["failures"]["reason_code"][1]["key"], "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
        "{doc}"
    );
    assert_eq!(d["policies_reported"][0]["policy_strings"][1], "mode: testing", "{doc}");
    let page = dir.path().join("summary.html");
    let out = mtasts(&db, &["summary", "--days", "100000", "--html", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("company-y.example: failed sessions per UTC day, by result type"),
        "{html}"
    );
    // A closed pipe ends the listing quietly, and the page is still written.
    std::fs::remove_file(&page).unwrap();
    let mut cmd = mtasts(&db, &["summary", "--days", "100000", "--html", page.to_str().unwrap()]);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("Broken pipe"), "{}", text(&out));
    assert!(page.exists());
    let out = mtasts(&db, &["summary", "--days", "100000", "--format", "csv"]).output().unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("domain,day,successful,failed,reports\n"), "{csv}");
    assert!(csv.contains("company-y.example,2016-04-01,5326,303,1"), "{csv}");
    let out = mtasts(&db, &["show", "1", "--raw"]).output().unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(raw["organization-name"], "Google Inc.");
    let out = mtasts(&db, &["show", "99"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Reading commands never create a database.
    let typo = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = mtasts(&typo, &["list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!Path::new(&dir.path().join("typo.db")).exists());
}

/// `report receive --plain` (behind a proxy): a POSTed report is stored and listed; a bad one
/// is refused with the reason.
#[test]
fn receive_over_http_then_list() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut child = mtasts(&db, &["receive", "--plain", "--metrics", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr =
        first.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_owned();
    let post = |ct: &str, body: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "POST /v1/tlsrpt HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
        s.write_all(body).unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    let gz = std::fs::read(data("mox__testdata__tlsreports__microsoft_extracted.json.gz")).unwrap();
    let ok = post("application/tlsrpt+gzip", &gz);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let bad = post("application/json", b"{}");
    assert!(bad.starts_with("HTTP/1.1 415") && bad.contains("RFC 8460 §5.4"), "{bad}");
    let metrics = {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    assert!(
        metrics.contains("mtasts_reports_received_total{channel=\"https\",outcome=\"stored\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"rejected\"} 1"), "{metrics}");
    assert!(
        metrics.contains(
            "mtasts_reports_sessions_total{domain=\"test.xmox.nl\",result=\"successful\"} 2"
        ),
        "{metrics}"
    );
    let out = mtasts(&db, &["list", "--format", "csv"]).output().unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.contains("Microsoft Corporation") && csv.contains(",https,"), "{csv}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `report readiness`: reports from 2016 are long stopped and had failures: not ready, exit 1,
/// the reasons in JSON.
#[test]
fn readiness_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let out = mtasts(
        &db,
        &["ingest", data("stalwart-mail-auth__resources__tlsrpt__rpt01.eml").to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out =
        mtasts(&db, &["readiness", "company-y.example", "--days", "100000", "--format", "json"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"]["ready"], false);
    let codes: Vec<&str> = doc["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"failures") && codes.contains(&"reports-stopped"), "{codes:?}");
    let out = mtasts(&db, &["readiness", "company-y.example"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no TLS-RPT reports yet"),
        "{}",
        text(&out)
    );
}

/// `report ingest --imap`: a mailbox on Debian's dovecot, polled once.
#[test]
fn ingest_from_an_imap_mailbox() {
    let Some(dovecot) = mtasts_testkit::dovecot::Dovecot::start(&[("tlsrpt", "pw")]) else {
        return;
    };
    dovecot.deliver("tlsrpt", "1.eml", &std::fs::read(data(GOOGLE)).unwrap());
    dovecot.deliver(
        "tlsrpt",
        "2.eml",
        b"From: x@example.com\r\nSubject: hi\r\n\r\nnot a report\r\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let url = format!("imap://tlsrpt@{}/INBOX", dovecot.addr());
    let out = mtasts(&db, &["ingest", "--imap", &url, "--dkim", "off"])
        .env("MTASTS_IMAP_PASSWORD", "pw")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(65), "one message was rejected: {t}");
    assert!(t.contains("1 stored, 0 already stored, 1 rejected, 0 left for later"), "{t}");
    assert_eq!(dovecot.count("tlsrpt", "INBOX"), 0);
    assert_eq!(dovecot.count("tlsrpt", "TLSRPT-Rejected"), 1);
    let out = mtasts(&db, &["list", "--format", "csv"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Google Inc."));
}

/// A crash loses no acknowledged report and leaves no half report: `kill -9` in the middle of
/// a large ingest, then again right after an HTTPS 200; every report is whole, and running
/// the ingest again stores exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_report_and_leaves_no_half_report() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("r.db");
    let db = format!("sqlite://{}", db_path.display());
    let files = dir.path().join("reports");
    std::fs::create_dir_all(&files).unwrap();
    let sample: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../proto/tests/data/tlsrpt/parsedmarc__smtp_tls__rfc8460.json"),
        )
        .unwrap(),
    )
    .unwrap();
    const N: usize = 10_000;
    for i in 0..N {
        let mut r = sample.clone();
        r["report-id"] = serde_json::json!(format!("crash-{i}"));
        std::fs::write(files.join(format!("{i:05}.json")), serde_json::to_vec(&r).unwrap())
            .unwrap();
    }
    let mut child =
        mtasts(&db, &["ingest", files.to_str().unwrap()]).stderr(Stdio::piped()).spawn().unwrap();
    // Kill it once some reports are acknowledged (printed as stored).
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut acknowledged = Vec::new();
    let mut line = String::new();
    while acknowledged.len() < 300 && err.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.split("stored report ").nth(1) {
            acknowledged.push(rest.split_whitespace().next().unwrap().to_owned());
        }
        line.clear();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acknowledged.len() >= 300, "the ingest ended before it could be killed");

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display())).await.unwrap();
    let (halves,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tlsrpt_reports r WHERE NOT EXISTS \
         (SELECT 1 FROM tlsrpt_policies p WHERE p.report = r.id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(halves, 0, "a report without its policies");
    let (after_kill,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tlsrpt_reports").fetch_one(&pool).await.unwrap();
    assert!(
        after_kill as usize >= acknowledged.len(),
        "{after_kill} stored < {} acknowledged",
        acknowledged.len()
    );
    for id in &acknowledged {
        let out = mtasts(&db, &["show", id]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "acknowledged report {id} is missing");
    }
    pool.close().await;

    // Again: the rest is stored, what was stored is a duplicate.
    let out = mtasts(&db, &["ingest", files.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = mtasts(&db, &["list", "--limit", "100000", "--format", "csv"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count() - 1, N);

    // HTTPS: killed right after the 200, the report is there when it comes back.
    let mut child = mtasts(&db, &["receive", "--plain", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addr =
        first.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_owned();
    let body =
        std::fs::read(data("mox__testdata__tlsreports__microsoft_extracted.json.gz")).unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    s.write_all(&body).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let id = response
        .split("\"id\":")
        .nth(1)
        .unwrap()
        .split([',', '}'])
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let out = mtasts(&db, &["show", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the acknowledged HTTPS report {id} is missing");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Microsoft Corporation"));
}

/// `mtasts report ingest` as a real Postfix's `pipe(8)` transport, as the README's example
/// sets it up (`contrib/postfix/tlsrpt-pipe.md`; `--dkim off`, as nothing answers DNS here): a report is delivered (stored, `status=sent`), a message that is not a report
/// is bounced with the reason, and while the store cannot be written the mail is deferred
/// and kept in the queue, then delivered once it can: nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_behind_a_real_postfix_pipe() {
    use mtasts_testkit::postfix::{Attempt, Postfix};
    use std::os::unix::fs::PermissionsExt;
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
    let bin = env!("CARGO_BIN_EXE_mtasts");
    let Some(postfix) = Postfix::builder()
        .main_cf(
            "relay_domains = reports.test\n\
             transport_maps = inline:{ reports.test=tlsrpt:, sender.mtasts.test=discard: }\n",
        )
        .service(&format!(
            "tlsrpt unix - n n - 4 pipe flags=Rq user=nobody \
             argv={bin} report ingest --dkim off --db sqlite://{{dir}}/db/reports.db"
        ))
        .start()
    else {
        return;
    };
    let db_dir = postfix.dir().join("db");
    let db = format!("sqlite://{}", db_dir.join("reports.db").display());
    // root's and not writable by `nobody`: the store cannot be created yet.
    std::fs::create_dir(&db_dir).unwrap();
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sender = "sender@sender.mtasts.test";
    let sent = |a: &[Attempt]| a.iter().any(|a| a.status == "sent");
    let report = std::fs::read(data(GOOGLE)).unwrap();

    postfix.submit(sender, "tlsrpt@reports.test", &report);
    let a =
        postfix.wait_for("tlsrpt@reports.test", "a deferral", DEADLINE, |a| !a.is_empty()).await;
    assert!(a.iter().all(|a| a.status == "deferred"), "{a:#?}\n{}", postfix.log());
    assert!(postfix.queue().contains("tlsrpt@reports.test"), "not queued:\n{}", postfix.log());
    // The store can be written now: the retry delivers it.
    let chown = Command::new("chown").arg("nobody").arg(&db_dir).status().unwrap();
    assert!(chown.success());
    postfix.flush();
    postfix.wait_for("tlsrpt@reports.test", "the delivery", DEADLINE, sent).await;
    let listed = mtasts(&db, &["list", "--format", "json"]).output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");

    // Not a report: bounced, the reason in the log (and so in the bounce).
    postfix.submit(sender, "other@reports.test", b"From: a@example.com\nSubject: hi\n\nhello\n");
    let a = postfix.wait_for("other@reports.test", "a bounce", DEADLINE, |a| !a.is_empty()).await;
    assert!(
        a.iter().all(|a| a.status == "bounced" && a.line.contains("not a TLS-RPT report")),
        "{a:#?}"
    );
    // The same report again: acknowledged (sent), stored once.
    postfix.submit(sender, "again@reports.test", &report);
    postfix.wait_for("again@reports.test", "the delivery", DEADLINE, sent).await;
    let listed = mtasts(&db, &["list", "--format", "json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
}
