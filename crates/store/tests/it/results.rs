//! Storing and streaming results.

use futures::TryStreamExt;
use mtasts_store::{Category, Grade, ResultRow};

use crate::common::{TestDb, both_backends, domains, row};

both_backends!(round_trip_every_field, stream_in_seq_order_across_pages);

fn full_row(domain: &str) -> ResultRow {
    ResultRow {
        domain: domain.to_owned(),
        category: Category::Enforce,
        grade: Grade::B,
        txt_present: true,
        policy_valid: true,
        mode: Some("enforce".to_owned()),
        max_age: Some(u32::MAX),
        mx_covered: Some(false),
        mx_tls_ok: Some(true),
        tlsrpt_present: true,
        tlsrpt_valid: false,
        provider: Some("google.com".to_owned()),
        error_codes: vec!["mx-not-covered".to_owned(), "cert-expired".to_owned()],
        warning_codes: vec!["max-age-short".to_owned()],
        report_json: r#"{"domain":"x","findings":[{"code":"mx-not-covered","text":"naïve ✓ 'quoted' \"double\""}]}"#.to_owned(),
        elapsed_ms: u64::try_from(i64::MAX).unwrap(),
    }
}

fn empty_row(domain: &str) -> ResultRow {
    ResultRow {
        domain: domain.to_owned(),
        category: Category::CouldNotCheck,
        grade: Grade::Unknown,
        txt_present: false,
        policy_valid: false,
        mode: None,
        max_age: None,
        mx_covered: None,
        mx_tls_ok: None,
        tlsrpt_present: false,
        tlsrpt_valid: true,
        provider: None,
        error_codes: Vec::new(),
        warning_codes: Vec::new(),
        report_json: String::new(),
        elapsed_ms: 0,
    }
}

async fn round_trip_every_field(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let names = ["full.example", "empty.example", "zero-max-age.example"];
    store.enqueue(run, &names.map(str::to_owned)).await.unwrap();
    let claims = store.claim(run, "w", 10, std::time::Duration::from_secs(60)).await.unwrap();
    let mut third = full_row(names[2]);
    third.max_age = Some(0);
    third.mx_covered = Some(true);
    third.mx_tls_ok = Some(false);
    third.error_codes = Vec::new();
    let rows = vec![full_row(names[0]), empty_row(names[1]), third];
    let results: Vec<_> = claims.iter().zip(&rows).map(|(c, r)| (c.seq, r.clone())).collect();
    store.complete(run, "w", &results).await.unwrap();

    // Invalid input lines never went through the queue.
    let mut bad = empty_row("not a domain!");
    bad.category = Category::InvalidName;
    bad.error_codes = vec!["invalid-name".to_owned()];
    store.record_result(run, &bad).await.unwrap();
    let mut bad2 = bad.clone();
    bad2.domain = String::new();
    store.record_result(run, &bad2).await.unwrap();
    // Recording again keeps the first.
    let mut dup = bad.clone();
    dup.report_json = "changed".to_owned();
    store.record_result(run, &dup).await.unwrap();

    for r in &rows {
        assert_eq!(store.result(run, &r.domain).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.result(run, "missing.example").await.unwrap(), None);
    let streamed: Vec<ResultRow> = store.results(run).try_collect().await.unwrap();
    let mut expected = rows.clone();
    expected.push(bad2);
    expected.push(bad);
    assert_eq!(streamed, expected);

    let p = store.progress(run).await.unwrap();
    assert_eq!((p.queued, p.done, p.results), (3, 3, 5));
}

async fn stream_in_seq_order_across_pages(db: &TestDb) {
    const N: usize = 2_345;
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let other = store.create_run("other.txt", "{}").await.unwrap();
    // Domains enqueued in reverse lexical order, so seq order differs from domain order.
    let mut all = domains("page", N);
    all.reverse();
    for chunk in all.chunks(1000) {
        store.enqueue(run, chunk).await.unwrap();
        store.enqueue(other, &chunk[..10]).await.unwrap();
    }
    // Complete in scrambled batches.
    let claims = store.claim(run, "w", N, std::time::Duration::from_secs(60)).await.unwrap();
    let mut batches: Vec<Vec<_>> = claims
        .chunks(97)
        .map(|c| c.iter().map(|c| (c.seq, row(&c.domain, Category::Testing, Grade::B))).collect())
        .collect();
    batches.reverse();
    for b in &batches {
        store.complete(run, "w", b).await.unwrap();
    }
    let oc = store.claim(other, "w", 100, std::time::Duration::from_secs(60)).await.unwrap();
    let ob: Vec<_> =
        oc.iter().map(|c| (c.seq, row(&c.domain, Category::Enforce, Grade::A))).collect();
    store.complete(other, "w", &ob).await.unwrap();
    for i in 0..1003 {
        let r = row(&format!("bad line {i:04}"), Category::InvalidName, Grade::Unknown);
        store.record_result(run, &r).await.unwrap();
    }

    let streamed: Vec<ResultRow> = store.results(run).try_collect().await.unwrap();
    assert_eq!(streamed.len(), N + 1003);
    let names: Vec<&str> = streamed.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(&names[..N], all.iter().map(String::as_str).collect::<Vec<_>>().as_slice());
    let bad: Vec<String> = (0..1003).map(|i| format!("bad line {i:04}")).collect();
    assert_eq!(&names[N..], bad.iter().map(String::as_str).collect::<Vec<_>>().as_slice());
    assert!(streamed[..N].iter().all(|r| r.category == Category::Testing));

    let other_rows: Vec<ResultRow> = store.results(other).try_collect().await.unwrap();
    assert_eq!(other_rows.len(), ob.len());
    let empty = store.create_run("empty", "{}").await.unwrap();
    let none: Vec<ResultRow> = store.results(empty).try_collect().await.unwrap();
    assert!(none.is_empty());
}
