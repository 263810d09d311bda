//! Runs, enqueueing, claiming, leases, completion and progress.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mtasts_store::{Category, Claim, Grade, Progress, ScanStore, StoreError};

use crate::common::{TestDb, both_backends, domains, row};

both_backends!(
    runs_lifecycle,
    enqueue_dedup_order_idempotent,
    concurrent_claimers_disjoint,
    lease_expiry,
    lease_with_database_clock,
    complete_twice_one_result,
    bulk_enqueue_is_fast,
    reopen_keeps_data,
    queue_keeps_what_the_user_wrote,
);

const LEASE: Duration = Duration::from_secs(60);

async fn runs_lifecycle(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.latest_unfinished_run().await.unwrap(), None);
    let r1 = store.create_run("a.txt", r#"{"x":1}"#).await.unwrap();
    let r2 = store.create_run("-", "{}").await.unwrap();
    assert!(r2 > r1);

    let info = store.run_info(r1).await.unwrap();
    assert_eq!(info.id, r1);
    assert_eq!(info.input, "a.txt");
    assert_eq!(info.options_json, r#"{"x":1}"#);
    assert!(info.started_at > 1_600_000_000, "database clock in unix seconds: {}", info.started_at);
    assert_eq!(info.finished_at, None);
    assert!(!info.loaded);

    let runs = store.runs().await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2, r1]);
    assert_eq!(store.latest_unfinished_run().await.unwrap(), Some(r2));

    store.mark_loaded(r2).await.unwrap();
    store.finish_run(r2).await.unwrap();
    let info = store.run_info(r2).await.unwrap();
    assert!(info.loaded);
    assert!(info.finished_at.unwrap() >= info.started_at);
    assert_eq!(store.latest_unfinished_run().await.unwrap(), Some(r1));

    let missing = mtasts_store::RunId(r2.0 + 100);
    assert!(matches!(store.run_info(missing).await, Err(StoreError::NoSuchRun(r)) if r == missing));
    assert!(matches!(store.mark_loaded(missing).await, Err(StoreError::NoSuchRun(_))));
    assert!(matches!(store.finish_run(missing).await, Err(StoreError::NoSuchRun(_))));
    assert!(matches!(
        store.enqueue(missing, &["a.example".to_owned()]).await,
        Err(StoreError::NoSuchRun(_))
    ));
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

async fn claim_all(store: &ScanStore, run: mtasts_store::RunId) -> Vec<Claim> {
    store.claim(run, "w", 1_000_000, LEASE).await.unwrap()
}

async fn enqueue_dedup_order_idempotent(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let other = store.create_run("other.txt", "{}").await.unwrap();

    assert_eq!(store.enqueue(run, &[]).await.unwrap(), 0);
    // Duplicates inside a batch: the first occurrence wins.
    let added = store
        .enqueue(run, &strings(&["c.example", "a.example", "c.example", "b.example"]))
        .await
        .unwrap();
    assert_eq!(added, 3);
    // Duplicates across batches are dropped; new ones come after.
    let added = store
        .enqueue(run, &strings(&["b.example", "e.example", "d.example", "a.example"]))
        .await
        .unwrap();
    assert_eq!(added, 2);
    // Same domain in another run is independent.
    assert_eq!(store.enqueue(other, &strings(&["a.example"])).await.unwrap(), 1);

    // Re-enqueueing the whole input (as after a crash) adds nothing.
    let again = strings(&[
        "c.example",
        "a.example",
        "c.example",
        "b.example",
        "b.example",
        "e.example",
        "d.example",
        "a.example",
    ]);
    assert_eq!(store.enqueue(run, &again).await.unwrap(), 0);

    let p = store.progress(run).await.unwrap();
    assert_eq!(p, Progress { queued: 5, done: 0, claimed: 0, pending: 5, results: 0 });

    let claims = claim_all(&store, run).await;
    let order: Vec<&str> = claims.iter().map(|c| c.domain.as_str()).collect();
    assert_eq!(order, ["c.example", "a.example", "b.example", "e.example", "d.example"]);
    assert!(claims.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.progress(run).await.unwrap().claimed, 5);
}

async fn concurrent_claimers_disjoint(db: &TestDb) {
    const N: usize = 600;
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let all = domains("conc", N);
    for chunk in all.chunks(100) {
        store.enqueue(run, chunk).await.unwrap();
    }
    store.mark_loaded(run).await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..4 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            // Each worker has its own store (own connection pool), like separate processes.
            let store = ScanStore::open(&url).await.unwrap();
            let worker = format!("worker-{w}");
            let mut got = Vec::new();
            loop {
                let claims = store.claim(run, &worker, 7, LEASE).await.unwrap();
                if claims.is_empty() {
                    let p = store.progress(run).await.unwrap();
                    if p.pending == 0 {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                let results: Vec<_> = claims
                    .iter()
                    .map(|c| (c.seq, row(&c.domain, Category::NoMtaSts, Grade::F)))
                    .collect();
                store.complete(run, &worker, &results).await.unwrap();
                got.extend(claims.into_iter().map(|c| c.domain));
            }
            store.close().await;
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut per_worker = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        per_worker.push(got.len());
        total += got.len();
        for d in got {
            assert!(seen.insert(d.clone()), "{d} claimed twice");
        }
    }
    assert_eq!(total, N, "per worker: {per_worker:?}");
    assert_eq!(seen, all.into_iter().collect::<HashSet<_>>());
    let p = store.progress(run).await.unwrap();
    assert_eq!(
        p,
        Progress { queued: N as u64, done: N as u64, claimed: 0, pending: 0, results: N as u64 }
    );
    eprintln!("claims per worker: {per_worker:?}");
}

async fn lease_expiry(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    store.enqueue(run, &domains("lease", 5)).await.unwrap();
    let t0 = 1_000_000;

    let w1 = store.claim_at(run, "w1", 3, LEASE, t0).await.unwrap();
    assert_eq!(w1.len(), 3);
    // w2 gets the rest, not w1's rows.
    let w2 = store.claim_at(run, "w2", 10, LEASE, t0 + 1).await.unwrap();
    assert_eq!(w2.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![w1[2].seq + 1, w1[2].seq + 2]);
    // Unexpired (lease_until = t0 + 60, not < now) is not re-claimable.
    assert!(store.claim_at(run, "w3", 10, LEASE, t0 + 30).await.unwrap().is_empty());
    assert!(store.claim_at(run, "w3", 10, LEASE, t0 + 60).await.unwrap().is_empty());

    // w1 renews two of its rows; w2 "renews" w1's third row, which does nothing.
    let w1_seqs: Vec<i64> = w1.iter().map(|c| c.seq).collect();
    store.renew_at(run, "w1", &w1_seqs[..2], LEASE, t0 + 50).await.unwrap();
    store.renew_at(run, "w2", &w1_seqs[2..], LEASE, t0 + 50).await.unwrap();

    // At t0 + 61 w1's third row and w2's rows (leased until t0 + 61 from t0 + 1: not yet)…
    let c = store.claim_at(run, "w3", 10, LEASE, t0 + 61).await.unwrap();
    assert_eq!(c, vec![w1[2].clone()]);
    // …at t0 + 62 w2's rows too; w1's renewed rows (until t0 + 110) stay.
    let c = store.claim_at(run, "w3", 10, LEASE, t0 + 62).await.unwrap();
    assert_eq!(c, w2);
    assert!(store.claim_at(run, "w4", 10, LEASE, t0 + 110).await.unwrap().is_empty());
    let c = store.claim_at(run, "w4", 1, LEASE, t0 + 111).await.unwrap();
    assert_eq!(c, vec![w1[0].clone()], "lowest seq first, max respected");

    let p = store.progress(run).await.unwrap();
    assert_eq!((p.pending, p.claimed, p.done), (0, 5, 0));
    // Zero max claims nothing; sub-second leases round up to one second.
    assert!(store.claim_at(run, "w5", 0, LEASE, t0 + 1000).await.unwrap().is_empty());
    let c = store.claim_at(run, "w5", 1, Duration::from_millis(10), t0 + 1000).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!(
        store
            .claim_at(run, "w6", 1, LEASE, t0 + 1000)
            .await
            .unwrap()
            .iter()
            .all(|x| x.seq != c[0].seq)
    );
    let again = store.claim_at(run, "w6", 10, LEASE, t0 + 1002).await.unwrap();
    assert!(again.iter().any(|x| x.seq == c[0].seq));
}

async fn lease_with_database_clock(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    store.enqueue(run, &domains("clock", 4)).await.unwrap();
    let a = store.claim(run, "a", 2, Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.len(), 2);
    let b = store.claim(run, "b", 10, LEASE).await.unwrap();
    assert_eq!(b.len(), 2, "a's unexpired rows are not handed out");
    // A's 1 s lease is over after at most 2 s of wall clock.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let c = store.claim(run, "c", 10, LEASE).await.unwrap();
    assert_eq!(c, a);
    store.renew(run, "c", &[c[0].seq], LEASE).await.unwrap();
}

async fn complete_twice_one_result(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    store.enqueue(run, &domains("twice", 2)).await.unwrap();
    let t0 = 2_000_000;
    let w1 = store.claim_at(run, "w1", 1, LEASE, t0).await.unwrap();
    // w1 stalls; its lease expires and w2 takes the row over.
    let w2 = store.claim_at(run, "w2", 1, LEASE, t0 + 61).await.unwrap();
    assert_eq!(w1, w2);
    let c = &w1[0];

    let mut first = row(&c.domain, Category::Enforce, Grade::A);
    first.report_json = "{\"by\":\"w2\"}".to_owned();
    let mut second = row(&c.domain, Category::Testing, Grade::B);
    second.report_json = "{\"by\":\"w1\"}".to_owned();
    store.complete(run, "w2", &[(c.seq, first.clone())]).await.unwrap();
    store.complete(run, "w1", &[(c.seq, second)]).await.unwrap();

    assert_eq!(store.result(run, &c.domain).await.unwrap(), Some(first));
    let p = store.progress(run).await.unwrap();
    assert_eq!(p, Progress { queued: 2, done: 1, claimed: 0, pending: 1, results: 1 });
    // Completing nothing is fine; the done row is never claimed again.
    store.complete(run, "w1", &[]).await.unwrap();
    let rest = store.claim_at(run, "w3", 10, LEASE, t0 + 10_000).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(rest[0].seq, c.seq);
}

async fn bulk_enqueue_is_fast(db: &TestDb) {
    const N: usize = 20_000;
    let store = db.open().await;
    let run = store.create_run("big.txt", "{}").await.unwrap();
    let all = domains("bulk", N);
    let start = Instant::now();
    let mut added = 0;
    for chunk in all.chunks(1000) {
        added += store.enqueue(run, chunk).await.unwrap();
    }
    let elapsed = start.elapsed();
    eprintln!("enqueued {N} domains in {elapsed:?} ({:?})", store.backend());
    assert_eq!(added, N as u64);
    assert!(elapsed < Duration::from_secs(15), "enqueue too slow: {elapsed:?}");

    // Re-enqueue is a no-op and just as quick.
    let start = Instant::now();
    for chunk in all.chunks(1000) {
        assert_eq!(store.enqueue(run, chunk).await.unwrap(), 0);
    }
    assert!(start.elapsed() < Duration::from_secs(15));

    // Claiming walks the queue in order.
    let start = Instant::now();
    let mut last = i64::MIN;
    let mut n = 0;
    loop {
        let c = store.claim(run, "w", 500, LEASE).await.unwrap();
        if c.is_empty() {
            break;
        }
        assert!(c[0].seq > last);
        last = c[c.len() - 1].seq;
        n += c.len();
    }
    eprintln!("claimed {n} in {:?}", start.elapsed());
    assert_eq!(n, N);
}

async fn reopen_keeps_data(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    store.enqueue(run, &domains("reopen", 3)).await.unwrap();
    store.close().await;
    // Opening again runs the migrations again (a no-op) and sees the same data.
    let store = db.open().await;
    let again = db.open().await;
    assert_eq!(store.progress(run).await.unwrap().queued, 3);
    assert_eq!(again.run_info(run).await.unwrap().input, "in.txt");
}

/// Issue 10, defect 10: the queue keeps the input as written next to its A-label, and the
/// first occurrence wins for duplicates.
async fn queue_keeps_what_the_user_wrote(db: &TestDb) {
    let store = db.open().await;
    let run = store.create_run("in.txt", "{}").await.unwrap();
    let batch = vec![
        ("xn--bcher-kva.example".to_owned(), Some("bücher.example".to_owned())),
        ("plain.example".to_owned(), None),
        ("xn--bcher-kva.example".to_owned(), Some("BÜCHER.example.".to_owned())),
    ];
    assert_eq!(store.enqueue_inputs(run, &batch).await.unwrap(), 2);
    let claims = claim_all(&store, run).await;
    let got: Vec<(&str, Option<&str>)> =
        claims.iter().map(|c| (c.domain.as_str(), c.input.as_deref())).collect();
    assert_eq!(got, [("xn--bcher-kva.example", Some("bücher.example")), ("plain.example", None)]);
}
