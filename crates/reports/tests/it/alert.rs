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

/// The same alerts by mail, through a relay that requires STARTTLS (the testkit SMTP server,
/// which keeps what it receives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_by_mail() {
    use mtasts_net::submit::{Mailer, Relay, RelayTls, Submitter};
    use mtasts_testkit::ca::{CertSpec, TestCa};
    use mtasts_testkit::smtp::{SmtpBehaviour, SmtpServer};

    let ca = TestCa::new("Relay CA");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = SmtpServer::start(
        listener,
        SmtpBehaviour {
            banner: "relay.example ESMTP testkit".into(),
            starttls: true,
            cert: Some(ca.issue(&CertSpec::valid_for(&["127.0.0.1"]))),
            silent: false,
        },
    )
    .await
    .unwrap();
    let mailer = Mailer {
        submitter: Submitter::new(
            Relay { host: "127.0.0.1".into(), port, tls: RelayTls::Required },
            Arc::new(ca.root_store()),
            "reports.example",
            std::time::Duration::from_secs(5),
        ),
        from: "tlsrpt-alerts@example.net".into(),
        to: vec!["postmaster@example.net".into()],
    };
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing =
        Ingestor::new(store, Limits::default()).with_alert_mail(AlertRules::default(), mailer);
    ing.file(&json_sample("parsedmarc__smtp_tls__rfc8460.json"), "rfc", 1).await.unwrap();
    let sessions = relay.sessions();
    let mails: Vec<&String> = sessions.iter().flat_map(|s| &s.messages).collect();
    assert_eq!(mails.len(), 1, "{sessions:?}");
    assert!(sessions.iter().any(|s| s.starttls && !s.messages.is_empty()), "over STARTTLS");
    let mail = mails[0];
    assert!(mail.contains("Subject: TLS-RPT: 4 alert(s) for company-y.example"), "{mail}");
    assert!(mail.contains("303 of 5629 sessions failed (5.4%)"), "{mail}");
    assert!(mail.contains("To: postmaster@example.net"), "{mail}");
    db.cleanup().await;
}
