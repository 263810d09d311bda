//! Opening stores: URLs, failures and timeouts.

use std::time::{Duration, Instant};

use mtasts_store::{Backend, Database, DatabaseUrl, DbError, ScanStore, StoreError};

use crate::common::both_backends;

#[tokio::test]
async fn unsupported_urls() {
    for url in
        ["mysql://root:hunter2@localhost/db", "", "scan.db", "http://example.com", "sqlite3://x"]
    {
        match ScanStore::open(url).await {
            Err(StoreError::Db(DbError::UnsupportedUrl(shown))) => {
                assert!(!shown.contains("hunter2"), "{shown}")
            }
            other => panic!("{url:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_memory_and_file() {
    let store = ScanStore::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    let run = store.create_run("-", "{}").await.unwrap();
    assert_eq!(store.enqueue(run, &["a.example".to_owned()]).await.unwrap(), 1);
    // Every operation sees the same in-memory database.
    let clone = store.clone();
    let (p1, p2) = tokio::join!(store.progress(run), clone.progress(run));
    assert_eq!(p1.unwrap().queued, 1);
    assert_eq!(p2.unwrap().queued, 1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = ScanStore::open(&format!("sqlite:{}", path.display())).await.unwrap();
    assert!(path.exists(), "created if missing");
    store.create_run("-", "{}").await.unwrap();
}

#[tokio::test]
async fn sqlite_bad_path_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let start = Instant::now();
    let err = ScanStore::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Db(DbError::NoDirectory { .. })), "{err:?}");
    assert!(err.to_string().contains("no/such/dir/x.db"), "{err}");
    assert!(err.to_string().contains("no/such/dir does not exist"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn unreachable_postgres_fails_fast() {
    for url in ["postgres://postgres@127.0.0.1:1/test", "postgresql://u:p@127.0.0.1:1/db"] {
        let start = Instant::now();
        let err = ScanStore::open(url).await.unwrap_err();
        let elapsed = start.elapsed();
        eprintln!("{url}: {err} after {elapsed:?}");
        assert!(matches!(err, StoreError::Db(DbError::Unreachable { .. })), "{err:?}");
        // The message names the database once, without its password.
        let text = err.to_string();
        assert!(text.starts_with("database at postgres"), "{text}");
        assert!(text.contains("does not answer"), "{text}");
        assert_eq!(text.matches("127.0.0.1:1").count(), 1, "{text}");
        assert!(!text.contains("u:p@"), "{text}");
        assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    }
}

#[tokio::test]
async fn postgres_that_never_answers_times_out() {
    // A listener that accepts connections and never speaks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let start = Instant::now();
    let err =
        ScanStore::open(&format!("postgres://postgres@127.0.0.1:{port}/test?sslmode=disable"))
            .await
            .unwrap_err();
    let elapsed = start.elapsed();
    eprintln!("silent server: {err} after {elapsed:?}");
    assert!(matches!(err, StoreError::Db(DbError::Unreachable { .. })), "{err:?}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    hold.abort();
}

#[tokio::test]
async fn postgres_backend_and_bad_database() {
    let Some(db) = crate::common::TestDb::postgres("postgres_backend_and_bad_database").await
    else {
        return;
    };
    let store = db.open().await;
    assert_eq!(store.backend(), Backend::Postgres);
    store.close().await;
    // A database that does not exist: a clear error, quickly.
    let base = db.admin_url().unwrap().to_owned();
    let bad = match base.rsplit_once('/') {
        Some((head, _)) => format!("{head}/mtasts_no_such_db_x"),
        None => unreachable!(),
    };
    let start = Instant::now();
    let err = ScanStore::open(&bad).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, StoreError::Db(DbError::Open { .. })), "{err:?}");
    assert!(err.to_string().contains("mtasts_no_such_db_x"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(8));
    db.cleanup().await;
}

both_backends!(every_module_migrates_twice_on_one_pool);

async fn every_module_migrates_twice_on_one_pool(db: &crate::common::TestDb) {
    let url = DatabaseUrl::parse(&db.url).unwrap();
    let database = Database::open(&url).await.unwrap();
    database.migrate_all(mtasts_store::MODULES).await.unwrap();
    database.migrate_all(mtasts_store::MODULES).await.unwrap();
    // Two stores on one database share its pool.
    let a = ScanStore::with_database(database.clone()).await.unwrap();
    let b = ScanStore::with_database(database.clone()).await.unwrap();
    let run = a.create_run("-", "{}").await.unwrap();
    assert_eq!(b.run_info(run).await.unwrap().id, run);
    database.close().await;
}
