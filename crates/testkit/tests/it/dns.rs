use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use hickory_proto::{
    op::ResponseCode,
    rr::{RData, RecordType},
};
use mtasts_testkit::{
    DnsServer, Zone,
    dns::{Transport, query, txt_answers},
};

use crate::util::{LONG, SHORT};

async fn server() -> DnsServer {
    let mut z = Zone::new();
    z.txt("_mta-sts.split.test", &["v=STSv1; id=2026", "0101T000000;"])
        .txt("multi.test", &["one"])
        .txt("multi.test", &["two"])
        .mx("split.test", 10, "mx1.split.test")
        .mx("split.test", 20, "mx2.split.test.")
        .a("mx1.split.test", Ipv4Addr::new(127, 9, 9, 2))
        .aaaa("mx1.split.test", Ipv6Addr::LOCALHOST)
        .cname("alias.split.test", "mx1.split.test")
        .cname("dangling.split.test", "nowhere.other.test")
        .tlsa("_25._tcp.mx1.split.test", 3, 1, 1, &[0xab; 32])
        .servfail("_mta-sts.broken.test")
        .silent("_mta-sts.quiet.test");
    DnsServer::start(z).await.unwrap()
}

async fn ask(s: &DnsServer, name: &str, t: RecordType) -> hickory_proto::op::Message {
    query(s.addr(), name, t, Transport::Udp, LONG).await.unwrap()
}

#[tokio::test]
async fn txt_keeps_split_strings_in_one_record() {
    let s = server().await;
    let m = ask(&s, "_mta-sts.split.test", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    let RData::TXT(txt) = &m.answers[0].data else { panic!("not TXT") };
    assert_eq!(txt.txt_data.len(), 2, "two character-strings in one RR");
    assert_eq!(txt_answers(&m), vec!["v=STSv1; id=20260101T000000;"]);
    assert_eq!(m.answers[0].ttl, 300);

    let m = ask(&s, "multi.test", RecordType::TXT).await;
    let mut all = txt_answers(&m);
    all.sort();
    assert_eq!(all, vec!["one", "two"]);
}

#[tokio::test]
async fn tcp_answers_too() {
    let s = server().await;
    let m = query(s.addr(), "_mta-sts.split.test", RecordType::TXT, Transport::Tcp, LONG)
        .await
        .unwrap();
    assert_eq!(txt_answers(&m), vec!["v=STSv1; id=20260101T000000;"]);
    assert!(s.queries().iter().any(|q| q.tcp && q.qtype == "TXT"));
}

#[tokio::test]
async fn mx_a_aaaa_tlsa() {
    let s = server().await;
    let m = ask(&s, "split.test", RecordType::MX).await;
    let mut mx: Vec<(u16, String)> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
            _ => None,
        })
        .collect();
    mx.sort();
    assert_eq!(mx, vec![(10, "mx1.split.test.".to_owned()), (20, "mx2.split.test.".to_owned())]);
    let m = ask(&s, "mx1.split.test", RecordType::A).await;
    assert!(matches!(m.answers[0].data, RData::A(a) if a.0 == Ipv4Addr::new(127, 9, 9, 2)));
    let m = ask(&s, "mx1.split.test", RecordType::AAAA).await;
    assert!(matches!(m.answers[0].data, RData::AAAA(a) if a.0 == Ipv6Addr::LOCALHOST));
    let m = ask(&s, "_25._tcp.mx1.split.test", RecordType::TLSA).await;
    let RData::TLSA(t) = &m.answers[0].data else { panic!("not TLSA") };
    assert_eq!(t.cert_data, vec![0xab; 32]);
}

#[tokio::test]
async fn names_are_case_insensitive() {
    let s = server().await;
    let m = ask(&s, "_MTA-STS.Split.TEST", RecordType::TXT).await;
    assert_eq!(txt_answers(&m), vec!["v=STSv1; id=20260101T000000;"]);
}

#[tokio::test]
async fn nxdomain_vs_nodata() {
    let s = server().await;
    // Existing name, other type: NODATA = NOERROR, empty answer, SOA in authority.
    let m = ask(&s, "_mta-sts.split.test", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(
        m.authorities.iter().any(|r| r.record_type() == RecordType::SOA),
        "NODATA carries the SOA: {m:?}"
    );
    // Empty non-terminal (RFC 8020): also NODATA.
    let m = ask(&s, "_tcp.mx1.split.test", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Nonexistent name: NXDOMAIN with the SOA.
    let m = ask(&s, "mta-sts.split.test", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert!(m.authorities.iter().any(|r| r.record_type() == RecordType::SOA));
    // Outside every published name, still authoritative NXDOMAIN (not REFUSED).
    let m = ask(&s, "www.example.com", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn cname_is_chased_within_the_data() {
    let s = server().await;
    let m = ask(&s, "alias.split.test", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert!(
        m.answers
            .iter()
            .any(|r| matches!(r.data, RData::A(a) if a.0 == Ipv4Addr::new(127, 9, 9, 2)))
    );
    let m = ask(&s, "alias.split.test", RecordType::CNAME).await;
    assert_eq!(m.answers.len(), 1);
    let m = ask(&s, "dangling.split.test", RecordType::TXT).await;
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
}

#[tokio::test]
async fn servfail_name() {
    let s = server().await;
    for t in [Transport::Udp, Transport::Tcp] {
        let m = query(s.addr(), "_mta-sts.broken.test", RecordType::TXT, t, LONG).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
}

#[tokio::test]
async fn silent_name_times_out_but_others_answer() {
    let s = server().await;
    for t in [Transport::Udp, Transport::Tcp] {
        let e =
            query(s.addr(), "_mta-sts.QUIET.test", RecordType::TXT, t, SHORT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
    let m = ask(&s, "_mta-sts.split.test", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn bad_zone_data_is_reported() {
    let mut z = Zone::new();
    z.txt("x.test", &[&"a".repeat(256)]);
    assert!(DnsServer::start(z).await.is_err());
    let mut z = Zone::new();
    z.cname("x.test", "y.test").a("x.test", Ipv4Addr::LOCALHOST);
    let e = DnsServer::start(z).await.unwrap_err();
    assert!(e.to_string().contains("CNAME"), "{e}");
    let mut z = Zone::new();
    z.a("bad..name", Ipv4Addr::LOCALHOST);
    assert!(DnsServer::start(z).await.is_err());
}

#[tokio::test]
async fn garbage_does_not_kill_the_server() {
    let s = server().await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [&b""[..], b"\x00", &[0xff; 12], &[0x41; 600]] {
        sock.send_to(junk, s.addr()).await.unwrap();
    }
    let mut tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0xff, 0xff, 1, 2, 3]).await.unwrap();
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = ask(&s, "_mta-sts.split.test", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn zone_file_text_has_every_record_in_master_file_form() {
    let mut z = Zone::new();
    z.txt("_mta-sts.x.test", &["v=STSv1; id=1;", "a \"quoted\" \\ part"])
        .mx("x.test", 10, "mx1.x.test")
        .a("mx1.x.test", Ipv4Addr::new(127, 9, 9, 2))
        .aaaa("mx1.x.test", Ipv6Addr::LOCALHOST)
        .cname("alias.x.test", "mx1.x.test")
        .tlsa("_25._tcp.mx1.x.test", 3, 1, 1, &[0xab, 0x01]);
    let text = z.to_zone_file().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "$ORIGIN .");
    assert!(lines[2].starts_with(". 300 IN SOA ns.testkit.test. hostmaster.testkit.test. "));
    assert_eq!(
        &lines[3..],
        [
            r#"_mta-sts.x.test. 300 IN TXT "v=STSv1; id=1;" "a \"quoted\" \\ part""#,
            "x.test. 300 IN MX 10 mx1.x.test.",
            "mx1.x.test. 300 IN A 127.9.9.2",
            "mx1.x.test. 300 IN AAAA ::1",
            "alias.x.test. 300 IN CNAME mx1.x.test.",
            "_25._tcp.mx1.x.test. 300 IN TLSA 3 1 1 AB01",
        ]
    );
    let mut bad = Zone::new();
    bad.txt("bad..name", &["x"]);
    assert!(bad.to_zone_file().is_err());
}
