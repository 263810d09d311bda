//! Scans end to end on SQLite against the test world, and how a scan fails: a broken input
//! fails the run promptly and never marks a truncated list as loaded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtasts_scan::input::{InputError, InputLine};
use mtasts_scan::run::LOAD_BATCH;
use mtasts_scan::{
    InputReader, InputSource, JobOptions, RowSink, RunChoice, Scan, ScanError, ScanJob,
};
use mtasts_store::{Category, DatabaseUrl, Grade, ResultRow};
use mtasts_testkit::{Scenario, World};

use crate::support::{checker_for, config_for, scan_config, settings, sqlite_store};

/// Every scan here ends well within this; a scan that waits for ever fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// Keeps every row it is given.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<ResultRow>>>);

impl RowSink for Collect {
    fn row(&mut self, row: &ResultRow) -> std::io::Result<()> {
        self.0.lock().unwrap().push(row.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_scans_a_list_and_summarises_the_run() {
    let world =
        World::builder().scenario(Scenario::Good).scenario(Scenario::NoMtaSts).build().await;
    let (dir, url, _store) = sqlite_store().await;
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "good.test\nno-mta-sts.test\nGOOD.test.\nnot a domain\n").unwrap();
    let options = JobOptions {
        db: DatabaseUrl::parse(&url).unwrap(),
        run: RunChoice::New,
        input: Some(InputSource::File(list.clone())),
        column: None,
        net: config_for(&world),
        check: settings(),
        concurrency: 4,
        batch: 2,
        lease: Duration::from_secs(30),
        deadline: Duration::from_secs(20),
        worker: Some("tester".to_owned()),
    };
    let job = ScanJob::prepare(options.clone()).await.unwrap();
    let run = job.run_id();
    assert_eq!(job.info().input, list.display().to_string());
    assert!(job.released().is_empty());
    let rows = Collect::default();
    let outcome =
        tokio::time::timeout(LIMIT, job.run(Box::new(rows.clone()), true)).await.unwrap().unwrap();
    assert_eq!((outcome.load.read, outcome.load.queued, outcome.load.invalid), (3, 2, 1));
    // The invalid line is counted apart, not as a scanned domain (issue 10 defect 4).
    assert_eq!((outcome.summary.total, outcome.summary.invalid_lines), (2, 1));
    assert_eq!(outcome.summary.count(Category::Enforce), 1);
    assert_eq!(outcome.summary.count(Category::NoMtaSts), 1);
    assert_eq!(outcome.summary.count(Category::InvalidName), 0);
    let rows = rows.0.lock().unwrap().clone();
    assert_eq!(rows.len(), 3);
    let good = rows.iter().find(|r| r.domain == "good.test").unwrap();
    assert_eq!((good.category, good.grade), (Category::Enforce, Grade::A));
    // Problem rows keep only their warning and error findings (small), and the HTML report
    // shows them with their fixes; the invalid line is not a problem row (issue 10).
    let absent = outcome.problems.iter().find(|r| r.domain == "no-mta-sts.test").unwrap();
    let kept: serde_json::Value = serde_json::from_str(&absent.report_json).unwrap();
    assert!(kept.as_array().unwrap().iter().all(|f| f["severity"] != "ok"), "{kept}");
    assert!(kept.as_array().unwrap().iter().any(|f| f["code"] == "sts-not-deployed"), "{kept}");
    assert!(outcome.problems.iter().all(|r| r.category != Category::InvalidName));
    let html = outcome.html_report();
    assert!(html.contains("MTA-STS scan of"));
    assert!(html.contains("publishes no MTA-STS policy"), "the finding is in the page");

    // Finished: resuming the latest unfinished run finds none; resuming it by id does nothing.
    let store = mtasts_store::ScanStore::open(&url).await.unwrap();
    assert!(store.run_info(run).await.unwrap().finished_at.is_some());
    let latest = JobOptions { run: RunChoice::Latest, input: None, ..options.clone() };
    let err = ScanJob::prepare(latest).await.unwrap_err();
    assert!(err.to_string().contains("no unfinished run"), "{err}");
    let again = JobOptions { run: RunChoice::Id(run), input: None, ..options.clone() };
    let rows = Collect::default();
    let outcome = ScanJob::prepare(again).await.unwrap().run(Box::new(rows.clone()), false);
    let outcome = tokio::time::timeout(LIMIT, outcome).await.unwrap().unwrap();
    assert!(rows.0.lock().unwrap().is_empty());
    assert_eq!((outcome.summary.total, outcome.summary.invalid_lines), (2, 1));
    assert!(outcome.problems.is_empty(), "not asked for");

    // A list that does not exist fails before a run is created.
    let missing = JobOptions {
        input: Some(InputSource::File(dir.path().join("missing.txt"))),
        ..options.clone()
    };
    let err = ScanJob::prepare(missing).await.unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
    assert_eq!(store.runs().await.unwrap().len(), 1);
}

/// An input stream of `n` valid domains, then a panic (a reader with a bug, a decoder that
/// gives up, …).
fn panicking_input(n: usize) -> impl Iterator<Item = Result<InputLine, InputError>> + Send {
    (0..=n).map(move |i| {
        assert!(i < n, "input reader broke at line {i}");
        Ok(InputLine::Domain(format!("d{i:05}.absent.test"), None))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_reader_panic_fails_the_run() {
    let world = World::builder().build().await;
    let (_dir, _url, store) = sqlite_store().await;
    let run = store.create_run("list.txt", "{}").await.unwrap();
    let scan = Scan::new(store.clone(), checker_for(&world), run, scan_config("w"));
    // One full batch reaches the queue before the reader panics: the run is truncated.
    let result = tokio::time::timeout(
        LIMIT,
        scan.run(Some(panicking_input(LOAD_BATCH)), Box::new(mtasts_scan::NoRows)),
    )
    .await
    .expect("a failed reader must stop the scan, not leave it waiting for the rest");
    match result {
        Err(ScanError::InputReaderFailed(why)) => {
            assert!(why.contains("input reader broke at line 1000"), "{why}")
        }
        other => panic!("expected the reader's failure, got {other:?}"),
    }
    let info = store.run_info(run).await.unwrap();
    assert!(!info.loaded, "a truncated run must not be marked loaded");
    assert!(info.finished_at.is_none());
    let p = store.progress(run).await.unwrap();
    assert_eq!(p.queued, LOAD_BATCH as u64, "{p:?}");
    assert_eq!(store.latest_unfinished_run().await.unwrap(), Some(run), "it can be resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_error_fails_the_run_without_waiting() {
    let world = World::builder().build().await;
    let (_dir, _url, store) = sqlite_store().await;
    let run = store.create_run("list.csv", "{}").await.unwrap();
    let scan = Scan::new(store.clone(), checker_for(&world), run, scan_config("w"));
    let input = InputReader::csv(&b"rank,host\n1,a.test\n"[..], "domain");
    let result = tokio::time::timeout(LIMIT, scan.run(Some(input), Box::new(mtasts_scan::NoRows)))
        .await
        .expect("an input error must stop the scan");
    assert!(matches!(result, Err(ScanError::Input(InputError::NoSuchColumn { .. }))), "{result:?}");
    assert!(!store.run_info(run).await.unwrap().loaded);
}
