//! Our collector against the one it replaces, sys4's tlsrpt-collectd (the Python
//! tlsrpt-reporter 0.6): the same libtlsrpt datagrams, fed to both, give the same report
//! content. Compared per recipient domain and TLSRPT record text (one report each, in both):
//! the policies (type, strings, policy domain, MX patterns), each policy's successful and
//! failed sessions, and each failure detail's failed sessions. Report ids, dates and JSON key
//! order are each program's own and not compared.
//!
//! tlsrpt-collectd runs in the foreground on a socket in a temporary directory; once its
//! SQLite has every session, SIGUSR2 (its development day roll-over) moves the day to its
//! `.yesterday` database, SIGTERM stops it, and `tlsrpt-fetcher` — the protocol its own
//! tlsrpt-reportd reads results by — gives the domain list and each domain's sums.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mtasts_proto::datagram::result_type_of;
use mtasts_reporter::compose::{self, Identity};
use mtasts_reporter::{Collector, CollectorConfig};
use mtasts_store::outbound::OutboundStore;
use mtasts_store::testing::TestDb;
use mtasts_store::{Database, DatabaseUrl};
use serde_json::Value;
use time::{Date, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// The datagrams.

/// A policy as the MTA hands it to libtlsrpt.
struct PolicySpec {
    /// libtlsrpt's `policy-type`: 1 tlsa, 2 sts, 9 no-policy-found.
    kind: u8,
    domain: Option<&'static str>,
    strings: &'static [&'static str],
    mx: &'static [&'static str],
}

const STS_EXAMPLE: PolicySpec = PolicySpec {
    kind: 2,
    domain: Some("example.com"),
    strings: &[
        "version: STSv1",
        "mode: enforce",
        "mx: mx1.example.com",
        "mx: *.backup.example.com",
        "max_age: 604800",
    ],
    mx: &["mx1.example.com", "*.backup.example.com"],
};
const STS_B: PolicySpec = PolicySpec {
    kind: 2,
    domain: Some("b.example"),
    strings: &["version: STSv1", "mode: testing", "mx: mail.b.example", "max_age: 86400"],
    mx: &["mail.b.example"],
};
const TLSA_C: PolicySpec = PolicySpec {
    kind: 1,
    domain: Some("c.example"),
    strings: &[
        "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
        "2 1 1 8D02536C887482BC34FF54E41D2BA659BF85B341A0A20AFADB5813DCFBCF286D",
    ],
    mx: &[],
};
const NONE_D: PolicySpec = PolicySpec { kind: 9, domain: None, strings: &[], mx: &[] };
const TLSA_E: PolicySpec = PolicySpec {
    kind: 1,
    domain: Some("e.example"),
    strings: &["3 1 1 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"],
    mx: &[],
};
const STS_E: PolicySpec = PolicySpec {
    kind: 2,
    domain: Some("e.example"),
    strings: &["version: STSv1", "mode: enforce", "mx: mx.e.example", "max_age: 86400"],
    mx: &["mx.e.example"],
};
const STS_F_ENFORCE: PolicySpec = PolicySpec {
    kind: 2,
    domain: Some("f.example"),
    strings: &["version: STSv1", "mode: enforce", "mx: *.f.example", "max_age: 1209600"],
    mx: &["*.f.example"],
};
const STS_F_TESTING: PolicySpec = PolicySpec {
    kind: 2,
    domain: Some("f.example"),
    strings: &["version: STSv1", "mode: testing", "mx: *.f.example", "max_age: 86400"],
    mx: &["*.f.example"],
};
const NONE_G: PolicySpec = PolicySpec { kind: 9, domain: Some("g.example"), strings: &[], mx: &[] };

/// A failure detail: libtlsrpt's code and its optional fields `s n h r a f`.
type Detail = (u16, [Option<&'static str>; 6]);

const DETAILS_STS: &[Detail] = &[
    (
        202,
        [
            Some("192.0.2.25"),
            Some("mx1.example.com"),
            Some("mx1.example.com"),
            Some("198.51.100.7"),
            Some("certificate names do not match"),
            Some("X509_V_ERR_HOSTNAME_MISMATCH"),
        ],
    ),
    (203, [Some("192.0.2.25"), Some("mail.b.example"), None, Some("198.51.100.20"), None, None]),
    (204, [None, Some("mx.e.example"), None, None, None, None]),
    (
        205,
        [
            Some("2001:db8::25"),
            Some("a.f.example"),
            Some("helo.f.example"),
            Some("2001:db8:1::7"),
            Some("handshake failure"),
            None,
        ],
    ),
    (201, [Some("192.0.2.26"), Some("mx1.example.com"), None, Some("198.51.100.8"), None, None]),
    (301, [None, None, None, None, Some("policy fetch: connection refused"), None]),
    (302, [None, None, None, None, None, Some("invalid policy syntax")]),
    (303, [Some("192.0.2.25"), Some("mta-sts.b.example"), None, None, None, None]),
];
const DETAILS_TLSA: &[Detail] = &[
    (304, [None, Some("mx.c.example"), None, None, Some("no TLSA record matches"), None]),
    (305, [None, None, None, None, Some("DNSSEC validation failed"), None]),
    (306, [Some("192.0.2.25"), Some("mx.c.example"), None, Some("203.0.113.5"), None, None]),
    (203, [None, Some("mx.c.example"), None, Some("203.0.113.5"), None, Some("self-signed")]),
];
const DETAILS_NONE: &[Detail] = &[(201, [None, Some("mx.d.example"), None, None, None, None])];

fn details_for(policy: &PolicySpec) -> &'static [Detail] {
    match policy.kind {
        1 => DETAILS_TLSA,
        2 => DETAILS_STS,
        _ => DETAILS_NONE,
    }
}

/// Where datagrams go: the `d` spellings (both collectors lower-case it and drop one trailing
/// dot), the record texts (each its own report) and the policy sets of one delivery.
struct Target {
    spellings: &'static [&'static str],
    records: &'static [&'static str],
    policy_sets: &'static [&'static [&'static PolicySpec]],
    weight: u64,
}

const TARGETS: &[Target] = &[
    Target {
        spellings: &["example.com", "Example.COM.", "EXAMPLE.com"],
        records: &["v=TLSRPTv1; rua=mailto:tlsrpt@example.com"],
        policy_sets: &[&[&STS_EXAMPLE]],
        weight: 6,
    },
    Target {
        // The record changed during the day: two reports.
        spellings: &["b.example"],
        records: &[
            "v=TLSRPTv1; rua=mailto:tls@b.example",
            "v=TLSRPTv1; rua=https://reports.b.example/v1,mailto:tls@b.example",
        ],
        policy_sets: &[&[&STS_B]],
        weight: 4,
    },
    Target {
        spellings: &["c.example", "C.Example."],
        records: &["v=TLSRPTv1;rua=mailto:dane@c.example"],
        policy_sets: &[&[&TLSA_C]],
        weight: 3,
    },
    Target {
        spellings: &["d.example"],
        records: &["v=TLSRPTv1; rua=mailto:r@d.example"],
        policy_sets: &[&[&NONE_D]],
        weight: 3,
    },
    Target {
        // DANE and MTA-STS both applied: one datagram, two policies (two sessions).
        spellings: &["e.example"],
        records: &["v=TLSRPTv1; rua=https://tlsrpt.e.example/report"],
        policy_sets: &[&[&TLSA_E, &STS_E], &[&STS_E]],
        weight: 3,
    },
    Target {
        // The policy changed during the day: two policies in one report.
        spellings: &["f.example", "F.EXAMPLE."],
        records: &["v=TLSRPTv1; rua=mailto:tlsrpt@f.example"],
        policy_sets: &[&[&STS_F_ENFORCE], &[&STS_F_TESTING]],
        weight: 3,
    },
    Target {
        spellings: &["g.example"],
        records: &["v=TLSRPTv1; rua=mailto:tlsrpt@g.example"],
        policy_sets: &[&[&NONE_G]],
        weight: 1,
    },
];

/// xorshift64*: the same datagrams on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn list(items: &[&str]) -> String {
    items.iter().map(|s| q(s)).collect::<Vec<_>>().join(",")
}

/// One policy's JSON exactly as libtlsrpt writes it: `": "` after string-valued keys, no space
/// after numbers and arrays, empty arrays left out, `t` and `f` last.
fn policy_json(p: &PolicySpec, details: &[&Detail], failed: bool) -> String {
    let mut o = format!("{{\"policy-type\":{}", p.kind);
    if let Some(d) = p.domain {
        write!(o, ",\"policy-domain\": {}", q(d)).unwrap();
    }
    if !p.strings.is_empty() {
        write!(o, ",\"policy-string\":[{}]", list(p.strings)).unwrap();
    }
    if !p.mx.is_empty() {
        write!(o, ",\"mx-host\":[{}]", list(p.mx)).unwrap();
    }
    if !details.is_empty() {
        let ds: Vec<String> = details
            .iter()
            .map(|(code, fields)| {
                let mut d = format!("{{\"c\":{code}");
                for (key, value) in ["s", "n", "h", "r", "a", "f"].iter().zip(fields) {
                    if let Some(v) = value {
                        write!(d, ",\"{key}\": {}", q(v)).unwrap();
                    }
                }
                d + "}"
            })
            .collect();
        write!(o, ",\"failure-details\":[{}]", ds.join(",")).unwrap();
    }
    write!(o, ",\"t\":{},\"f\":{}}}", details.len(), u8::from(failed)).unwrap();
    o
}

fn datagram_json(d: &str, pr: &str, policies: &[String]) -> String {
    format!(
        "{{\"dpv\": \"1\",\"d\": {},\"pr\": {},\"policies\":[{}]}}",
        q(d),
        q(pr),
        policies.join(",")
    )
}

/// About 300 datagrams (and the sessions they carry): several domains and records, about one
/// policy result in ten a failure with one or two details, plus a failure without details,
/// a success with one (libtlsrpt allows both; `f` alone decides) and one failure per detail.
fn datagrams() -> (Vec<String>, u64) {
    let mut rng = Rng(0x7153_2d52_5054_0001);
    let total_weight: u64 = TARGETS.iter().map(|t| t.weight).sum();
    let mut out = Vec::new();
    let mut sessions = 0;
    for _ in 0..300 {
        let mut w = rng.below(total_weight);
        let target = TARGETS
            .iter()
            .find(|t| {
                if w < t.weight {
                    true
                } else {
                    w -= t.weight;
                    false
                }
            })
            .unwrap();
        let d = rng.pick(target.spellings);
        let pr = rng.pick(target.records);
        let set = rng.pick(target.policy_sets);
        let policies: Vec<String> = set
            .iter()
            .map(|p| {
                let failed = rng.below(10) == 0;
                let mut details = Vec::new();
                if failed {
                    let pool = details_for(p);
                    details.push(rng.pick(pool));
                    if rng.below(4) == 0 {
                        let second = rng.pick(pool);
                        if !details.contains(&second) {
                            details.push(second);
                        }
                    }
                }
                policy_json(p, &details, failed)
            })
            .collect();
        sessions += policies.len() as u64;
        out.push(datagram_json(d, pr, &policies));
    }
    out.push(datagram_json(
        "example.com",
        TARGETS[0].records[0],
        &[policy_json(&STS_EXAMPLE, &[], true)],
    ));
    out.push(datagram_json(
        "b.example",
        TARGETS[1].records[0],
        &[policy_json(&STS_B, &[&DETAILS_STS[1]], false)],
    ));
    sessions += 2;
    // Every failure code at least once.
    for (target, policy) in [(&TARGETS[0], &STS_EXAMPLE), (&TARGETS[2], &TLSA_C)] {
        for detail in details_for(policy) {
            out.push(datagram_json(
                target.spellings[0],
                target.records[0],
                &[policy_json(policy, &[detail], true)],
            ));
            sessions += 1;
        }
    }
    (out, sessions)
}

/// Sends each datagram, blocking while the receiver's queue is full (as a test may; libtlsrpt
/// itself would drop).
fn send_all(socket: &Path, datagrams: &[String]) {
    let tx = UnixDatagram::unbound().unwrap();
    tx.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    for d in datagrams {
        tx.send_to(d.as_bytes(), socket)
            .unwrap_or_else(|e| panic!("sending to {}: {e}", socket.display()));
    }
}

// ---------------------------------------------------------------------------------------------
// What is compared.

/// A report's policy, normalised: the type by name (tlsrpt-collectd stores libtlsrpt's number,
/// we store the name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PolicyId {
    policy_type: String,
    strings: Vec<String>,
    domain: Option<String>,
    mx_hosts: Vec<String>,
}

/// A failure detail by its RFC 8460 field names (result-type included), without its count.
type DetailId = BTreeMap<String, String>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    successful: u64,
    failed: u64,
    details: BTreeMap<DetailId, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ReportContent {
    /// `policies[]` entries in the report (more than `policies.len()` would mean one policy
    /// split over several entries).
    entries: usize,
    policies: BTreeMap<PolicyId, Counts>,
}

/// Per (domain, record): the report.
type Content = BTreeMap<(String, String), ReportContent>;

fn sessions_of(content: &Content) -> u64 {
    content.values().flat_map(|r| r.policies.values()).map(|c| c.successful + c.failed).sum()
}

fn diff(ours: &Content, theirs: &Content) -> String {
    let mut out = String::new();
    for key in ours.keys().chain(theirs.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (d, r) = key;
        match (ours.get(key), theirs.get(key)) {
            (Some(o), None) => {
                writeln!(out, "report for {d} / {r:?} only in ours: {o:#?}").unwrap()
            }
            (None, Some(t)) => {
                writeln!(out, "report for {d} / {r:?} only in tlsrpt-collectd's: {t:#?}").unwrap()
            }
            (Some(o), Some(t)) if o != t => {
                writeln!(out, "report for {d} / {r:?} differs:").unwrap();
                if o.entries != t.entries {
                    writeln!(out, "  policy entries: ours {}, theirs {}", o.entries, t.entries)
                        .unwrap();
                }
                let ps = o.policies.keys().chain(t.policies.keys());
                for p in ps.collect::<std::collections::BTreeSet<_>>() {
                    match (o.policies.get(p), t.policies.get(p)) {
                        (Some(a), Some(b)) if a == b => {}
                        (a, b) => {
                            writeln!(out, "  policy {p:?}:\n    ours   {a:?}\n    theirs {b:?}")
                                .unwrap()
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn detail_field(key: &str) -> String {
    match key {
        "s" => "sending-mta-ip",
        "n" => "receiving-mx-hostname",
        "h" => "receiving-mx-helo",
        "r" => "receiving-ip",
        "a" => "additional-information",
        "f" => "failure-reason-code",
        other => return format!("unknown key {other}"),
    }
    .to_owned()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("<not a string>").to_owned()).collect())
        .unwrap_or_default()
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// One domain's `tlsrpt-fetcher DAY DOMAIN` output into `content`.
fn add_fetched(content: &mut Content, domain: &str, fetched: &Value) {
    assert_eq!(fetched["d"].as_str(), Some(domain), "fetcher output: {fetched:#}");
    let records = fetched["policies"].as_object().unwrap();
    for (record, policies) in records {
        let report = content.entry((domain.to_owned(), record.clone())).or_default();
        for (policy_json, c) in policies.as_object().unwrap() {
            let p: Value = serde_json::from_str(policy_json).unwrap();
            let id = PolicyId {
                policy_type: match p["policy-type"].as_u64() {
                    Some(1) => "tlsa".into(),
                    Some(2) => "sts".into(),
                    Some(9) => "no-policy-found".into(),
                    other => format!("unknown policy-type {other:?}"),
                },
                strings: strings(&p, "policy-string"),
                domain: p.get("policy-domain").and_then(Value::as_str).map(str::to_owned),
                mx_hosts: strings(&p, "mx-host"),
            };
            report.entries += 1;
            let counts = report.policies.entry(id).or_default();
            let (total, failed) = (count(&c["cntrtotal"]), count(&c["cntrfailure"]));
            counts.successful += total - failed;
            counts.failed += failed;
            for (reason, n) in c["failures"].as_object().unwrap() {
                let r: Value = serde_json::from_str(reason).unwrap();
                let mut detail = DetailId::new();
                for (k, v) in r.as_object().unwrap() {
                    if k == "c" {
                        let name = v
                            .as_u64()
                            .and_then(result_type_of)
                            .map_or_else(|| format!("unknown code {v}"), |t| t.as_str().to_owned());
                        detail.insert("result-type".into(), name);
                    } else {
                        detail.insert(detail_field(k), v.as_str().unwrap_or_default().to_owned());
                    }
                }
                *counts.details.entry(detail).or_default() += count(n);
            }
        }
    }
}

fn add_ours(content: &mut Content, r: &compose::DayReport) {
    let report = content.entry((r.domain.clone(), r.record.clone())).or_default();
    for p in &r.report.policies {
        let id = PolicyId {
            policy_type: p.policy.policy_type.as_str().to_owned(),
            strings: p.policy.policy_string.clone(),
            domain: p.policy.policy_domain.as_ref().map(|d| d.as_str().to_owned()),
            mx_hosts: p.policy.mx_host.clone(),
        };
        report.entries += 1;
        let counts = report.policies.entry(id).or_default();
        counts.successful += p.summary.total_successful_session_count;
        counts.failed += p.summary.total_failure_session_count;
        for f in &p.failure_details {
            let mut detail = DetailId::new();
            detail.insert("result-type".into(), f.result_type.as_str().to_owned());
            let fields = [
                ("sending-mta-ip", f.sending_mta_ip.map(|i| i.to_string())),
                ("receiving-mx-hostname", f.receiving_mx_hostname.clone()),
                ("receiving-mx-helo", f.receiving_mx_helo.clone()),
                ("receiving-ip", f.receiving_ip.map(|i| i.to_string())),
                ("additional-information", f.additional_information.clone()),
                ("failure-reason-code", f.failure_reason_code.clone()),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    detail.insert(k.into(), v);
                }
            }
            *counts.details.entry(detail).or_default() += f.failed_session_count;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tlsrpt-collectd.

/// The running tlsrpt-collectd, killed when dropped (a failed assertion included).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status();
    assert!(ok.is_ok_and(|s| s.success()), "kill -{name} {} failed", child.id());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A program of the bin directory, its environment limited to `PATH` (no `TLSRPT_*`
/// settings of the caller's).
fn program(bin: &Path, name: &str) -> Command {
    let mut c = Command::new(bin.join(name));
    c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

fn fetcher(bin: &Path, config: &Path, args: &[&str]) -> String {
    let out = program(bin, "tlsrpt-fetcher")
        .arg("--config_file")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tlsrpt-fetcher {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sessions committed to tlsrpt-collectd's database (`None` until it has its tables).
fn committed_sessions(python: &Path, db: &Path) -> Option<u64> {
    const Q: &str = "import sqlite3, sys\n\
        c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True, timeout=5)\n\
        print(c.execute('SELECT COALESCE(SUM(cntrtotal), 0) FROM finalresults').fetchone()[0])";
    let out = Command::new(python).arg("-c").arg(Q).arg(db).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|_| out.status.success())
}

fn wait_for(what: &str, timeout: Duration, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "tlsrpt-collectd: timed out waiting for {what}; its log:\n{}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs tlsrpt-collectd on `datagrams` and reads its day back through tlsrpt-fetcher.
fn peer_content(bin: &Path, datagrams: &[String], sessions: u64) -> Content {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (db, socket, log, invalid) =
        (at("collectd.sqlite"), at("collectd.sock"), at("collectd.log"), at("invalid.dat"));
    let config = at("tlsrpt.cfg");
    // A configuration file of our own: the default /etc/tlsrpt/*.cfg, if any, is not read.
    std::fs::write(
        &config,
        format!(
            "[tlsrpt_collectd]\nstorage = sqlite://{db}\nsocketname = {socket}\n\
             dump_path_for_invalid_datagram = {invalid}\nlogfilename = {log}\nlog_level = info\n\
             sockettimeout = 1\n\n[tlsrpt_fetcher]\nstorage = sqlite://{db}\n",
            db = db.display(),
            socket = socket.display(),
            invalid = invalid.display(),
            log = log.display(),
        ),
    )
    .unwrap();
    let file = |name: &str| std::fs::File::create(at(name)).unwrap();
    // stdout gets an SQL trace after SIGUSR2: a file, never a pipe nobody reads.
    let mut peer = Peer(
        program(bin, "tlsrpt-collectd")
            .arg("--config_file")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(file("collectd.stdout"))
            .stderr(file("collectd.stderr"))
            .spawn()
            .unwrap(),
    );
    wait_for("its socket", Duration::from_secs(30), &log, || {
        if let Some(status) = peer.0.try_wait().unwrap() {
            panic!("tlsrpt-collectd exited ({status}): {}", read(&at("collectd.stderr")));
        }
        socket.exists()
    });
    send_all(&socket, datagrams);
    let python = [bin.join("python3"), bin.join("python")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"));
    // It commits within `sockettimeout` of the last datagram; SIGTERM would not read what is
    // still queued.
    wait_for("all sessions committed", Duration::from_secs(60), &log, || {
        committed_sessions(&python, &db) == Some(sessions)
    });
    // The fetcher reads the completed day only: roll over (today's rows become yesterday's),
    // then stop (signals are handled in order).
    signal(&peer.0, "USR2");
    signal(&peer.0, "TERM");
    wait_for("its exit", Duration::from_secs(30), &log, || peer.0.try_wait().unwrap().is_some());
    let status = peer.0.wait().unwrap();
    let log_text = read(&log);
    let errors: Vec<&str> = log_text.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        status.success() && errors.is_empty(),
        "tlsrpt-collectd: {status}, errors: {errors:#?}"
    );
    assert!(!invalid.exists(), "tlsrpt-collectd refused a datagram: {}", read(&invalid));

    let yesterday = OffsetDateTime::now_utc().date().previous_day().unwrap();
    let mut day = mtasts_reporter::aggregate::day_text(yesterday);
    let mut list = fetcher(bin, &config, &[&day]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.first(), Some(&"TLSRPT FETCHER v1devel-c domain list"), "{list}");
    if lines.get(2).is_some_and(|d| *d != day) {
        day = lines[2].to_owned();
        list = fetcher(bin, &config, &[&day]);
    }
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.last(), Some(&"."), "{list}");
    let mut content = Content::new();
    for domain in &lines[3..lines.len() - 1] {
        let json: Value = serde_json::from_str(&fetcher(bin, &config, &[&day, domain])).unwrap();
        add_fetched(&mut content, domain, &json);
    }
    content
}

// ---------------------------------------------------------------------------------------------
// Ours.

async fn our_content(datagrams: Vec<String>) -> Content {
    let db = TestDb::sqlite();
    let database = Database::open(&DatabaseUrl::parse(&db.url).unwrap()).await.unwrap();
    let store = OutboundStore::with_database(database).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("collector.sock");
    // One day, whatever the clock does meanwhile.
    let now = OffsetDateTime::now_utc();
    let day: Date = now.date();
    let collector =
        Collector::bind(CollectorConfig::new(&socket)).unwrap().with_clock(Arc::new(move || now));
    let counters = collector.counters();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(collector.run(store.clone(), async move {
        let _ = stopped.await;
    }));
    let n = datagrams.len() as u64;
    let to = socket.clone();
    tokio::task::spawn_blocking(move || send_all(&to, &datagrams)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.received.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "our collector received {counters:?} of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    let stats = run.await.unwrap();
    assert_eq!(
        (stats.received, stats.malformed, stats.stored, stats.dropped),
        (n, 0, n, 0),
        "{stats:?}"
    );

    let day_text = mtasts_reporter::aggregate::day_text(day);
    let sessions = store.day_sessions(&day_text).await.unwrap();
    let failures = store.day_failures(&day_text).await.unwrap();
    let identity = Identity {
        organization: "Test Sender".into(),
        contact: "tlsrpt@sender.example".into(),
        submitter: "sender.example".into(),
    };
    let mut content = Content::new();
    for r in compose::day_reports(day, &sessions, &failures, &identity) {
        add_ours(&mut content, &r);
    }
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_datagrams_same_reports_as_tlsrpt_collectd() {
    let Some(bin) = mtasts_testkit::require::tlsrpt_reporter() else { return };
    let (datagrams, sessions) = datagrams();

    // Theirs, again if the UTC day changed meanwhile (it would split the sessions over two
    // days).
    let theirs = {
        let datagrams = datagrams.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                let started = OffsetDateTime::now_utc().date();
                let content = peer_content(&bin, &datagrams, sessions);
                if OffsetDateTime::now_utc().date() == started {
                    break content;
                }
            }
        })
        .await
        .unwrap()
    };
    let ours = our_content(datagrams).await;

    assert_eq!(sessions_of(&theirs), sessions, "tlsrpt-collectd's sessions: {theirs:#?}");
    // Both collectors lower-case `d` and drop its trailing dot, so the spellings of one domain
    // merge in both: the domains are compared as they are.
    let differences = diff(&ours, &theirs);
    assert!(differences.is_empty(), "our reports differ from tlsrpt-collectd's:\n{differences}");
    assert_eq!(sessions_of(&ours), sessions);
    // The datagrams exercised what they were meant to: several reports, a two-record domain,
    // a two-policy report, failure details.
    assert!(ours.len() >= 8, "{} reports", ours.len());
    assert!(ours.keys().filter(|(d, _)| d == "b.example").count() == 2);
    assert!(ours.values().any(|r| r.policies.len() == 2));
    let result_types: std::collections::BTreeSet<&String> = ours
        .values()
        .flat_map(|r| r.policies.values())
        .flat_map(|c| c.details.keys())
        .filter_map(|d| d.get("result-type"))
        .collect();
    assert_eq!(result_types.len(), 11, "{result_types:?}");
}
