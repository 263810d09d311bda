//! `report summary --html`: the page in a real browser (Debian's chromium, headless). The
//! screenshot is kept at `$CARGO_TARGET_TMPDIR/tlsrpt-summary.png` for people to look at.

use std::path::PathBuf;

use mtasts_reports::page::{BREAKDOWN_TITLES, build};
use mtasts_reports::{Ingestor, Limits};
use mtasts_store::reports::{FailureKey, ReportStore};
use mtasts_store::testing::TestDb;
use mtasts_testkit::browser::{Browser, file_url};

use crate::ingest::data;

const DAY: i64 = 86_400;

/// A report for `domain` on day `d` (unix days) from `org`, with `ok` successes and failures.
fn report(org: &str, domain: &str, d: i64, ok: u64, failures: &[(&str, &str, u64)]) -> Vec<u8> {
    let day = time::OffsetDateTime::from_unix_timestamp(d * DAY).unwrap().date();
    let details: Vec<serde_json::Value> = failures
        .iter()
        .map(|(kind, mx, n)| {
            serde_json::json!({"result-type": kind, "sending-mta-ip": "192.0.2.10",
                "receiving-mx-hostname": mx, "receiving-ip": "198.51.100.25", "failed-session-count": n})
        })
        .collect();
    let failed: u64 = failures.iter().map(|f| f.2).sum();
    serde_json::to_vec(&serde_json::json!({
        "organization-name": org,
        "date-range": {"start-datetime": format!("{day}T00:00:00Z"), "end-datetime": format!("{day}T23:59:59Z")},
        "contact-info": "tlsrpt@reporter.example",
        "report-id": format!("{org}-{domain}-{d}"),
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing", "mx: mx1.example.com", "max_age: 86400"],
                       "policy-domain": domain, "mx-host": ["mx1.example.com"]},
            "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
            "failure-details": details
        }]
    }))
    .unwrap()
}

#[tokio::test]
async fn summary_page_renders_in_chromium() {
    let db = TestDb::sqlite();
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let ing = Ingestor::new(store.clone(), Limits::default());
    let start = 20_400; // 2025-11-08
    for i in 0..21 {
        let d = start + i;
        let mut failures = vec![];
        if i % 5 == 0 {
            failures.push(("certificate-expired", "mx2.example.com", 3 + i as u64));
        }
        if i % 7 == 3 {
            failures.push(("starttls-not-supported", "mx3.example.com", 12));
        }
        ing.file(&report("Google Inc.", "example.com", d, 900 + 10 * i as u64, &failures), "g", 1)
            .await
            .unwrap();
        ing.file(&report("Microsoft Corporation", "example.com", d, 400, &[]), "m", 1)
            .await
            .unwrap();
    }
    // A second domain, from a real mail, and a hostile organisation name.
    ing.mail(&data("stalwart-mail-auth__resources__tlsrpt__rpt01.eml"), 1).await.unwrap();
    ing.file(
        &report(
            "<script>alert(1)</script>",
            "example.org",
            start + 3,
            10,
            &[("validation-failure", "<b>mx</b>", 1)],
        ),
        "x",
        1,
    )
    .await
    .unwrap();
    let since = 0;
    let mut breakdowns: [Vec<_>; 4] = Default::default();
    for (i, key) in [
        FailureKey::ResultType,
        FailureKey::Organization,
        FailureKey::ReceivingMx,
        FailureKey::ReceivingIp,
    ]
    .into_iter()
    .enumerate()
    {
        breakdowns[i] = store.failures(key, None, since).await.unwrap();
    }
    assert_eq!(BREAKDOWN_TITLES.len(), breakdowns.len());
    let page = build(
        "TLS-RPT reports",
        "2025-11-30T08:00:00Z",
        since,
        &store.days(None, since).await.unwrap(),
        &store.failure_days(None, since).await.unwrap(),
        &breakdowns,
    );
    let html = page.html().unwrap();

    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let work = tmp.join(format!("tlsrpt-page-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let Some(mut browser) = Browser::find(&work) else { return };
    let file = work.join("summary.html");
    std::fs::write(&file, &html).unwrap();
    let png = work.join("summary.png");
    browser.screenshot(&file_url(&file), &png, 1200, 1800);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
    std::fs::copy(&png, tmp.join("tlsrpt-summary.png")).unwrap();

    let dom = browser.dump_dom(&file_url(&file));
    assert_eq!(dom.matches("<section class=\"domain\"").count(), 3, "three domains");
    // example.com: 21 days of bars in the sessions chart; failures stacked by type.
    let com = &dom[dom.find("<h2>example.com</h2>").unwrap()..];
    let com = &com[..com.find("</section>").unwrap()];
    assert!(com.contains("example.com: sessions per UTC day"));
    assert!(com.contains("2025-11-08") && com.contains("2025-11-28"), "first and last day");
    assert!(com.contains("certificate-expired") && com.contains("starttls-not-supported"));
    assert!(com.contains("Failures by receiving MX") && com.contains("mx3.example.com"));
    assert_eq!(com.matches("fill=\"#2e9e48\"").count(), 21, "one successful segment a day");
    // Hostile text stayed text; nothing runs, nothing loads.
    assert!(!dom.contains("<script>alert(1)</script>") && !dom.contains("<b>mx</b>"));
    assert!(dom.contains("&lt;b&gt;mx&lt;/b&gt;"));
    let _ = std::fs::remove_dir_all(&work);
    db.cleanup().await;
}
