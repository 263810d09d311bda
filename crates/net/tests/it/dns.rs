//! The DNS client against the in-process authoritative server.

use mtasts_net::dns::{DnsError, resolve_mx};
use mtasts_proto::{DomainName, MxKind, MxRecord};
use mtasts_testkit::{Scenario, World};

use crate::dns_for;

#[tokio::test]
async fn txt_strings_are_joined_without_spaces() {
    let world = World::builder().scenario(Scenario::GoodSplitTxt).build().await;
    let dns = dns_for(&world);
    let answer = dns.txt("_mta-sts.good-split-txt.test").await.unwrap();
    assert_eq!(answer.records, vec!["v=STSv1; id=20260101T000000;".to_owned()]);
    assert!(answer.cname_chain.is_empty());
}

#[tokio::test]
async fn nxdomain_nodata_servfail_and_timeout_are_told_apart() {
    let world = World::builder()
        .scenario(Scenario::Good)
        .scenario(Scenario::DnsServfail)
        .scenario(Scenario::DnsTimeout)
        .build()
        .await;
    let dns = dns_for(&world);

    let nx = dns.txt("_mta-sts.nonexistent.test").await.unwrap_err();
    assert!(matches!(nx, DnsError::NxDomain { .. }), "{nx:?}");
    assert!(nx.is_not_found() && !nx.is_temporary());

    // good.test exists (it has MX records) but no TXT at the apex: NODATA.
    let nodata = dns.txt("good.test").await.unwrap_err();
    assert!(matches!(nodata, DnsError::NoData { .. }), "{nodata:?}");
    assert!(nodata.is_not_found());

    let servfail = dns.txt("_mta-sts.dns-servfail.test").await.unwrap_err();
    assert!(matches!(servfail, DnsError::ServerFailure { .. }), "{servfail:?}");
    assert!(servfail.is_temporary() && !servfail.is_not_found());

    let started = std::time::Instant::now();
    let timeout = dns.txt("_mta-sts.dns-timeout.test").await.unwrap_err();
    assert!(timeout.is_temporary(), "{timeout:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn mx_sorted_and_implicit_mx_fallback() {
    let world = World::builder()
        .scenario(Scenario::MxNotCovered)
        .scenario(Scenario::ImplicitMx)
        .build()
        .await;
    let dns = dns_for(&world);
    let name = |s: &str| DomainName::parse_ascii(s).unwrap();
    let set = resolve_mx(dns.as_ref(), &name("mx-not-covered.test")).await.unwrap();
    assert_eq!(set.kind, MxKind::Explicit);
    assert_eq!(
        set.hosts,
        vec![
            MxRecord { preference: 10, exchange: "mx1.mx-not-covered.test".into() },
            MxRecord { preference: 20, exchange: "backup.mx-not-covered.test".into() },
        ]
    );
    // RFC 5321 §5.1: no MX RRset, but an address → the domain itself, preference 0.
    let set = resolve_mx(dns.as_ref(), &name("implicit-mx.test")).await.unwrap();
    assert_eq!(set.kind, MxKind::Implicit);
    assert_eq!(set.hosts, vec![MxRecord { preference: 0, exchange: "implicit-mx.test".into() }]);
    let err = resolve_mx(dns.as_ref(), &name("nonexistent.test")).await.unwrap_err();
    assert!(err.is_nx_domain());
}

#[tokio::test]
async fn cname_tlsa_and_addresses() {
    let world = World::builder()
        .scenario(Scenario::GoodCnameDelegated)
        .scenario(Scenario::DaneTlsa)
        .build()
        .await;
    let dns = dns_for(&world);
    let answer = dns.txt("_mta-sts.good-cname-delegated.test").await.unwrap();
    assert_eq!(answer.records.len(), 1);
    assert_eq!(
        answer.cname_chain,
        vec!["_mta-sts.good-cname-delegated.provider-hosting.test".to_owned()]
    );
    assert_eq!(
        dns.cname("mta-sts.good-cname-delegated.test").await.unwrap().as_deref(),
        Some("policy.provider-hosting.test")
    );
    assert_eq!(dns.cname("good-cname-delegated.test").await.unwrap(), None);

    let tlsa = dns.tlsa("_25._tcp.mx1.dane-tlsa.test").await.unwrap();
    assert_eq!(tlsa.len(), 1);
    assert_eq!((tlsa[0].usage, tlsa[0].selector, tlsa[0].matching), (3, 1, 1));
    assert_eq!(tlsa[0].data.len(), 32);
    assert!(tlsa[0].to_string().starts_with("3 1 1 "));

    let ips = dns.ip("mx1.dane-tlsa.test").await.unwrap();
    assert!(ips.iter().all(std::net::IpAddr::is_loopback), "{ips:?}");
    assert!(dns.ip("nothing.dane-tlsa.test").await.unwrap_err().is_not_found());
}
