//! Certificates by ACME against Debian's pebble: the delegation checked before ordering, the
//! HTTP-01 challenge answered by another instance through the database, the certificate
//! stored and served by SNI, renewal near the end, back-off after a failure, one instance
//! ordering at a time.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use mtasts_net::dns::RecordType;
use mtasts_serve::acme::{Acme, AcmeOptions, ChallengeKind};
use mtasts_serve::http::Challenges;
use mtasts_serve::lifecycle::Service;
use mtasts_serve::server::{Instance, Listeners, ServerOptions, run};
use mtasts_store::hosting::{HostingStore, NewVersion, StoredCertificate};
use mtasts_testkit::World;
use mtasts_testkit::ca::{CertSpec, TestCa};
use mtasts_testkit::dns::Override;
use mtasts_testkit::pebble::Pebble;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::common::{TestDb, both_backends, now, world_net};

both_backends!(certificates_by_acme);

const POLICY: &str = "version: STSv1\nmode: testing\nmx: mx.shop.test\nmax_age: 86400\n";

fn version(text: &str) -> NewVersion {
    NewVersion {
        policy_id: "1".into(),
        policy_text: text.into(),
        mode: "testing".into(),
        max_age: 86_400,
        author: "test".into(),
        reason: "test".into(),
        at: now(),
    }
}

/// The leaf certificate's issuer, for telling certificates apart.
fn issuer(cert: &StoredCertificate) -> String {
    let key = mtasts_serve::catalog::certified_key(cert).unwrap();
    let leaf = key.end_entity_cert().unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).unwrap();
    parsed.issuer().to_string()
}

async fn certificates_by_acme(db: &TestDb) {
    let world = World::builder().build().await;
    // The instance the CA's validation reaches listens on 127.0.0.1; the orderer's own
    // challenges are not served anywhere, so the answer must come from the database.
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_addr, https_addr) = (http.local_addr().unwrap(), https.local_addr().unwrap());
    let Some(pebble) = Pebble::start(world.dns_addr(), http_addr.port(), https_addr.port()) else {
        return;
    };
    let dns_server = world.dns();
    dns_server.set_override(
        "mta-sts.shop.test",
        RecordType::A,
        Override::A(vec![Ipv4Addr::LOCALHOST]),
    );
    dns_server.set_override("mta-sts.shop.test", RecordType::AAAA, Override::NoData);
    // elsewhere.test points its policy host at someone else.
    dns_server.set_override(
        "mta-sts.elsewhere.test",
        RecordType::A,
        Override::A(vec![Ipv4Addr::new(127, 9, 9, 9)]),
    );

    let store = HostingStore::with_database(db.database().await).await.unwrap();
    store.add("shop.test", "t", &version(POLICY)).await.unwrap();
    store.add("elsewhere.test", "t", &version(POLICY)).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions { reload_every: Duration::from_millis(100), ..Default::default() };
    let server_store = store.clone();
    let instance = Instance::new();
    let served_challenges = instance.challenges.clone();
    let server = tokio::spawn(async move {
        let listeners = Listeners { https, http: Some(http) };
        run(server_store, instance, listeners, None, options, async move {
            let _ = stopped.await;
        })
        .await
    });

    let (_, dns) = world_net(&world, world.https_port());
    let mut options = AcmeOptions::new(pebble.directory_url());
    options.ca_file = Some(pebble.listener_ca_file());
    options.contact = vec!["mailto:hostmaster@provider.test".into()];
    options.addresses = vec![Ipv4Addr::LOCALHOST.into()];
    options.order_timeout = Duration::from_secs(60);
    let service = Service { cname_target: None, rua: vec![] };
    let acme = Acme::new(
        store.clone(),
        options.clone(),
        service.clone(),
        dns.clone(),
        Arc::new(Challenges::default()),
        "instance-a",
    );

    // A CA that does not answer fails the round once, naming it; no domain is marked failed.
    let mut dead_options = options.clone();
    dead_options.directory = "https://127.0.0.1:9/dir".into();
    let dead = Acme::new(
        store.clone(),
        dead_options,
        service.clone(),
        dns.clone(),
        Arc::new(Challenges::default()),
        "instance-a",
    );
    let err = dead.round().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ACME account at https://127.0.0.1:9/dir: cannot create an account"),
        "{err}"
    );
    assert!(store.acme_statuses().await.unwrap().is_empty());

    // First round: shop.test is issued; elsewhere.test is refused before any order, with the
    // record to publish.
    let round = acme.round().await.unwrap_or_else(|e| panic!("{e}\npebble: {}", pebble.log()));
    assert!(!round.busy);
    assert_eq!(round.issued, vec!["shop.test".to_owned()], "{round:?}\npebble: {}", pebble.log());
    assert_eq!(round.failed.len(), 1, "{round:?}");
    assert_eq!(round.failed[0].0, "elsewhere.test");
    assert_eq!(
        round.failed[0].1,
        "mta-sts.elsewhere.test is not delegated to this service: it resolves to 127.9.9.9; \
         publish mta-sts.elsewhere.test. IN A 127.0.0.1"
    );
    let statuses = store.acme_statuses().await.unwrap();
    let failed = statuses.iter().find(|s| s.domain == "elsewhere.test").unwrap();
    assert_eq!(failed.failures, 1);
    assert!(failed.next_attempt >= failed.last_attempt + 300, "{failed:?}");
    let ok = statuses.iter().find(|s| s.domain == "shop.test").unwrap();
    assert_eq!((ok.failures, ok.last_error.as_deref()), (0, None));

    // The certificate is stored, from pebble, and served by SNI: a client trusting only
    // pebble's root fetches the policy.
    let certs = store.certificates().await.unwrap();
    let issued = certs.iter().find(|c| c.domain == "shop.test").unwrap().clone();
    assert_eq!(issued.source, "acme");
    assert!(issued.not_after > now() + 86_400);
    let management = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(
            pebble.listener_ca().root_store(),
        ))
        .build()
        .unwrap();
    let root_pem = management.get(pebble.roots_url()).send().await.unwrap().text().await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap()).unwrap();
    let sender = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(roots))
        .resolve("mta-sts.shop.test", https_addr)
        .build()
        .unwrap();
    let url = format!("https://mta-sts.shop.test:{}/.well-known/mta-sts.txt", https_addr.port());
    let mut body = None;
    for _ in 0..50 {
        if let Ok(r) = sender.get(&url).send().await {
            body = Some((r.status().as_u16(), r.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body, Some((200, POLICY.to_owned())));

    // Nothing is due now: no order, and the failed domain waits for its back-off.
    let round = acme.round().await.unwrap();
    assert_eq!((round.issued.len(), round.failed.len()), (0, 0), "{round:?}");

    // One instance orders at a time: while instance-b holds the lease, instance-a skips.
    assert!(store.try_lock("acme", "instance-b", now(), 600).await.unwrap());
    assert!(acme.round().await.unwrap().busy);
    store.unlock("acme", "instance-b").await.unwrap();

    // Renewal: an ACME certificate with one day of 90 left is replaced by pebble's.
    let ca = TestCa::new("Old ACME CA");
    let mut spec = CertSpec::valid_for(&["mta-sts.shop.test"]);
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(89);
    spec.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let old = ca.issue(&spec);
    let mut old = mtasts_serve::catalog::checked_certificate(
        "shop.test",
        &old.chain_pem,
        &old.key_pem,
        "acme",
        now(),
    )
    .unwrap();
    old.updated_at = now() - 1;
    store.put_certificate(&old).await.unwrap();
    let round = acme.round().await.unwrap();
    assert_eq!(round.issued, vec!["shop.test".to_owned()], "{round:?}");
    let renewed = store.certificates().await.unwrap();
    let renewed = renewed.iter().find(|c| c.domain == "shop.test").unwrap();
    assert_eq!(issuer(renewed), issuer(&issued), "renewed by pebble, not the old CA");
    assert!(renewed.not_after > old.not_after);
    // The challenge answers were withdrawn.
    assert_eq!(store.challenge("anything", now()).await.unwrap(), None);

    // TLS-ALPN-01 (RFC 8737), answered on the HTTPS port by the instance that orders.
    dns_server.set_override(
        "mta-sts.alpn.test",
        RecordType::A,
        Override::A(vec![Ipv4Addr::LOCALHOST]),
    );
    dns_server.set_override("mta-sts.alpn.test", RecordType::AAAA, Override::NoData);
    store.add("alpn.test", "t", &version(POLICY)).await.unwrap();
    let mut alpn_options = options.clone();
    alpn_options.challenge = ChallengeKind::TlsAlpn01;
    let alpn = Acme::new(
        store.clone(),
        alpn_options,
        service,
        dns,
        served_challenges.clone(),
        "instance-a",
    );
    let cert =
        alpn.obtain("alpn.test").await.unwrap_or_else(|e| panic!("{e}\npebble: {}", pebble.log()));
    assert_eq!(issuer(&cert), issuer(&issued));
    assert!(
        served_challenges.alpn("mta-sts.alpn.test").is_none(),
        "the challenge certificate is withdrawn"
    );

    drop(stop);
    server.await.unwrap().unwrap();
}
