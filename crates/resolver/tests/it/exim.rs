//! The Exim worked example (`contrib/exim/mtasts.conf`) against a live resolver: Debian's
//! Exim checks the whole configuration (`-bV`) and expands the example's own macros, for each
//! kind of domain, against the resolver's HTTP endpoint (`-be`), as its routers do per message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mtasts_resolver::{Zones, http};
use mtasts_testkit::{Scenario, World};

use crate::support::resolver_for;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/exim/mtasts.conf")
}

fn exim(bin: &Path, conf: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin).arg("-C").arg(conf).args(args).output().unwrap();
    assert!(out.status.success(), "exim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// What Exim's routers see for `domain`: the example's macro `name` expanded with `$domain`
/// set to `domain` (the text goes in on stdin: Exim limits an argument to 256 bytes).
fn expand(bin: &Path, conf: &Path, name: &str, domain: &str) -> String {
    use std::io::Write;
    let shown = exim(bin, conf, &["-bP", "macro", name]);
    let text = shown.strip_prefix(&format!("{name}=")).unwrap_or_else(|| panic!("{shown}"));
    let mut child = std::process::Command::new(bin)
        .arg("-C")
        .arg(conf)
        .arg("-be")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", text.replace("${domain}", domain)).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exim -be: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // Each line read is answered on its own line, between "> " prompts.
    text.split('\n')
        .map(|l| l.trim_start_matches('>').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exim_example_routes_by_the_resolvers_answers() {
    let Some(bin) = mtasts_testkit::require::program_from_env(
        "MTASTS_TEST_EXIM",
        "point it at an exim4 binary (apt-get download exim4-daemon-light; dpkg -x; see .ci/run)",
    ) else {
        return;
    };
    let w = World::builder()
        .scenario(Scenario::Good)
        .scenario(Scenario::NoMtaSts)
        .scenario(Scenario::DnsServfail)
        .scenario(Scenario::MxWildcardTooDeep)
        .build()
        .await;
    let resolver = Arc::new(resolver_for(&w, Zones::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_stop, shutdown) = mtasts_resolver::server::Shutdown::new();
    tokio::spawn(http::serve(listener, http::router(resolver, None), shutdown));

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("exim.conf");
    let text = std::fs::read_to_string(example()).unwrap();
    assert!(text.contains("inet:127.0.0.1:8462"));
    std::fs::write(&conf, text.replace("inet:127.0.0.1:8462", &format!("inet:127.0.0.1:{port}")))
        .unwrap();
    // The whole configuration, routers and transports included, is valid Exim.
    let (b, c) = (bin.clone(), conf.clone());
    let version = tokio::task::spawn_blocking(move || exim(&b, &c, &["-bV"])).await.unwrap();
    assert!(version.contains("Configuration file is"), "{version}");

    let (b, c) = (bin.clone(), conf.clone());
    let ask = move |name: &'static str, domain: &'static str| {
        let (b, c) = (b.clone(), c.clone());
        tokio::task::spawn_blocking(move || expand(&b, &c, name, domain))
    };
    // mode: enforce → the secure route, to exactly the policy's MX hosts.
    assert_eq!(ask("MTASTS_ACTION", "good.test").await.unwrap(), "secure");
    assert_eq!(ask("MTASTS_HOSTS", "good.test").await.unwrap(), "mx1.good.test");
    // No MTA-STS → ordinary delivery.
    assert_eq!(ask("MTASTS_ACTION", "no-mta-sts.test").await.unwrap(), "none");
    // The DNS cannot answer → the message waits, with the resolver's reason.
    assert_eq!(ask("MTASTS_ACTION", "dns-servfail.test").await.unwrap(), "defer");
    let reason = ask("MTASTS_REASON", "dns-servfail.test").await.unwrap();
    assert!(reason.contains("_mta-sts.dns-servfail.test"), "{reason}");
    // No MX host matches the policy (`*.x` with the MX two labels below) → defer.
    assert_eq!(ask("MTASTS_ACTION", "mx-wildcard-too-deep.test").await.unwrap(), "defer");
    // A resolver that is not there → defer, never an unprotected delivery.
    let dead = dir.path().join("dead.conf");
    let port_gone =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &dead,
        std::fs::read_to_string(&conf)
            .unwrap()
            .replace(&format!("inet:127.0.0.1:{port}"), &format!("inet:127.0.0.1:{port_gone}")),
    )
    .unwrap();
    let (b, d) = (bin.clone(), dead.clone());
    let action = tokio::task::spawn_blocking(move || expand(&b, &d, "MTASTS_ACTION", "good.test"))
        .await
        .unwrap();
    assert_eq!(action, "defer");
}
