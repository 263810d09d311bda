//! A real Postfix as the client: Debian's `postmap -q KEY socketmap:inet:127.0.0.1:PORT:NAME`
//! speaks the socketmap protocol exactly as the Postfix SMTP client does.

use std::path::Path;

use mtasts_proto::postfix::ZoneOptions;
use mtasts_resolver::Zones;
use mtasts_testkit::{Scenario, World};

use crate::support::{resolver_for, serve_on_loopback};

/// `postmap -q` output: (exit code, stdout, stderr).
async fn postmap(bin: &Path, config_dir: &Path, key: &str, map: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(config_dir)
        .args(["-q", key, map])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmap_gets_the_expected_replies() {
    let Some(bin) = mtasts_testkit::require::program("postmap", "postfix") else { return };
    let mut b = World::builder();
    for s in
        [Scenario::Good, Scenario::NoMtaSts, Scenario::GoodWildcard, Scenario::MxWildcardTooDeep]
    {
        b = b.scenario(s);
    }
    let w = b.build().await;
    let mut zones = Zones::default();
    zones.named.insert("tlsrpt".into(), ZoneOptions { tlsrpt: true, ..ZoneOptions::default() });
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, zones)).await;
    // An empty main.cf: postmap needs a configuration directory, nothing in it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    let map = |name: &str| format!("socketmap:inet:{addr}:{name}");

    let (code, out, err) = postmap(&bin, dir.path(), "good.test", &map("postfix")).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "secure match=mx1.good.test servername=hostname"),
        "{err}"
    );

    let (code, out, err) = postmap(&bin, dir.path(), "GOOD.TEST", &map("postfix")).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "secure match=mx1.good.test servername=hostname"),
        "{err}"
    );

    // NOTFOUND: postmap prints nothing and exits 1, without a warning.
    let (code, out, err) = postmap(&bin, dir.path(), "no-mta-sts.test", &map("postfix")).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let (code, _, err) = postmap(&bin, dir.path(), ".good.test", &map("postfix")).await;
    assert_eq!(code, 1, "{err}");

    // Wildcards as exact names.
    let (code, out, err) = postmap(&bin, dir.path(), "good-wildcard.test", &map("postfix")).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("secure match=mx1.good-wildcard.test:mx2.good-wildcard.test"), "{out}");

    // TEMP reaches Postfix as a temporary lookup error (the message is deferred).
    let (code, out, err) =
        postmap(&bin, dir.path(), "mx-wildcard-too-deep.test", &map("postfix")).await;
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert!(
        err.contains("socketmap server temporary error: no MX host of mx-wildcard-too-deep.test"),
        "{err}"
    );

    // The TLSRPT attributes come through as one value Postfix can split.
    let (code, out, err) = postmap(&bin, dir.path(), "good.test", &map("tlsrpt")).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("policy_type=sts policy_domain=good.test mx_host_pattern=mx1.good.test"),
        "{out}"
    );
    assert!(out.contains("{ policy_string = version: STSv1 }"), "{out}");
}
