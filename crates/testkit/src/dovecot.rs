//! A real IMAP server process: Debian's `dovecot` (package `dovecot-imapd`), on `127.0.0.1`
//! and a free port, plain IMAP with PLAIN/LOGIN authentication (loopback only), users from a
//! passwd file, mail in maildirs under a temporary directory. For the TLS-RPT mailbox intake.
//!
//! Dovecot switches to its own users (`dovecot`, `dovenull`, created by the package) and runs
//! the mail processes as `nobody`, so it needs root: [`Dovecot::start`] returns `None` (a
//! skip, or a failure under CI: [`crate::require`]) when it is missing or not root.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long [`Dovecot::start`] waits for the server to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running dovecot; stopped when dropped.
#[derive(Debug)]
pub struct Dovecot {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
    bin: PathBuf,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

impl Dovecot {
    /// Starts dovecot with these users and passwords; `None` when the test may not run it.
    pub fn start(users: &[(&str, &str)]) -> Option<Self> {
        Self::start_with(users, None)
    }

    /// Like [`Dovecot::start`], serving IMAP over TLS (imaps) with `cert` instead of plain
    /// IMAP.
    pub fn start_tls(users: &[(&str, &str)], cert: &crate::IssuedCert) -> Option<Self> {
        Self::start_with(users, Some(cert))
    }

    fn start_with(users: &[(&str, &str)], tls: Option<&crate::IssuedCert>) -> Option<Self> {
        let bin = crate::require::program("dovecot", "dovecot-imapd")?;
        if !is_root() {
            return crate::require::missing("dovecot", "needs root (it switches to its own users)");
        }
        match Self::try_start(bin, users, tls) {
            Ok(d) => Some(d),
            Err(e) => panic!("dovecot did not start: {e}"),
        }
    }

    fn try_start(
        bin: PathBuf,
        users: &[(&str, &str)],
        tls: Option<&crate::IssuedCert>,
    ) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("mtasts-dovecot-").tempdir()?;
        let root = dir.path();
        // Dovecot's unprivileged processes must reach these.
        set_mode(root, 0o755)?;
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let passwd: String = users.iter().map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n")).collect();
        std::fs::write(root.join("passwd"), passwd)?;
        for (user, _) in users {
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(root.join("home").join(user).join("Maildir").join(sub))?;
            }
        }
        let status =
            Command::new("chown").args(["-R", "nobody:nogroup"]).arg(root.join("home")).status()?;
        if !status.success() {
            return Err(std::io::Error::other("chown of the mail directories failed"));
        }
        let port = free_port()?;
        let r = root.display();
        let (ssl, listeners) = match tls {
            None => (
                "ssl = no\n".to_owned(),
                format!(
                    "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n"
                ),
            ),
            Some(cert) => {
                std::fs::write(root.join("cert.pem"), &cert.chain_pem)?;
                std::fs::write(root.join("key.pem"), &cert.key_pem)?;
                (
                    format!(
                        "ssl = required\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
                         ssl_min_protocol = TLSv1.2\nssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20\n"
                    ),
                    format!(
                        "  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n"
                    ),
                )
            }
        };
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
             log_path = {r}/log\ninfo_log_path = {r}/log\n{ssl}disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nfirst_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={r}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\n\
             service imap-login {{\n{listeners}}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), conf)?;
        let child = Command::new(&bin)
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut d = Self { child, dir, addr, bin };
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                let log = std::fs::read_to_string(d.dir.path().join("log")).unwrap_or_default();
                return Err(std::io::Error::other(format!("dovecot exited ({status}): {log}")));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(std::io::Error::other("dovecot did not accept connections in time"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(d)
    }

    /// Where it listens (plain IMAP, or imaps for [`Dovecot::start_tls`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `user`'s maildir.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// Delivers `message` into `user`'s INBOX (a new file in the maildir's `new/`).
    pub fn deliver(&self, user: &str, name: &str, message: &[u8]) {
        let tmp = self.maildir(user).join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        let new = self.maildir(user).join("new").join(name);
        std::fs::rename(&tmp, &new).unwrap_or_else(|e| panic!("delivering {}: {e}", new.display()));
        let _ = Command::new("chown").arg("nobody:nogroup").arg(&new).status();
    }

    /// The messages in `user`'s folder `folder` (`INBOX` or another), counted from the maildir.
    pub fn count(&self, user: &str, folder: &str) -> usize {
        let base = if folder.eq_ignore_ascii_case("INBOX") {
            self.maildir(user)
        } else {
            self.maildir(user).join(format!(".{folder}"))
        };
        ["new", "cur"]
            .iter()
            .map(|s| std::fs::read_dir(base.join(s)).map(|d| d.count()).unwrap_or(0))
            .sum()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // `dovecot stop` ends the master and its children (imap, auth); kill is the fallback.
        let conf = self.dir.path().join("dovecot.conf");
        let _ = Command::new(&self.bin).arg("-c").arg(&conf).arg("stop").status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

pub(crate) fn is_root() -> bool {
    // The effective user of this process, from /proc (no libc call: unsafe is forbidden).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
