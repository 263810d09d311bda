//! The resolver's own policy failures reach the TLS-RPT collector socket as libtlsrpt
//! datagrams (RFC 8460 §4.3.2.2), with the domain's `_smtp._tls` record as the world
//! publishes it.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use mtasts_proto::datagram::Datagram;
use mtasts_proto::{DomainName, ResultType};
use mtasts_resolver::Zones;
use mtasts_resolver::lifecycle::{Decision, NoPolicyReason};
use mtasts_testkit::{HttpBehaviour, Scenario, World};

use crate::support::resolver_for;

fn receive(socket: &UnixDatagram) -> Datagram {
    let mut buf = vec![0_u8; 65536];
    let n = socket.recv(&mut buf).expect("a datagram within the timeout");
    Datagram::parse(&buf[..n]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_failures_are_reported_as_datagrams() {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tlsrpt.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let resolver = resolver_for(&world, Zones::default()).with_tlsrpt_socket(&path).unwrap();
    let domain = DomainName::parse_ascii("good.test").unwrap();

    // The policy host answers 404: sts-policy-fetch-error.
    world.https().set_behaviour(
        "mta-sts.good.test",
        HttpBehaviour::Respond {
            status: 404,
            content_type: Some("text/plain".into()),
            body: b"no".to_vec(),
        },
    );
    let d = resolver.decide(&domain).await;
    assert!(matches!(d, Decision::NoPolicy(NoPolicyReason::FetchFailed(_))), "{d:?}");
    let got = receive(&socket);
    assert_eq!(got.domain, domain);
    assert!(
        got.record.starts_with("v=TLSRPTv1;"),
        "the world's _smtp._tls record: {:?}",
        got.record
    );
    let p = &got.policies[0];
    assert!(p.failed);
    assert_eq!(p.domain.as_deref(), Some("good.test"));
    assert_eq!(p.failures[0].result_type, ResultType::StsPolicyFetchError);
    assert!(p.failures[0].reason.as_deref().unwrap().contains("404"), "{:?}", p.failures[0]);

    // Served as text/html on another resolver (no back-off): sts-policy-invalid.
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = dir2.path().join("tlsrpt.sock");
    let socket2 = UnixDatagram::bind(&path2).unwrap();
    socket2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let resolver = resolver_for(&world, Zones::default()).with_tlsrpt_socket(&path2).unwrap();
    world.https().set_behaviour(
        "mta-sts.good.test",
        HttpBehaviour::Respond {
            status: 200,
            content_type: Some("text/html".into()),
            body: mtasts_testkit::world::policy_text("enforce", 86400, &["mx1.good.test"])
                .into_bytes(),
        },
    );
    resolver.decide(&domain).await;
    assert_eq!(receive(&socket2).policies[0].failures[0].result_type, ResultType::StsPolicyInvalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_collector_listening_does_not_hold_up_lookups() {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let dir = tempfile::tempdir().unwrap();
    let resolver = resolver_for(&world, Zones::default())
        .with_tlsrpt_socket(dir.path().join("nobody-here.sock"))
        .unwrap();
    world.https().set_behaviour(
        "mta-sts.good.test",
        HttpBehaviour::Respond { status: 500, content_type: None, body: Vec::new() },
    );
    let started = std::time::Instant::now();
    let d = resolver.decide(&DomainName::parse_ascii("good.test").unwrap()).await;
    assert!(matches!(d, Decision::NoPolicy(_)));
    assert!(started.elapsed() < Duration::from_secs(3));
}
