use mtasts_testkit::{CertSpec, SmtpBehaviour, SmtpServer, TestCa};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use crate::util::{LONG, SHORT, client_config, smtp_cmd, smtp_reply, tls_connect};

async fn server(ca: &TestCa, starttls: bool, silent: bool) -> SmtpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SmtpServer::start(
        listener,
        SmtpBehaviour {
            banner: "mx1.good.test ESMTP testkit".to_owned(),
            starttls,
            cert: Some(ca.issue(&CertSpec::valid_for(&["mx1.good.test"]))),
            silent,
        },
    )
    .await
    .unwrap()
}

async fn starttls_session(tls12_only: bool) {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca, true, false).await;
    let tcp = TcpStream::connect(s.addr()).await.unwrap();
    let mut r = BufReader::new(tcp);
    let banner = smtp_reply(&mut r).await.unwrap();
    assert_eq!(banner, vec!["220 mx1.good.test ESMTP testkit"]);
    let ehlo = smtp_cmd(&mut r, "EHLO client.test").await.unwrap();
    assert!(ehlo[0].starts_with("250-mx1.good.test"));
    assert!(ehlo.iter().any(|l| l == "250-STARTTLS"), "{ehlo:?}");
    for cap in ["PIPELINING", "SIZE", "8BITMIME"] {
        assert!(ehlo.iter().any(|l| l[4..].starts_with(cap)), "{cap}");
    }
    assert!(ehlo.last().unwrap().starts_with("250 "));
    let go = smtp_cmd(&mut r, "STARTTLS").await.unwrap();
    assert_eq!(go, vec!["220 2.0.0 Ready to start TLS"]);
    let tcp = r.into_inner();
    let tls = tls_connect(tcp, "mx1.good.test", client_config(ca.root_store(), tls12_only))
        .await
        .unwrap();
    let mut r = BufReader::new(tls);
    let ehlo = smtp_cmd(&mut r, "EHLO client2.test").await.unwrap();
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(smtp_cmd(&mut r, "STARTTLS").await.unwrap()[0].starts_with("503"));
    assert!(smtp_cmd(&mut r, "MAIL FROM:<a@client.test>").await.unwrap()[0].starts_with("250"));
    assert!(smtp_cmd(&mut r, "RCPT TO:<b@good.test>").await.unwrap()[0].starts_with("250"));
    assert!(smtp_cmd(&mut r, "DATA").await.unwrap()[0].starts_with("354"));
    let done = smtp_cmd(&mut r, "Subject: hi\r\n\r\n..dot-stuffed\r\nbody\r\n.").await.unwrap();
    assert!(done[0].starts_with("250"), "{done:?}");
    assert!(smtp_cmd(&mut r, "RSET").await.unwrap()[0].starts_with("250"));
    assert!(smtp_cmd(&mut r, "NOOP").await.unwrap()[0].starts_with("250"));
    assert!(smtp_cmd(&mut r, "VRFY x").await.unwrap()[0].starts_with("500"));
    assert!(smtp_cmd(&mut r, "QUIT").await.unwrap()[0].starts_with("221"));
    let sessions = s.sessions();
    assert_eq!(sessions.len(), 1);
    let x = &sessions[0];
    assert_eq!(x.ehlo, vec!["client.test", "client2.test"]);
    assert!(x.starttls);
    assert_eq!(x.sni.as_deref(), Some("mx1.good.test"));
    let want = if tls12_only { "TLSv1_2" } else { "TLSv1_3" };
    assert_eq!(x.tls_version.as_deref(), Some(want));
    assert!(x.quit);
    assert!(!x.starttls_injection);
}

#[tokio::test]
async fn starttls_tls13() {
    starttls_session(false).await;
}

#[tokio::test]
async fn starttls_tls12() {
    starttls_session(true).await;
}

#[tokio::test]
async fn untrusted_client_roots_fail() {
    let ca = TestCa::new("mtasts test CA");
    let other = TestCa::new("other");
    let s = server(&ca, true, false).await;
    let mut r = BufReader::new(TcpStream::connect(s.addr()).await.unwrap());
    smtp_reply(&mut r).await.unwrap();
    smtp_cmd(&mut r, "EHLO c.test").await.unwrap();
    smtp_cmd(&mut r, "STARTTLS").await.unwrap();
    let e = tls_connect(r.into_inner(), "mx1.good.test", client_config(other.root_store(), false))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test]
async fn without_starttls() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca, false, false).await;
    let mut r = BufReader::new(TcpStream::connect(s.addr()).await.unwrap());
    smtp_reply(&mut r).await.unwrap();
    let ehlo = smtp_cmd(&mut r, "EHLO c.test").await.unwrap();
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")));
    assert!(smtp_cmd(&mut r, "STARTTLS").await.unwrap()[0].starts_with("502"));
    assert_eq!(smtp_cmd(&mut r, "HELO c.test").await.unwrap(), vec!["250 mx1.good.test"]);
    assert!(smtp_cmd(&mut r, "QUIT").await.unwrap()[0].starts_with("221"));
    assert!(!s.sessions()[0].starttls);
}

#[tokio::test]
async fn silent_server_says_nothing() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca, true, true).await;
    let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    assert!(timeout(SHORT, tcp.read(&mut buf)).await.is_err());
}

#[tokio::test]
async fn long_line_is_refused_and_pipelined_starttls_discarded() {
    let ca = TestCa::new("mtasts test CA");
    let s = server(&ca, true, false).await;
    let mut r = BufReader::new(TcpStream::connect(s.addr()).await.unwrap());
    smtp_reply(&mut r).await.unwrap();
    r.get_mut().write_all(&vec![b'a'; 5000]).await.unwrap();
    let reply = smtp_reply(&mut r).await.unwrap();
    assert!(reply[0].starts_with("500"), "{reply:?}");
    let mut rest = Vec::new();
    timeout(LONG, r.read_to_end(&mut rest)).await.unwrap().unwrap();

    // STARTTLS injection: bytes after STARTTLS in the same packet are not executed.
    let mut r = BufReader::new(TcpStream::connect(s.addr()).await.unwrap());
    smtp_reply(&mut r).await.unwrap();
    smtp_cmd(&mut r, "EHLO c.test").await.unwrap();
    r.get_mut().write_all(b"STARTTLS\r\nRSET\r\n").await.unwrap();
    let go = smtp_reply(&mut r).await.unwrap();
    assert!(go[0].starts_with("220"));
    let _ =
        tls_connect(r.into_inner(), "mx1.good.test", client_config(ca.root_store(), false)).await;
    let sessions = s.sessions();
    assert!(sessions[1].starttls_injection, "{sessions:?}");
    assert!(!sessions[1].commands.contains(&"RSET".to_owned()));
}
