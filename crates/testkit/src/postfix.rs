//! A real mail transfer agent: Debian's Postfix (package `postfix`) as a private instance, for
//! the tests that need one (the resolver as `smtp_tls_policy_maps`, `mtasts report ingest`
//! behind a `pipe` transport).
//!
//! The instance has its own configuration, queue and data directories in a temporary
//! directory, no `smtp inet` listener (nothing receives mail from the network), no chroot,
//! and its log in a file (`maillog_file`). Mail is submitted with `sendmail -C`, which needs
//! no DNS. Postfix's SMTP client finds MX hosts with libc's resolver, which asks port 53 of
//! the server in `/etc/resolv.conf`: with [`PostfixBuilder::resolver`] the instance runs in a
//! mount namespace of its own (`unshare -m`) where a `resolv.conf` naming that server is
//! bind-mounted over `/etc/resolv.conf`; the namespace lives as long as Postfix's processes.
//! Postfix needs root: [`PostfixBuilder::start`] returns `None` (a skip, or a failure under
//! CI: [`crate::require`]) when it is missing or not root.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How often the log is read while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long Postfix may take to stop before its master is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The services every instance runs (`master.cf`): no `smtp inet` listener, chroot off
/// (column 5) so the daemons see the temporary directory, and `postlog`, which writes
/// `maillog_file`.
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

/// How an instance is configured before it starts.
#[derive(Debug, Default)]
pub struct PostfixBuilder {
    main_cf: String,
    services: String,
    files: Vec<(String, Vec<u8>)>,
    resolver: Option<IpAddr>,
}

impl PostfixBuilder {
    /// Adds `main.cf` lines (after the instance's own: directories, `myhostname =
    /// sender.mtasts.test`, no local destinations, fast retries). `{dir}` stands for the
    /// instance's directory.
    pub fn main_cf(mut self, lines: &str) -> Self {
        self.main_cf.push_str(lines);
        self
    }

    /// Adds a `master.cf` service line (e.g. a `pipe` transport). `{dir}` as in
    /// [`PostfixBuilder::main_cf`].
    pub fn service(mut self, line: &str) -> Self {
        self.services.push_str(line);
        self.services.push('\n');
        self
    }

    /// Writes `bytes` to `name` in the instance's directory, readable by Postfix's daemons
    /// (a CA file the `postfix` user must read).
    pub fn file(mut self, name: &str, bytes: &[u8]) -> Self {
        self.files.push((name.to_owned(), bytes.to_vec()));
        self
    }

    /// Makes the SMTP client's DNS lookups go to port 53 of `server` (see the module).
    pub fn resolver(mut self, server: IpAddr) -> Self {
        self.resolver = Some(server);
        self
    }

    /// Configures and starts the instance; `None` when this machine cannot run it.
    pub fn start(self) -> Option<Postfix> {
        use crate::require::{missing, program};
        let programs = Programs {
            postfix: program("postfix", "postfix")?,
            sendmail: program("sendmail", "postfix")?,
            postqueue: program("postqueue", "postfix")?,
            unshare: program("unshare", "util-linux")?,
        };
        if !crate::dovecot::is_root() {
            return missing("Postfix", "needs root (its daemons switch to the postfix user)");
        }
        if self.resolver.is_some() {
            let status = Command::new(&programs.unshare)
                .args(["-m", "true"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !status {
                return missing("a mount namespace", "`unshare -m true` failed");
            }
        }
        match self.try_start(programs) {
            Ok(p) => Some(p),
            Err(e) => panic!("Postfix did not start: {e}"),
        }
    }

    fn try_start(self, programs: Programs) -> std::io::Result<Postfix> {
        let dir = tempfile::Builder::new().prefix("mtasts-postfix-").tempdir()?;
        // Postfix's daemons run as `postfix` and must reach the queue below it.
        set_mode(dir.path(), 0o755)?;
        let base = dir.path().to_path_buf();
        let conf = base.join("conf");
        std::fs::create_dir(&conf)?;
        std::fs::create_dir(base.join("queue"))?;
        for (name, bytes) in &self.files {
            let path = base.join(name);
            std::fs::write(&path, bytes)?;
            set_mode(&path, 0o644)?;
        }
        let maillog = base.join("maillog");
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
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
{extra}",
            queue = base.join("queue").display(),
            data = base.join("data").display(),
            maillog = maillog.display(),
            base = base.display(),
            extra = self.main_cf,
        );
        let here = base.display().to_string();
        std::fs::write(conf.join("main.cf"), main_cf.replace("{dir}", &here))?;
        let master_cf = format!("{MASTER_CF}{}", self.services.replace("{dir}", &here));
        std::fs::write(conf.join("master.cf"), master_cf)?;

        let mut postfix = Postfix { programs, conf, maillog, master_pid: None, dir };
        let check = postfix.postfix().arg("check").output()?;
        if !check.status.success() {
            return Err(std::io::Error::other(format!(
                "postfix check: {}\n{}",
                stderr(&check),
                postfix.log()
            )));
        }
        // `postfix start` returns once the master runs (`master -w`); a mount namespace stays
        // with the master and its children.
        let start = match self.resolver {
            Some(server) => {
                let resolv = base.join("resolv.conf");
                std::fs::write(
                    &resolv,
                    format!("nameserver {server}\noptions timeout:2 attempts:2\n"),
                )?;
                set_mode(&resolv, 0o644)?;
                let script = "mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" -c \"$3\" start";
                Command::new(&postfix.programs.unshare)
                    .args(["-m", "sh", "-c", script, "sh"])
                    .arg(&resolv)
                    .arg(&postfix.programs.postfix)
                    .arg(&postfix.conf)
                    .output()?
            }
            None => postfix.postfix().arg("start").output()?,
        };
        postfix.master_pid = std::fs::read_to_string(base.join("queue/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if !start.status.success() || postfix.master_pid.is_none() {
            return Err(std::io::Error::other(format!(
                "postfix start: {}\n{}",
                stderr(&start),
                postfix.log()
            )));
        }
        Ok(postfix)
    }
}

/// The programs of Debian's `postfix` package (and `unshare`) an instance runs.
#[derive(Debug)]
struct Programs {
    postfix: PathBuf,
    sendmail: PathBuf,
    postqueue: PathBuf,
    unshare: PathBuf,
}

/// A running private Postfix, stopped when dropped (so that none outlives a failed test).
#[derive(Debug)]
pub struct Postfix {
    programs: Programs,
    conf: PathBuf,
    maillog: PathBuf,
    master_pid: Option<u32>,
    // Last: removed after Postfix stopped.
    dir: TempDir,
}

/// One delivery attempt in the maillog: its `status=` and the whole line.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `sent`, `deferred`, `bounced`.
    pub status: String,
    /// The log line.
    pub line: String,
}

impl Postfix {
    /// A new instance's configuration.
    pub fn builder() -> PostfixBuilder {
        PostfixBuilder::default()
    }

    /// The instance's directory (configuration, queue, log, the builder's files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn postfix(&self) -> Command {
        let mut cmd = Command::new(&self.programs.postfix);
        cmd.arg("-c").arg(&self.conf);
        cmd
    }

    /// Submits `message` from `sender` to `rcpt` with `sendmail`.
    pub fn submit(&self, sender: &str, rcpt: &str, message: &[u8]) {
        use std::io::Write;
        let run = || -> std::io::Result<Output> {
            let mut child = Command::new(&self.programs.sendmail)
                .arg("-C")
                .arg(&self.conf)
                .args(["-f", sender, "--", rcpt])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(message)?;
            }
            child.wait_with_output()
        };
        match run() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("sendmail {rcpt}: {}", stderr(&out)),
            Err(e) => panic!("sendmail {rcpt}: {e}"),
        }
    }

    /// The maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// `postqueue -j`: one JSON object per queued message.
    pub fn queue(&self) -> String {
        self.postqueue("-j")
    }

    /// `postqueue -f`: every queued message tried again now.
    pub fn flush(&self) {
        self.postqueue("-f");
    }

    fn postqueue(&self, flag: &str) -> String {
        let out = Command::new(&self.programs.postqueue)
            .arg("-c")
            .arg(&self.conf)
            .arg(flag)
            .output()
            .unwrap_or_else(|e| panic!("postqueue {flag}: {e}"));
        assert!(out.status.success(), "postqueue {flag}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The delivery attempts logged for `rcpt` (`… to=<rcpt>, relay=…, status=sent (…)`).
    pub fn attempts(&self, rcpt: &str) -> Vec<Attempt> {
        let to = format!(" to=<{rcpt}>,");
        self.log()
            .lines()
            .filter(|l| l.contains(&to))
            .filter_map(|l| {
                let status = l.split(" status=").nth(1)?.split_whitespace().next()?;
                Some(Attempt { status: status.to_owned(), line: l.to_owned() })
            })
            .collect()
    }

    /// Waits (up to `deadline`) until the attempts logged for `rcpt` satisfy `done`; returns
    /// them. Panics with the maillog when they do not.
    pub async fn wait_for(
        &self,
        rcpt: &str,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[Attempt]) -> bool,
    ) -> Vec<Attempt> {
        let start = Instant::now();
        loop {
            let attempts = self.attempts(rcpt);
            if done(&attempts) {
                return attempts;
            }
            assert!(
                start.elapsed() < deadline,
                "{rcpt}: {what} not within {deadline:?}; maillog:\n{}",
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
        let _ = self.postfix().arg("stop").stdout(Stdio::null()).stderr(Stdio::null()).status();
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

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
