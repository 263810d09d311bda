//! Alerts to a webhook (a local HTTP server recording what it receives).

use std::sync::{Arc, Mutex};

use mtasts_reports::alert::{AlertRules, Webhook};
use mtasts_reports::{Ingestor, Limits};
use mtasts_store::reports::ReportStore;
use mtasts_store::testing::TestDb;

use crate::ingest::json_sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_report_and_new_kinds_reach_the_webhook_once() {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tls = mtasts_testkit::ca::client_config(rustls::RootCertStore::empty());
    let client = reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();

    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing = Ingestor::new(store, Limits::default())
        .with_alerts(AlertRules::default(), Webhook::new(format!("http://{addr}/hook"), client));
    // RFC 8460's example: 303 of 5629 sessions failed (5.4%), three kinds never seen before.
    let rfc = json_sample("parsedmarc__smtp_tls__rfc8460.json");
    ing.file(&rfc, "rfc", 1).await.unwrap();
    let posts = got.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let alerts = posts[0]["alerts"].as_array().unwrap();
    let kinds: Vec<&str> = alerts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["failure-rate", "new-failure-kind", "new-failure-kind", "new-failure-kind"],
        "{alerts:?}"
    );
    assert!(
        alerts[0]["message"].as_str().unwrap().contains("303 of 5629 sessions failed (5.4%)"),
        "{alerts:?}"
    );
    // The same report again: a duplicate, no alert.
    ing.file(&rfc, "rfc", 2).await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 1);
    db.cleanup().await;
}
