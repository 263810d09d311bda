//! A private instance of Debian's `pebble` (the ACME test server, RFC 8555), for the
//! certificate tests of `mtasts serve`.
//!
//! Pebble's own HTTPS endpoint gets a certificate from a [`TestCa`] made here (the package ships
//! none); its validation authority resolves names through the DNS server the test gives
//! (`-dnsserver`, the test world's) and connects to the HTTP-01 and TLS-ALPN-01 ports the test
//! gives, so challenges reach the server under test on loopback. Nonces are never rejected
//! and validation does not sleep (`PEBBLE_WFE_NONCEREJECT=0`, `PEBBLE_VA_NOSLEEP=1`). Pebble
//! makes a new root on every start: [`Pebble::roots_url`] serves it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ca::{CertSpec, TestCa};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running pebble; stopped when dropped.
#[derive(Debug)]
pub struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    acme: SocketAddr,
    management: SocketAddr,
    ca: TestCa,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

impl Pebble {
    /// Starts pebble resolving through `dns` and validating HTTP-01 on `http_port` and
    /// TLS-ALPN-01 on `tls_port` of the address a name resolves to. `None` (after a skip
    /// message; a panic under CI) when pebble is not installed.
    pub fn start(dns: SocketAddr, http_port: u16, tls_port: u16) -> Option<Self> {
        let bin = crate::require::program("pebble", "pebble")?;
        match Self::try_start(&bin, dns, http_port, tls_port) {
            Ok(p) => Some(p),
            Err(e) => panic!("cannot start pebble: {e}"),
        }
    }

    fn try_start(
        bin: &Path,
        dns: SocketAddr,
        http_port: u16,
        tls_port: u16,
    ) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new("Pebble listener CA");
        let cert = ca.issue(&CertSpec::valid_for(&["127.0.0.1", "localhost"]));
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, &cert.chain_pem)?;
        std::fs::write(&key_path, &cert.key_pem)?;
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem())?;
        let acme = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let management = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let config = format!(
            "{{\"pebble\": {{\"listenAddress\": \"{acme}\", \"managementListenAddress\": \"{management}\", \
             \"certificate\": \"{}\", \"privateKey\": \"{}\", \"httpPort\": {http_port}, \
             \"tlsPort\": {tls_port}, \"ocspResponderURL\": \"\", \
             \"externalAccountBindingRequired\": false}}}}",
            cert_path.display(),
            key_path.display()
        );
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("pebble.log"))?;
        let child = Command::new(bin)
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut p = Self { child, dir, acme, management, ca };
        let started = Instant::now();
        while TcpStream::connect_timeout(&acme, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(std::io::Error::other(format!(
                    "pebble exited ({status}): {}",
                    p.log()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(std::io::Error::other(format!(
                    "pebble did not accept connections in time: {}",
                    p.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(p)
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.acme)
    }

    /// A PEM file with the root that signed pebble's own HTTPS certificate (what an ACME client
    /// must trust to talk to it; not the root of the certificates it issues).
    pub fn listener_ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA of pebble's own HTTPS certificate, for clients of its management interface.
    pub fn listener_ca(&self) -> &TestCa {
        &self.ca
    }

    /// The management URL of the root of the certificates pebble issues (new on every start).
    pub fn roots_url(&self) -> String {
        format!("https://{}/roots/0", self.management)
    }

    /// What pebble has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
