//! The IMAP mailbox intake against Debian's dovecot, started by the test.

use std::sync::Arc;

use mtasts_reports::imap::{ImapSource, PollStats};
use mtasts_reports::{Ingestor, Limits};
use mtasts_store::reports::ReportStore;
use mtasts_store::testing::TestDb;
use mtasts_testkit::dovecot::Dovecot;

use crate::ingest::data;

fn no_tls() -> Arc<rustls::ClientConfig> {
    Arc::new(mtasts_testkit::ca::client_config(rustls::RootCertStore::empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_a_mailbox_and_files_what_it_read() {
    let Some(dovecot) = Dovecot::start(&[("reports", "s3cret@pw")]) else { return };
    dovecot.deliver("reports", "1.eml", &data("mox__testdata__tlsreports__example.eml"));
    dovecot.deliver("reports", "2.eml", &data("mox__testdata__tlsreports__example.eml"));
    dovecot.deliver("reports", "3.eml", b"From: x@example.com\r\nSubject: buy now\r\n\r\nspam\r\n");
    dovecot.deliver("reports", "4.eml", &data("stalwart-mail-auth__resources__tlsrpt__rpt02.eml"));
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing = Ingestor::new(store.clone(), Limits::default());
    let url = format!("imap://reports:s3cret%40pw@{}/INBOX", dovecot.addr());
    let source = ImapSource::from_url(&url, None, no_tls()).unwrap();
    let stats = source.poll(&ing).await.unwrap();
    assert_eq!(stats, PollStats { stored: 2, duplicates: 1, rejected: 1, deferred: 0 });
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(dovecot.count("reports", "INBOX"), 0, "every message filed");
    assert_eq!(dovecot.count("reports", "TLSRPT-Processed"), 3);
    assert_eq!(dovecot.count("reports", "TLSRPT-Rejected"), 1);
    // The next poll finds nothing new.
    assert_eq!(source.poll(&ing).await.unwrap(), PollStats::default());

    // A wrong password is said in words.
    let bad = ImapSource::from_url(
        &format!("imap://reports:wrong@{}/INBOX", dovecot.addr()),
        None,
        no_tls(),
    )
    .unwrap();
    let e = bad.poll(&ing).await.unwrap_err();
    assert!(e.to_string().starts_with("the IMAP server refused the login of reports"), "{e}");
    db.cleanup().await;
}

/// imaps:// against dovecot with a certificate from the test CA: verified TLS, then the same
/// work; a client that does not trust the CA is refused in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_with_a_verified_certificate() {
    let ca = mtasts_testkit::TestCa::new("IMAP Test CA");
    let cert = ca.issue(&mtasts_testkit::CertSpec::valid_for(&["imap.test"]));
    let Some(dovecot) = Dovecot::start_tls(&[("reports", "pw")], &cert) else { return };
    dovecot.deliver("reports", "1.eml", &data("mox__testdata__tlsreports__microsoft.eml"));
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing = Ingestor::new(store.clone(), Limits::default());
    let trusted = Arc::new(mtasts_testkit::ca::client_config(ca.root_store()));
    let mut source =
        ImapSource::from_url("imaps://reports:pw@imap.test/INBOX", None, trusted).unwrap();
    source.connect_to = Some(dovecot.addr());
    let stats = source.poll(&ing).await.unwrap();
    assert_eq!(stats.stored, 1, "{stats:?}");
    assert_eq!(store.count().await.unwrap(), 1);
    let mut untrusting =
        ImapSource::from_url("imaps://reports:pw@imap.test/INBOX", None, no_tls()).unwrap();
    untrusting.connect_to = Some(dovecot.addr());
    let e = untrusting.poll(&ing).await.unwrap_err();
    assert!(e.to_string().starts_with("IMAP TLS handshake failed"), "{e}");
    db.cleanup().await;
}
