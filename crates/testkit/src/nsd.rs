//! A real authoritative DNS server process: Debian's `nsd`, on `127.0.0.1` and a free port,
//! serving a zone-file text (e.g. [`World::zone_file`](crate::World::zone_file)) with its
//! default response rate limiting (RRL) on.
//!
//! NSD's RRL (`nsd.conf(5)`, `rrl-ratelimit`, default 200 queries/s per source /24 and
//! response kind; `rrl-slip` 2) drops the answers of a source that asks too fast: every
//! second blocked answer is sent with TC set and no records (inviting TCP, which is not rate
//! limited), the others are not sent at all. Negative answers (NXDOMAIN, NODATA) are
//! counted per zone, so a scan of many domains in one zone meets the limit quickly. The
//! configuration written here sets only what a non-root test needs (paths in a temporary
//! directory, no user switch, no database, no remote control) and writes `rrl-ratelimit`
//! and `rrl-slip` with their default values, so the test does not depend on a distribution
//! changing them.
//!
//! [`Nsd::start`] fails with [`NsdError::NotInstalled`] when `/usr/sbin/nsd` (or `$NSD`) is
//! missing, so a test can skip locally and fail under CI.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hickory_proto::rr::RecordType;
use tempfile::TempDir;

use crate::dns::{Transport, query};

/// Where Debian installs `nsd`; `$NSD` overrides it.
pub const NSD_PATH: &str = "/usr/sbin/nsd";
/// NSD's default `rrl-ratelimit` (queries per second per source netblock and response kind).
pub const DEFAULT_RRL_RATELIMIT: u32 = 200;
/// NSD's default `rrl-slip`: one blocked answer in this many is sent truncated.
pub const DEFAULT_RRL_SLIP: u32 = 2;
/// Environment variable overriding `rrl-ratelimit` (e.g. `0` to measure without RRL).
pub const RATELIMIT_ENV: &str = "MTASTS_NSD_RRL_RATELIMIT";
/// How long [`Nsd::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Port attempts before [`Nsd::start`] gives up.
const PORT_ATTEMPTS: usize = 10;

/// Why [`Nsd::start`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsdError {
    /// No `nsd` binary (install Debian's `nsd` package).
    #[error("nsd is not installed at {0} (apt-get install nsd)")]
    NotInstalled(PathBuf),
    /// `nsd-checkzone` or `nsd` rejected the zone or the configuration, or did not answer.
    #[error("nsd did not start: {0}")]
    Start(String),
    /// Files or sockets.
    #[error("nsd: {0}")]
    Io(#[from] io::Error),
}

/// A running `nsd` process; killed (by its pid) when dropped.
#[derive(Debug)]
pub struct Nsd {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nsd {
    /// Writes `zone_text` (origin `.`) and a configuration into a temporary directory and runs
    /// `nsd -d` on `127.0.0.1` and a free port (UDP and TCP), with RRL at its defaults.
    /// Returns once the server answers.
    pub async fn start(zone_text: &str) -> Result<Self, NsdError> {
        let binary = std::env::var_os("NSD").map_or_else(|| PathBuf::from(NSD_PATH), PathBuf::from);
        if !binary.exists() {
            return Err(NsdError::NotInstalled(binary));
        }
        let dir = tempfile::Builder::new().prefix("mtasts-nsd-").tempdir()?;
        std::fs::write(dir.path().join("world.zone"), zone_text)?;
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let conf = config(dir.path(), port);
            let conf_path = dir.path().join("nsd.conf");
            std::fs::write(&conf_path, conf)?;
            let log = std::fs::File::create(dir.path().join("nsd.stderr"))?;
            let mut child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match wait_ready(&mut child, addr, dir.path()).await {
                Ok(()) => return Ok(Self { child, addr, dir }),
                Err(e) => {
                    last = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        Err(NsdError::Start(last))
    }

    /// The `rrl-ratelimit` in force: [`DEFAULT_RRL_RATELIMIT`] unless [`RATELIMIT_ENV`] says
    /// otherwise.
    pub fn rrl_ratelimit(&self) -> u32 {
        rrl_ratelimit()
    }

    /// The server's address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// NSD's log so far (start-up messages, and at verbosity 2 every RRL block/unblock).
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }
}

fn rrl_ratelimit() -> u32 {
    std::env::var(RATELIMIT_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_RRL_RATELIMIT)
}

fn read_log(dir: &Path) -> String {
    let mut s = std::fs::read_to_string(dir.join("nsd.log")).unwrap_or_default();
    s.push_str(&std::fs::read_to_string(dir.join("nsd.stderr")).unwrap_or_default());
    s
}

/// Polls with an SOA query over TCP (not rate limited) until the server answers.
async fn wait_ready(child: &mut Child, addr: SocketAddr, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("nsd exited with {status}: {}", read_log(dir)));
        }
        let answered =
            query(addr, ".", RecordType::SOA, Transport::Tcp, Duration::from_millis(500)).await;
        if answered.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no answer within {START_TIMEOUT:?}: {}", read_log(dir)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 right now (nsd binds it a moment later; a
/// lost race makes [`Nsd::start`] try another).
fn free_port() -> io::Result<u16> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no port free for both UDP and TCP"))
}

/// `nsd.conf(5)` for an unprivileged run in `dir`.
fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let ratelimit = rrl_ratelimit();
    // With the limit off, the whitelist limit must be off too (nsd.conf(5)).
    let whitelist = if ratelimit == 0 { "\n    rrl-whitelist-ratelimit: 0" } else { "" };
    format!(
        r#"server:
    ip-address: 127.0.0.1
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 2
    # Response rate limiting at NSD's defaults (written out so that it is certainly on).
    rrl-ratelimit: {ratelimit}
    rrl-slip: {DEFAULT_RRL_SLIP}{whitelist}

remote-control:
    control-enable: no

zone:
    name: "."
    zonefile: "{d}/world.zone"
"#
    )
}
