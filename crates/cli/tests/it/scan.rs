//! `mtasts scan`: outputs, bad input, resumption after kill -9, and several workers sharing
//! one PostgreSQL queue with one of them killed.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mtasts_store::{Category, ScanStore};
use mtasts_testkit::{DomainSpec, HttpBehaviour, Scenario, World};
use tokio::process::Command;

/// `mtasts scan` pointed at `world`.
fn scan_cmd(world: &World, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.arg("scan")
        .args(["--db", db])
        .args(["--dns-server", &world.dns_addr().to_string()])
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .args(["--https-port", &world.https_port().to_string()])
        .args(["--smtp-port", &world.smtp_port().to_string()])
        .args(["--dns-timeout", "0.8", "--smtp-timeout", "2"])
        .args(["--connect-timeout", "2", "--progress", "none"])
        .env_remove("MTASTS_SCAN_DB")
        .env_remove("MTASTS_DNS_SERVER");
    cmd
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("scan.db").display())
}

/// A scratch directory holding the domain list `lines` and a SQLite database:
/// (the directory, which must outlive the test's use of it; the list's path; the database URL).
fn workdir(lines: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lines).unwrap();
    let db = sqlite_url(dir.path());
    (dir, list, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_jsonl_summary_and_garbage_input() {
    let scenarios =
        [Scenario::Good, Scenario::PolicyModeTesting, Scenario::NoMtaSts, Scenario::TxtInvalidId];
    let mut b = World::builder();
    for s in scenarios {
        b = b.scenario(s);
    }
    let world = b.build().await;
    let long = format!("{}.test", "x".repeat(70));
    let (_dir, list, db) = workdir(&format!(
        "# a list with garbage\n\ngood.test\nGOOD.test.\npolicy-mode-testing.test\nno-mta-sts.test\n\
         txt-invalid-id.test\n192.0.2.7\nnot a domain\n{long}\n"
    ));
    let out = scan_cmd(&world, &db)
        .args(["--format", "csv", "--fetch-timeout=2"])
        .arg(&list)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("domain,category,grade,"));
    let rows: HashMap<String, Vec<String>> = lines
        .map(|l| {
            let f = mtasts_scan::input::csv_fields(l);
            (f[0].clone(), f)
        })
        .collect();
    assert_eq!(rows.len(), 7, "4 domains (duplicate dropped) + 3 invalid lines: {csv}");
    assert_eq!(rows["good.test"][1], "enforce");
    assert_eq!(rows["good.test"][2], "A");
    assert_eq!(rows["policy-mode-testing.test"][1], "testing");
    assert_eq!(rows["no-mta-sts.test"][1], "no-mta-sts");
    assert_eq!(rows["no-mta-sts.test"][2], "F");
    assert_eq!(rows["txt-invalid-id.test"][1], "invalid-policy");
    assert!(rows["txt-invalid-id.test"][12].contains("sts-txt-invalid"));
    assert_eq!(rows["192.0.2.7"][1], "invalid-name");
    assert_eq!(rows["not a domain"][1], "invalid-name");
    // Issue 10 defect 4: invalid lines are counted apart, not as scanned domains.
    assert!(stderr.contains("Scanned 4 domains"), "{stderr}");
    assert!(stderr.contains("Not domain names, not counted: 3 input lines"), "{stderr}");
    assert!(stderr.contains("25.0%"), "percentages of the 4 domains: {stderr}");
    assert!(stderr.contains("enforce"), "{stderr}");

    // The same run exported again as JSON lines from the store matches the check schema.
    let out =
        scan_cmd(&world, &db).args(["--format", "jsonl", "--resume", "1"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "a finished run has nothing left to do");
    let store = ScanStore::open(&db).await.unwrap();
    let row = store.result(mtasts_store::RunId(1), "good.test").await.unwrap().unwrap();
    let report: serde_json::Value = serde_json::from_str(&row.report_json).unwrap();
    assert_eq!(report["domain"], "good.test");
    assert!(report["elapsed_ms"].is_u64());
    assert!(store.run_info(mtasts_store::RunId(1)).await.unwrap().finished_at.is_some());
}

/// A world of `n` domains whose policy hosts trickle their answer, so each check takes about
/// the fetch timeout: slow enough to kill a scan in the middle.
async fn slow_world(prefix: &str, n: usize) -> (World, Vec<String>) {
    let mut b = World::builder();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}{i:03}.test");
        let mut spec = DomainSpec::good(&name);
        spec.set_behaviour(HttpBehaviour::Slow {
            content_type: "text/plain".into(),
            body: b"version: STSv1\nmode: enforce\nmx: *.test\nmax_age: 86400\n".to_vec(),
            bytes_per_second: 1,
        });
        b = b.domain(spec);
        names.push(name);
    }
    (b.build().await, names)
}

async fn wait_for_results(store: &ScanStore, run: mtasts_store::RunId, at_least: u64) {
    for _ in 0..300 {
        if let Ok(p) = store.progress(run).await
            && p.done >= at_least
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_finishes_without_redoing() {
    let (world, names) = slow_world("resume", 16).await;
    let (_dir, list, db) = workdir(&names.join("\n"));
    let mut first = scan_cmd(&world, &db)
        .args([
            "--fetch-timeout=1",
            "--concurrency",
            "2",
            "--batch",
            "2",
            "--no-smtp",
            "--lease",
            "2",
        ])
        .arg(&list)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = ScanStore::open(&db).await.unwrap();
    let run = mtasts_store::RunId(1);
    wait_for_results(&store, run, 3).await;
    // kill -9: no chance to clean up.
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let before = store.progress(run).await.unwrap();
    assert!(before.done < names.len() as u64, "killed mid-scan: {before:?}");

    // The killed worker held claims under the default 60 s lease; it ran on this host and is
    // gone, so resume takes them back at once instead of waiting.
    let resumed = std::time::Instant::now();
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=1", "--concurrency", "8", "--no-smtp", "--resume"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(resumed.elapsed() < Duration::from_secs(30), "resume waited {:?}", resumed.elapsed());
    let redone = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    let after = store.progress(run).await.unwrap();
    assert_eq!(after.done, names.len() as u64, "{after:?}");
    assert_eq!(after.results, names.len() as u64);
    assert_eq!(redone, names.len() as u64 - before.done, "finished domains were not checked again");
    assert!(store.run_info(run).await.unwrap().finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_workers_one_killed_every_domain_exactly_once() {
    let Some(admin) = mtasts_testkit::require::postgres_url() else { return };
    let admin_store = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL refused: {e}"));
    let schema = format!("mtasts_scan_it_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&admin_store)
    .await
    .unwrap();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let db = format!("{admin}{sep}options[search_path]={schema}");

    let (world, names) = slow_world("pg", 20).await;
    // The list file only; this test's database is the PostgreSQL schema above.
    let (_dir, list, _sqlite) = workdir(&names.join("\n"));
    let common =
        ["--fetch-timeout=1", "--concurrency", "2", "--batch", "2", "--no-smtp", "--lease", "2"];
    // Worker A loads the list and starts working; worker B joins the same run.
    let mut a = scan_cmd(&world, &db)
        .args(common)
        .args(["--worker", "A", "--format", "jsonl"])
        .arg(&list)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = ScanStore::open(&db).await.unwrap();
    let run = mtasts_store::RunId(store.runs().await.unwrap().first().map_or(1, |r| r.id.0));
    wait_for_results(&store, run, 1).await;
    let b = scan_cmd(&world, &db)
        .args(common)
        .args(["--worker", "B", "--format", "jsonl", "--resume", &run.0.to_string()])
        .output();
    let b = tokio::spawn(b);
    wait_for_results(&store, run, 4).await;
    // Kill A while it holds claims; B must take them over when their lease expires.
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(b.status.code(), Some(0), "{}", String::from_utf8_lossy(&b.stderr));

    let p = store.progress(run).await.unwrap();
    assert_eq!((p.done, p.results, p.pending, p.claimed), (20, 20, 0, 0), "{p:?}");
    let mut seen = std::collections::HashSet::new();
    let rows = store.results(run);
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = futures::StreamExt::next(&mut rows).await {
        let row = row.unwrap();
        assert!(seen.insert(row.domain.clone()), "{} has two results", row.domain);
        // The policy hosts trickle past the fetch timeout: TXT present, no policy.
        assert_eq!(row.category, Category::TxtWithoutPolicy, "{}", row.domain);
    }
    assert_eq!(seen.len(), 20);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin_store)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_between_runs() {
    // Run 1 sees a domain without MTA-STS; run 2 the same name with an enforce policy.
    let (_dir, list, db) = workdir("moving.test\n");
    let before = World::builder()
        .domain(DomainSpec {
            mx: DomainSpec::good("moving.test").mx,
            ..DomainSpec::empty("moving.test")
        })
        .build()
        .await;
    let out = scan_cmd(&before, &db).args(["--format", "none"]).arg(&list).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    drop(before);
    let after = World::builder().domain(DomainSpec::good("moving.test")).build().await;
    let out = scan_cmd(&after, &db).args(["--format", "none"]).arg(&list).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "diff", "1", "2", "--db", &db])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // In words, not enum names (issue 10).
    assert!(text.contains("moving.test") && text.contains("adopted MTA-STS"), "{text}");
    assert!(!text.contains("Adopted"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "same options");
    // A third run with --no-smtp: comparing it warns that the options differ.
    let out = scan_cmd(&after, &db).args(["--format", "none", "--no-smtp"]).arg(&list).output();
    assert_eq!(out.await.unwrap().status.code(), Some(0));
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "diff", "2", "3", "--db", &db])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different options (no_smtp: false in run 2, true in run 3)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_become_findings_and_the_scan_finishes() {
    // A DNS server that never answers, an MX that never speaks, an HTTPS host trickling one
    // byte a second, one sending gigabytes: each is that domain's result, and the scan ends.
    let cases = [
        (Scenario::DnsTimeout, "sts-txt-dns-error"),
        (Scenario::MxSilent, "mx-timeout"),
        (Scenario::HttpsSlow, "policy-https-timeout"),
        (Scenario::HttpsTooLarge, "policy-too-large"),
    ];
    let mut b = World::builder();
    for (s, _) in cases {
        b = b.scenario(s);
    }
    let world = b.build().await;
    let names: Vec<String> = cases.iter().map(|(s, _)| s.domain()).collect();
    let (_dir, list, db) = workdir(&names.join("\n"));
    let started = std::time::Instant::now();
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=2", "--format", "csv"])
        .arg(&list)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let csv = String::from_utf8_lossy(&out.stdout);
    for (scenario, code) in cases {
        let line = csv
            .lines()
            .find(|l| l.starts_with(&scenario.domain()))
            .unwrap_or_else(|| panic!("{csv}"));
        assert!(line.contains(code), "{}: expected {code} in {line}", scenario.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_domain_deadline_is_a_finding() {
    let world = World::builder().scenario(Scenario::HttpsHang).build().await;
    let (_dir, list, db) = workdir("https-hang.test\n");
    let started = std::time::Instant::now();
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=30", "--deadline", "1", "--format", "csv"])
        .arg(&list)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.contains("https-hang.test,could-not-check,-,") && csv.contains("domain-deadline"),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mx_host_is_probed_once_per_scan() {
    let mut b = World::builder();
    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("shared{i:02}.test");
        let mut spec = DomainSpec::good(&name);
        spec.mx = vec![mtasts_testkit::MxSpec::good(10, "mx.bigmail.test")];
        spec =
            spec.with_policy(mtasts_testkit::policy_text("enforce", 604_800, &["mx.bigmail.test"]));
        b = b.domain(spec);
        names.push(name);
    }
    let world = b.build().await;
    let (_dir, list, db) = workdir(&names.join("\n"));
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=2", "--format", "csv"])
        .arg(&list)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().filter(|l| l.contains(",enforce,A,")).count(), 12, "{csv}");
    let sessions = world.smtp("mx.bigmail.test").unwrap().sessions();
    assert_eq!(sessions.len(), 1, "one SMTP session for 12 domains sharing the MX: {sessions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rate_cap_is_respected() {
    let mut b = World::builder();
    let mut names = Vec::new();
    for i in 0..4 {
        let name = format!("rate{i}.test");
        b = b.domain(DomainSpec::good(&name));
        names.push(name);
    }
    let world = b.build().await;
    let (_dir, list, db) = workdir(&names.join("\n"));
    let rate = 20.0;
    let started = std::time::Instant::now();
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=2", "--format", "none", "--dns-rate", "20", "--concurrency", "4"])
        .arg(&list)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let elapsed = started.elapsed().as_secs_f64();
    let queries = world.dns().queries().len() as f64;
    assert!(queries >= 16.0, "{queries} queries");
    // The scan cannot have asked faster than the cap (first query free).
    assert!(
        elapsed >= (queries - 1.0) / rate * 0.9,
        "{queries} queries in {elapsed:.2} s at {rate}/s"
    );
}

/// Issue 10, defects 1, 2 and 11: a list that cannot be used fails before a run exists, and
/// reading commands never create a database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_input_creates_no_run_and_reading_creates_no_database() {
    let w = World::builder().scenario(Scenario::Good).build().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "rank,host\n1,good.test\n").unwrap();
    let db = sqlite_url(dir.path());
    // Defect 1: a --column the header lacks: named, exit 2, at once, no run.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        scan_cmd(&w, &db).arg(&csv).args(["--column", "domain"]).output(),
    )
    .await
    .expect("the scan must not hang")
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"domain\"") && err.contains("rank,host"), "{err}");
    // Defect 2: a list that does not exist.
    let out = scan_cmd(&w, &db).arg(dir.path().join("nonexist.txt")).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexist.txt"), "{out:?}");
    // Neither left a run behind (or a database: nothing was created at all).
    assert!(!dir.path().join("scan.db").exists(), "a failed start created the database");
    // Defect 11: `scan runs` on a mistyped path says so and creates nothing.
    let typo = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "runs", "--db", &typo])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"), "{out:?}");
    assert!(!dir.path().join("typo.db").exists(), "scan runs created a database");
    // The right column works, and then `scan runs` lists exactly that one run.
    let out = scan_cmd(&w, &db).arg(&csv).args(["--column", "host", "--no-smtp"]).output().await;
    assert_eq!(out.unwrap().status.code(), Some(0));
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "runs", "--db", &db])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the one run: {listed}");
    assert!(lines[0].contains("started") && lines[0].contains("input"), "{listed}");
    // Readable UTC times, not Unix seconds.
    assert!(lines[1].contains(" UTC") && lines[1].contains("1/1"), "{listed}");
    assert!(lines[1].trim_end().ends_with("list.csv"), "{listed}");
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "runs", "--db", &db, "--format", "json"])
        .output()
        .await
        .unwrap();
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["run"], 1);
    assert_eq!((run["done"].as_u64(), run["queued"].as_u64()), (Some(1), Some(1)));
    assert!(run["started_at"].as_str().unwrap().ends_with('Z'), "{run}");
    assert_eq!(run["options"]["column"], "host");
}

/// Issue 10 defect 8: Ctrl-C (SIGINT) stops the scan saying how to resume; the resume then
/// finishes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_says_how_to_resume() {
    let (world, names) = slow_world("sigint", 8).await;
    let (_dir, list, db) = workdir(&names.join("\n"));
    let first = scan_cmd(&world, &db)
        .args(["--fetch-timeout=1", "--concurrency", "2", "--batch", "2", "--no-smtp"])
        .arg(&list)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let store = ScanStore::open(&db).await.unwrap();
    wait_for_results(&store, mtasts_store::RunId(1), 2).await;
    let pid = first.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().await.unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), first.wait_with_output())
        .await
        .expect("the scan stops on SIGINT")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("mtasts scan --resume 1 --db {db}")), "{err}");
    let out = scan_cmd(&world, &db)
        .args(["--fetch-timeout=1", "--concurrency", "8", "--no-smtp", "--resume", "1"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.progress(mtasts_store::RunId(1)).await.unwrap().done, names.len() as u64);
}

/// Issue 10 defect 11: an unopenable database is said once, in words: no driver framing
/// ("error returned from database: (code: 14)"), the missing directory named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unopenable_database_is_said_once_in_words() {
    let w = World::builder().scenario(Scenario::Good).build().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "good.test\n").unwrap();
    let missing = dir.path().join("no-such-dir");
    let db = format!("sqlite://{}", missing.join("scan.db").display());
    let out = scan_cmd(&w, &db).arg(&list).arg("--no-smtp").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("the directory {} does not exist", missing.display())), "{err}");
    assert_eq!(err.matches("scan.db").count(), 1, "the database named once: {err}");
    let not_db = dir.path().join("list.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["scan", "runs", "--db", &format!("sqlite://{}", not_db.display())])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file is not a database") && !err.contains("(code:"), "{err}");
}

/// Issue 10 defect 3: a valid policy that no TXT record announces is `policy-without-txt`
/// (grade D), and its CSV row agrees (`policy_valid` true).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_without_txt_record_has_its_own_category() {
    let spec = DomainSpec { sts_txt: vec![], ..DomainSpec::good("notxt.test") };
    let w = World::builder().domain(spec).build().await;
    let (_dir, list, db) = workdir("notxt.test\n");
    let out = scan_cmd(&w, &db).args(["--format", "csv", "--no-smtp"]).arg(&list).output();
    let out = out.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    let header = mtasts_scan::input::csv_fields(lines.next().unwrap());
    let row = mtasts_scan::input::csv_fields(lines.next().unwrap());
    let col = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(col("category"), "policy-without-txt", "{csv}");
    assert_eq!(col("grade"), "D", "{csv}");
    assert_eq!(col("policy_valid"), "true", "{csv}");
}

/// Issue 10, defect 10: the JSON lines keep the input as the user wrote it (`input`), beside
/// the A-label checked (`domain`), as `check` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_keep_what_the_user_wrote() {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let (_dir, list, db) = workdir("Good.TEST.\nbücher.test\n");
    let out = scan_cmd(&world, &db).args(["--format", "jsonl"]).arg(&list).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_domain =
        |d: &str| rows.iter().find(|r| r["domain"] == d).unwrap_or_else(|| panic!("{d}: {rows:?}"));
    assert_eq!(by_domain("good.test")["input"], "Good.TEST.");
    assert_eq!(by_domain("xn--bcher-kva.test")["input"], "bücher.test");
}
