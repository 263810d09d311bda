//! Where the resolver keeps each domain's [`DomainState`]. One trait, several backends: in
//! memory here; the persistent ones (SQLite by default, PostgreSQL, Redis) implement the same
//! trait and pass the same test suite.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use mtasts_proto::DomainName;

use crate::lifecycle::DomainState;

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
