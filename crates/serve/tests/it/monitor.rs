//! Monitoring against the test world and a running serve instance: a healthy domain has no
//! problems; MX drift, a stale TXT id and a certificate near its end appear once, alerted to a
//! webhook, and are resolved when fixed.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use mtasts_check::{CheckOptions, Checker};
use mtasts_net::dns::RecordType;
use mtasts_net::submit::{Relay, RelayTls, Submitter};
use mtasts_net::{HickoryDns, NetConfig};
use mtasts_serve::catalog::checked_certificate;
use mtasts_serve::domains::{Change, Manager};
use mtasts_serve::lifecycle::Service;
use mtasts_serve::monitor::{MailAlerts, Monitor, MonitorAlert, MonitorOptions};
use mtasts_serve::server::{Instance, Listeners, ServerOptions, run};
use mtasts_store::hosting::HostingStore;
use mtasts_testkit::World;
use mtasts_testkit::ca::CertSpec;
use mtasts_testkit::dns::Override;
use mtasts_testkit::smtp::{SmtpBehaviour, SmtpServer};
use mtasts_testkit::world::{DomainSpec, MxSpec};
use time::OffsetDateTime;

use crate::common::{TestDb, both_backends, now, world_net};

both_backends!(problems_appear_once_and_resolve);

/// A webhook receiver on loopback that keeps every body posted to it.
async fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn codes(alerts: &[MonitorAlert]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| match a {
            MonitorAlert::DomainProblem { problem } => {
                ("new".into(), problem.code.clone(), problem.subject.clone())
            }
            MonitorAlert::DomainProblemResolved { problem } => {
                ("resolved".into(), problem.code.clone(), problem.subject.clone())
            }
        })
        .collect();
    v.sort();
    v
}

async fn problems_appear_once_and_resolve(db: &TestDb) {
    let mut spec = DomainSpec::empty("shop.test");
    spec.mx = vec![MxSpec::good(10, "mx1.shop.test")];
    spec.tlsrpt_txt = vec![vec!["v=TLSRPTv1; rua=mailto:tlsrpt@shop.test".into()]];
    let world = World::builder().domain(spec).build().await;
    let store = HostingStore::with_database(db.database().await).await.unwrap();

    // A serve instance on 127.0.0.1, where mta-sts.shop.test points.
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_port = https.local_addr().unwrap().port();
    let server_store = store.clone();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let options =
            ServerOptions { reload_every: Duration::from_millis(100), ..Default::default() };
        run(
            server_store,
            Instance::new(),
            Listeners { https, http: None },
            None,
            options,
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    let (config, dns) = world_net(&world, https_port);
    let checker =
        Checker::with_dns(&config, dns, CheckOptions { dane: false, ..CheckOptions::default() })
            .unwrap();
    let service = Service { cname_target: None, rua: vec!["mailto:tlsrpt@shop.test".into()] };
    let manager = Manager::new(store.clone(), Some(checker), service);
    let t0 = OffsetDateTime::now_utc();
    let added = manager.add("shop.test", "t", "alice", None, t0).await.unwrap();
    let issued = world.ca().issue(&CertSpec::valid_for(&["mta-sts.shop.test"]));
    store
        .put_certificate(
            &checked_certificate("shop.test", &issued.chain_pem, &issued.key_pem, "manual", now())
                .unwrap(),
        )
        .await
        .unwrap();
    let dns = world.dns();
    dns.set_override("mta-sts.shop.test", RecordType::A, Override::A(vec![Ipv4Addr::LOCALHOST]));
    dns.set_override("mta-sts.shop.test", RecordType::AAAA, Override::NoData);
    dns.set_override(
        "_mta-sts.shop.test",
        RecordType::TXT,
        Override::Txt(vec![vec![format!("v=STSv1; id={};", added.domain.policy_id)]]),
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the server's first load

    let (url, posted) = webhook().await;
    let hook = mtasts_reports::alert::Webhook::new(url, reqwest_client());
    // Alert mail through a relay that requires STARTTLS (its certificate verified).
    let relay_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay_listener.local_addr().unwrap().port();
    let relay = SmtpServer::start(
        relay_listener,
        SmtpBehaviour {
            banner: "relay.provider.test ESMTP testkit".into(),
            starttls: true,
            cert: Some(world.ca().issue(&CertSpec::valid_for(&["127.0.0.1"]))),
            silent: false,
        },
    )
    .await
    .unwrap();
    let submitter = Submitter::new(
        Relay { host: "127.0.0.1".into(), port: relay_port, tls: RelayTls::Required },
        Arc::new(world.ca().root_store()),
        "serve.provider.test",
        Duration::from_secs(5),
    );
    let mail = MailAlerts {
        submitter,
        from: "mtasts@provider.test".into(),
        to: vec!["noc@provider.test".into(), "owner@shop.test".into()],
    };
    let monitor =
        Monitor::new(manager.clone(), MonitorOptions::default(), Some(hook), "instance-a")
            .with_mail(mail);

    // Healthy: nothing to say.
    let round = monitor.round(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(round.checked, 1);
    assert_eq!(codes(&round.alerts), vec![], "{:#?}", store.problems(None).await.unwrap());
    assert!(store.checked_at("shop.test").await.unwrap().is_some());

    // MX drift: a new MX host the policy does not cover.
    dns.set_override(
        "shop.test",
        RecordType::MX,
        Override::Mx(vec![(10, "mx1.shop.test".into()), (20, "mx2.shop.test".into())]),
    );
    let round = monitor.round(OffsetDateTime::now_utc()).await.unwrap();
    let got = codes(&round.alerts);
    assert!(
        got.contains(&("new".into(), "mx-not-covered".into(), "mx2.shop.test".into())),
        "{got:?}"
    );
    // Said once: the next round raises nothing new.
    let again = monitor.round(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(codes(&again.alerts), vec![]);
    let stored = store.problems(Some("shop.test")).await.unwrap();
    assert!(
        stored.iter().any(|p| p.code == "mx-not-covered" && p.severity == "warning"),
        "{stored:?}"
    );
    let posted_now = posted.lock().unwrap().clone();
    assert_eq!(posted_now.len(), 1, "one webhook post for the round with news: {posted_now:?}");
    assert_eq!(
        posted_now[0]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "domain-problem" && a["code"] == "mx-not-covered")
            .count(),
        1
    );
    let sessions = relay.sessions();
    let mailed: Vec<&mtasts_testkit::smtp::SmtpSession> =
        sessions.iter().filter(|x| !x.messages.is_empty()).collect();
    assert_eq!(mailed.len(), 1, "one mail for the round with news");
    assert!(mailed[0].starttls, "over STARTTLS");
    assert!(
        mailed[0].commands.iter().any(|c| c == "RCPT TO:<owner@shop.test>"),
        "{:?}",
        mailed[0].commands
    );
    let message = &mailed[0].messages[0];
    assert!(message.contains("Subject: mtasts serve: "), "{message}");
    assert!(
        message.contains("WARNING shop.test mx2.shop.test:")
            && message.contains("[mx-not-covered]"),
        "{message}"
    );

    // The owner covers mx2 (a new id) but has not updated the TXT record yet: the drift is
    // resolved, the stale id appears.
    let both = Change {
        mx: Some(vec!["mx1.shop.test".into(), "mx2.shop.test".into()]),
        ..Change::default()
    };
    manager.set("shop.test", &both, "alice", false, OffsetDateTime::now_utc()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // served after the next reload
    let round = monitor.round(OffsetDateTime::now_utc()).await.unwrap();
    let got = codes(&round.alerts);
    assert!(
        got.contains(&("resolved".into(), "mx-not-covered".into(), "mx2.shop.test".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("new".into(), "hosting-txt-id-stale".into(), "_mta-sts.shop.test".into())),
        "{got:?}"
    );

    // A certificate in its last days.
    let mut spec = CertSpec::valid_for(&["mta-sts.shop.test"]);
    spec.not_after = OffsetDateTime::now_utc() + time::Duration::days(3);
    let short = world.ca().issue(&spec);
    store
        .put_certificate(
            &checked_certificate("shop.test", &short.chain_pem, &short.key_pem, "manual", now())
                .unwrap(),
        )
        .await
        .unwrap();
    let round = monitor.round(OffsetDateTime::now_utc()).await.unwrap();
    let got = codes(&round.alerts);
    assert!(
        got.contains(&("new".into(), "hosting-certificate".into(), "mta-sts.shop.test".into())),
        "{got:?}"
    );
    let cert = store.problems(Some("shop.test")).await.unwrap();
    let cert = cert.iter().find(|p| p.code == "hosting-certificate").unwrap();
    assert!(
        cert.message.contains("ends in 2 day(s)") || cert.message.contains("ends in 3 day(s)"),
        "{}",
        cert.message
    );

    // A DNS server that does not answer: the round is skipped with the reason, and no problem
    // is recorded or resolved because of it.
    let mut quick = NetConfig::private_world(
        "127.0.0.1:9".parse().unwrap(),
        world.ca_pem_path(),
        https_port,
        world.smtp_port(),
        "tests.mtasts.test",
    );
    quick.timeouts.dns = Duration::from_millis(300);
    let dead_dns = Arc::new(HickoryDns::new(&quick.dns_servers, quick.timeouts.dns).unwrap());
    let dead_checker = Checker::with_dns(
        &quick,
        dead_dns,
        CheckOptions { dane: false, ..CheckOptions::default() },
    )
    .unwrap();
    let before = store.problems(Some("shop.test")).await.unwrap();
    let blind = Monitor::new(
        Manager::new(store.clone(), Some(dead_checker), Service::default()),
        MonitorOptions::default(),
        None,
        "instance-c",
    );
    let err = blind.round(OffsetDateTime::now_utc()).await.unwrap_err();
    assert!(err.to_string().starts_with("monitoring skipped: "), "{err}");
    assert_eq!(store.problems(Some("shop.test")).await.unwrap(), before);

    // One monitor at a time.
    assert!(store.try_lock("monitor", "instance-b", now(), 600).await.unwrap());
    assert!(monitor.round(OffsetDateTime::now_utc()).await.unwrap().busy);
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(
            mtasts_testkit::ca::client_config(rustls::RootCertStore::empty()),
        )
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}
