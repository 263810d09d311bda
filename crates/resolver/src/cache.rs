//! Where the resolver keeps each domain's [`DomainState`]. One trait, several backends:
//! [`MemoryCache`] (lost on restart), [`SqlCache`] (SQLite, the default, embedded and
//! persistent; or PostgreSQL for a fleet), [`RedisCache`] (a fleet; entries expire in Redis
//! with their policy), and [`Tiered`] (memory in front of a persistent
//! backend, so a hit costs no database round trip). Every backend passes the same test suite.
//!
//! Stored entries carry the policy as its text, parsed again when read: an entry that no
//! longer parses (a newer or older format, a damaged file) reads as absent, never as a policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use mtasts_proto::{DomainName, Policy, PolicyId};
use mtasts_store::policy_cache::{CacheRow, PolicyCacheStore};
use serde::{Deserialize, Serialize};

use crate::lifecycle::{CachedPolicy, DomainState};

/// A cache backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The backend could not be reached or answered with an error.
    #[error("{backend}: {reason}")]
    Backend {
        /// Which backend (with a redacted address).
        backend: String,
        /// What went wrong.
        reason: String,
    },
    /// The cache's database could not be opened (the message names it).
    #[error("{0}")]
    Open(String),
}

/// The cache of domain states.
#[async_trait]
pub trait PolicyCache: Send + Sync {
    /// The state of `domain`, if cached.
    async fn get(&self, domain: &DomainName) -> Result<Option<DomainState>, CacheError>;
    /// Stores the state of `domain`.
    async fn put(&self, domain: &DomainName, state: &DomainState) -> Result<(), CacheError>;
    /// Forgets `domain` (purge).
    async fn remove(&self, domain: &DomainName) -> Result<(), CacheError>;
    /// Every cached domain with its state (dump).
    async fn entries(&self) -> Result<Vec<(DomainName, DomainState)>, CacheError>;
}

/// An in-memory cache (lost on restart).
#[derive(Debug, Default)]
pub struct MemoryCache {
    map: Mutex<HashMap<DomainName, DomainState>>,
}

#[async_trait]
impl PolicyCache for MemoryCache {
    async fn get(&self, domain: &DomainName) -> Result<Option<DomainState>, CacheError> {
        Ok(self.map.lock().unwrap_or_else(PoisonError::into_inner).get(domain).cloned())
    }

    async fn put(&self, domain: &DomainName, state: &DomainState) -> Result<(), CacheError> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(domain.clone(), state.clone());
        Ok(())
    }

    async fn remove(&self, domain: &DomainName) -> Result<(), CacheError> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(domain);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(DomainName, DomainState)>, CacheError> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = map.iter().map(|(d, s)| (d.clone(), s.clone())).collect();
        all.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(all)
    }
}

/// The stored form of a [`DomainState`] (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    policy: Option<StoredPolicy>,
    txt_until: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    no_policy_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    backoff: Option<(String, i64)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredPolicy {
    text: String,
    id: String,
    fetched_at: i64,
}

/// `state` as stored: JSON text and the time after which it is dead.
pub fn encode_state(state: &DomainState) -> (String, i64) {
    let stored = Stored {
        policy: state.policy.as_ref().map(|c| StoredPolicy {
            text: c.policy.to_string(),
            id: c.id.as_str().to_owned(),
            fetched_at: c.fetched_at,
        }),
        txt_until: state.txt_until,
        no_policy_until: state.no_policy_until,
        backoff: state.backoff.as_ref().map(|(id, until)| (id.as_str().to_owned(), *until)),
    };
    let expires = [
        state.policy.as_ref().map(CachedPolicy::expires_at),
        state.no_policy_until,
        state.backoff.as_ref().map(|(_, until)| *until),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    (serde_json::to_string(&stored).unwrap_or_default(), expires)
}

/// A stored state read back; `None` when it does not parse (logged).
pub fn decode_state(domain: &str, text: &str) -> Option<DomainState> {
    let parsed = serde_json::from_str::<Stored>(text).ok().and_then(|s| {
        let policy = match s.policy {
            None => None,
            Some(p) => Some(CachedPolicy {
                policy: Policy::parse(&p.text).ok()?.value,
                id: PolicyId::new(&p.id).ok()?,
                fetched_at: p.fetched_at,
            }),
        };
        let backoff = match s.backoff {
            None => None,
            Some((id, until)) => Some((PolicyId::new(&id).ok()?, until)),
        };
        Some(DomainState {
            policy,
            txt_until: s.txt_until,
            no_policy_until: s.no_policy_until,
            backoff,
        })
    });
    if parsed.is_none() {
        tracing::warn!("policy cache: the entry for {domain} does not parse; ignoring it");
    }
    parsed
}

fn backend_error(backend: &str, e: impl std::fmt::Display) -> CacheError {
    CacheError::Backend { backend: backend.to_owned(), reason: e.to_string() }
}

/// The cache in a database through `mtasts-store` (SQLite by default, or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlCache {
    store: PolicyCacheStore,
    name: String,
    clock: fn() -> i64,
}

impl SqlCache {
    /// The cache in `db` (migrated on open).
    pub async fn open(db: mtasts_store::Database) -> Result<Self, CacheError> {
        let name = db.url().to_string();
        let store =
            PolicyCacheStore::with_database(db).await.map_err(|e| backend_error(&name, e))?;
        Ok(Self { store, name, clock: crate::engine::system_now })
    }

    /// The same cache reading the time from `clock`, for tests.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Deletes dead entries; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, CacheError> {
        self.store.purge_expired((self.clock)()).await.map_err(|e| backend_error(&self.name, e))
    }
}

#[async_trait]
impl PolicyCache for SqlCache {
    async fn get(&self, domain: &DomainName) -> Result<Option<DomainState>, CacheError> {
        let row = self
            .store
            .get(domain.as_str(), (self.clock)())
            .await
            .map_err(|e| backend_error(&self.name, e))?;
        Ok(row.and_then(|r| decode_state(&r.domain, &r.state)))
    }

    async fn put(&self, domain: &DomainName, state: &DomainState) -> Result<(), CacheError> {
        let (text, expires_at) = encode_state(state);
        let row = CacheRow { domain: domain.as_str().to_owned(), state: text, expires_at };
        self.store.put(&row, (self.clock)()).await.map_err(|e| backend_error(&self.name, e))
    }

    async fn remove(&self, domain: &DomainName) -> Result<(), CacheError> {
        self.store.remove(domain.as_str()).await.map_err(|e| backend_error(&self.name, e))?;
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(DomainName, DomainState)>, CacheError> {
        let rows =
            self.store.entries((self.clock)()).await.map_err(|e| backend_error(&self.name, e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let d = DomainName::parse_ascii(&r.domain).ok()?;
                decode_state(&r.domain, &r.state).map(|s| (d, s))
            })
            .collect())
    }
}

/// A memory cache in front of a persistent one: reads hit memory first, writes go to both.
/// The persistent backend's failures are logged and do not fail lookups that memory answers.
pub struct Tiered {
    front: MemoryCache,
    back: Arc<dyn PolicyCache>,
}

impl std::fmt::Debug for Tiered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiered").finish_non_exhaustive()
    }
}

impl Tiered {
    /// Memory in front of `back`.
    pub fn new(back: Arc<dyn PolicyCache>) -> Self {
        Self { front: MemoryCache::default(), back }
    }
}

#[async_trait]
impl PolicyCache for Tiered {
    async fn get(&self, domain: &DomainName) -> Result<Option<DomainState>, CacheError> {
        if let Some(s) = self.front.get(domain).await? {
            return Ok(Some(s));
        }
        let found = self.back.get(domain).await?;
        if let Some(s) = &found {
            self.front.put(domain, s).await?;
        }
        Ok(found)
    }

    async fn put(&self, domain: &DomainName, state: &DomainState) -> Result<(), CacheError> {
        self.front.put(domain, state).await?;
        self.back.put(domain, state).await
    }

    async fn remove(&self, domain: &DomainName) -> Result<(), CacheError> {
        self.front.remove(domain).await?;
        self.back.remove(domain).await
    }

    async fn entries(&self) -> Result<Vec<(DomainName, DomainState)>, CacheError> {
        self.back.entries().await
    }
}

/// The cache in Redis (shared by a fleet of resolvers): one key per domain,
/// `<prefix><domain>`, holding the stored state, set to expire when the entry dies (`EXAT`),
/// so Redis drops dead entries itself.
#[derive(Clone)]
pub struct RedisCache {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    name: String,
    clock: fn() -> i64,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Time to wait for Redis to accept the first connection.
const REDIS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl RedisCache {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]`); keys start with `prefix`.
    pub async fn open(url: &str, prefix: &str) -> Result<Self, CacheError> {
        let name = redact_redis(url);
        let client = redis::Client::open(url).map_err(|e| backend_error(&name, e))?;
        let conn = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, client.get_connection_manager())
            .await
            .map_err(|_| backend_error(&name, "does not answer"))?
            .map_err(|e| backend_error(&name, e))?;
        Ok(Self { conn, prefix: prefix.to_owned(), name, clock: crate::engine::system_now })
    }

    /// The same cache reading the time from `clock`, for tests.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    fn key(&self, domain: &str) -> String {
        format!("{}{domain}", self.prefix)
    }
}

/// A Redis URL without its password.
fn redact_redis(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl PolicyCache for RedisCache {
    async fn get(&self, domain: &DomainName) -> Result<Option<DomainState>, CacheError> {
        let mut conn = self.conn.clone();
        let text: Option<String> = redis::cmd("GET")
            .arg(self.key(domain.as_str()))
            .query_async(&mut conn)
            .await
            .map_err(|e| backend_error(&self.name, e))?;
        Ok(text.and_then(|t| decode_state(domain.as_str(), &t)))
    }

    async fn put(&self, domain: &DomainName, state: &DomainState) -> Result<(), CacheError> {
        let (text, expires_at) = encode_state(state);
        let mut conn = self.conn.clone();
        if expires_at <= (self.clock)() {
            return self.remove(domain).await;
        }
        let _: () = redis::cmd("SET")
            .arg(self.key(domain.as_str()))
            .arg(text)
            .arg("EXAT")
            .arg(expires_at)
            .query_async(&mut conn)
            .await
            .map_err(|e| backend_error(&self.name, e))?;
        Ok(())
    }

    async fn remove(&self, domain: &DomainName) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(domain.as_str()))
            .query_async(&mut conn)
            .await
            .map_err(|e| backend_error(&self.name, e))?;
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(DomainName, DomainState)>, CacheError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        let mut keys: Vec<String> = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .cursor_arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_error(&self.name, e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_error(&self.name, e))?;
            for (key, value) in chunk.iter().zip(values) {
                let name = &key[self.prefix.len()..];
                if let (Ok(d), Some(v)) = (DomainName::parse_ascii(name), value)
                    && let Some(s) = decode_state(name, &v)
                {
                    out.push((d, s));
                }
            }
        }
        Ok(out)
    }
}

/// Keys of the Redis cache start with this.
pub const REDIS_PREFIX: &str = "mtasts:policy:";

/// Checks that a `--cache` value names a cache, without opening it.
pub fn check(spec: &str) -> Result<(), CacheError> {
    if spec == "memory" {
        return Ok(());
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        return redis::Client::open(spec).map(|_| ()).map_err(|e| backend_error("--cache", e));
    }
    mtasts_store::DatabaseUrl::parse(spec).map(|_| ()).map_err(|e| backend_error("--cache", e))
}

/// The cache a `--cache` value names: `memory`, a database URL (`sqlite://PATH`,
/// `postgres://…`) or `redis://…`, with memory in front of the persistent ones.
pub async fn open(spec: &str) -> Result<Arc<dyn PolicyCache>, CacheError> {
    if spec == "memory" {
        return Ok(Arc::new(MemoryCache::default()));
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        let back = RedisCache::open(spec, REDIS_PREFIX).await?;
        return Ok(Arc::new(Tiered::new(Arc::new(back))));
    }
    let url = mtasts_store::DatabaseUrl::parse(spec).map_err(|e| backend_error("--cache", e))?;
    // The store's error names the database already.
    let db =
        mtasts_store::Database::open(&url).await.map_err(|e| CacheError::Open(e.to_string()))?;
    Ok(Arc::new(Tiered::new(Arc::new(SqlCache::open(db).await?))))
}

#[cfg(test)]
mod tests {
    use super::redact_redis;

    #[test]
    fn redis_passwords_are_redacted() {
        assert_eq!(redact_redis("redis://:s3cret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact_redis("redis://user:s3cret@h/1"), "redis://user:***@h/1");
        assert_eq!(redact_redis("redis://token@h"), "redis://***@h");
        assert_eq!(redact_redis("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }
}
