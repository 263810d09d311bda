//! The downgrade attack, end to end: a real Postfix (Debian's, started as a private instance)
//! delivers mail to the test world's MX hosts with the resolver as its `smtp_tls_policy_maps`.
//! For an `enforce` domain mail goes only over verified TLS to a host the policy names, or
//! waits in the queue; it is never sent in plain text.
//!
//! The instance: its own configuration, queue and data directories in a temporary directory,
//! no `smtp inet` listener, no chroot, its log in a file (`maillog_file`). Postfix's SMTP
//! client finds MX hosts with libc's resolver, which asks port 53 of the server in
//! `/etc/resolv.conf`: Postfix runs in a mount namespace of its own (`unshare -m`) where a
//! `resolv.conf` naming the world's DNS server is bind-mounted over `/etc/resolv.conf`, and
//! the world serves on the standard ports ([`mtasts_testkit::WorldBuilder::standard_ports`]:
//! DNS on `127.A.B.253:53`, SMTP on port 25). The namespace lives as long as Postfix's
//! processes; mail is submitted with `sendmail -C`, which needs no DNS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtasts_resolver::Zones;
use mtasts_testkit::{Scenario, SmtpSession, World};

use crate::support::{resolver_for, serve_on_loopback};

/// How long a case may take to reach its outcome (DNS, policy fetch, delivery, a retry).
const OUTCOME_DEADLINE: Duration = Duration::from_secs(60);
/// How often the log is read while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long Postfix may take to stop before its master is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Deferred attempts to see before a deferral counts as final: the retry was refused too.
const DEFERRED_ATTEMPTS: usize = 2;

/// The services the instance runs (`master.cf`): no `smtp inet` listener (nothing receives
/// mail), chroot off (column 5) so the daemons see the temporary directory, and `postlog`,
/// which writes `maillog_file`.
const MASTER_CF: &str = "\
pickup     unix       n - n 60    1 pickup
cleanup    unix       n - n -     0 cleanup
qmgr       unix       n - n 300   1 qmgr
tlsmgr     unix       - - n 1000? 1 tlsmgr
rewrite    unix       - - n -     - trivial-rewrite
bounce     unix       - - n -     0 bounce
defer      unix       - - n -     0 bounce
trace      unix       - - n -     0 bounce
verify     unix       - - n -     1 verify
flush      unix       n - n 1000? 0 flush
proxymap   unix       - - n -     - proxymap
smtp       unix       - - n -     - smtp
showq      unix       n - n -     - showq
error      unix       - - n -     - error
retry      unix       - - n -     - error
discard    unix       - - n -     - discard
anvil      unix       - - n -     1 anvil
scache     unix       - - n -     1 scache
postlog    unix-dgram n - n -     1 postlogd
";

/// The programs of Debian's `postfix` package the test runs.
struct Programs {
    postfix: PathBuf,
    sendmail: PathBuf,
    postqueue: PathBuf,
    unshare: PathBuf,
}

impl Programs {
    /// The programs, and the privilege to make a mount namespace and bind the standard ports;
    /// `None` (after saying what is missing) when the test cannot run here.
    fn required() -> Option<Self> {
        use mtasts_testkit::require::{missing, program};
        let programs = Self {
            postfix: program("postfix", "postfix")?,
            sendmail: program("sendmail", "postfix")?,
            postqueue: program("postqueue", "postfix")?,
            unshare: program("unshare", "util-linux")?,
        };
        let status = Command::new(&programs.unshare)
            .args(["-m", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !status {
            return missing(
                "a mount namespace",
                "`unshare -m true` failed; run as root (Postfix and the world's ports 25/53 need it)",
            );
        }
        Some(programs)
    }
}

/// A private Postfix instance, stopped when dropped (so that none outlives a failed test).
struct Postfix {
    programs: Programs,
    conf: PathBuf,
    maillog: PathBuf,
    master_pid: Option<u32>,
    // Last: removed after Postfix stopped.
    _dir: tempfile::TempDir,
}

impl Postfix {
    /// Configures and starts an instance sending through the world's DNS, trusting only the
    /// world's CA, and asking the socketmap server at `policy_server` for TLS policies.
    fn start(programs: Programs, world: &World, policy_server: std::net::SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Postfix's daemons run as `postfix` and must reach the queue below it.
        set_mode(dir.path(), 0o755);
        let base = dir.path().to_path_buf();
        let base = base.as_path();
        let conf = base.join("conf");
        std::fs::create_dir(&conf).unwrap();
        std::fs::create_dir(base.join("queue")).unwrap();
        let maillog = base.join("maillog");
        // The world's directory is root's alone; the smtp client reads the CA as `postfix`.
        let ca = base.join("world-ca.pem");
        std::fs::copy(world.ca_pem_path(), &ca).unwrap();
        set_mode(&ca, 0o644);
        let resolv = base.join("resolv.conf");
        let dns = world.dns_addr();
        assert_eq!(dns.port(), 53, "libc's resolver asks port 53 only");
        std::fs::write(&resolv, format!("nameserver {}\noptions timeout:2 attempts:2\n", dns.ip()))
            .unwrap();
        set_mode(&resolv, 0o644);

        let main_cf = format!(
            "\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.mtasts.test
mydestination =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = {maillog}
maillog_file_prefixes = {base}
smtp_host_lookup = dns
smtp_dns_support_level = enabled
disable_dns_lookups = no
smtp_tls_security_level = may
smtp_tls_CAfile = {ca}
smtp_tls_loglevel = 1
smtp_tls_policy_maps = socketmap:inet:{policy_server}:postfix
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
smtp_helo_timeout = 5s
delay_warning_time = 0
",
            queue = base.join("queue").display(),
            data = base.join("data").display(),
            maillog = maillog.display(),
            base = base.display(),
            ca = ca.display(),
        );
        std::fs::write(conf.join("main.cf"), main_cf).unwrap();
        std::fs::write(conf.join("master.cf"), MASTER_CF).unwrap();

        let mut postfix = Self { programs, conf, maillog, master_pid: None, _dir: dir };
        let check = Command::new(&postfix.programs.postfix)
            .arg("-c")
            .arg(&postfix.conf)
            .arg("check")
            .output()
            .unwrap();
        assert!(check.status.success(), "postfix check: {}\n{}", stderr(&check), postfix.log());
        // `postfix start` returns once the master runs (`master -w`); the mount namespace
        // stays with the master and its children.
        let script = "mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" -c \"$3\" start";
        let start = Command::new(&postfix.programs.unshare)
            .args(["-m", "sh", "-c", script, "sh"])
            .arg(&resolv)
            .arg(&postfix.programs.postfix)
            .arg(&postfix.conf)
            .output()
            .unwrap();
        postfix.master_pid = std::fs::read_to_string(base.join("queue/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        assert!(
            start.status.success() && postfix.master_pid.is_some(),
            "postfix start: {}\n{}",
            stderr(&start),
            postfix.log()
        );
        postfix
    }

    /// Submits a message to `rcpt`.
    fn submit(&self, rcpt: &str) {
        use std::io::Write;
        let mut child = Command::new(&self.programs.sendmail)
            .arg("-C")
            .arg(&self.conf)
            .args(["-f", "sender@sender.mtasts.test", "--", rcpt])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        write!(
            stdin,
            "From: sender@sender.mtasts.test\nTo: {rcpt}\nSubject: MTA-STS test\n\nfor {rcpt}\n"
        )
        .unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sendmail {rcpt}: {}", stderr(&out));
    }

    /// The maillog so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// `postqueue -j`: one JSON object per queued message.
    fn queue(&self) -> String {
        let out = Command::new(&self.programs.postqueue)
            .arg("-c")
            .arg(&self.conf)
            .arg("-j")
            .output()
            .unwrap();
        assert!(out.status.success(), "postqueue -j: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the delivery attempts logged for `rcpt` satisfy `done`; returns them.
    async fn wait_for(
        &self,
        rcpt: &str,
        what: &str,
        done: impl Fn(&[Attempt]) -> bool,
    ) -> Vec<Attempt> {
        let start = Instant::now();
        loop {
            let attempts = attempts(&self.log(), rcpt);
            if done(&attempts) {
                return attempts;
            }
            assert!(
                start.elapsed() < OUTCOME_DEADLINE,
                "{rcpt}: {what} not within {OUTCOME_DEADLINE:?}; maillog:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn master_alive(&self) -> bool {
        self.master_pid.is_some_and(|pid| {
            // A zombie has exited; its parent (init) reaps it.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
        })
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(&self.programs.postfix)
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while self.master_alive() && start.elapsed() < STOP_DEADLINE {
            std::thread::sleep(POLL);
        }
        if let (true, Some(pid)) = (self.master_alive(), self.master_pid) {
            // The daemons exit on their own once the master is gone.
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// One delivery attempt in the maillog: its `status=` and the whole line.
#[derive(Debug, Clone)]
struct Attempt {
    status: String,
    line: String,
}

/// The delivery attempts logged for `rcpt` (`… to=<rcpt>, relay=…, status=sent (…)`).
fn attempts(log: &str, rcpt: &str) -> Vec<Attempt> {
    let to = format!(" to=<{rcpt}>,");
    log.lines()
        .filter(|l| l.contains(&to))
        .filter_map(|l| {
            let status = l.split(" status=").nth(1)?.split_whitespace().next()?;
            Some(Attempt { status: status.to_owned(), line: l.to_owned() })
        })
        .collect()
}

/// The first attempt is the outcome of a message that should be delivered at once.
fn first(a: &[Attempt]) -> bool {
    !a.is_empty()
}

/// A deferral counts once the retry was deferred too; a delivery ends the wait at once.
fn deferred_again(a: &[Attempt]) -> bool {
    a.iter().filter(|a| a.status == "deferred").count() >= DEFERRED_ATTEMPTS
        || a.iter().any(|a| a.status != "deferred")
}

/// Whether the session carried a message (`DATA`) after a completed STARTTLS.
fn data_over_tls(s: &SmtpSession) -> bool {
    let index = |verb: &str| s.commands.iter().position(|c| c.eq_ignore_ascii_case(verb));
    matches!((index("STARTTLS"), index("DATA")), (Some(tls), Some(data)) if s.starttls && tls < data)
}

/// Whether the session got as far as a transaction (`MAIL FROM`) or a message (`DATA`).
fn transaction(s: &SmtpSession) -> bool {
    s.commands.iter().any(|c| {
        let c = c.to_ascii_uppercase();
        c.starts_with("MAIL") || c == "DATA"
    })
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The five cases of the downgrade attack against one Postfix instance, one domain each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_delivers_only_as_the_policy_allows() {
    let Some(programs) = Programs::required() else { return };
    let w = World::builder()
        .scenario(Scenario::Good)
        .scenario(Scenario::MxNoStarttls)
        .scenario(Scenario::MxCertWrongName)
        .scenario(Scenario::MxCertUntrusted)
        .scenario(Scenario::MxCertBadTestingMode)
        .scenario(Scenario::MxWildcardTooDeep)
        .standard_ports()
        .build()
        .await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, Zones::default())).await;
    let postfix = Postfix::start(programs, &w, addr);

    let rcpt = |s: Scenario| format!("user@{}", s.domain());
    let mx1 = |s: Scenario| format!("mx1.{}", s.domain());
    let sessions = |host: &str| w.smtp(host).unwrap_or_else(|| panic!("no MX {host}")).sessions();
    let queued = |s: Scenario| postfix.queue().contains(&format!("\"address\": \"{}\"", rcpt(s)));
    let queue_and_log = || format!("queue:\n{}\nmaillog:\n{}", postfix.queue(), postfix.log());
    // Printed with the test's output (`--nocapture`, or on failure), whatever happens.
    struct PrintLog<'a>(&'a Postfix);
    impl Drop for PrintLog<'_> {
        fn drop(&mut self) {
            eprintln!("--- maillog ---\n{}", self.0.log());
        }
    }
    let _print = PrintLog(&postfix);

    // The deferred cases, with what Postfix says each time.
    let deferred = [
        // 2. STARTTLS stripped (by an attacker on the path): the MX does not offer it.
        (Scenario::MxNoStarttls, "status=deferred (TLS is required, but was not offered by host"),
        // 3. a certificate for another name, or from a CA nobody trusts.
        (Scenario::MxCertWrongName, "status=deferred (Server certificate not verified)"),
        (Scenario::MxCertUntrusted, "status=deferred (Server certificate not verified)"),
        // 5. `mx: *.<d>` and the MX `a.mx.<d>`, two labels below: the resolver answers TEMP.
        (Scenario::MxWildcardTooDeep, "status=deferred (client TLS configuration problem)"),
    ];
    for s in [Scenario::Good, Scenario::MxCertBadTestingMode] {
        postfix.submit(&rcpt(s));
    }
    for (s, _) in deferred {
        postfix.submit(&rcpt(s));
    }

    // 1. enforce, valid certificate: delivered over verified TLS, with the MX name as SNI.
    let good = Scenario::Good;
    let a = postfix.wait_for(&rcpt(good), "delivery", first).await;
    assert!(a.iter().all(|a| a.status == "sent"), "{a:#?}");
    let log = postfix.log();
    let verified = format!("Verified TLS connection established to {}[", mx1(good));
    assert!(log.contains(&verified), "{log}");
    let seen = sessions(&mx1(good));
    assert!(seen.iter().any(data_over_tls), "{seen:#?}");
    let sni = Some(mx1(good));
    assert!(seen.iter().filter(|s| s.starttls).all(|s| s.sni == sni), "{seen:#?}");

    // 4. the wrong-name certificate of 3, but the policy is `mode: testing`: the resolver
    //    answers NOTFOUND and Postfix delivers with its own level, opportunistic TLS (the chain
    //    is trusted, the name is not checked).
    let testing = Scenario::MxCertBadTestingMode;
    let a = postfix.wait_for(&rcpt(testing), "delivery", first).await;
    assert!(a.iter().all(|a| a.status == "sent"), "{a:#?}");
    let log = postfix.log();
    assert!(log.contains(&format!("Trusted TLS connection established to {}[", mx1(testing))));
    assert!(sessions(&mx1(testing)).iter().any(data_over_tls), "{:#?}", sessions(&mx1(testing)));

    // 2, 3, 5: deferred, retried, deferred again, still in the queue; no transaction (MAIL,
    // DATA) with the MX, ever. For 2 and 3 Postfix did connect (the attack was met, not
    // avoided); for 5 the policy lookup failed before any connection.
    for (s, reason) in deferred {
        let a = postfix.wait_for(&rcpt(s), "two deferred attempts", deferred_again).await;
        assert!(a.iter().all(|a| a.status == "deferred" && a.line.contains(reason)), "{a:#?}");
        assert!(queued(s), "{s:?} is not in the queue\n{}", queue_and_log());
        let host = match s {
            Scenario::MxWildcardTooDeep => format!("a.mx.{}", s.domain()),
            _ => mx1(s),
        };
        let seen = sessions(&host);
        assert!(!seen.iter().any(transaction), "{s:?}: {seen:#?}");
        if s != Scenario::MxWildcardTooDeep {
            assert!(!seen.is_empty(), "{s:?}: Postfix never connected\n{}", queue_and_log());
        }
    }
    let log = postfix.log();
    let temp = "socketmap server temporary error: no MX host of mx-wildcard-too-deep.test";
    assert!(log.contains(temp), "{log}");

    // Whatever the case, no message was ever sent without TLS.
    for d in w.domains() {
        for host in [format!("mx1.{d}"), format!("a.mx.{d}")] {
            for s in w.smtp(&host).map(|server| server.sessions()).unwrap_or_default() {
                let data = s.commands.iter().any(|c| c.eq_ignore_ascii_case("DATA"));
                assert!(!data || data_over_tls(&s), "{host}: {s:#?}");
            }
        }
    }
}
