//! `mtasts resolver` as an operator runs it: a daemon answering socketmap lookups, its cache
//! surviving `kill -9`, `dump` and `purge`, and bad arguments.

use std::process::Stdio;
use std::time::Duration;

use mtasts_testkit::{Scenario, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

fn net_args(cmd: &mut Command, world: &World) {
    cmd.arg("--dns-server")
        .arg(world.dns_addr().to_string())
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .arg("--https-port")
        .arg(world.https_port().to_string())
        .args(["--dns-timeout", "1", "--fetch-timeout", "3"])
        .env_remove("MTASTS_DNS_SERVER")
        .env_remove("MTASTS_RESOLVER_CACHE");
}

async fn socketmap_query(port: u16, key: &str) -> String {
    let stream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    ask(stream, key).await
}

/// One socketmap request for `key` in map `postfix` on `stream`, and its reply.
async fn ask<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    key: &str,
) -> String {
    stream.write_all(&mtasts_proto::socketmap::encode(&format!("postfix {key}"))).await.unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some(f) = mtasts_proto::socketmap::decode(&buf, 100_000).unwrap() {
            return String::from_utf8(buf[f.payload].to_vec()).unwrap();
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed without a reply");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A plain HTTP/1.1 GET on loopback; the body.
async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_cache_survives_kill_9_then_dump_and_purge() {
    let w = World::builder().scenario(Scenario::Good).scenario(Scenario::NoMtaSts).build().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = format!("sqlite://{}", dir.path().join("resolver.db").display());
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    let http_port = free_port();
    cmd.args(["resolver", "--listen", &format!("127.0.0.1:{port}"), "--cache", &cache])
        .args(["--http", &format!("127.0.0.1:{http_port}")]);
    net_args(&mut cmd, &w);
    let mut daemon =
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), socketmap_query(port, "good.test"))
        .await
        .expect("the daemon answers");
    assert_eq!(reply, "OK secure match=mx1.good.test servername=hostname");
    assert_eq!(socketmap_query(port, "no-mta-sts.test").await, "NOTFOUND ");
    // The same decision over HTTP, and the metrics that counted both lookups.
    let json = http_get(http_port, "/v1/policy/good.test").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["decision"], "policy");
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["answer"]["match"][0], "mx1.good.test");
    assert_eq!(v["source"], "cache");
    let metrics = http_get(http_port, "/metrics").await;
    assert!(metrics.contains("mtasts_resolver_lookups_total{result=\"secure\"}"), "{metrics}");
    assert!(metrics.contains("mtasts_resolver_lookups_total{result=\"notfound\"}"), "{metrics}");
    // The HTTP lookup of good.test was answered from the cache the socketmap lookup filled.
    assert!(metrics.contains("mtasts_resolver_cache_total{outcome=\"hit\"}"), "{metrics}");
    assert!(metrics.contains("mtasts_resolver_cache_total{outcome=\"miss\"}"), "{metrics}");
    daemon.start_kill().unwrap(); // SIGKILL
    daemon.wait().await.unwrap();

    let dump = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "dump", "--cache", &cache])
        .output()
        .await
        .unwrap();
    assert_eq!(dump.status.code(), Some(0), "{}", String::from_utf8_lossy(&dump.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(dump.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let good = lines.iter().find(|l| l["domain"] == "good.test").expect("good.test was cached");
    assert_eq!(good["id"], mtasts_testkit::world::DEFAULT_STS_ID);
    assert_eq!(good["mode"], "enforce");
    let absent = lines.iter().find(|l| l["domain"] == "no-mta-sts.test").expect("negative entry");
    assert!(absent["no_policy_until"].as_i64().is_some());

    let purge = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "purge", "good.test", "--cache", &cache])
        .output()
        .await
        .unwrap();
    assert_eq!(purge.status.code(), Some(0), "{}", String::from_utf8_lossy(&purge.stderr));
    let dump = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "dump", "--cache", &cache])
        .output()
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&dump.stdout).contains("\"good.test\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_bad_arguments() {
    let w = World::builder().scenario(Scenario::Good).build().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(["resolver", "query", "[good.test]:587"]);
    net_args(&mut cmd, &w);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("OK secure match=mx1.good.test servername=hostname"));
    assert!(lines.next().unwrap().starts_with("why: mode: enforce; verified TLS"), "{stdout}");

    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "--listen", "not-an-address", "--cache", "memory"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen \"not-an-address\" is neither IP:PORT nor unix:/path"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "dump", "--cache", "mysql://x"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

/// `--check-config` reads postfix-mta-sts-resolver's own file as it is, shows the result, and
/// names the file and key of a mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reads_the_python_daemons_file() {
    let dir = tempfile::tempdir().unwrap();
    let yml = dir.path().join("mta-sts-daemon.yml");
    std::fs::write(
        &yml,
        "host: 127.0.0.1\nport: 18461\ncache:\n  type: sqlite\n  options:\n    filename: /tmp/x.db\n\
         default_zone:\n  strict_testing: true\n  timeout: 4\nzones:\n  tls:\n    tlsrpt: true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "--check-config", "--config"])
        .arg(&yml)
        .env_remove("MTASTS_RESOLVER_CACHE")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8_lossy(&out.stdout);
    assert!(toml.contains("listen = \"127.0.0.1:18461\""), "{toml}");
    assert!(toml.contains("cache = \"sqlite:///tmp/x.db\""), "{toml}");
    assert!(toml.contains("strict_testing = true"), "{toml}");
    assert!(toml.contains("[zones.tls]"), "{toml}");

    let bad = dir.path().join("resolver.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:1\"\nlisen = 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resolver.toml") && err.contains("lisen"), "{err}");
}

/// One socketmap query over a unix socket.
async fn unix_query(path: &std::path::Path, key: &str) -> String {
    ask(tokio::net::UnixStream::connect(path).await.unwrap(), key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_gets_its_mode_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::builder().scenario(Scenario::Good).build().await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mtasts.sock");
    // A group by name, as an operator writes it (`daemon` is gid 1 on Debian).
    let groups = std::fs::read_to_string("/etc/group").unwrap();
    let (name, gid) = groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] != "0").then(|| (f[0].to_owned(), f[2].parse::<u32>().unwrap()))
        })
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(["resolver", "--listen", &format!("unix:{}", sock.display()), "--cache", "memory"])
        .args(["--http", "off", "--socket-mode", "0660", "--socket-group", &name]);
    net_args(&mut cmd, &w);
    let _daemon =
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "no socket at {}", sock.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The mode is set right after bind; wait for it rather than race it.
    let meta = loop {
        let m = std::fs::metadata(&sock).unwrap();
        if m.permissions().mode() & 0o777 == 0o660 || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid, "group {name}");
    assert_eq!(
        unix_query(&sock, "good.test").await,
        "OK secure match=mx1.good.test servername=hostname"
    );
    // A group that does not exist is refused before anything listens.
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "--listen", "unix:/tmp/never.sock", "--socket-group", "no-such-group"])
        .args(["--cache", "memory", "--check-config"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-group") && err.contains("/etc/group"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_serves_the_socket_systemd_passes() {
    let Some(activate) = mtasts_testkit::require::program("systemd-socket-activate", "systemd")
    else {
        return;
    };
    let w = World::builder().scenario(Scenario::Good).build().await;
    let port = free_port();
    // systemd-socket-activate binds, waits for the first connection, then starts the daemon
    // with the listening socket as fd 3 (LISTEN_FDS=1), as systemd does for a .socket unit.
    let mut cmd = Command::new(activate);
    cmd.args(["-l", &format!("127.0.0.1:{port}"), env!("CARGO_BIN_EXE_mtasts")])
        .args(["resolver", "--listen", "systemd", "--cache", "memory", "--http", "off"]);
    net_args(&mut cmd, &w);
    let _daemon =
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), socketmap_query(port, "good.test"))
        .await
        .expect("the activated daemon answers");
    assert_eq!(reply, "OK secure match=mx1.good.test servername=hostname");
    // Without a passed socket, --listen systemd says what is missing.
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["resolver", "--listen", "systemd", "--cache", "memory", "--http", "off"])
        .env_remove("LISTEN_FDS")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("LISTEN_FDS"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_domain_and_the_error_as_fields() {
    use tokio::io::AsyncBufReadExt;
    let w = World::builder().scenario(Scenario::Https404).build().await;
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(["--log-format", "json", "resolver", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--cache", "memory", "--http", "off"])
        .env_remove("MTASTS_LOG");
    net_args(&mut cmd, &w);
    let mut daemon =
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    assert_eq!(socketmap_query(port, "https-404.test").await, "NOTFOUND ");
    let mut lines = tokio::io::BufReader::new(daemon.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if v["fields"]["message"] == "policy fetch failed" {
                return v;
            }
        }
        panic!("no JSON log line about the failed fetch");
    })
    .await
    .expect("the daemon logs the failed fetch");
    assert_eq!(found["level"], "INFO", "{found}");
    assert_eq!(found["fields"]["domain"], "https-404.test", "{found}");
    assert!(found["fields"]["error"].as_str().unwrap().contains("404"), "{found}");
}
