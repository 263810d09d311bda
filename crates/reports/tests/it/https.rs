//! The HTTPS intake over real TLS (test CA), against the real store.

use mtasts_reports::http::{HttpLimits, ServeOptions, router, serve, tls_acceptor};
use mtasts_reports::{Ingestor, Limits};
use mtasts_store::reports::ReportStore;
use mtasts_store::testing::TestDb;
use mtasts_testkit::ca::{CertSpec, TestCa};

use crate::ingest::{data, json_sample};

struct Receiver {
    url: String,
    client: reqwest::Client,
    store: ReportStore,
    _db: TestDb,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn receiver(limits: HttpLimits) -> Receiver {
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ca = TestCa::new("Reports Test CA");
    let cert = ca.issue(&CertSpec::valid_for(&["reports.test"]));
    let acceptor = tls_acceptor(cert.chain.clone(), cert.key_der()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(
        Ingestor::new(store.clone(), Limits { max_message: 1 << 20, max_report: 1 << 20 }),
        limits,
    );
    tokio::spawn(serve(listener, Some(acceptor), app, ServeOptions::default(), async move {
        let _ = stopped.await;
    }));
    let tls = mtasts_testkit::ca::client_config(ca.root_store());
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("reports.test", addr)
        .build()
        .unwrap();
    Receiver {
        url: format!("https://reports.test:{}/v1/tlsrpt", addr.port()),
        client,
        store,
        _db: db,
        _stop: stop,
    }
}

impl Receiver {
    async fn post(&self, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .client
            .post(&self.url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// The same report by HTTPS and by mail ends in the same rows; HTTPS then mail is one report.
#[tokio::test]
async fn https_and_mail_store_the_same_report_once() {
    let rx = receiver(HttpLimits::default()).await;
    let gz = data("mox__testdata__tlsreports__example_google_extracted.json.gz");
    let (status, body) = rx.post("application/tlsrpt+gzip", gz.clone()).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["duplicate"], false);
    let id = doc["id"].as_i64().unwrap();
    // Committed before the 200: it is there now.
    let via_https = rx.store.get(id).await.unwrap().expect("stored before the 2xx");
    assert_eq!(via_https.row.channel, "https");
    assert_eq!(via_https.submitter.as_deref(), Some("127.0.0.1"));

    // The mail carrying the same report, into a second database: the same rows.
    let other = TestDb::sqlite();
    let mail_store = ReportStore::with_database(other.database().await).await.unwrap();
    let ing = Ingestor::new(mail_store.clone(), Limits::default());
    let by_mail =
        ing.mail(&data("mox__testdata__tlsreports__example.eml"), 1).await.unwrap().remove(0);
    let via_mail = mail_store.get(by_mail.id).await.unwrap().unwrap();
    assert_eq!(
        mtasts_reports::record::parsed_document(&via_mail.raw_json),
        mtasts_reports::record::parsed_document(&via_https.raw_json)
    );
    assert_eq!(via_mail.raw_json, via_https.raw_json);
    assert_eq!(mail_store.days(None, 0).await.unwrap(), rx.store.days(None, 0).await.unwrap());

    // The same report again by HTTPS: acknowledged, stored once.
    let (status, body) = rx.post("application/tlsrpt+gzip", gz).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");
    assert_eq!(rx.store.count().await.unwrap(), 1);
    let (status, _) =
        rx.post("application/tlsrpt+json", json_sample("parsedmarc__smtp_tls__rfc8460.json")).await;
    assert_eq!(status, 200);
    assert_eq!(rx.store.count().await.unwrap(), 2);
}

#[tokio::test]
async fn refusals_say_why_and_store_nothing() {
    let rx = receiver(HttpLimits { per_client_per_minute: 5, ..HttpLimits::default() }).await;
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &vec![b'{'; 8 << 20]).unwrap();
    for (ct, body, status, words) in [
        ("text/plain", b"{}".to_vec(), 415, "is not a TLS-RPT report type"),
        ("application/tlsrpt+gzip", bomb.finish().unwrap(), 413, "gzip bomb"),
        ("application/tlsrpt+json", vec![b' '; 2 << 20], 413, "limit"),
        (
            "application/tlsrpt+json",
            b"{\"organization-name\": 1}".to_vec(),
            400,
            "organization-name",
        ),
    ] {
        let (got, text) = rx.post(ct, body).await;
        assert_eq!(got, status, "{ct}: {text}");
        assert!(text.contains(words), "{ct}: {text}");
    }
    assert_eq!(rx.store.count().await.unwrap(), 0);
    // The fifth request from this client is still served; the sixth within the minute is not.
    let (got, _) = rx.post("text/plain", vec![]).await;
    assert_eq!(got, 415);
    let (got, text) = rx.post("application/tlsrpt+json", vec![]).await;
    assert_eq!(got, 429, "{text}");
}

/// The analysis API beside the receiver: the stored report as JSON, with the token only.
#[tokio::test]
async fn the_api_answers_with_the_token_only() {
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing = Ingestor::new(store.clone(), Limits::default());
    ing.file(&json_sample("parsedmarc__smtp_tls__rfc8460.json"), "rfc", 1).await.unwrap();
    let app = mtasts_reports::api::router(store.clone(), "0123456789abcdef")
        .merge(router(ing, HttpLimits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, None, app, ServeOptions::default(), async move {
        let _ = stopped.await;
    }));
    let tls = mtasts_testkit::ca::client_config(rustls::RootCertStore::empty());
    let client = reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();
    let url = format!("http://{addr}/api/v1/reports?domain=company-y.example");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client.get(&url).bearer_auth("0123456789abcdeX").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client.get(&url).bearer_auth("0123456789abcdef").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(rows[0]["failed"], 303, "{rows}");
    let id = rows[0]["id"].as_i64().unwrap();
    let one: serde_json::Value = client
        .get(format!("http://{addr}/api/v1/reports/{id}"))
        .bearer_auth("0123456789abcdef")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(one["report"]["organization-name"], "Company-X");
    let verdict: serde_json::Value = client
        .get(format!("http://{addr}/api/v1/domains/company-y.example/readiness?days=3660"))
        .bearer_auth("0123456789abcdef")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(verdict["ready"], false, "{verdict}");
    // POSTs still reach the receiver.
    let r = client
        .post(format!("http://{addr}/v1/tlsrpt"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    db.cleanup().await;
}

/// A client that trickles its headers is cut off after the header timeout, and connections
/// past the limit are refused at once; the others are still served.
#[tokio::test]
async fn slow_and_surplus_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let app = router(Ingestor::new(store, Limits::default()), HttpLimits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options =
        ServeOptions { max_connections: 2, header_timeout: std::time::Duration::from_millis(500) };
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, None, app, options, async move {
        let _ = stopped.await;
    }));
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    second.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
    // The third is over the limit: closed without an answer.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), third.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(n.map_or(true, |n| n == 0), "refused at once");
    // The slow one is cut off within the header timeout.
    let started = std::time::Instant::now();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    drop(second);
    db.cleanup().await;
}
