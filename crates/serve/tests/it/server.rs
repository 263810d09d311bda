//! The policy server: policies by Host, certificates by SNI from the database, reloads, a
//! database that goes away, plain HTTP that never redirects.

use std::net::SocketAddr;
use std::time::Duration;

use mtasts_serve::catalog::checked_certificate;
use mtasts_serve::server::{Instance, Listeners, ServerOptions, run};
use mtasts_store::hosting::{HostingStore, NewVersion};
use mtasts_testkit::ca::{CertSpec, TestCa};

use crate::common::{TestDb, both_backends, now};

both_backends!(
    serves_by_host_and_sni,
    changes_and_a_database_gone,
    two_instances_on_one_database,
    reports_on_the_policy_hosts
);

fn policy(mode: &str, mx: &str, max_age: i64) -> String {
    format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: {max_age}\n")
}

fn version(id: &str, text: &str) -> NewVersion {
    NewVersion {
        policy_id: id.into(),
        policy_text: text.into(),
        mode: "testing".into(),
        max_age: 86_400,
        author: "test".into(),
        reason: "test".into(),
        at: now(),
    }
}

struct Running {
    https: SocketAddr,
    http: SocketAddr,
    ca: TestCa,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(store: &HostingStore, domains: &[&str]) -> Running {
    let ca = TestCa::new("Serve Test CA");
    for d in domains {
        store
            .add(d, "t", &version("1", &policy("testing", &format!("mx.{d}"), 86_400)))
            .await
            .unwrap();
        let issued = ca.issue(&CertSpec::valid_for(&[&format!("mta-sts.{d}")]));
        let cert = checked_certificate(d, &issued.chain_pem, &issued.key_pem, "manual", now())
            .unwrap_or_else(|e| panic!("{e}"));
        store.put_certificate(&cert).await.unwrap();
    }
    let (https, http, stop) = spawn(store).await;
    Running { https, http, ca, _stop: stop }
}

/// Starts a serve instance on `store`: its HTTPS and HTTP addresses, and the sender that
/// stops it when dropped.
async fn spawn(store: &HostingStore) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (https_addr, http_addr) = (https.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions { reload_every: Duration::from_millis(100), ..Default::default() };
    let store = store.clone();
    tokio::spawn(async move {
        let listeners = Listeners { https, http: Some(http) };
        run(store, Instance::new(), listeners, None, options, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    });
    (https_addr, http_addr, stop)
}

impl Running {
    /// A client that resolves every `mta-sts.<d>` to the server and trusts the test CA.
    fn client(&self, names: &[&str]) -> reqwest::Client {
        let tls = mtasts_testkit::ca::client_config(self.ca.root_store());
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none());
        for n in names {
            b = b.resolve(n, self.https);
        }
        b.build().unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https.port())
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let r = client.get(url).send().await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned());
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

async fn serves_by_host_and_sni(db: &TestDb) {
    let store = HostingStore::with_database(db.database().await).await.unwrap();
    let s = start(&store, &["a.test", "b.test"]).await;
    let client = s.client(&["mta-sts.a.test", "mta-sts.b.test", "mta-sts.c.test"]);
    // Each host gets its own policy, under a certificate valid for its own name (the client
    // verifies it: the certificate was chosen by SNI).
    for d in ["a.test", "b.test"] {
        let (status, ct, body) =
            get(&client, &s.url(&format!("mta-sts.{d}"), "/.well-known/mta-sts.txt")).await;
        assert_eq!(status, 200);
        assert_eq!(ct.as_deref(), Some("text/plain"));
        assert_eq!(body, policy("testing", &format!("mx.{d}"), 86_400));
        mtasts_proto::Policy::parse(&body).unwrap();
    }
    // Another path on a policy host: 404.
    let (status, _, _) = get(&client, &s.url("mta-sts.a.test", "/")).await;
    assert_eq!(status, 404);
    let (status, _, _) =
        get(&client, &s.url("mta-sts.a.test", "/.well-known/mta-sts.txt.bak")).await;
    assert_eq!(status, 404);
    // A name not hosted here: no certificate, the handshake fails.
    let err = client.get(s.url("mta-sts.c.test", "/.well-known/mta-sts.txt")).send().await;
    assert!(err.is_err(), "{err:?}");
    // SNI for a, Host b: refused (421), not b's policy under a's certificate.
    let r = client
        .get(s.url("mta-sts.a.test", "/.well-known/mta-sts.txt"))
        .header("host", "mta-sts.b.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    // HEAD: headers only.
    let r = client.head(s.url("mta-sts.b.test", "/.well-known/mta-sts.txt")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Plain HTTP: the policy path is 404 with where to find it, never a redirect.
    let plain = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(s.ca.root_store()))
        .redirect(reqwest::redirect::Policy::none())
        .resolve("mta-sts.a.test", s.http)
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://mta-sts.a.test:{}/.well-known/mta-sts.txt", s.http.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("https://mta-sts.a.test/.well-known/mta-sts.txt"));
    let r = plain.get(format!("http://mta-sts.a.test:{}/", s.http.port())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn changes_and_a_database_gone(db: &TestDb) {
    let database = db.database().await;
    let store = HostingStore::with_database(database.clone()).await.unwrap();
    let s = start(&store, &["a.test"]).await;
    let client = s.client(&["mta-sts.a.test", "mta-sts.new.test"]);
    let url = s.url("mta-sts.a.test", "/.well-known/mta-sts.txt");
    assert_eq!(get(&client, &url).await.0, 200);

    // A new version and a new domain are served after the next reload.
    let enforce = policy("enforce", "mx.a.test", 604_800);
    store.publish("a.test", 1, &version("2", &enforce)).await.unwrap();
    store
        .add("new.test", "t", &version("1", &policy("testing", "mx.new.test", 86_400)))
        .await
        .unwrap();
    let issued = s.ca.issue(&CertSpec::valid_for(&["mta-sts.new.test"]));
    store
        .put_certificate(
            &checked_certificate("new.test", &issued.chain_pem, &issued.key_pem, "manual", now())
                .unwrap(),
        )
        .await
        .unwrap();
    let new_url = s.url("mta-sts.new.test", "/.well-known/mta-sts.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = get(&client, &url).await.2;
        let n = client.get(&new_url).send().await;
        if a == enforce && n.is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the change was not served within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The database goes away: the last good policies keep being served.
    database.close().await;
    store.publish("a.test", 2, &version("3", "x")).await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, body) = get(&client, &url).await;
    assert_eq!((status, body.as_str()), (200, enforce.as_str()));
    assert_eq!(get(&client, &new_url).await.0, 200);
}

/// Two instances behind one load balancer, each with its own connection pool to the same
/// database: both serve every domain and certificate, and a change reaches both.
async fn two_instances_on_one_database(db: &TestDb) {
    let store_a = HostingStore::with_database(db.database().await).await.unwrap();
    let a = start(&store_a, &["a.test", "b.test"]).await;
    let store_b = HostingStore::with_database(db.database().await).await.unwrap();
    let (b_https, _, _stop_b) = spawn(&store_b).await;
    let client_b = {
        let tls = mtasts_testkit::ca::client_config(a.ca.root_store());
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve("mta-sts.a.test", b_https)
            .resolve("mta-sts.b.test", b_https)
            .build()
            .unwrap()
    };
    let client_a = a.client(&["mta-sts.a.test", "mta-sts.b.test"]);
    let url = |addr: SocketAddr, d: &str| {
        format!("https://mta-sts.{d}:{}/.well-known/mta-sts.txt", addr.port())
    };
    for d in ["a.test", "b.test"] {
        let want = policy("testing", &format!("mx.{d}"), 86_400);
        assert_eq!(get(&client_a, &url(a.https, d)).await.2, want);
        // B's first load may still be under way.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = client_b.get(url(b_https, d)).send().await {
                assert_eq!(r.text().await.unwrap(), want);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "instance B never served {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A change made through B's database connection is served by both.
    let enforce = policy("enforce", "mx.a.test", 604_800);
    store_b.publish("a.test", 1, &version("2", &enforce)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (on_a, on_b) = (
            get(&client_a, &url(a.https, "a.test")).await.2,
            get(&client_b, &url(b_https, "a.test")).await.2,
        );
        if on_a == enforce && on_b == enforce {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the change did not reach both instances");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A stale change from A (made against version 1) is refused, not lost over B's.
    let stale =
        store_a.publish("a.test", 1, &version("3", &policy("none", "mx.a.test", 86_400))).await;
    assert!(matches!(stale, Err(mtasts_store::hosting::HostingError::Stale { .. })), "{stale:?}");
}

/// `--receive-reports`: a TLS-RPT report POSTed to a policy host is stored before the 200;
/// the policy path and the 404s are as before.
async fn reports_on_the_policy_hosts(db: &TestDb) {
    let database = db.database().await;
    let store = HostingStore::with_database(database.clone()).await.unwrap();
    let reports = mtasts_store::reports::ReportStore::with_database(database).await.unwrap();
    let ca = TestCa::new("Serve Test CA");
    store.add("a.test", "t", &version("1", &policy("testing", "mx.a.test", 86_400))).await.unwrap();
    let issued = ca.issue(&CertSpec::valid_for(&["mta-sts.a.test"]));
    store
        .put_certificate(
            &checked_certificate("a.test", &issued.chain_pem, &issued.key_pem, "manual", now())
                .unwrap(),
        )
        .await
        .unwrap();
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = https.local_addr().unwrap();
    let instance = Instance::new();
    let extra = mtasts_serve::http::reports_routes(
        instance.catalog.clone(),
        mtasts_reports::Ingestor::new(reports.clone(), mtasts_reports::Limits::default()),
        mtasts_reports::http::HttpLimits::default(),
    );
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions { reload_every: Duration::from_millis(100), ..Default::default() };
    let server_store = store.clone();
    tokio::spawn(async move {
        run(
            server_store,
            instance,
            Listeners { https, http: None },
            Some(extra),
            options,
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(ca.root_store()))
        .resolve("mta-sts.a.test", addr)
        .build()
        .unwrap();
    let base = format!("https://mta-sts.a.test:{}", addr.port());
    let report = serde_json::json!({
        "organization-name": "Example Sender",
        "date-range": {"start-datetime": "2026-12-01T00:00:00Z", "end-datetime": "2026-12-01T23:59:59Z"},
        "contact-info": "tlsrpt@sender.example",
        "report-id": "r-1",
        "policies": [{"policy": {"policy-type": "sts", "policy-domain": "a.test", "policy-string": ["version: STSv1"]},
            "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        match client
            .post(format!("{base}/v1/tlsrpt"))
            .header("content-type", "application/tlsrpt+json")
            .body(report.to_string())
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let listed = reports.list(Some("a.test"), 10).await.unwrap();
    assert_eq!(listed.len(), 1, "stored before the 200");
    // Not JSON: refused with the reason, nothing stored.
    let r = client
        .post(format!("{base}/v1/tlsrpt"))
        .header("content-type", "application/tlsrpt+json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(reports.list(Some("a.test"), 10).await.unwrap().len(), 1);
    // The policy and the 404s are untouched.
    assert_eq!(
        client
            .get(format!("{base}/.well-known/mta-sts.txt"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(client.get(format!("{base}/other")).send().await.unwrap().status().as_u16(), 404);
}

#[test]
fn certificates_are_checked_before_they_are_stored() {
    let ca = TestCa::new("Serve Test CA");
    let good = ca.issue(&CertSpec::valid_for(&["mta-sts.a.test"]));
    let wildcard = ca.issue(&CertSpec::valid_for(&["*.a.test"]));
    let other = ca.issue(&CertSpec::valid_for(&["mta-sts.b.test"]));
    let expired = ca.issue(&CertSpec::expired(&["mta-sts.a.test"]));
    let t = now();
    let c = checked_certificate("a.test", &good.chain_pem, &good.key_pem, "manual", t).unwrap();
    assert!(c.not_after > t && c.not_before <= t);
    checked_certificate("a.test", &wildcard.chain_pem, &wildcard.key_pem, "manual", t).unwrap();
    let e =
        checked_certificate("a.test", &other.chain_pem, &other.key_pem, "manual", t).unwrap_err();
    assert!(e.to_string().contains("it is for mta-sts.b.test, not mta-sts.a.test"), "{e}");
    let e =
        checked_certificate("a.test", &good.chain_pem, &other.key_pem, "manual", t).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    let e = checked_certificate("a.test", &expired.chain_pem, &expired.key_pem, "manual", t)
        .unwrap_err();
    assert!(e.to_string().contains("expired on"), "{e}");
    let e = checked_certificate("a.test", "junk", &good.key_pem, "manual", t).unwrap_err();
    assert!(e.to_string().contains("no certificate") || e.to_string().contains("PEM"), "{e}");
}
