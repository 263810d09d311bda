//! What a test needs from this machine beyond loopback — PostgreSQL, Redis, Chromium, Debian programs
//! such as Postfix's `postmap`, sys4's Python tlsrpt-reporter — and the one
//! rule for when it is missing: locally the test is skipped with a message saying what to
//! install or set; under CI ([`in_ci`]) it fails, because CI (`.ci/run`) provides everything.
//!
//! ```text
//! let Some(url) = mtasts_testkit::require::postgres_url() else { return };
//! let Some(chromium) = mtasts_testkit::require::chromium() else { return };
//! ```

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable naming the test PostgreSQL.
pub const POSTGRES_ENV: &str = "MTASTS_TEST_POSTGRES";

/// The test PostgreSQL when [`POSTGRES_ENV`] is unset (each test makes its own schema).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// PostgreSQL's port when the URL names none.
const POSTGRES_PORT: u16 = 5432;

/// How long to wait for the test PostgreSQL's port to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether tests run under CI: `CI` is set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The test PostgreSQL's URL ([`POSTGRES_ENV`], else [`DEFAULT_POSTGRES_URL`]) if something
/// accepts connections at its host and port; otherwise `None` after saying so, or a panic
/// under CI. Only the port is tried: connecting (and failing loudly if the server refuses)
/// is the test's business.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let Some((host, port)) = host_port(&url) else {
        // No host in the URL (a Unix socket, `?host=…`): let the driver find it.
        return Some(url);
    };
    let answers = (host.as_str(), port).to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|addr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok())
    });
    if answers {
        Some(url)
    } else {
        missing(
            "PostgreSQL",
            &format!(
                "nothing accepts connections at {host}:{port}; start it or set {POSTGRES_ENV}"
            ),
        )
    }
}

/// The environment variable naming the test Redis.
pub const REDIS_ENV: &str = "MTASTS_TEST_REDIS";

/// The test Redis when [`REDIS_ENV`] is unset.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// The test Redis's URL ([`REDIS_ENV`], else [`DEFAULT_REDIS_URL`]) if something accepts
/// connections at its host and port; otherwise `None` after saying so, or a panic under CI.
/// Tests use keys under a prefix of their own and delete them.
pub fn redis_url() -> Option<String> {
    let url = std::env::var(REDIS_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or("127.0.0.1:6379");
    let hostport =
        if hostport.contains(':') { hostport.to_owned() } else { format!("{hostport}:6379") };
    let answers = hostport.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|addr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok())
    });
    if answers {
        Some(url)
    } else {
        missing(
            "Redis",
            &format!("nothing accepts connections at {hostport}; start it or set {REDIS_ENV}"),
        )
    }
}

/// Debian's `chromium` (or `chromium-browser`) on `PATH`; otherwise `None` after saying so,
/// or a panic under CI.
pub fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(bin) => Some(bin),
        None => missing("Chromium", "no chromium on PATH; apt-get install chromium"),
    }
}

/// A program from a Debian package (e.g. `postmap` from `postfix`, `nsd`), looked up on `PATH`
/// and in `/usr/sbin`; otherwise `None` after saying which package to install, or a panic
/// under CI.
pub fn program(name: &str, package: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    match dirs.into_iter().map(|d| d.join(name)).find(|c| c.is_file()) {
        Some(bin) => Some(bin),
        None => missing(name, &format!("not installed; apt-get install {package}")),
    }
}

/// A program named by the environment variable `var` (for peers that cannot be installed
/// from Debian beside the others, such as Exim, which conflicts with Postfix: `.ci/run`
/// unpacks it and sets the variable); otherwise `None` after saying `how` to get it, or a
/// panic under CI.
pub fn program_from_env(var: &str, how: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        Some(p) => missing(var, &format!("{} is not a file; {how}", p.display())),
        None => missing(var, &format!("not set; {how}")),
    }
}

/// The environment variable naming the bin directory of sys4's tlsrpt-reporter (the Python
/// `tlsrpt-reporter` package, 0.6): the peer the TLS-RPT collector is compared with.
pub const TLSRPT_REPORTER_ENV: &str = "MTASTS_TEST_TLSRPT_REPORTER";

/// The bin directory holding sys4's `tlsrpt-collectd` and `tlsrpt-fetcher`: the one named by
/// [`TLSRPT_REPORTER_ENV`], else the repository's `bench/.venv-tlsrpt/bin` if it has them
/// (`python3 -m venv bench/.venv-tlsrpt && bench/.venv-tlsrpt/bin/pip install
/// 'tlsrpt-reporter>=0.6,<0.7'`; `.ci/run` does this); otherwise `None` after saying so, or
/// a panic under CI.
pub fn tlsrpt_reporter() -> Option<PathBuf> {
    const HOW: &str = "python3 -m venv bench/.venv-tlsrpt && \
         bench/.venv-tlsrpt/bin/pip install 'tlsrpt-reporter>=0.6,<0.7', or set the variable to \
         a bin directory holding tlsrpt-collectd and tlsrpt-fetcher";
    let has_both =
        |dir: &PathBuf| ["tlsrpt-collectd", "tlsrpt-fetcher"].iter().all(|p| dir.join(p).is_file());
    if let Some(dir) = std::env::var_os(TLSRPT_REPORTER_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_both(&dir) {
            Some(dir)
        } else {
            missing(
                "tlsrpt-reporter",
                &format!(
                    "{TLSRPT_REPORTER_ENV}={} has no tlsrpt-collectd and tlsrpt-fetcher; {HOW}",
                    dir.display()
                ),
            )
        };
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/.venv-tlsrpt/bin");
    if has_both(&venv) {
        Some(venv)
    } else {
        missing(
            "tlsrpt-reporter",
            &format!("{TLSRPT_REPORTER_ENV} is not set and bench/.venv-tlsrpt has none; {HOW}"),
        )
    }
}

/// A missing requirement (`what`, and `why` with what to do about it): `None` after a skip
/// message locally, a panic under CI. For requirements the helpers above do not cover, such
/// as the privilege to make a mount namespace.
pub fn missing<T>(what: &str, why: &str) -> Option<T> {
    let test = std::thread::current().name().unwrap_or("this test").to_owned();
    assert!(!in_ci(), "CI: {test} needs {what}: {why} (.ci/run provides it)");
    eprintln!("SKIPPED {test}: {what} unavailable: {why}");
    None
}

/// The host and port of a `scheme://[user[:password]@]host[:port][/…]` URL; `None` when it
/// names no host.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => POSTGRES_PORT,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_urls() {
        let hp = |u: &str| host_port(u).map(|(h, p)| format!("{h}:{p}"));
        assert_eq!(hp(DEFAULT_POSTGRES_URL).as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(
            hp("postgres://u:p@ss@db.example:6543/x?sslmode=disable").as_deref(),
            Some("db.example:6543")
        );
        assert_eq!(hp("postgresql://localhost").as_deref(), Some("localhost:5432"));
        assert_eq!(hp("postgres://[::1]:5433/t").as_deref(), Some("::1:5433"));
        assert_eq!(hp("postgres:///test?host=/run/postgresql"), None);
        assert_eq!(hp("not a url"), None);
    }
}
