//! The real stub resolver the project uses (hickory-resolver) against the world's server.

use std::time::{Duration, Instant};

use hickory_resolver::{
    Resolver, TokioResolver,
    config::{NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
};
use mtasts_testkit::{Scenario, World};

fn resolver(w: &World) -> TokioResolver {
    let addr = w.dns_addr();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().timeout = Duration::from_millis(300);
    b.options_mut().attempts = 1;
    b.build().unwrap()
}

fn joined_txt(l: &hickory_resolver::lookup::Lookup) -> Vec<String> {
    l.answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => {
                Some(t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn hickory_resolver_sees_the_world() {
    let w = World::builder()
        .scenario(Scenario::GoodSplitTxt)
        .scenario(Scenario::GoodCnameDelegated)
        .scenario(Scenario::PolicyHostNxdomain)
        .scenario(Scenario::DnsServfail)
        .scenario(Scenario::DnsTimeout)
        .build()
        .await;
    let r = resolver(&w);
    let l = r.txt_lookup("_mta-sts.good-split-txt.test.").await.unwrap();
    assert_eq!(joined_txt(&l), vec!["v=STSv1; id=20260101T000000;"]);
    let l = r.txt_lookup("_mta-sts.good-cname-delegated.test.").await.unwrap();
    assert_eq!(joined_txt(&l), vec!["v=STSv1; id=20260101T000000;"]);
    let l = r.mx_lookup("good-split-txt.test.").await.unwrap();
    assert_eq!(l.answers().len(), 1);

    let e = r.ipv4_lookup("mta-sts.policy-host-nxdomain.test.").await.unwrap_err();
    assert!(e.is_nx_domain(), "{e:?}");
    // NODATA: a name that exists, no record of the type.
    let e = r.ipv6_lookup("mx1.policy-host-nxdomain.test.").await.unwrap_err();
    assert!(e.is_no_records_found() && !e.is_nx_domain(), "{e:?}");

    let e = r.txt_lookup("_mta-sts.dns-servfail.test.").await.unwrap_err();
    assert!(!e.is_no_records_found(), "SERVFAIL is not 'no records': {e:?}");

    let start = Instant::now();
    let e = r.txt_lookup("_mta-sts.dns-timeout.test.").await.unwrap_err();
    assert!(!e.is_no_records_found(), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}
