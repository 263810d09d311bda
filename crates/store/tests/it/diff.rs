//! Diffing two runs.

use mtasts_store::{
    Category as C, Change, DiffRow, Grade as G, ResultRow, RunId, ScanStore, StoreError,
};

use crate::common::{TestDb, both_backends, row, with_errors};

both_backends!(diff_classifies_every_change);

async fn store_run(store: &ScanStore, rows: &[ResultRow]) -> RunId {
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.domain.clone()).collect();
    store.enqueue(run, &names).await.unwrap();
    let claims =
        store.claim(run, "w", rows.len(), std::time::Duration::from_secs(60)).await.unwrap();
    let results: Vec<_> = claims.iter().zip(rows).map(|(c, r)| (c.seq, r.clone())).collect();
    store.complete(run, "w", &results).await.unwrap();
    run
}

async fn diff_classifies_every_change(db: &TestDb) {
    let store = db.open().await;
    let before = vec![
        row("adopted.example", C::NoMtaSts, G::F),
        row("adopted2.example", C::TxtWithoutPolicy, G::D),
        row("broke.example", C::Enforce, G::A),
        with_errors(row("broke-grade.example", C::Enforce, G::A), &[]),
        with_errors(row("fixed.example", C::Enforce, G::C), &["mx-not-covered"]),
        row("fixed2.example", C::InvalidPolicy, G::D),
        row("mode.example", C::Testing, G::B),
        row("other.example", C::Enforce, G::A),
        row("removed.example", C::Enforce, G::A),
        row("same.example", C::Enforce, G::A),
        with_errors(row("same-errors.example", C::Enforce, G::C), &["x", "y"]),
    ];
    let after = vec![
        row("added.example", C::NoMtaSts, G::F),
        row("adopted.example", C::Enforce, G::A),
        row("adopted2.example", C::Testing, G::B),
        with_errors(row("broke.example", C::InvalidPolicy, G::D), &["policy-syntax"]),
        with_errors(row("broke-grade.example", C::Enforce, G::C), &["mx-tls"]),
        row("fixed.example", C::Enforce, G::A),
        row("fixed2.example", C::Enforce, G::A),
        row("mode.example", C::Enforce, G::A),
        with_errors(row("other.example", C::CouldNotCheck, G::Unknown), &["dns-timeout"]),
        row("same.example", C::Enforce, G::A),
        with_errors(row("same-errors.example", C::Enforce, G::C), &["x", "y"]),
    ];
    let a = store_run(&store, &before).await;
    let b = store_run(&store, &after).await;
    let diff = store.diff(a, b).await.unwrap();
    let d = |domain: &str, change: Change, before: Option<(C, G)>, after: Option<(C, G)>| DiffRow {
        domain: domain.to_owned(),
        change,
        before,
        after,
    };
    let expected = vec![
        d("added.example", Change::Added, None, Some((C::NoMtaSts, G::F))),
        d("adopted.example", Change::Adopted, Some((C::NoMtaSts, G::F)), Some((C::Enforce, G::A))),
        d(
            "adopted2.example",
            Change::Adopted,
            Some((C::TxtWithoutPolicy, G::D)),
            Some((C::Testing, G::B)),
        ),
        d("broke-grade.example", Change::Broke, Some((C::Enforce, G::A)), Some((C::Enforce, G::C))),
        d("broke.example", Change::Broke, Some((C::Enforce, G::A)), Some((C::InvalidPolicy, G::D))),
        d("fixed.example", Change::Fixed, Some((C::Enforce, G::C)), Some((C::Enforce, G::A))),
        d(
            "fixed2.example",
            Change::Fixed,
            Some((C::InvalidPolicy, G::D)),
            Some((C::Enforce, G::A)),
        ),
        d(
            "mode.example",
            Change::ModeChanged { from: "testing".to_owned(), to: "enforce".to_owned() },
            Some((C::Testing, G::B)),
            Some((C::Enforce, G::A)),
        ),
        d(
            "other.example",
            Change::Other,
            Some((C::Enforce, G::A)),
            Some((C::CouldNotCheck, G::Unknown)),
        ),
        d("removed.example", Change::Removed, Some((C::Enforce, G::A)), None),
    ];
    assert_eq!(diff, expected);

    // Reversed: Added/Removed swap.
    let rev = store.diff(b, a).await.unwrap();
    assert_eq!(rev.iter().find(|r| r.domain == "added.example").unwrap().change, Change::Removed);
    assert_eq!(rev.iter().find(|r| r.domain == "removed.example").unwrap().change, Change::Added);
    assert!(store.diff(a, a).await.unwrap().is_empty());
    assert!(matches!(store.diff(a, RunId(b.0 + 50)).await, Err(StoreError::NoSuchRun(_))));
}
