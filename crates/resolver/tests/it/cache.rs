//! One suite for every cache backend: memory, SQLite, PostgreSQL, and memory in front of
//! SQLite. A state stored is the state read back; dead entries read as absent; the persistent
//! backends keep entries across a reopen (a restart, or `kill -9`: nothing is held in memory).

use std::sync::Arc;

use mtasts_proto::{DomainName, Policy, PolicyId};
use mtasts_resolver::cache::{MemoryCache, PolicyCache, SqlCache, Tiered};
use mtasts_resolver::lifecycle::{CachedPolicy, DomainState};
use mtasts_store::testing::TestDb;

const NOW: i64 = 1_800_000_000;

fn clock() -> i64 {
    NOW
}

fn d(s: &str) -> DomainName {
    DomainName::parse_ascii(s).unwrap()
}

fn with_policy(max_age: u32, fetched_at: i64) -> DomainState {
    let policy = Policy::parse(&format!(
        "version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: {max_age}\nx-ext: kept\n"
    ))
    .unwrap()
    .value;
    DomainState {
        policy: Some(CachedPolicy { policy, id: PolicyId::new("20260101").unwrap(), fetched_at }),
        txt_until: NOW + 300,
        no_policy_until: None,
        backoff: Some((PolicyId::new("20260102").unwrap(), NOW + 200)),
    }
}

async fn suite(cache: &dyn PolicyCache, persistent: bool) {
    let a = d("a.example");
    let state = with_policy(86_400, NOW - 10);
    assert_eq!(cache.get(&a).await.unwrap(), None);
    cache.put(&a, &state).await.unwrap();
    assert_eq!(cache.get(&a).await.unwrap(), Some(state.clone()));
    // A negative entry.
    let b = d("b.example");
    let negative = DomainState { no_policy_until: Some(NOW + 60), ..DomainState::default() };
    cache.put(&b, &negative).await.unwrap();
    assert_eq!(cache.get(&b).await.unwrap(), Some(negative));
    let names: Vec<String> =
        cache.entries().await.unwrap().into_iter().map(|(d, _)| d.as_str().to_owned()).collect();
    assert_eq!(names, ["a.example", "b.example"]);
    cache.remove(&b).await.unwrap();
    assert_eq!(cache.get(&b).await.unwrap(), None);
    if persistent {
        // Entries expire with the policy: one whose max_age ran out reads as absent.
        let old = d("old.example");
        let mut expired = with_policy(3600, NOW - 7200);
        expired.backoff = None;
        cache.put(&old, &expired).await.unwrap();
        assert_eq!(cache.get(&old).await.unwrap(), None);
    }
}

#[tokio::test]
async fn memory() {
    suite(&MemoryCache::default(), false).await;
}

#[tokio::test]
async fn sqlite_and_restart() {
    let db = TestDb::sqlite();
    let cache = SqlCache::open(db.database().await).await.unwrap().with_clock(clock);
    suite(&cache, true).await;
    drop(cache);
    // A new process opening the same file sees what the old one stored.
    let again = SqlCache::open(db.database().await).await.unwrap().with_clock(clock);
    assert_eq!(again.get(&d("a.example")).await.unwrap(), Some(with_policy(86_400, NOW - 10)));
    assert_eq!(again.purge_expired().await.unwrap(), 1);
}

#[tokio::test]
async fn postgres() {
    let Some(db) = TestDb::postgres("resolver_cache").await else { return };
    let cache = SqlCache::open(db.database().await).await.unwrap().with_clock(clock);
    suite(&cache, true).await;
    db.cleanup().await;
}

#[tokio::test]
async fn redis() {
    let Some(url) = mtasts_testkit::require::redis_url() else { return };
    let prefix = format!(
        "mtasts-test:{}:{}:",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let cache = mtasts_resolver::cache::RedisCache::open(&url, &prefix).await.unwrap();
    // Redis expires keys by the real clock: the suite's states must expire in the future.
    let a = d("a.example");
    let mut state = with_policy(86_400, now_real() - 10);
    state.txt_until = now_real() + 300;
    state.backoff = None;
    cache.put(&a, &state).await.unwrap();
    assert_eq!(cache.get(&a).await.unwrap(), Some(state.clone()));
    let entries = cache.entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, a);
    // An entry already dead is not stored.
    let old = d("old.example");
    let mut expired = with_policy(3600, now_real() - 7200);
    expired.backoff = None;
    cache.put(&old, &expired).await.unwrap();
    assert_eq!(cache.get(&old).await.unwrap(), None);
    cache.remove(&a).await.unwrap();
    assert_eq!(cache.get(&a).await.unwrap(), None);
    assert!(cache.entries().await.unwrap().is_empty());
}

fn now_real() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    )
    .unwrap()
}

#[tokio::test]
async fn memory_in_front_of_sqlite() {
    let db = TestDb::sqlite();
    let back = Arc::new(SqlCache::open(db.database().await).await.unwrap().with_clock(clock));
    let tiered = Tiered::new(back.clone());
    suite(&tiered, false).await;
    // Written through: the persistent backend has it too.
    assert!(back.get(&d("a.example")).await.unwrap().is_some());
}

#[tokio::test]
async fn an_entry_that_does_not_parse_reads_as_absent() {
    assert!(mtasts_resolver::cache::decode_state("x.example", "{\"txt_until\":1}").is_some());
    assert!(mtasts_resolver::cache::decode_state("x.example", "not json").is_none());
    let bad_policy =
        r#"{"policy":{"text":"version: STSv2\n","id":"a","fetched_at":1},"txt_until":1}"#;
    assert!(mtasts_resolver::cache::decode_state("x.example", bad_policy).is_none());
}
