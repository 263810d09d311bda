//! API tokens and the tenant a request acts for.
//!
//! A token reads `mtasts_<id>_<secret>`: 8 random bytes of id (hex, shown in listings and in
//! the policy history of changes made with it) and 32 random bytes of secret (hex, shown once
//! when made). The database keeps only the secret's SHA-256; a request's token is found by id
//! and its secret compared in constant time. A token acts for one tenant, or for every tenant
//! (an operator token). A tenant's token sees and changes only that tenant's domains: another
//! tenant's domain is answered as if it did not exist, so names cannot be probed.

use mtasts_store::hosting::{ApiToken, HostingError, HostingStore};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "mtasts_";

/// Whom a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant.
    Operator,
    /// One tenant.
    Tenant(String),
}

impl Scope {
    /// Whether this scope may see a domain of `tenant`.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            Self::Operator => true,
            Self::Tenant(t) => t == tenant,
        }
    }
}

/// An authenticated request's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// Its label.
    pub label: String,
    /// Whom it acts for.
    pub scope: Scope,
}

impl Caller {
    /// The author recorded in the policy history for changes made with this token.
    pub fn author(&self) -> String {
        format!("api:{} ({})", self.token_id, self.label)
    }
}

/// Why a token was not accepted (all answered 401, the reason logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("a bearer token is required (Authorization: Bearer mtasts_…)")]
    Missing,
    /// Not a token of this service's form, or unknown, or the secret differs.
    #[error("the token is not valid")]
    Invalid,
    /// Revoked.
    #[error("the token was revoked")]
    Revoked,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] HostingError),
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256_hex(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Makes and stores a token for `tenant` (`None`: an operator token); returns the stored row
/// and the token text, which exists nowhere else afterwards.
pub async fn issue(
    store: &HostingStore,
    tenant: Option<&str>,
    label: &str,
    now: i64,
) -> Result<(ApiToken, String), HostingError> {
    let rng = SystemRandom::new();
    let (mut id, mut secret) = ([0u8; 8], [0u8; 32]);
    // The system's random source failing is not something to recover from.
    let filled = rng.fill(&mut id).and_then(|()| rng.fill(&mut secret));
    assert!(filled.is_ok(), "the system random number generator failed");
    let (id, secret) = (hex(&id), hex(&secret));
    let token = ApiToken {
        id: id.clone(),
        tenant: tenant.map(str::to_owned),
        secret_sha256: sha256_hex(&secret),
        label: label.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    store.put_token(&token).await?;
    Ok((token, format!("{PREFIX}{id}_{secret}")))
}

/// The caller a bearer token (the text after `Bearer `) stands for.
pub async fn authenticate(store: &HostingStore, bearer: &str) -> Result<Caller, AuthError> {
    let Some((id, secret)) = bearer.trim().strip_prefix(PREFIX).and_then(|t| t.split_once('_'))
    else {
        return Err(AuthError::Invalid);
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Invalid);
    }
    let Some(row) = store.token(id).await? else { return Err(AuthError::Invalid) };
    let given = sha256_hex(secret);
    let same = given.len() == row.secret_sha256.len()
        && given.bytes().zip(row.secret_sha256.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(AuthError::Invalid);
    }
    if row.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    Ok(Caller {
        token_id: row.id,
        label: row.label,
        scope: row.tenant.map_or(Scope::Operator, Scope::Tenant),
    })
}
