//! Datagrams → collector → reporter → the project's own receivers: `report receive` (HTTPS,
//! RFC 8460 §5.4) and `report ingest` of the mail the relay got (§5.3, DKIM verified against
//! the key in the test world's DNS). The stored reports equal the aggregate and parse with the
//! strict parser. Then failed deliveries: retried with back-off, given up after the day.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use mtasts_net::dns::RecordType;
use mtasts_net::submit::{Relay, RelayTls, Submitter};
use mtasts_proto::Report;
use mtasts_reporter::send::Planned;
use mtasts_reporter::sign::Signer;
use mtasts_reporter::{Delivery, Identity, MailRoute, Reporter, Schedule};
use mtasts_reports::dkim::{DkimPolicy, DkimVerifier};
use mtasts_reports::http::{HttpLimits, ServeOptions, router, serve, tls_acceptor};
use mtasts_reports::{Ingestor, Limits};
use mtasts_store::outbound::OutboundStore;
use mtasts_store::reports::ReportStore;
use mtasts_store::testing::TestDb;
use mtasts_testkit::World;
use mtasts_testkit::ca::CertSpec;
use mtasts_testkit::dns::Override;
use mtasts_testkit::smtp::{SmtpBehaviour, SmtpServer};
use time::OffsetDateTime;

use crate::collect::{Running, sts};

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn pem(der: &[u8]) -> String {
    let b = base64(der);
    let lines: Vec<&str> =
        b.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

fn identity() -> Identity {
    Identity {
        organization: "Sender Test Org".into(),
        contact: "tlsrpt-admin@sender.test".into(),
        submitter: "sender.test".into(),
    }
}

/// 2026-12-03T12:00:00Z and the next day's 01:00.
const NOON: i64 = 1_796_299_200;
const NEXT_DAY: i64 = NOON + 13 * 3600;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

struct Receiver {
    port: u16,
    store: ReportStore,
    _db: TestDb,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn https_receiver(world: &World) -> Receiver {
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let cert = world.ca().issue(&CertSpec::valid_for(&["reports.recipient.test"]));
    let acceptor = tls_acceptor(cert.chain.clone(), cert.key_der()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    world.dns().set_override(
        "reports.recipient.test",
        RecordType::A,
        Override::A(vec!["127.0.0.1".parse().unwrap()]),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Ingestor::new(store.clone(), Limits::default()), HttpLimits::default());
    tokio::spawn(serve(listener, Some(acceptor), app, ServeOptions::default(), async move {
        let _ = stopped.await;
    }));
    Receiver { port, store, _db: db, _stop: stop }
}

fn delivery(world: &World, relay_port: u16, signer: Option<Arc<Signer>>) -> Delivery {
    let roots = Arc::new(world.ca().root_store());
    let dns: Arc<dyn mtasts_net::DnsClient> =
        Arc::new(mtasts_net::HickoryDns::new(&[world.dns_addr()], Duration::from_secs(2)).unwrap());
    let relay = Relay { host: "127.0.0.1".into(), port: relay_port, tls: RelayTls::None };
    Delivery {
        identity: identity(),
        from: "noreply@sender.test".into(),
        mail: Some(MailRoute::Relay(Submitter::new(
            relay,
            roots.clone(),
            "mta.sender.test",
            Duration::from_secs(5),
        ))),
        signer,
        https: mtasts_reporter::deliver::https_client(roots, dns, Duration::from_secs(5)).unwrap(),
        timeout: Duration::from_secs(5),
    }
}

/// A world publishing an Ed25519 DKIM key at `tlsrpt._domainkey.sender.test`, and its signer.
fn dkim(world: &World) -> Arc<Signer> {
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    use ring::signature::KeyPair as _;
    let record = format!("v=DKIM1; k=ed25519; s=tlsrpt; p={}", base64(pair.public_key().as_ref()));
    world.dns().set_override(
        "tlsrpt._domainkey.sender.test",
        RecordType::TXT,
        Override::Txt(vec![vec![record]]),
    );
    Arc::new(Signer::from_pem(pem(pkcs8.as_ref()).as_bytes(), "sender.test", "tlsrpt").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_to_reports_received_by_https_and_mail() {
    let world = World::builder().build().await;
    let receiver = https_receiver(&world).await;
    let relay_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = SmtpServer::start(
        relay_listener,
        SmtpBehaviour {
            banner: "relay.sender.test ESMTP".into(),
            starttls: false,
            cert: None,
            silent: false,
        },
    )
    .await
    .unwrap();

    // The collector, its day fixed at 2026-12-03.
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let store = OutboundStore::with_database(db.database().await).await.unwrap();
    let clock = Arc::new(AtomicI64::new(NOON));
    let clock: mtasts_reporter::collect::Clock = {
        let c = clock.clone();
        Arc::new(move || at(c.load(std::sync::atomic::Ordering::Relaxed)))
    };
    let c = Running::start(dir.path(), "c.sock", store.clone(), Some(clock)).await;
    let rec = format!(
        "v=TLSRPTv1; rua=mailto:tlsrpt@recipient.test,https://reports.recipient.test:{}/v1/tlsrpt",
        receiver.port
    );
    let mut datagrams = vec![sts("recipient.test", &rec, None); 40];
    datagrams.extend(vec![sts("recipient.test", &rec, Some((202, "198.51.100.7"))); 3]);
    datagrams.push(sts("recipient.test", &rec, Some((204, "198.51.100.8"))));
    // No record: counted, but there is nowhere to report it.
    datagrams.push(sts("quiet.test", "", None));
    c.send(&datagrams);
    c.received(datagrams.len() as u64).await;
    c.stop().await;

    let schedule =
        Schedule { spread: Duration::ZERO, grace: Duration::ZERO, ..Schedule::default() };
    let reporter = Reporter::new(
        store.clone(),
        delivery(&world, relay.addr().port(), Some(dkim(&world))),
        schedule,
    );
    // Before the day closes nothing is planned.
    assert_eq!(reporter.plan(at(NOON + 3600)).await.unwrap(), Planned::default());
    let planned = reporter.plan(at(NEXT_DAY)).await.unwrap();
    assert_eq!(planned.days, vec!["2026-12-03".to_owned()]);
    assert_eq!((planned.reports, planned.deliveries), (2, 2), "{planned:?}");
    assert_eq!(planned.undeliverable.len(), 1, "quiet.test has no record");
    // Planned once.
    assert!(reporter.plan(at(NEXT_DAY)).await.unwrap().days.is_empty());

    let sent = reporter.send_due(at(NEXT_DAY), 100).await.unwrap();
    assert_eq!(
        (sent.delivered, sent.retrying, sent.given_up),
        (2, 0, 0),
        "{:?}",
        store.deliveries(None).await.unwrap()
    );
    assert!(
        store.deliveries(None).await.unwrap().iter().all(|d| d.state == "sent" && d.attempts == 1)
    );
    // Nothing more is due.
    let again = reporter.send_due(at(NEXT_DAY + 86_400), 100).await.unwrap();
    assert_eq!(again.delivered + again.retrying + again.given_up, 0);

    let reports = reporter.reports(time::macros::date!(2026 - 12 - 03)).await.unwrap();
    let expected = reports.iter().find(|r| r.domain == "recipient.test").unwrap();
    let summary = &expected.report.policies[0].summary;
    assert_eq!(
        (summary.total_successful_session_count, summary.total_failure_session_count),
        (40, 4)
    );

    // HTTPS: stored by the receiver, equal to the aggregate, strictly valid.
    let listed = receiver.store.list(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let via_https = receiver.store.get(listed[0].id).await.unwrap().unwrap();
    let parsed = Report::parse_strict(via_https.raw_json.as_bytes()).unwrap();
    assert_eq!(&parsed, &expected.report);

    // Mail: what the relay received, ingested with DKIM required.
    let sessions = relay.sessions();
    let messages: Vec<&String> = sessions.iter().flat_map(|s| s.messages.iter()).collect();
    assert_eq!(messages.len(), 1);
    let rcpt: Vec<&String> =
        sessions.iter().flat_map(|s| s.commands.iter()).filter(|c| c.starts_with("RCPT")).collect();
    assert_eq!(rcpt, vec!["RCPT TO:<tlsrpt@recipient.test>"]);
    let mail_db = TestDb::sqlite();
    let mail_store = ReportStore::with_database(mail_db.database().await).await.unwrap();
    let verifier = DkimVerifier::new(&[world.dns_addr()], Duration::from_secs(2)).unwrap();
    let ing = Ingestor::new(mail_store.clone(), Limits::default())
        .with_dkim(verifier, DkimPolicy::Require);
    let got = ing.mail(messages[0].as_bytes(), NEXT_DAY).await.unwrap();
    let stored = mail_store.get(got[0].id).await.unwrap().unwrap();
    assert_eq!(stored.row.dkim.as_deref(), Some("pass:sender.test"));
    assert_eq!(stored.submitter.as_deref(), Some("sender.test"));
    assert_eq!(stored.report_domain.as_deref(), Some("recipient.test"));
    assert_eq!(&Report::parse_strict(stored.raw_json.as_bytes()).unwrap(), &expected.report);

    // A tampered copy fails DKIM and is refused under `require`.
    let tampered = messages[0].replacen("Sender Test Org", "Sender Test Orc", 1);
    assert!(ing.mail(tampered.as_bytes(), NEXT_DAY).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_back_off_then_give_up() {
    let world = World::builder().build().await;
    let db = TestDb::sqlite();
    let store = OutboundStore::with_database(db.database().await).await.unwrap();
    // A destination where nothing listens (the world's dead address).
    let dead = world.dead_addr();
    world.dns().set_override("reports.recipient.test", RecordType::A, Override::A(vec![dead]));
    let rec = "v=TLSRPTv1; rua=https://reports.recipient.test:9/v1/tlsrpt".to_owned();
    let dir = tempfile::tempdir().unwrap();
    let clock: mtasts_reporter::collect::Clock = Arc::new(|| at(NOON));
    let c = Running::start(dir.path(), "c.sock", store.clone(), Some(clock)).await;
    c.send(&[sts("recipient.test", &rec, None)]);
    c.received(1).await;
    c.stop().await;

    let schedule = Schedule {
        spread: Duration::ZERO,
        grace: Duration::ZERO,
        give_up_after: Duration::from_secs(1000),
        ..Schedule::default()
    };
    let reporter = Reporter::new(store.clone(), delivery(&world, 9, None), schedule);
    reporter.plan(at(NEXT_DAY)).await.unwrap();
    let s = reporter.send_due(at(NEXT_DAY), 10).await.unwrap();
    assert_eq!(s.retrying, 1);
    let d = &store.deliveries(None).await.unwrap()[0];
    assert_eq!((d.state.as_str(), d.attempts, d.due_at), ("pending", 1, NEXT_DAY + 300));
    assert!(d.last_error.as_deref().unwrap().contains("reports.recipient.test"), "{d:?}");
    // Not due yet; then the second attempt waits twice as long.
    assert_eq!(reporter.send_due(at(NEXT_DAY + 299), 10).await.unwrap().retrying, 0);
    assert_eq!(reporter.send_due(at(NEXT_DAY + 300), 10).await.unwrap().retrying, 1);
    let d = &store.deliveries(None).await.unwrap()[0];
    assert_eq!((d.attempts, d.due_at), (2, NEXT_DAY + 300 + 600));
    // The third failure would retry past the give-up time: given up.
    let s = reporter.send_due(at(NEXT_DAY + 900), 10).await.unwrap();
    assert_eq!(s.given_up, 1);
    let d = &store.deliveries(None).await.unwrap()[0];
    assert_eq!(d.state, "failed");
    assert!(reporter.send_due(at(NEXT_DAY + 86_400), 10).await.unwrap().given_up == 0);
}
