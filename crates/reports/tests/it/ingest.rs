//! Real samples in, the same rows out, whichever way they came.

use std::path::PathBuf;

use mtasts_reports::intake::{self, IntakeError, Limits};
use mtasts_reports::{IngestError, Ingestor};
use mtasts_store::reports::{FailureKey, ReportStore};
use mtasts_store::testing::TestDb;

pub(crate) fn data(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
}

/// The JSON samples live with the report parser's tests.
pub(crate) fn json_sample(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/data/tlsrpt").join(name),
    )
    .unwrap()
}

const MAILS: [&str; 5] = [
    "mox__testdata__tlsreports__example.eml",
    "mox__testdata__tlsreports__microsoft.eml",
    "parsedmarc__smtp_tls__google.com_smtp_tls_report.eml",
    "stalwart-mail-auth__resources__tlsrpt__rpt01.eml",
    "stalwart-mail-auth__resources__tlsrpt__rpt02.eml",
];

async fn ingestor(db: &TestDb) -> Ingestor {
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    Ingestor::new(store, Limits::default())
}

/// Every sample mail gives its report; the report inside equals the extracted attachment the
/// samples also carry (gzip or JSON): the MIME layer loses nothing.
#[test]
fn every_sample_mail_yields_its_report() {
    for name in MAILS {
        let found = intake::from_mail(&data(name), &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(found.len(), 1, "{name}");
        let e = &found[0];
        assert!(!e.report.policies.is_empty(), "{name}");
        assert!(e.headers.report_domain.is_some(), "{name}: TLS-Report-Domain");
    }
    for (mail, gz) in [
        (
            "mox__testdata__tlsreports__example.eml",
            "mox__testdata__tlsreports__example_google_extracted.json.gz",
        ),
        (
            "mox__testdata__tlsreports__microsoft.eml",
            "mox__testdata__tlsreports__microsoft_extracted.json.gz",
        ),
        (
            "parsedmarc__smtp_tls__google.com_smtp_tls_report.eml",
            "parsedmarc__smtp_tls__google.com_extracted.json.gz",
        ),
    ] {
        let from_mail = intake::from_mail(&data(mail), &Limits::default()).unwrap().remove(0);
        let from_file = intake::from_file(&data(gz), &Limits::default(), gz).unwrap();
        assert_eq!(from_mail.report, from_file.report, "{mail}");
        assert_eq!(from_mail.raw_json, from_file.raw_json, "{mail}");
    }
    // rpt02 is application/tlsrpt without a suffix: taken, and noted.
    let e = intake::from_mail(&data(MAILS[4]), &Limits::default()).unwrap().remove(0);
    assert!(
        e.tolerated.iter().any(|t| t.code == "mail-nonstandard-media-type"),
        "{:?}",
        e.tolerated
    );
}

async fn dedup_and_every_field(db: TestDb) {
    let ing = ingestor(&db).await;
    // The same Google report by mail and as the file a person saved: stored once.
    let first = ing.mail(&data(MAILS[0]), 1_000).await.unwrap().remove(0);
    assert!(!first.duplicate);
    let again = ing
        .file(
            &data("mox__testdata__tlsreports__example_google_extracted.json.gz"),
            "x.json.gz",
            2_000,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    let twice = ing.mail(&data(MAILS[0]), 3_000).await.unwrap().remove(0);
    assert!(twice.duplicate && twice.id == first.id);
    assert_eq!(ing.store().count().await.unwrap(), 1);
    let detail = ing.store().get(first.id).await.unwrap().unwrap();
    assert_eq!(detail.row.receipts, 3);
    assert_eq!(detail.row.channel, "mail");
    assert_eq!(detail.submitter.as_deref(), Some("google.com"));
    assert_eq!(detail.report_domain.as_deref(), Some("test.xmox.nl"));

    // Every other sample; Microsoft's date without a timezone is accepted with a warning.
    for name in &MAILS[1..] {
        ing.mail(&data(name), 4_000).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in [
        "parsedmarc__smtp_tls__mail.ru.json",
        "parsedmarc__smtp_tls__rfc8460.json",
        "dmarc-report-viewer__testdata__smtp-tls-reports__no-policy.json",
    ] {
        ing.file(&json_sample(name), name, 5_000).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let ms = ing.store().list(Some("test.xmox.nl"), 100).await.unwrap();
    assert!(ms.iter().any(|r| r.organization.contains("Microsoft")), "{ms:?}");
    let microsoft = ms.iter().find(|r| r.organization.contains("Microsoft")).unwrap();
    let warnings = ing.store().get(microsoft.id).await.unwrap().unwrap().warnings_json;
    assert!(warnings.contains("timezone") || warnings.contains("offset"), "{warnings}");

    // Fields parsedmarc drops are kept: mx-host, additional-information, failure-reason-code.
    let rfc = ing.store().list(Some("company-y.example"), 10).await.unwrap();
    assert_eq!(rfc.len(), 1, "{rfc:?}");
    let report = ing.store().get(rfc[0].id).await.unwrap().unwrap();
    let doc = mtasts_reports::record::parsed_document(&report.raw_json);
    let details = &doc["policies"][0]["failure-details"];
    assert!(
        details[1]["additional-information"].as_str().unwrap().starts_with("https://"),
        "{doc}"
    );
    assert_eq!(details[2]["failure-reason-code"], "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
    assert_eq!(details[1]["receiving-ip"], "203.0.113.56");
    assert!(doc["policies"][0]["policy"]["mx-host"].is_array(), "{doc}");
    let by_type =
        ing.store().failures(FailureKey::ResultType, Some("company-y.example"), 0).await.unwrap();
    assert!(!by_type.is_empty());
    let got: Vec<(&str, i64)> = by_type.iter().map(|g| (g.key.as_str(), g.failed)).collect();
    assert_eq!(
        got,
        [("starttls-not-supported", 200), ("certificate-expired", 100), ("validation-failure", 3)]
    );
    assert_eq!(rfc[0].failed, 303);
    let by_mx =
        ing.store().failures(FailureKey::ReceivingMx, Some("company-y.example"), 0).await.unwrap();
    assert_eq!(by_mx[0].key, "mx2.mail.company-y.example");
    let days = ing.store().days(None, 0).await.unwrap();
    assert!(days.iter().any(|d| d.domain == "company-y.example" && d.failed > 0), "{days:?}");
    db.cleanup().await;
}

#[tokio::test]
async fn dedup_and_every_field_sqlite() {
    dedup_and_every_field(TestDb::sqlite()).await;
}

#[tokio::test]
async fn dedup_and_every_field_postgres() {
    let Some(db) = TestDb::postgres("reports_dedup").await else { return };
    dedup_and_every_field(db).await;
}

/// Refused with a reason, nothing partial stored: a gzip bomb, a truncated gzip, non-JSON, a
/// 50 MB body, a mail without a report.
#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let db = TestDb::sqlite();
    let ing = ingestor(&db).await;
    let gz = data("mox__testdata__tlsreports__example_google_extracted.json.gz");
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &vec![b'{'; 200 * 1024 * 1024]).unwrap();
    let bomb = bomb.finish().unwrap();
    let fifty_mb = vec![b'{'; 50 * 1024 * 1024];
    let not_report = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n".to_vec();
    for (what, result) in [
        ("bomb", ing.https("application/tlsrpt+gzip", &bomb, None, 1).await.map(|_| ())),
        (
            "truncated",
            ing.https("application/tlsrpt+gzip", &gz[..gz.len() / 2], None, 1).await.map(|_| ()),
        ),
        ("not json", ing.https("application/tlsrpt+json", b"<html>", None, 1).await.map(|_| ())),
        ("50 MB", ing.https("application/tlsrpt+json", &fifty_mb, None, 1).await.map(|_| ())),
        ("mail", ing.mail(&not_report, 1).await.map(|_| ())),
    ] {
        let e = result.expect_err(what);
        assert!(matches!(e, IngestError::Rejected(_)), "{what}: {e}");
        assert!(!e.is_temporary());
        let words = e.to_string();
        match what {
            "bomb" => assert!(
                matches!(e, IngestError::Rejected(IntakeError::ReportTooLarge { .. })),
                "{words}"
            ),
            "truncated" => assert!(words.contains("gzip data is broken"), "{words}"),
            "50 MB" => assert!(words.contains("limit"), "{words}"),
            "mail" => assert!(words.contains("not a TLS-RPT report"), "{words}"),
            _ => assert!(words.contains("the body"), "{words}"),
        }
    }
    assert_eq!(ing.store().count().await.unwrap(), 0);
    db.cleanup().await;
}

/// Quirks of real senders are accepted and recorded with the stored report: a date without a
/// timezone, `mx-host` as a string, `contact-info: null`, no `policy-domain` for
/// `no-policy-found`, detail counts that do not add up.
#[tokio::test]
async fn quirks_are_accepted_with_a_recorded_warning() {
    let db = TestDb::sqlite();
    let ing = ingestor(&db).await;
    let stored = |warnings: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&warnings).unwrap();
        v.as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap().to_owned()).collect()
    };
    for (name, code) in [
        ("mox__testdata__tlsreports__microsoft_extracted.json.gz", "datetime-no-timezone"),
        ("parsedmarc__smtp_tls__google.com_extracted.json.gz", ""),
    ] {
        let r = ing.file(&data(name), name, 1).await.unwrap();
        let codes = stored(ing.store().get(r.id).await.unwrap().unwrap().warnings_json);
        assert!(code.is_empty() || codes.iter().any(|c| c == code), "{name}: {codes:?}");
    }
    let rfc = ing.file(&json_sample("parsedmarc__smtp_tls__rfc8460.json"), "rfc", 1).await.unwrap();
    let codes = stored(ing.store().get(rfc.id).await.unwrap().unwrap().warnings_json);
    assert!(codes.iter().any(|c| c == "mx-host-string"), "{codes:?}");
    let ru = ing.file(&json_sample("parsedmarc__smtp_tls__mail.ru.json"), "ru", 1).await.unwrap();
    let codes = stored(ing.store().get(ru.id).await.unwrap().unwrap().warnings_json);
    assert!(codes.iter().any(|c| c == "failure-count-mismatch"), "{codes:?}");
    // contact-info: null and no policy-domain for no-policy-found (tlsrpt-reporter #51).
    let report = serde_json::json!({
        "organization-name": "Stalwart-based", "contact-info": null, "report-id": "q1",
        "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-02T00:00:00Z"},
        "policies": [{"policy": {"policy-type": "no-policy-found", "policy-string": []},
            "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0},
            "failure-details": []}]
    });
    let r =
        ing.https("application/tlsrpt+json", report.to_string().as_bytes(), None, 1).await.unwrap();
    let codes = stored(ing.store().get(r.id).await.unwrap().unwrap().warnings_json);
    assert!(codes.iter().any(|c| c == "field-null" || c == "contact-info-missing"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "policy-domain-missing"), "{codes:?}");
    db.cleanup().await;
}

/// A batch stores its reports in one transaction and gives each input its own outcome: a
/// report twice in the same batch is stored once, a non-report is refused alone.
#[tokio::test]
async fn a_batch_gives_each_input_its_own_outcome() {
    use mtasts_reports::Incoming;
    let db = TestDb::sqlite();
    let ing = ingestor(&db).await;
    let google = data(MAILS[0]);
    let gz = data("mox__testdata__tlsreports__microsoft_extracted.json.gz");
    let spam = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n".to_vec();
    let inputs = [
        Incoming::Mail(&google),
        Incoming::Mail(&spam),
        Incoming::File(&gz, "ms.json.gz"),
        Incoming::Mail(&google),
    ];
    let results = ing.batch(&inputs, 1).await;
    assert_eq!(results.len(), 4);
    let first = results[0].as_ref().unwrap();
    assert!(!first[0].duplicate);
    assert!(matches!(results[1], Err(IngestError::Rejected(_))));
    assert!(!results[2].as_ref().unwrap()[0].duplicate);
    let again = &results[3].as_ref().unwrap()[0];
    assert!(again.duplicate && again.id == first[0].id);
    assert_eq!(ing.store().count().await.unwrap(), 2);
    db.cleanup().await;
}

/// The pipeline (reading and parsing on worker threads while earlier batches are stored) gives
/// every input of a maildir its outcome in name order, as one batch would: the samples stored,
/// a repeat acknowledged as a duplicate, a non-report refused, and a file that cannot be read
/// (a dangling link) its own error, not the directory's.
#[tokio::test]
async fn the_pipeline_keeps_order_and_gives_each_input_its_outcome() {
    let db = TestDb::sqlite();
    let ing = ingestor(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::create_dir_all(dir.path().join("cur")).unwrap();
    for (i, name) in MAILS.iter().enumerate() {
        std::fs::write(new.join(format!("{i:02}.eml")), data(name)).unwrap();
    }
    std::fs::write(new.join("05.eml"), data(MAILS[0])).unwrap();
    std::fs::write(new.join("06.eml"), b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
        .unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone"), new.join("07.eml")).unwrap();
    std::fs::write(new.join("08.eml"), data(MAILS[1])).unwrap();

    let pending = mtasts_reports::source::plan(dir.path().to_str().unwrap(), 1 << 20).unwrap();
    assert_eq!(pending.len(), 9);
    let mut seen: Vec<(String, Result<Vec<mtasts_reports::Ingested>, String>)> = Vec::new();
    // Batches of 2 over 3 workers: the order is kept across workers and batches.
    ing.pipeline(
        pending,
        (2, 3),
        || 7,
        |item, result| {
            let name = item.origin.rsplit('/').next().unwrap().to_owned();
            seen.push((name, result.map_err(|e| e.to_string())));
            Ok::<(), std::convert::Infallible>(())
        },
    )
    .await
    .unwrap();

    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["00.eml", "01.eml", "02.eml", "03.eml", "04.eml", "05.eml", "06.eml", "07.eml", "08.eml"]
    );
    for (name, r) in &seen[..5] {
        assert!(!r.as_ref().unwrap()[0].duplicate, "{name}: {r:?}");
    }
    let first = &seen[0].1.as_ref().unwrap()[0];
    let repeat = &seen[5].1.as_ref().unwrap()[0];
    assert!(repeat.duplicate && repeat.id == first.id, "{repeat:?}");
    assert!(seen[6].1.as_ref().unwrap_err().contains("not a TLS-RPT report"), "{:?}", seen[6]);
    let unreadable = seen[7].1.as_ref().unwrap_err();
    assert!(unreadable.contains("cannot read") && unreadable.contains("07.eml"), "{unreadable}");
    assert!(seen[8].1.as_ref().unwrap()[0].duplicate, "{:?}", seen[8]);
    assert_eq!(ing.store().count().await.unwrap(), 5);
    db.cleanup().await;
}
