//! DKIM on report mail (RFC 8460 §3), the key published in the test world's DNS.

use std::time::Duration;

use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mtasts_net::dns::RecordType;
use mtasts_reports::dkim::{DkimPolicy, DkimVerdict, DkimVerifier};
use mtasts_reports::{IngestError, Ingestor, IntakeError, Limits};
use mtasts_store::reports::ReportStore;
use mtasts_store::testing::TestDb;
use mtasts_testkit::World;
use mtasts_testkit::dns::Override;

use crate::ingest::data;

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A world whose DNS publishes an Ed25519 DKIM key for `sel._domainkey.reporter.test`, and
/// the report mail signed with it.
async fn signed_report() -> (World, Vec<u8>) {
    let world = World::builder().build().await;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = Ed25519Key::from_pkcs8_der(pkcs8.as_ref()).unwrap();
    let record = format!("v=DKIM1; k=ed25519; p={}", base64(&key.public_key()));
    world.dns().set_override(
        "sel._domainkey.reporter.test",
        RecordType::TXT,
        Override::Txt(vec![vec![record]]),
    );
    let mail = String::from_utf8(data("stalwart-mail-auth__resources__tlsrpt__rpt01.eml"))
        .unwrap()
        .replace("From: tlsrpt@mail.sender.example.com", "From: tlsrpt@reporter.test");
    let signature = DkimSigner::from_key(key)
        .domain("reporter.test")
        .selector("sel")
        .headers(["From", "To", "Subject", "Date", "TLS-Report-Domain", "TLS-Report-Submitter"])
        .sign(mail.as_bytes())
        .unwrap();
    let signed = format!("{}{mail}", signature.to_header()).into_bytes();
    (world, signed)
}

fn verifier(world: &World) -> DkimVerifier {
    DkimVerifier::new(&[world.dns_addr()], Duration::from_secs(2)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_passes_tampered_fails_unsigned_is_none() {
    let (world, signed) = signed_report().await;
    let v = verifier(&world);
    assert_eq!(v.verify(&signed).await, DkimVerdict::Pass { domain: "reporter.test".into() });
    // One byte of the attachment changed: the body hash no longer matches.
    let text = String::from_utf8(signed.clone()).unwrap();
    let tampered = text.replacen("H4sICCpFtWMAA3JwdDAx", "H4sICCpFtWMAA3JwdDAy", 1);
    assert_ne!(tampered, text);
    assert!(matches!(v.verify(tampered.as_bytes()).await, DkimVerdict::Fail { .. }));
    let unsigned = data("stalwart-mail-auth__resources__tlsrpt__rpt01.eml");
    assert_eq!(v.verify(&unsigned).await, DkimVerdict::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_keeps_flags_or_refuses() {
    let (world, signed) = signed_report().await;
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let flag = Ingestor::new(store.clone(), Limits::default())
        .with_dkim(verifier(&world), DkimPolicy::Flag);
    let r = flag.mail(&signed, 1).await.unwrap().remove(0);
    assert_eq!(r.dkim.as_deref(), Some("pass:reporter.test"));
    assert_eq!(
        store.get(r.id).await.unwrap().unwrap().row.dkim.as_deref(),
        Some("pass:reporter.test")
    );
    let unsigned = data("mox__testdata__tlsreports__microsoft.eml");
    let r = flag.mail(&unsigned, 1).await.unwrap().remove(0);
    assert!(matches!(r.dkim.as_deref(), Some("fail" | "temperror" | "none")), "{:?}", r.dkim);

    let require = Ingestor::new(store.clone(), Limits::default())
        .with_dkim(verifier(&world), DkimPolicy::Require);
    let plain = data("parsedmarc__smtp_tls__google.com_smtp_tls_report.eml");
    let plain = String::from_utf8(plain).unwrap();
    // Strip its (real, unverifiable here) signatures: an unsigned report.
    let unsigned: String = strip_signatures(&plain);
    let e = require.mail(unsigned.as_bytes(), 1).await.unwrap_err();
    assert!(matches!(e, IngestError::Rejected(IntakeError::Dkim { .. })), "{e}");
    assert!(
        e.to_string().contains(
            "RFC 8460 §3: report mail must be DKIM-signed, and the message has no DKIM signature"
        ),
        "{e}"
    );
    let before = store.count().await.unwrap();
    // A dead DNS server: temporary, so the MTA retries.
    let dead =
        DkimVerifier::new(&["127.0.0.1:9".parse().unwrap()], Duration::from_millis(300)).unwrap();
    let strict_dead =
        Ingestor::new(store.clone(), Limits::default()).with_dkim(dead, DkimPolicy::Require);
    let e = strict_dead.mail(&signed, 1).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert_eq!(store.count().await.unwrap(), before, "nothing stored");
    db.cleanup().await;
}

fn strip_signatures(mail: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in mail.split_inclusive('\n') {
        if line.to_ascii_lowercase().starts_with("dkim-signature:") {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        skipping = false;
        out.push_str(line);
    }
    out
}
