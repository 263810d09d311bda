use std::{collections::HashMap, io, time::Duration};

use mtasts_testkit::{
    CertSpec, HttpBehaviour, HttpsHost, HttpsServer, TestCa,
    https::{MAX_REQUEST_HEAD, POLICY_PATH},
    policy_text,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use crate::util::{LONG, SHORT, client_config, https_get, tls_connect};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 604800\n";

fn host(ca: &TestCa, name: &str, behaviour: HttpBehaviour) -> (String, HttpsHost) {
    (name.to_owned(), HttpsHost { cert: ca.issue(&CertSpec::valid_for(&[name])), behaviour })
}

async fn server(ca: &TestCa) -> HttpsServer {
    let hosts: HashMap<_, _> = [
        host(ca, "mta-sts.good.test", HttpBehaviour::ok_text(POLICY)),
        host(
            ca,
            "mta-sts.redirect.test",
            HttpBehaviour::Redirect {
                status: 301,
                location: "https://www.redirect.test/mta-sts.txt".to_owned(),
            },
        ),
        host(
            ca,
            "mta-sts.chunked.test",
            HttpBehaviour::Chunked {
                content_type: "text/plain".to_owned(),
                body: POLICY.as_bytes().to_vec(),
            },
        ),
        host(
            ca,
            "mta-sts.endless.test",
            HttpBehaviour::Endless { content_type: "text/plain".to_owned() },
        ),
        host(
            ca,
            "mta-sts.slow.test",
            HttpBehaviour::Slow {
                content_type: "text/plain".to_owned(),
                body: POLICY.as_bytes().to_vec(),
                bytes_per_second: 1,
            },
        ),
        host(ca, "mta-sts.hang.test", HttpBehaviour::Hang),
        // Keys are matched case-insensitively.
        host(ca, "MTA-STS.Upper.TEST", HttpBehaviour::ok_text(POLICY)),
    ]
    .into_iter()
    .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    HttpsServer::start(listener, hosts).await.unwrap()
}

#[tokio::test]
async fn serves_policy_by_sni_and_records_the_request() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let cfg = client_config(ca.root_store(), false);
    let r = https_get(s.addr(), "mta-sts.good.test", POLICY_PATH, cfg.clone(), LONG).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some(POLICY.len().to_string()));
    assert_eq!(r.body, POLICY.as_bytes());
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].sni, "mta-sts.good.test");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, POLICY_PATH);
    assert_eq!(reqs[0].header("HOST"), Some("mta-sts.good.test"));

    let r =
        https_get(s.addr(), "mta-sts.upper.test", POLICY_PATH, cfg.clone(), LONG).await.unwrap();
    assert_eq!(r.status(), 200);

    // Other paths: 404.
    let r = https_get(s.addr(), "mta-sts.good.test", "/mta-sts.txt", cfg, LONG).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn tls12_works_too() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let r = https_get(
        s.addr(),
        "mta-sts.good.test",
        POLICY_PATH,
        client_config(ca.root_store(), true),
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn untrusted_ca_and_unknown_sni_fail_the_handshake() {
    let ca = TestCa::new("mtasts test CA");
    let other = TestCa::new("other CA");
    let s = server(&ca).await;
    let e = https_get(
        s.addr(),
        "mta-sts.good.test",
        POLICY_PATH,
        client_config(other.root_store(), false),
        LONG,
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    let e = https_get(
        s.addr(),
        "mta-sts.unknown.test",
        POLICY_PATH,
        client_config(ca.root_store(), false),
        LONG,
    )
    .await
    .err()
    .unwrap();
    // rustls answers a ClientHello it has no certificate for with a fatal alert.
    assert!(e.to_string().contains("alert"), "{e}");
    assert!(s.requests().is_empty());
    assert!(s.client_hellos().contains(&Some("mta-sts.unknown.test".to_owned())));
}

#[tokio::test]
async fn redirect_and_chunked() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let cfg = client_config(ca.root_store(), false);
    let r =
        https_get(s.addr(), "mta-sts.redirect.test", POLICY_PATH, cfg.clone(), LONG).await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.header("location").as_deref(), Some("https://www.redirect.test/mta-sts.txt"));
    let r = https_get(s.addr(), "mta-sts.chunked.test", POLICY_PATH, cfg, LONG).await.unwrap();
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    assert!(r.header("content-length").is_none());
    // De-chunk.
    let mut body = Vec::new();
    let mut rest = &r.body[..];
    let mut chunks = 0;
    loop {
        let pos = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..pos]).unwrap(), 16).unwrap();
        rest = &rest[pos + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
        chunks += 1;
    }
    assert!(chunks > 1);
    assert_eq!(body, POLICY.as_bytes());
}

#[tokio::test]
async fn endless_streams_more_than_any_cap() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let tcp = TcpStream::connect(s.addr()).await.unwrap();
    let mut tls = tls_connect(tcp, "mta-sts.endless.test", client_config(ca.root_store(), false))
        .await
        .unwrap();
    tls.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 65536];
    while total < 4 << 20 {
        let n = timeout(LONG, tls.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        total += n;
    }
    drop(tls); // The server notices and stops.
}

#[tokio::test]
async fn hang_and_slow_make_clients_time_out() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let cfg = client_config(ca.root_store(), false);
    let e = https_get(s.addr(), "mta-sts.hang.test", POLICY_PATH, cfg.clone(), SHORT)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    let e = https_get(s.addr(), "mta-sts.slow.test", POLICY_PATH, cfg, SHORT).await.err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(s.requests().len(), 1, "the slow host recorded its request");
}

#[tokio::test]
async fn hostile_clients() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    // Not TLS at all.
    let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(LONG, tcp.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert!(n < 64);
    // A huge request head gets 431 and a close.
    let tcp = TcpStream::connect(s.addr()).await.unwrap();
    let mut tls =
        tls_connect(tcp, "mta-sts.good.test", client_config(ca.root_store(), false)).await.unwrap();
    let mut req = b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n".to_vec();
    while req.len() <= MAX_REQUEST_HEAD + 100 {
        req.extend_from_slice(b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let _ = tls.write_all(&req).await;
    let mut out = Vec::new();
    let _ = timeout(LONG, tls.read_to_end(&mut out)).await.unwrap();
    assert!(out.starts_with(b"HTTP/1.1 431"), "{:?}", String::from_utf8_lossy(&out));
    // Still serving.
    let r = https_get(
        s.addr(),
        "mta-sts.good.test",
        POLICY_PATH,
        client_config(ca.root_store(), false),
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca).await;
    let addr = s.addr();
    drop(s);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn policy_text_shape() {
    assert_eq!(
        policy_text("enforce", 604800, &["mx1.good.test", "*.good.test"]),
        "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: *.good.test\nmax_age: 604800\n"
    );
    assert_eq!(policy_text("none", 86400, &[]), "version: STSv1\nmode: none\nmax_age: 86400\n");
}
