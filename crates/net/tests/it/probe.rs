//! The MX probe against the SMTP test servers.

use mtasts_net::probe::ProbeStep;
use mtasts_net::{MxProbe, ProbeReport};
use mtasts_proto::CertificateProblem;
use mtasts_testkit::{Scenario, World};

use crate::{config_for, dns_for};

async fn probe(scenario: Scenario, host: &str) -> (World, ProbeReport) {
    let world = World::builder().scenario(scenario).build().await;
    let config = config_for(&world);
    let prober = MxProbe::new(config.clone(), config.trust.load().unwrap(), dns_for(&world));
    let report = prober.probe(host).await;
    (world, report)
}

#[tokio::test]
async fn good_mx_full_dialogue() {
    let (world, r) = probe(Scenario::Good, "mx1.good.test").await;
    assert_eq!(r.failure, None, "{r:?}");
    assert_eq!(r.starttls_offered, Some(true));
    assert!(r.tls_ok());
    let tls = r.tls.as_ref().unwrap();
    assert!(tls.params.as_ref().unwrap().version.starts_with("TLSv1_"));
    assert!(tls.chain[0].dns_names.contains(&"mx1.good.test".to_owned()));
    assert!(tls.chain[0].days_left(time::OffsetDateTime::now_utc().unix_timestamp()) > 30);
    let sessions = world.smtp("mx1.good.test").unwrap().sessions();
    let s = sessions.last().unwrap();
    assert_eq!(s.sni.as_deref(), Some("mx1.good.test"), "SNI is the MX name (RFC 8461 §7.1)");
    assert_eq!(s.ehlo, vec!["net-tests.mtasts.test".to_owned(); 2], "EHLO before and after TLS");
    assert!(s.quit && !s.starttls_injection);
}

#[tokio::test]
async fn no_starttls() {
    let (_w, r) = probe(Scenario::MxNoStarttls, "mx1.mx-no-starttls.test").await;
    assert_eq!(r.starttls_offered, Some(false));
    assert!(r.tls.is_none() && !r.tls_ok());
    assert_eq!(r.failure, None);
}

#[tokio::test]
async fn bad_certificates_are_recorded_and_judged() {
    let cases = [
        (
            Scenario::MxCertUntrusted,
            "mx1.mx-cert-untrusted.test",
            CertificateProblem::UnknownIssuer,
        ),
        (Scenario::MxCertExpired, "mx1.mx-cert-expired.test", CertificateProblem::Expired),
        (
            Scenario::MxCertWrongName,
            "mx1.mx-cert-wrong-name.test",
            CertificateProblem::NameMismatch,
        ),
        (
            Scenario::MxCertSelfSigned,
            "mx1.mx-cert-self-signed.test",
            CertificateProblem::UnknownIssuer,
        ),
    ];
    for (scenario, host, want) in cases {
        let (_w, r) = probe(scenario, host).await;
        let tls = r.tls.as_ref().unwrap_or_else(|| panic!("{scenario:?}: {r:?}"));
        assert_eq!(tls.problem.as_ref(), Some(&want), "{scenario:?}");
        assert!(!tls.chain.is_empty(), "{scenario:?}: chain recorded despite the failure");
        // The dialogue still completes, so the report is complete.
        assert_eq!(r.failure, None, "{scenario:?}");
        assert!(tls.params.is_some());
    }
}

#[tokio::test]
async fn silent_and_dead_hosts_name_the_step() {
    let started = std::time::Instant::now();
    let (_w, r) = probe(Scenario::MxSilent, "mx1.mx-silent.test").await;
    let f = r.failure.unwrap();
    assert_eq!(f.step, ProbeStep::Banner);
    assert!(f.timed_out);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let (_w, r) = probe(Scenario::MxUnreachable, "mx1.mx-unreachable.test").await;
    assert_eq!(r.failure.unwrap().step, ProbeStep::Connect);

    let (_w, r) = probe(Scenario::Good, "nonexistent.good.test").await;
    assert_eq!(r.failure.unwrap().step, ProbeStep::Resolve);
}
