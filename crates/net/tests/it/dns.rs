//! The DNS client against the in-process authoritative server.

use mtasts_net::dns::{DnsClient, DnsError, resolve_mx};
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

/// A UDP front for a test server that misbehaves as `mode` says, for the retransmission and
/// back-off rules (TCP is not proxied: the client's TCP goes to `tcp_target`'s port only if
/// the front listens there, which it does not, so these tests exercise UDP alone).
mod lossy {
    use std::collections::HashSet;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use hickory_proto::op::{Message, ResponseCode};
    use tokio::net::UdpSocket;

    #[derive(Clone, Copy)]
    pub(super) enum Mode {
        /// Drop the first datagram of every question (name and type); forward resends.
        DropFirst,
        /// Answer every query REFUSED.
        Refuse,
    }

    /// Starts the front on 127.0.0.1; returns its address.
    pub(super) async fn start(target: SocketAddr, mode: Mode) -> SocketAddr {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                match mode {
                    Mode::Refuse => {
                        let mut reply = query.clone();
                        reply.metadata.message_type = hickory_proto::op::MessageType::Response;
                        reply.metadata.response_code = ResponseCode::Refused;
                        let _ = front.send_to(&reply.to_vec().unwrap(), client).await;
                    }
                    Mode::DropFirst => {
                        let question = query.queries.first().map(|q| q.to_string());
                        if seen.lock().unwrap().insert(question.unwrap_or_default()) {
                            continue;
                        }
                        let wire = buf[..n].to_vec();
                        let front = Arc::clone(&front);
                        tokio::spawn(async move {
                            let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                            let _ = up.send_to(&wire, target).await;
                            let mut answer = vec![0u8; 4096];
                            if let Ok(Ok((m, _))) = tokio::time::timeout(
                                std::time::Duration::from_secs(2),
                                up.recv_from(&mut answer),
                            )
                            .await
                            {
                                let _ = front.send_to(&answer[..m], client).await;
                            }
                        });
                    }
                }
            }
        });
        addr
    }
}

#[tokio::test]
async fn a_lost_answer_costs_one_resend_not_the_timeout() {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let front = lossy::start(world.dns_addr(), lossy::Mode::DropFirst).await;
    let dns = mtasts_net::HickoryDns::new(&[front], std::time::Duration::from_secs(5)).unwrap();
    let started = std::time::Instant::now();
    let answer = dns.txt("_mta-sts.good.test").await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.records.len(), 1);
    // First datagram dropped: answered after one retransmission timeout (400 ms before any
    // round trip was measured), far from the 5 s lookup timeout.
    assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
    let stats = dns.stats();
    assert_eq!((stats.udp_sent, stats.resends), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn refused_answers_put_the_server_in_back_off() {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let front = lossy::start(world.dns_addr(), lossy::Mode::Refuse).await;
    let dns = mtasts_net::HickoryDns::new(&[front], std::time::Duration::from_secs(2)).unwrap();
    assert_eq!(dns.rates(), vec![(front, None)]);
    let started = std::time::Instant::now();
    let mut refused = 0;
    while started.elapsed() < std::time::Duration::from_millis(400) {
        let e = dns.txt("_mta-sts.good.test").await.unwrap_err();
        assert!(
            matches!(e, DnsError::ServerFailure { ref rcode, .. } if rcode.contains("Refused")),
            "{e:?}"
        );
        refused += 1;
    }
    assert!(refused >= 10, "{refused}");
    let rate = dns.rates()[0].1;
    assert!(rate.is_some_and(|r| r >= mtasts_net::dns::pacing::MIN_RATE), "{rate:?}");
    assert_eq!(dns.stats().decreases, 1);
}
