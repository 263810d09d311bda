use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddr},
};

use hickory_proto::{
    op::ResponseCode,
    rr::{RData, RecordType},
};
use mtasts_testkit::{
    CertKind, DomainSpec, MxSpec, PolicyHost, Scenario, SmtpKind, World,
    ca::CertSpec,
    dns::{Transport, query, txt_answers},
    https::POLICY_PATH,
};
use rustls::{RootCertStore, pki_types::CertificateDer, pki_types::pem::PemObject};
use tokio::{io::BufReader, net::TcpStream};

use crate::util::{LONG, SHORT, client_config, https_get, smtp_cmd, smtp_reply, tls_connect};

async fn ask(w: &World, name: &str, t: RecordType) -> hickory_proto::op::Message {
    query(w.dns_addr(), name, t, Transport::Udp, LONG).await.unwrap()
}

async fn a_of(w: &World, name: &str) -> Option<Ipv4Addr> {
    ask(w, name, RecordType::A).await.answers.iter().find_map(|r| match r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

fn roots_from_file(w: &World) -> RootCertStore {
    let pem = std::fs::read(w.ca_pem_path()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&pem).unwrap()).unwrap();
    roots
}

#[test]
fn scenario_names_are_unique_kebab_case() {
    let mut seen = HashSet::new();
    for s in Scenario::ALL {
        let n = s.name();
        assert!(seen.insert(n), "duplicate {n}");
        assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(s.domain(), format!("{n}.test"));
        assert_eq!(Scenario::from_name(n), Some(*s));
        let spec = s.spec();
        assert_eq!(spec[0].name, s.domain());
    }
    assert!(Scenario::ALL.len() >= 49);
}

#[tokio::test]
async fn all_scenarios_build_and_resolve() {
    let w = World::builder().all_scenarios().build().await;
    let (a, _b) = w.block();
    assert!(a >= 1);
    assert_eq!(w.https_addr().ip(), Ipv4Addr::new(127, a, w.block().1, 1));
    for s in Scenario::ALL {
        let d = s.domain();
        let spec = s.spec().remove(0);
        // The domain resolves: MX (or A for the implicit-MX scenario).
        if spec.mx.is_empty() && !spec.null_mx {
            let ip = a_of(&w, &d).await.expect(&d);
            assert_eq!(Some(ip), w.host_addr(&d));
        } else {
            let m = ask(&w, &d, RecordType::MX).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{d}");
            assert_eq!(m.answers.len(), spec.mx.len() + usize::from(spec.null_mx), "{d}");
            for mx in &spec.mx {
                let ip = a_of(&w, &mx.host).await.expect(&mx.host);
                assert_eq!(Some(ip), w.host_addr(&mx.host));
                assert_eq!(w.smtp(&mx.host).is_some(), mx.smtp.is_some(), "{}", mx.host);
            }
        }
        // The policy host.
        let host = format!("mta-sts.{d}");
        match spec.policy_host {
            PolicyHost::Absent => {
                let m = ask(&w, &host, RecordType::A).await;
                assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{host}");
            }
            PolicyHost::Unreachable => assert_eq!(a_of(&w, &host).await, Some(w.dead_addr())),
            PolicyHost::Serve { .. } => {
                assert_eq!(a_of(&w, &host).await, Some(Ipv4Addr::new(127, a, w.block().1, 1)))
            }
        }
        // The TXT record, unless the scenario hides it.
        let m =
            query(w.dns_addr(), &format!("_mta-sts.{d}"), RecordType::TXT, Transport::Udp, SHORT)
                .await;
        match s {
            Scenario::DnsTimeout => assert!(m.is_err()),
            Scenario::DnsServfail => {
                assert_eq!(m.unwrap().metadata.response_code, ResponseCode::ServFail)
            }
            _ => {
                let m = m.unwrap();
                let want = if *s == Scenario::GoodCnameDelegated { 1 } else { spec.sts_txt.len() };
                assert_eq!(txt_answers(&m).len(), want, "{d}");
            }
        }
    }
    // Spot checks.
    let m = ask(&w, "_mta-sts.good-split-txt.test", RecordType::TXT).await;
    assert_eq!(txt_answers(&m), vec!["v=STSv1; id=20260101T000000;"]);
    let m = ask(&w, "_smtp._tls.tlsrpt-duplicate.test", RecordType::TXT).await;
    assert_eq!(txt_answers(&m).len(), 2);
    let m = ask(&w, "_mta-sts.good-cname-delegated.test", RecordType::TXT).await;
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(txt_answers(&m), vec!["v=STSv1; id=20260101T000000;"]);
    let m = ask(&w, "_25._tcp.mx1.dane-tlsa.test", RecordType::TLSA).await;
    let RData::TLSA(t) = &m.answers[0].data else { panic!() };
    assert_eq!(t.cert_data.len(), 32);
    assert_eq!(
        a_of(&w, "mta-sts.good-cname-delegated.test").await,
        Some(w.https_addr().ip().to_string().parse().unwrap())
    );
}

#[tokio::test]
async fn good_domain_end_to_end() {
    let w = World::builder().scenario(Scenario::Good).build().await;
    let roots = roots_from_file(&w);
    // Policy over HTTPS, through our DNS.
    let ip = a_of(&w, "mta-sts.good.test").await.unwrap();
    let r = https_get(
        SocketAddr::from((ip, w.https_port())),
        "mta-sts.good.test",
        POLICY_PATH,
        client_config(roots.clone(), false),
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        mtasts_testkit::policy_text("enforce", 604800, &["mx1.good.test"])
    );
    assert_eq!(w.https().requests()[0].sni, "mta-sts.good.test");
    // MX with STARTTLS.
    let ip = a_of(&w, "mx1.good.test").await.unwrap();
    let mut r = BufReader::new(TcpStream::connect((ip, w.smtp_port())).await.unwrap());
    assert!(smtp_reply(&mut r).await.unwrap()[0].starts_with("220 mx1.good.test"));
    let ehlo = smtp_cmd(&mut r, "EHLO probe.test").await.unwrap();
    assert!(ehlo.iter().any(|l| l.ends_with("STARTTLS")));
    smtp_cmd(&mut r, "STARTTLS").await.unwrap();
    let tls =
        tls_connect(r.into_inner(), "mx1.good.test", client_config(roots, false)).await.unwrap();
    let mut r = BufReader::new(tls);
    assert!(smtp_cmd(&mut r, "QUIT").await.unwrap()[0].starts_with("221"));
    let sessions = w.smtp("MX1.good.test.").unwrap().sessions();
    assert!(sessions[0].starttls);
    // Nothing at the dead address.
    assert!(TcpStream::connect((w.dead_addr(), w.smtp_port())).await.is_err());
    assert!(TcpStream::connect((w.dead_addr(), w.https_port())).await.is_err());
}

#[tokio::test]
async fn bad_certificates_are_bad() {
    let w = World::builder()
        .scenario(Scenario::HttpsExpiredCert)
        .scenario(Scenario::HttpsWrongNameCert)
        .scenario(Scenario::HttpsUntrustedCert)
        .scenario(Scenario::MxCertSelfSigned)
        .scenario(Scenario::MxUnreachable)
        .build()
        .await;
    let cfg = client_config(w.ca().root_store(), false);
    for (d, needle) in [
        ("https-expired-cert.test", "Expired"),
        ("https-wrong-name-cert.test", "NotValidForName"),
        ("https-untrusted-cert.test", "UnknownIssuer"),
    ] {
        let e = https_get(w.https_addr(), &format!("mta-sts.{d}"), POLICY_PATH, cfg.clone(), LONG)
            .await
            .err()
            .unwrap();
        assert!(format!("{e:?}").contains(needle), "{d}: {e:?}");
    }
    // Self-signed MX.
    let host = "mx1.mx-cert-self-signed.test";
    let mut r = BufReader::new(
        TcpStream::connect((w.host_addr(host).unwrap(), w.smtp_port())).await.unwrap(),
    );
    smtp_reply(&mut r).await.unwrap();
    smtp_cmd(&mut r, "EHLO p.test").await.unwrap();
    smtp_cmd(&mut r, "STARTTLS").await.unwrap();
    assert!(tls_connect(r.into_inner(), host, cfg).await.is_err());
    // Unreachable MX: A record, nothing listening.
    let host = "mx1.mx-unreachable.test";
    assert!(w.smtp(host).is_none());
    let ip = a_of(&w, host).await.unwrap();
    assert!(TcpStream::connect((ip, w.smtp_port())).await.is_err());
}

#[tokio::test]
async fn custom_domains_share_mx_hosts_and_worlds_do_not_collide() {
    let shared = MxSpec {
        preference: 5,
        host: "mx.shared-hosting.test".to_owned(),
        smtp: Some(SmtpKind::NoStartTls),
        cert: CertKind::Valid,
    };
    let mut one = DomainSpec::good("one.test");
    one.mx.push(shared.clone());
    let mut two = DomainSpec::good("two.test");
    two.mx = vec![shared];
    two.tlsa.push(("_25._tcp.mx.shared-hosting.test".to_owned(), 3, 1, 1, vec![7; 32]));
    let w1 = World::builder().domain(one).domain(two).build().await;
    let w2 = World::builder().scenario(Scenario::Good).build().await;
    assert_ne!(w1.block(), w2.block());
    assert!(w1.smtp("mx.shared-hosting.test").is_some());
    let ip = a_of(&w1, "mx.shared-hosting.test").await.unwrap();
    assert_eq!(ip.octets()[3], 3, "mx1.one.test is .2, the shared host .3");
    let m = ask(&w1, "two.test", RecordType::MX).await;
    assert_eq!(m.answers.len(), 1);
    // Test CA issues certificates usable elsewhere too.
    let c = w1.ca().issue(&CertSpec::valid_for(&["x.test"]));
    assert_eq!(c.chain.len(), 2);
}

#[test]
fn blocking_world_serves_while_the_caller_blocks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<World>();
    let w = World::builder().scenario(Scenario::Good).build_blocking();
    let ip = w.host_addr("mx1.good.test").unwrap();
    let mut s = std::net::TcpStream::connect((ip, w.smtp_port())).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220 mx1.good.test"));
    let dns = w.dns_addr();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(SHORT)).unwrap();
    let mut q = hickory_proto::op::Message::query();
    q.add_query(hickory_proto::op::Query::query(
        mtasts_testkit::dns::abs_name("good.test").unwrap(),
        RecordType::MX,
    ));
    let wire = q.to_vec().unwrap();
    sock.send_to(&wire, dns).unwrap();
    assert!(sock.recv(&mut buf).is_ok(), "DNS answers while the world lives");
    drop(w);
    sock.send_to(&wire, dns).unwrap();
    assert!(sock.recv(&mut buf).is_err(), "DNS stopped with the world");
}
