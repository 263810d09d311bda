//! The generated, shared-hosts world used by the benchmarks.

use std::{collections::HashSet, net::SocketAddr};

use hickory_proto::rr::{RData, RecordType};
use mtasts_testkit::{
    Breakage, MxPool, POOL_NO_STARTTLS, POOL_STARTTLS, Profile, Scenario, World,
    dns::{Transport, query, txt_answers},
    generated::{self, BIGMAIL_HOSTS, domain_name},
    https::POLICY_PATH,
};
use tokio::{io::BufReader, net::TcpStream};

use crate::util::{LONG, client_config, https_get, smtp_cmd, smtp_reply, tls_connect};

async fn a_of(w: &World, name: &str) -> Option<std::net::Ipv4Addr> {
    let m = query(w.dns_addr(), name, RecordType::A, Transport::Udp, LONG).await.unwrap();
    m.answers.iter().find_map(|r| match r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

/// STARTTLS to `host` at its address; Ok(()) if the handshake with `sni` = host succeeds.
async fn starttls(w: &World, host: &str) -> Result<(), String> {
    let ip = a_of(w, host).await.ok_or("no A record")?;
    let tcp = TcpStream::connect((ip, w.smtp_port())).await.map_err(|e| e.to_string())?;
    let mut r = BufReader::new(tcp);
    smtp_reply(&mut r).await.map_err(|e| e.to_string())?;
    let ehlo = smtp_cmd(&mut r, "EHLO probe.test").await.map_err(|e| e.to_string())?;
    if !ehlo.iter().any(|l| l.ends_with("STARTTLS")) {
        return Err("no STARTTLS".into());
    }
    smtp_cmd(&mut r, "STARTTLS").await.map_err(|e| e.to_string())?;
    let cfg = client_config(w.ca().root_store(), false);
    tls_connect(r.into_inner(), host, cfg).await.map(|_| ()).map_err(|e| format!("{e:?}"))
}

fn find(all: &[generated::GeneratedDomain], p: Profile) -> &generated::GeneratedDomain {
    all.iter().find(|g| g.profile == p).unwrap_or_else(|| panic!("no {p:?} in the sample"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_world_serves_every_profile() {
    let n = 1500;
    let all = generated::generate(n, 42);
    let w = World::builder().generated(n, 42).all_scenarios().quiet().cert_group(50).build().await;
    assert_eq!(w.domains().len(), n + Scenario::ALL.len());
    assert_eq!(w.domains()[0], domain_name(0));
    let distinct_mx: HashSet<&str> =
        all.iter().flat_map(|g| g.spec.mx.iter().map(|m| m.host.as_str())).collect();
    assert!(distinct_mx.len() > 300, "more MX names than one /24 has addresses");

    // A good enforce domain: TXT, policy over HTTPS (SNI-selected group certificate), MX.
    let good = find(&all, Profile::GoodEnforce);
    let d = &good.spec.name;
    let m = query(w.dns_addr(), &format!("_mta-sts.{d}"), RecordType::TXT, Transport::Udp, LONG)
        .await
        .unwrap();
    assert!(txt_answers(&m)[0].starts_with("v=STSv1; id="));
    let ip = a_of(&w, &format!("mta-sts.{d}")).await.unwrap();
    let cfg = client_config(w.ca().root_store(), false);
    let r = https_get(
        SocketAddr::from((ip, w.https_port())),
        &format!("mta-sts.{d}"),
        POLICY_PATH,
        cfg.clone(),
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8(r.body).unwrap().contains("mode: enforce"));
    for mx in &good.spec.mx {
        starttls(&w, &mx.host).await.unwrap();
        let pool_ip = w.host_addr(&mx.host).unwrap();
        assert!(POOL_STARTTLS.contains(&pool_ip.octets()[3]));
        assert!(w.smtp(&mx.host).is_some());
    }
    // Without logging nothing is recorded.
    assert!(w.https().requests().is_empty());
    assert!(w.dns().queries().is_empty());

    // The big provider is shared.
    let big = all.iter().filter(|g| g.mx_pool == MxPool::BigMail).count();
    assert!(big > n / 4);
    for k in 1..=BIGMAIL_HOSTS {
        starttls(&w, &format!("mx{k}.bigmail.test")).await.unwrap();
    }

    // MX breakages, each behind an address of the right pool or certificate.
    let g = find(&all, Profile::Broken(Breakage::MxCertExpired));
    let e = starttls(&w, &g.spec.mx[0].host).await.unwrap_err();
    assert!(e.contains("Expired"), "{e}");
    let g = find(&all, Profile::Broken(Breakage::MxCertWrongName));
    let e = starttls(&w, &g.spec.mx[0].host).await.unwrap_err();
    assert!(e.contains("NotValidForName"), "{e}");
    let g = find(&all, Profile::Broken(Breakage::MxNoStarttls));
    assert_eq!(starttls(&w, &g.spec.mx[0].host).await.unwrap_err(), "no STARTTLS");
    assert!(POOL_NO_STARTTLS.contains(&w.host_addr(&g.spec.mx[0].host).unwrap().octets()[3]));
    let g = find(&all, Profile::Broken(Breakage::MxUnreachable));
    assert!(starttls(&w, &g.spec.mx[0].host).await.is_err());
    assert_eq!(w.host_addr(&g.spec.mx[0].host), Some(w.dead_addr()));

    // Policy-host breakages.
    let g = find(&all, Profile::Broken(Breakage::PolicyCertExpired));
    let e = https_get(
        w.https_addr(),
        &format!("mta-sts.{}", g.spec.name),
        POLICY_PATH,
        cfg.clone(),
        LONG,
    )
    .await
    .err()
    .unwrap();
    assert!(format!("{e:?}").contains("Expired"), "{e:?}");
    let g = find(&all, Profile::Broken(Breakage::Policy404));
    let r = https_get(
        w.https_addr(),
        &format!("mta-sts.{}", g.spec.name),
        POLICY_PATH,
        cfg.clone(),
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let g = find(&all, Profile::NoMtaSts);
    assert!(a_of(&w, &format!("mta-sts.{}", g.spec.name)).await.is_none());

    // Scenarios live in the same world.
    starttls(&w, "mx1.good.test").await.unwrap();
    let e = starttls(&w, "mx1.mx-cert-self-signed.test").await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
}
