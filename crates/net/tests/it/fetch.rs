//! The strict policy fetch (RFC 8461 §3.3) against the HTTPS test server.

use mtasts_net::{FetchError, PolicyFetcher};
use mtasts_proto::CertificateProblem;
use mtasts_proto::policy::POLICY_MAX_BYTES;
use mtasts_testkit::{Scenario, World};

use crate::{config_for, dns_for};

async fn fetch(scenario: Scenario) -> (World, Result<mtasts_net::FetchedPolicy, FetchError>) {
    let world = World::builder().scenario(scenario).build().await;
    let config = config_for(&world);
    let fetcher =
        PolicyFetcher::new(&config, config.trust.load().unwrap(), dns_for(&world)).unwrap();
    let result =
        fetcher.fetch(&mtasts_proto::DomainName::parse_ascii(&scenario.domain()).unwrap()).await;
    (world, result)
}

#[tokio::test]
async fn good_policy_with_sni_and_certificate_details() {
    let (world, result) = fetch(Scenario::Good).await;
    let policy = result.unwrap();
    assert_eq!(policy.url, "https://mta-sts.good.test/.well-known/mta-sts.txt");
    assert!(String::from_utf8_lossy(&policy.body).contains("mode: enforce"));
    assert!(policy.content_type.starts_with("text/plain"));
    let cert = policy.certificate.expect("peer certificate recorded");
    assert!(cert.dns_names.contains(&"mta-sts.good.test".to_owned()), "{cert:?}");
    let req = &world.https().requests()[0];
    assert_eq!(req.sni, "mta-sts.good.test");
    assert_eq!(req.path, "/.well-known/mta-sts.txt");
}

#[tokio::test]
async fn chunked_and_charset_are_fine() {
    assert!(fetch(Scenario::HttpsChunked).await.1.is_ok());
    assert!(fetch(Scenario::HttpsContentTypeCharset).await.1.is_ok());
}

#[tokio::test]
async fn certificate_problems_are_typed() {
    let cases = [
        (Scenario::HttpsUntrustedCert, CertificateProblem::UnknownIssuer),
        (Scenario::HttpsExpiredCert, CertificateProblem::Expired),
        (Scenario::HttpsWrongNameCert, CertificateProblem::NameMismatch),
    ];
    for (scenario, want) in cases {
        match fetch(scenario).await.1 {
            Err(FetchError::Certificate { problem, .. }) => {
                assert_eq!(problem, want, "{scenario:?}")
            }
            other => panic!("{scenario:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn redirect_and_status_rules() {
    match fetch(Scenario::HttpsRedirect).await {
        (world, Err(FetchError::Redirect { status, location })) => {
            assert_eq!(status, 301);
            assert_eq!(location.as_deref(), Some("https://www.https-redirect.test/mta-sts.txt"));
            assert_eq!(world.https().requests().len(), 1, "redirect not followed");
        }
        other => panic!("{:?}", other.1),
    }
    assert!(matches!(fetch(Scenario::Https404).await.1, Err(FetchError::Status { status: 404 })));
    assert!(matches!(fetch(Scenario::Https500).await.1, Err(FetchError::Status { status: 500 })));
}

#[tokio::test]
async fn wrong_media_type_keeps_the_body() {
    match fetch(Scenario::HttpsContentTypeHtml).await.1 {
        Err(FetchError::ContentType { found, body }) => {
            assert_eq!(found.as_deref(), Some("text/html"));
            assert!(String::from_utf8_lossy(&body).contains("version: STSv1"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn endless_body_is_cut_at_the_limit() {
    match fetch(Scenario::HttpsTooLarge).await.1 {
        Err(FetchError::TooLarge { limit, .. }) => assert_eq!(limit, POLICY_MAX_BYTES),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_and_silent_hosts_time_out() {
    for scenario in [Scenario::HttpsHang, Scenario::HttpsSlow] {
        let started = std::time::Instant::now();
        let result = fetch(scenario).await.1;
        assert!(matches!(result, Err(FetchError::Timeout { .. })), "{scenario:?}: {result:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}

#[tokio::test]
async fn missing_and_unreachable_hosts() {
    match fetch(Scenario::PolicyHostNxdomain).await.1 {
        Err(FetchError::Resolve(e)) => assert!(e.is_nx_domain(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fetch(Scenario::PolicyHostUnreachable).await.1,
        Err(FetchError::Connect { .. })
    ));
}
