//! Debian's `chromium`, headless, for the tests of HTML pages (the scan report, the TLS-RPT
//! summary, later the dashboard): a screenshot, and the DOM after the page's script ran. Each
//! run gets a fresh profile and is killed after [`TIMEOUT`].

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a chromium run may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (the DOM, for `--dump-dom`).
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: String,
}

/// A headless chromium with a working directory for profiles.
#[derive(Debug)]
pub struct Browser {
    bin: PathBuf,
    work: PathBuf,
    headless: &'static str,
}

/// `file://` URL of an absolute path (percent-encoding what a path may hold that a URL may not).
pub fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

impl Browser {
    /// Chromium, or `None` when it is missing and the test may skip
    /// ([`crate::require::chromium`]); profiles go under `work`.
    pub fn find(work: &Path) -> Option<Self> {
        let bin = crate::require::chromium()?;
        Some(Self { bin, work: work.to_path_buf(), headless: "--headless" })
    }

    /// Takes a screenshot of `url` at `width`×`height` into `png`; tries `--headless`, then
    /// `--headless=new` (and keeps the one that worked for later runs). Panics with what
    /// chromium said when neither works.
    pub fn screenshot(&mut self, url: &str, png: &Path, width: u32, height: u32) {
        let mut tried = Vec::new();
        for headless in ["--headless", "--headless=new"] {
            self.headless = headless;
            let run = self.run(&[
                format!("--window-size={width},{height}"),
                format!("--screenshot={}", png.display()),
                url.to_owned(),
            ]);
            if run.status.success() && png.is_file() {
                return;
            }
            tried.push(format!("{headless}: {} {}", run.status, run.stderr));
        }
        panic!("chromium took no screenshot:\n{}", tried.join("\n"));
    }

    /// The DOM of `url` after its scripts ran.
    pub fn dump_dom(&self, url: &str) -> String {
        let run = self.run(&["--dump-dom".to_owned(), url.to_owned()]);
        assert!(run.status.success(), "chromium --dump-dom failed: {}\n{}", run.status, run.stderr);
        String::from_utf8_lossy(&run.stdout).into_owned()
    }

    /// Runs chromium with `extra` arguments.
    pub fn run(&self, extra: &[String]) -> Run {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let profile = self
            .work
            .join(format!("profile-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let _ = std::fs::create_dir_all(&profile);
        let spawned = Command::new(&self.bin)
            .arg(self.headless)
            .args([
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--noerrdialogs",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => panic!("cannot start {}: {e}", self.bin.display()),
        };
        // Drain both pipes on threads so a chatty browser never blocks on a full pipe.
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut buf);
            }
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("waiting for chromium: {e}"),
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium {extra:?} did not finish within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let run = Run {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        };
        let _ = std::fs::remove_dir_all(&profile);
        run
    }
}
