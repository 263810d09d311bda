//! The collector on a real unix datagram socket, against the real store (SQLite, and
//! PostgreSQL shared by two collectors).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mtasts_reporter::collect::{Clock, CollectError, Counters};
use mtasts_reporter::{CollectStats, Collector, CollectorConfig};
use mtasts_store::outbound::OutboundStore;
use mtasts_store::testing::TestDb;
use time::OffsetDateTime;

/// A datagram as libtlsrpt writes it (its spacing: `": "` after string-valued keys).
pub(crate) fn sts(domain: &str, record: &str, failure: Option<(u16, &str)>) -> String {
    let policy = format!(
        r#""policy-type":2,"policy-domain": "{domain}","policy-string":["version: STSv1","mode: enforce","mx: mx.{domain}","max_age: 86400"],"mx-host":["mx.{domain}"]"#
    );
    match failure {
        None => format!(
            r#"{{"dpv": "1","d": "{domain}","pr": "{record}","policies":[{{{policy},"t":0,"f":0}}]}}"#
        ),
        Some((code, ip)) => format!(
            r#"{{"dpv": "1","d": "{domain}","pr": "{record}","policies":[{{{policy},"failure-details":[{{"c":{code},"s": "192.0.2.10","n": "mx.{domain}","r": "{ip}","f": "X509_V_ERR"}}],"t":1,"f":1}}]}}"#
        ),
    }
}

pub(crate) fn record(domain: &str) -> String {
    format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")
}

pub(crate) struct Running {
    pub(crate) path: std::path::PathBuf,
    pub(crate) counters: Arc<Counters>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<CollectStats>,
}

impl Running {
    pub(crate) async fn start(
        dir: &Path,
        name: &str,
        store: OutboundStore,
        clock: Option<Clock>,
    ) -> Self {
        let path = dir.join(name);
        let mut config = CollectorConfig::new(&path);
        config.flush_every = Duration::from_millis(100);
        let mut c = Collector::bind(config).unwrap();
        if let Some(clock) = clock {
            c = c.with_clock(clock);
        }
        let counters = c.counters();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(c.run(store, async move {
            let _ = stopped.await;
        }));
        Self { path, counters, stop, task }
    }

    pub(crate) fn send(&self, datagrams: &[String]) {
        let s = UnixDatagram::unbound().unwrap();
        for d in datagrams {
            s.send_to(d.as_bytes(), &self.path).unwrap();
        }
    }

    pub(crate) async fn received(&self, n: u64) {
        for _ in 0..200 {
            if self.counters.received.load(Ordering::Relaxed) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the collector did not receive {n} datagrams");
    }

    pub(crate) async fn stop(self) -> CollectStats {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

async fn sqlite_store() -> (TestDb, OutboundStore) {
    let db = TestDb::sqlite();
    let store = OutboundStore::with_database(db.database().await).await.unwrap();
    (db, store)
}

fn clock_at(unix: &Arc<AtomicI64>) -> Clock {
    let unix = unix.clone();
    Arc::new(move || OffsetDateTime::from_unix_timestamp(unix.load(Ordering::Relaxed)).unwrap())
}

/// 2026-12-03T12:00:00Z.
const NOON: i64 = 1_796_299_200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_end_in_aggregated_rows_and_malformed_ones_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = sqlite_store().await;
    let now = Arc::new(AtomicI64::new(NOON));
    let c = Running::start(dir.path(), "c.sock", store.clone(), Some(clock_at(&now))).await;
    let a = record("a.example");
    let mut datagrams = vec![sts("a.example", &a, None); 5];
    datagrams.extend(vec![sts("a.example", &a, Some((202, "198.51.100.1"))); 2]);
    datagrams.push(sts("a.example", &a, Some((204, "198.51.100.2"))));
    // Upper case and a trailing dot are the same domain.
    datagrams.push(
        sts("A.Example.", &a, None)
            .replace("\"policy-domain\": \"A.Example.\"", "\"policy-domain\": \"a.example\"")
            .replace("mx.A.Example.", "mx.a.example"),
    );
    datagrams.push(
        r#"{"dpv": "1","d": "b.example","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]}"#
            .into(),
    );
    let malformed = [
        "not json at all".to_owned(),
        r#"{"dpv": "2","d": "a.example","pr": "","policies":[]}"#.to_owned(),
        sts("a.example", &a, Some((999, "198.51.100.3"))),
        String::new(),
    ];
    datagrams.extend(malformed.iter().cloned());
    c.send(&datagrams);
    c.received(datagrams.len() as u64).await;
    let stats = c.stop().await;
    assert_eq!(stats.received, datagrams.len() as u64);
    assert_eq!(stats.malformed, malformed.len() as u64);
    assert_eq!(stats.stored, (datagrams.len() - malformed.len()) as u64);
    assert_eq!(stats.dropped, 0);

    let sessions = store.day_sessions("2026-12-03").await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let sa = sessions.iter().find(|s| s.domain == "a.example").unwrap();
    assert_eq!((sa.successes, sa.failures), (6, 3));
    assert_eq!(sa.record, a);
    let sb = sessions.iter().find(|s| s.domain == "b.example").unwrap();
    assert_eq!((sb.successes, sb.failures), (1, 0));
    assert!(sb.policy.contains("no-policy-found"));
    let mut counts: Vec<i64> =
        store.day_failures("2026-12-03").await.unwrap().iter().map(|f| f.sessions).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 2]);
    assert!(!dir.path().join("c.sock").exists(), "the socket file is removed on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_rolls_over_at_utc_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = sqlite_store().await;
    // 2026-12-03T23:59:59Z.
    let now = Arc::new(AtomicI64::new(NOON + 12 * 3600 - 1));
    let c = Running::start(dir.path(), "c.sock", store.clone(), Some(clock_at(&now))).await;
    let a = record("a.example");
    c.send(&vec![sts("a.example", &a, None); 2]);
    c.received(2).await;
    now.store(NOON + 12 * 3600, Ordering::Relaxed);
    c.send(&vec![sts("a.example", &a, Some((201, "198.51.100.1"))); 3]);
    c.received(5).await;
    c.stop().await;
    let before = store.day_sessions("2026-12-03").await.unwrap();
    let after = store.day_sessions("2026-12-04").await.unwrap();
    assert_eq!((before[0].successes, before[0].failures), (2, 0));
    assert_eq!((after[0].successes, after[0].failures), (0, 3));
    assert!(store.day_failures("2026-12-03").await.unwrap().is_empty());
    assert_eq!(store.day_failures("2026-12-04").await.unwrap()[0].sessions, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_is_refused_a_stale_one_replaced_a_file_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = sqlite_store().await;
    let c = Running::start(dir.path(), "c.sock", store.clone(), None).await;
    let again = Collector::bind(CollectorConfig::new(&c.path));
    assert!(
        matches!(again, Err(CollectError::InUse { .. })),
        "a second collector on a live socket"
    );
    c.stop().await;
    // A socket file left behind by a killed collector.
    let stale = dir.path().join("stale.sock");
    drop(UnixDatagram::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(Collector::bind(CollectorConfig::new(&stale)).is_ok());
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let e = Collector::bind(CollectorConfig::new(&file)).err().unwrap();
    assert!(e.to_string().contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// Two MTA hosts, one collector each, one PostgreSQL: the reporter sees the sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_on_one_postgres_add_up() {
    let Some(db) = TestDb::postgres("collectors_on_one_postgres_add_up").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let s1 = OutboundStore::with_database(db.database().await).await.unwrap();
    let s2 = OutboundStore::with_database(db.database().await).await.unwrap();
    let now = Arc::new(AtomicI64::new(NOON));
    let c1 = Running::start(dir.path(), "one.sock", s1.clone(), Some(clock_at(&now))).await;
    let c2 = Running::start(dir.path(), "two.sock", s2, Some(clock_at(&now))).await;
    let a = record("a.example");
    for _ in 0..20 {
        c1.send(&[sts("a.example", &a, None), sts("a.example", &a, Some((202, "198.51.100.1")))]);
        c2.send(&[sts("a.example", &a, None), sts("a.example", &a, Some((202, "198.51.100.1")))]);
    }
    c1.received(40).await;
    c2.received(40).await;
    c1.stop().await;
    c2.stop().await;
    let sessions = s1.day_sessions("2026-12-03").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].successes, sessions[0].failures), (40, 40));
    assert_eq!(s1.day_failures("2026-12-03").await.unwrap()[0].sessions, 40);
}
