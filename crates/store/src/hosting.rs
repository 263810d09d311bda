//! Hosted MTA-STS domains, for `mtasts serve` and `mtasts domain`: per domain the tenant that
//! owns it and the policy served now, and every version ever published (who, when, why).
//!
//! A version is published with the version it replaces ([`HostingStore::publish`]'s
//! `expected`): a change prepared on a stale view (another administrator, another `serve`
//! instance on the same PostgreSQL) is refused with [`HostingError::Stale`] instead of
//! silently overwriting, and the row and its history row are written in one transaction.
//!
//! This module stores policy text and ids as it is given them; generating and checking them
//! is `proto::generate`'s and the caller's work (RFC 8461 §3.1: a new `id` for every change).

use sqlx::Row;

use crate::db::{Database, DbError, Migrations, on_pool};

/// The hosting module's migrations.
pub static MIGRATIONS: Migrations = Migrations::new(
    "hosting",
    "_mtasts_hosting_migrations",
    || sqlx::migrate!("./migrations/hosting/sqlite"),
    || sqlx::migrate!("./migrations/hosting/postgres"),
);

/// A hosting query failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostingError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The domain is hosted already.
    #[error("{domain} is hosted already (tenant {tenant})")]
    AlreadyHosted {
        /// The domain.
        domain: String,
        /// Its tenant.
        tenant: String,
    },
    /// The domain is not hosted here.
    #[error("{domain} is not hosted here")]
    NotHosted {
        /// The domain.
        domain: String,
    },
    /// The change was prepared against an older version than the one stored now.
    #[error(
        "{domain} changed meanwhile: the change was made against version {expected}, version {current} is current; look at it again and retry"
    )]
    Stale {
        /// The domain.
        domain: String,
        /// The version the change was made against.
        expected: i64,
        /// The version stored now.
        current: i64,
    },
    /// A query failed.
    #[error("hosting store {url}: {error}")]
    Query {
        /// The database (redacted).
        url: String,
        /// What the driver said.
        error: sqlx::Error,
    },
}

/// One policy version to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    /// The TXT record's `id` for this version.
    pub policy_id: String,
    /// The policy file, exactly as served.
    pub policy_text: String,
    /// `mode`: `enforce`, `testing` or `none`.
    pub mode: String,
    /// `max_age`, seconds.
    pub max_age: i64,
    /// Who made the change (a user, a token's name, `monitor`).
    pub author: String,
    /// Why.
    pub reason: String,
    /// When, unix seconds.
    pub at: i64,
}

/// A hosted domain as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostedDomain {
    /// The domain (lower-case A-labels).
    pub domain: String,
    /// Its tenant.
    pub tenant: String,
    /// The current version, from 1.
    pub version: i64,
    /// The current TXT `id`.
    pub policy_id: String,
    /// The policy served now.
    pub policy_text: String,
    /// Its mode.
    pub mode: String,
    /// Its `max_age`.
    pub max_age: i64,
    /// The longest `max_age` ever published for the domain.
    pub longest_max_age: i64,
    /// When it was added, unix seconds.
    pub created_at: i64,
    /// When the current version was published.
    pub updated_at: i64,
    /// When `mode: none` was published, if it is current.
    pub retired_at: Option<i64>,
}

/// One version in a domain's history.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VersionRow {
    /// The version number.
    pub version: i64,
    /// Its TXT `id`.
    pub policy_id: String,
    /// Its policy text.
    pub policy_text: String,
    /// Its mode.
    pub mode: String,
    /// Its `max_age`.
    pub max_age: i64,
    /// Who.
    pub author: String,
    /// Why.
    pub reason: String,
    /// When, unix seconds.
    pub created_at: i64,
}

/// A policy host's certificate as stored (migration `hosting/0002`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The hosted domain; the certificate is for `mta-sts.<domain>`.
    pub domain: String,
    /// The chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// Valid from, unix seconds.
    pub not_before: i64,
    /// Valid until, unix seconds.
    pub not_after: i64,
    /// `acme` or `manual`.
    pub source: String,
    /// When stored, unix seconds.
    pub updated_at: i64,
}

/// The certificate-ordering state of one hosted domain (migration `hosting/0003`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AcmeStatus {
    /// The hosted domain.
    pub domain: String,
    /// Failed attempts since the last success.
    pub failures: i64,
    /// The last attempt, unix seconds.
    pub last_attempt: i64,
    /// Why the last attempt failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Not before then, unix seconds.
    pub next_attempt: i64,
}

/// An API token as stored (migration `hosting/0004`): never the secret, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    /// The public part, which finds the row.
    pub id: String,
    /// The tenant it acts for; `None`: an operator token.
    pub tenant: Option<String>,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub secret_sha256: String,
    /// What it is for (kept in the policy history of changes made with it).
    pub label: String,
    /// When made, unix seconds.
    pub created_at: i64,
    /// When revoked, unix seconds.
    pub revoked_at: Option<i64>,
}

/// A problem monitoring found with a hosted domain (migration `hosting/0005`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DomainProblem {
    /// The hosted domain.
    pub domain: String,
    /// The check's finding code, or a hosting code (`hosting-…`).
    pub code: String,
    /// What it is about (an MX host, the policy host), or empty.
    pub subject: String,
    /// `error` or `warning`.
    pub severity: String,
    /// In words.
    pub message: String,
    /// First seen, unix seconds.
    pub first_seen: i64,
    /// Last seen, unix seconds.
    pub last_seen: i64,
}

/// A stored certificate's validity, without its chain or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateValidity {
    /// The hosted domain.
    pub domain: String,
    /// `acme` or `manual`.
    pub source: String,
    /// Valid from, unix seconds.
    pub not_before: i64,
    /// Valid until, unix seconds.
    pub not_after: i64,
}

/// What replacing a domain's problems changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProblemChanges {
    /// Problems not there at the previous check.
    pub new: Vec<DomainProblem>,
    /// Problems there at the previous check and gone now.
    pub resolved: Vec<DomainProblem>,
}

/// A value that changes whenever a hosted domain or certificate is added, changed or removed:
/// `serve` polls it and reloads only then (cheap on thousands of domains).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generation {
    domains: i64,
    versions: i64,
    certificates: i64,
    not_after: i64,
    updated: i64,
}

/// A history row as selected: version, id, text, mode, max_age, author, reason, time.
type VersionTuple = (i64, String, String, String, i64, String, String, i64);

/// The hosting tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HostingStore {
    db: Database,
}

const DOMAIN_COLUMNS: &str = "domain, tenant, version, policy_id, policy_text, mode, max_age, \
     longest_max_age, created_at, updated_at, retired_at";

fn domain_row<R: Row>(row: &R) -> Result<HostedDomain, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(HostedDomain {
        domain: row.try_get("domain")?,
        tenant: row.try_get("tenant")?,
        version: row.try_get("version")?,
        policy_id: row.try_get("policy_id")?,
        policy_text: row.try_get("policy_text")?,
        mode: row.try_get("mode")?,
        max_age: row.try_get("max_age")?,
        longest_max_age: row.try_get("longest_max_age")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

/// Writes version `version` of `domain` into the history.
macro_rules! history_row {
    ($tx:expr, $domain:expr, $version:expr, $v:expr) => {
        sqlx::query(
            "INSERT INTO hosted_policy_versions (domain, version, policy_id, policy_text, mode, \
             max_age, author, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind($domain)
        .bind($version)
        .bind(&$v.policy_id)
        .bind(&$v.policy_text)
        .bind(&$v.mode)
        .bind($v.max_age)
        .bind(&$v.author)
        .bind(&$v.reason)
        .bind($v.at)
        .execute(&mut *$tx)
    };
}

impl HostingStore {
    /// The store on an open database, after running this module's [`MIGRATIONS`].
    pub async fn with_database(db: Database) -> Result<Self, HostingError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(Self { db })
    }

    fn err(&self, error: sqlx::Error) -> HostingError {
        HostingError::Query { url: self.db.url().to_string(), error }
    }

    /// Adds `domain` for `tenant` with its first version (version 1).
    pub async fn add(
        &self,
        domain: &str,
        tenant: &str,
        first: &NewVersion,
    ) -> Result<HostedDomain, HostingError> {
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let mut tx = pool.begin().await.map_err(e)?;
            let inserted = sqlx::query(
                "INSERT INTO hosted_domains (domain, tenant, version, policy_id, policy_text, mode, \
                 max_age, longest_max_age, created_at, updated_at, retired_at) \
                 VALUES ($1, $2, 1, $3, $4, $5, $6, $6, $7, $7, NULL) ON CONFLICT (domain) DO NOTHING",
            )
            .bind(domain)
            .bind(tenant)
            .bind(&first.policy_id)
            .bind(&first.policy_text)
            .bind(&first.mode)
            .bind(first.max_age)
            .bind(first.at)
            .execute(&mut *tx)
            .await
            .map_err(e)?
            .rows_affected();
            if inserted == 0 {
                drop(tx);
                let tenant = self.get(domain).await?.map(|d| d.tenant).unwrap_or_default();
                return Err(HostingError::AlreadyHosted { domain: domain.to_owned(), tenant });
            }
            history_row!(tx, domain, 1_i64, first).await.map_err(e)?;
            tx.commit().await.map_err(e)?;
            Ok::<(), HostingError>(())
        })?;
        self.get(domain).await?.ok_or_else(|| HostingError::NotHosted { domain: domain.to_owned() })
    }

    /// Publishes `next` as the version after `expected` (the version the change was made
    /// against): refused with [`HostingError::Stale`] when another change came first.
    /// `mode: none` marks the domain retired from then (RFC 8461 §8.3); another mode clears it.
    pub async fn publish(
        &self,
        domain: &str,
        expected: i64,
        next: &NewVersion,
    ) -> Result<HostedDomain, HostingError> {
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let mut tx = pool.begin().await.map_err(e)?;
            let version = expected.saturating_add(1);
            let updated = sqlx::query(
                "UPDATE hosted_domains SET version = $1, policy_id = $2, policy_text = $3, mode = $4, \
                 max_age = $5, longest_max_age = CASE WHEN longest_max_age > $5 THEN longest_max_age ELSE $5 END, \
                 updated_at = $6, retired_at = CASE WHEN $4 <> 'none' THEN NULL \
                 WHEN retired_at IS NULL THEN $6 ELSE retired_at END \
                 WHERE domain = $7 AND version = $8",
            )
            .bind(version)
            .bind(&next.policy_id)
            .bind(&next.policy_text)
            .bind(&next.mode)
            .bind(next.max_age)
            .bind(next.at)
            .bind(domain)
            .bind(expected)
            .execute(&mut *tx)
            .await
            .map_err(e)?
            .rows_affected();
            if updated == 0 {
                drop(tx);
                return Err(match self.get(domain).await? {
                    None => HostingError::NotHosted { domain: domain.to_owned() },
                    Some(d) => HostingError::Stale {
                        domain: domain.to_owned(),
                        expected,
                        current: d.version,
                    },
                });
            }
            history_row!(tx, domain, version, next).await.map_err(e)?;
            tx.commit().await.map_err(e)?;
            Ok::<(), HostingError>(())
        })?;
        self.get(domain).await?.ok_or_else(|| HostingError::NotHosted { domain: domain.to_owned() })
    }

    /// One hosted domain.
    pub async fn get(&self, domain: &str) -> Result<Option<HostedDomain>, HostingError> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM hosted_domains WHERE domain = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(domain)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?;
            row.map(|r| domain_row(&r).map_err(|e| self.err(e))).transpose()
        })
    }

    /// The hosted domains of `tenant`, or of every tenant, by name.
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<HostedDomain>, HostingError> {
        let sql = match tenant {
            Some(_) => format!(
                "SELECT {DOMAIN_COLUMNS} FROM hosted_domains WHERE tenant = $1 ORDER BY domain"
            ),
            None => format!("SELECT {DOMAIN_COLUMNS} FROM hosted_domains ORDER BY domain"),
        };
        on_pool!(self, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let rows = q.fetch_all(pool).await.map_err(|e| self.err(e))?;
            rows.iter().map(|r| domain_row(r).map_err(|e| self.err(e))).collect()
        })
    }

    /// Every version of `domain`, oldest first.
    pub async fn history(&self, domain: &str) -> Result<Vec<VersionRow>, HostingError> {
        const Q: &str = "SELECT version, policy_id, policy_text, mode, max_age, author, reason, created_at \
             FROM hosted_policy_versions WHERE domain = $1 ORDER BY version";
        on_pool!(self, |pool| {
            let rows: Vec<VersionTuple> =
                sqlx::query_as(Q).bind(domain).fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(
                    |(
                        version,
                        policy_id,
                        policy_text,
                        mode,
                        max_age,
                        author,
                        reason,
                        created_at,
                    )| {
                        VersionRow {
                            version,
                            policy_id,
                            policy_text,
                            mode,
                            max_age,
                            author,
                            reason,
                            created_at,
                        }
                    },
                )
                .collect())
        })
    }

    /// The current [`Generation`] of the hosted domains and certificates.
    pub async fn generation(&self) -> Result<Generation, HostingError> {
        const DOMAINS: &str =
            "SELECT COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM hosted_domains";
        const CERTS: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(not_after), 0) AS BIGINT), \
             CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) FROM hosted_certificates";
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let (domains, versions): (i64, i64) =
                sqlx::query_as(DOMAINS).fetch_one(pool).await.map_err(e)?;
            let (certificates, not_after, updated): (i64, i64, i64) =
                sqlx::query_as(CERTS).fetch_one(pool).await.map_err(e)?;
            Ok(Generation { domains, versions, certificates, not_after, updated })
        })
    }

    /// Stores (or replaces) the certificate of `mta-sts.<cert.domain>`; the domain must be
    /// hosted.
    pub async fn put_certificate(&self, cert: &StoredCertificate) -> Result<(), HostingError> {
        const Q: &str = "INSERT INTO hosted_certificates (domain, chain_pem, key_pem, not_before, \
             not_after, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (domain) DO UPDATE SET chain_pem = excluded.chain_pem, \
             key_pem = excluded.key_pem, not_before = excluded.not_before, \
             not_after = excluded.not_after, source = excluded.source, updated_at = excluded.updated_at";
        if self.get(&cert.domain).await?.is_none() {
            return Err(HostingError::NotHosted { domain: cert.domain.clone() });
        }
        on_pool!(self, |pool| {
            sqlx::query(Q)
                .bind(&cert.domain)
                .bind(&cert.chain_pem)
                .bind(&cert.key_pem)
                .bind(cert.not_before)
                .bind(cert.not_after)
                .bind(&cert.source)
                .bind(cert.updated_at)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Every stored certificate, by domain.
    pub async fn certificates(&self) -> Result<Vec<StoredCertificate>, HostingError> {
        self.certificates_where(None).await
    }

    async fn certificates_where(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<StoredCertificate>, HostingError> {
        const Q: &str = "SELECT domain, chain_pem, key_pem, not_before, not_after, source, updated_at \
             FROM hosted_certificates WHERE ($1 IS NULL OR domain = $1) ORDER BY domain";
        type Tuple = (String, String, String, i64, i64, String, i64);
        on_pool!(self, |pool| {
            let rows: Vec<Tuple> =
                sqlx::query_as(Q).bind(domain).fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, chain_pem, key_pem, not_before, not_after, source, updated_at)| {
                    StoredCertificate {
                        domain,
                        chain_pem,
                        key_pem,
                        not_before,
                        not_after,
                        source,
                        updated_at,
                    }
                })
                .collect())
        })
    }

    /// The stored credentials (JSON) of the ACME account at `directory`.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<String>, HostingError> {
        const Q: &str = "SELECT credentials FROM acme_accounts WHERE directory = $1";
        on_pool!(self, |pool| {
            let row: Option<(String,)> = sqlx::query_as(Q)
                .bind(directory)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.map(|(c,)| c))
        })
    }

    /// Stores the credentials of a new account at `directory` unless another instance stored
    /// one first; returns the credentials stored now (the other instance's, if it won).
    pub async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
        now: i64,
    ) -> Result<String, HostingError> {
        const Q: &str = "INSERT INTO acme_accounts (directory, credentials, created_at)              VALUES ($1, $2, $3) ON CONFLICT (directory) DO NOTHING";
        on_pool!(self, |pool| {
            sqlx::query(Q)
                .bind(directory)
                .bind(credentials)
                .bind(now)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok::<(), HostingError>(())
        })?;
        Ok(self.acme_account(directory).await?.unwrap_or_else(|| credentials.to_owned()))
    }

    /// Publishes an HTTP-01 answer (RFC 8555 §8.3) for every instance until `expires_at`.
    pub async fn put_challenge(
        &self,
        token: &str,
        key_authorization: &str,
        domain: &str,
        expires_at: i64,
    ) -> Result<(), HostingError> {
        const Q: &str = "INSERT INTO acme_challenges (token, key_authorization, domain, expires_at)              VALUES ($1, $2, $3, $4) ON CONFLICT (token) DO UPDATE SET              key_authorization = excluded.key_authorization, domain = excluded.domain,              expires_at = excluded.expires_at";
        on_pool!(self, |pool| {
            sqlx::query(Q)
                .bind(token)
                .bind(key_authorization)
                .bind(domain)
                .bind(expires_at)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// The HTTP-01 answer for `token`, if one is published and not expired at `now`.
    pub async fn challenge(&self, token: &str, now: i64) -> Result<Option<String>, HostingError> {
        const Q: &str =
            "SELECT key_authorization FROM acme_challenges WHERE token = $1 AND expires_at > $2";
        on_pool!(self, |pool| {
            let row: Option<(String,)> = sqlx::query_as(Q)
                .bind(token)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.map(|(k,)| k))
        })
    }

    /// Withdraws the answer for `token`, and every answer expired at `now`.
    pub async fn remove_challenge(&self, token: &str, now: i64) -> Result<(), HostingError> {
        const Q: &str = "DELETE FROM acme_challenges WHERE token = $1 OR expires_at <= $2";
        on_pool!(self, |pool| {
            sqlx::query(Q).bind(token).bind(now).execute(pool).await.map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Takes (or renews) the lease `name` for `holder` until `now + ttl`: true when `holder`
    /// holds it now, false while another holder's lease has not expired. One statement, so
    /// two instances racing for it cannot both win.
    pub async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, HostingError> {
        const Q: &str = "INSERT INTO hosting_locks (name, holder, expires_at) VALUES ($1, $2, $3)              ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,              expires_at = excluded.expires_at              WHERE hosting_locks.holder = excluded.holder OR hosting_locks.expires_at <= $4";
        on_pool!(self, |pool| {
            let done = sqlx::query(Q)
                .bind(name)
                .bind(holder)
                .bind(now.saturating_add(ttl))
                .bind(now)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Gives the lease `name` up, if `holder` holds it.
    pub async fn unlock(&self, name: &str, holder: &str) -> Result<(), HostingError> {
        const Q: &str = "DELETE FROM hosting_locks WHERE name = $1 AND holder = $2";
        on_pool!(self, |pool| {
            sqlx::query(Q).bind(name).bind(holder).execute(pool).await.map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Every domain's certificate-ordering state.
    pub async fn acme_statuses(&self) -> Result<Vec<AcmeStatus>, HostingError> {
        self.acme_statuses_where(None).await
    }

    /// Records an ordering attempt for `domain`: `error` is `None` on success (failures
    /// reset), else the failure is counted; no new attempt before `next_attempt`.
    pub async fn record_acme_attempt(
        &self,
        domain: &str,
        error: Option<&str>,
        now: i64,
        next_attempt: i64,
    ) -> Result<(), HostingError> {
        const Q: &str = "INSERT INTO acme_status (domain, failures, last_attempt, last_error,              next_attempt) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain) DO UPDATE SET              failures = CASE WHEN excluded.last_error IS NULL THEN 0              ELSE acme_status.failures + 1 END, last_attempt = excluded.last_attempt,              last_error = excluded.last_error, next_attempt = excluded.next_attempt";
        on_pool!(self, |pool| {
            sqlx::query(Q)
                .bind(domain)
                .bind(i64::from(error.is_some()))
                .bind(now)
                .bind(error)
                .bind(next_attempt)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// The stored certificate of `mta-sts.<domain>`.
    pub async fn certificate(
        &self,
        domain: &str,
    ) -> Result<Option<StoredCertificate>, HostingError> {
        Ok(self.certificates_where(Some(domain)).await?.pop())
    }

    /// The certificate-ordering state of `domain`.
    pub async fn acme_status(&self, domain: &str) -> Result<Option<AcmeStatus>, HostingError> {
        Ok(self.acme_statuses_where(Some(domain)).await?.pop())
    }

    async fn acme_statuses_where(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<AcmeStatus>, HostingError> {
        const Q: &str = "SELECT domain, failures, last_attempt, last_error, next_attempt \
             FROM acme_status WHERE ($1 IS NULL OR domain = $1) ORDER BY domain";
        type Tuple = (String, i64, i64, Option<String>, i64);
        on_pool!(self, |pool| {
            let rows: Vec<Tuple> =
                sqlx::query_as(Q).bind(domain).fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, failures, last_attempt, last_error, next_attempt)| AcmeStatus {
                    domain,
                    failures,
                    last_attempt,
                    last_error,
                    next_attempt,
                })
                .collect())
        })
    }

    /// Stores a new API token.
    pub async fn put_token(&self, token: &ApiToken) -> Result<(), HostingError> {
        const Q: &str = "INSERT INTO api_tokens (id, tenant, secret_sha256, label, created_at, \
             revoked_at) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| {
            sqlx::query(Q)
                .bind(&token.id)
                .bind(&token.tenant)
                .bind(&token.secret_sha256)
                .bind(&token.label)
                .bind(token.created_at)
                .bind(token.revoked_at)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// The token `id`, revoked or not.
    pub async fn token(&self, id: &str) -> Result<Option<ApiToken>, HostingError> {
        Ok(self.tokens_where(Some(id), None).await?.pop())
    }

    /// Every token, or those of `tenant`.
    pub async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<ApiToken>, HostingError> {
        self.tokens_where(None, tenant).await
    }

    async fn tokens_where(
        &self,
        id: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Vec<ApiToken>, HostingError> {
        const Q: &str = "SELECT id, tenant, secret_sha256, label, created_at, revoked_at \
             FROM api_tokens WHERE ($1 IS NULL OR id = $1) AND ($2 IS NULL OR tenant = $2) \
             ORDER BY created_at, id";
        type Tuple = (String, Option<String>, String, String, i64, Option<i64>);
        on_pool!(self, |pool| {
            let rows: Vec<Tuple> = sqlx::query_as(Q)
                .bind(id)
                .bind(tenant)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(id, tenant, secret_sha256, label, created_at, revoked_at)| ApiToken {
                    id,
                    tenant,
                    secret_sha256,
                    label,
                    created_at,
                    revoked_at,
                })
                .collect())
        })
    }

    /// Revokes the token `id` at `now`; false if there is no such token (or it was revoked).
    pub async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, HostingError> {
        const Q: &str =
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_pool!(self, |pool| {
            let done =
                sqlx::query(Q).bind(id).bind(now).execute(pool).await.map_err(|e| self.err(e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The problems of `domain`, or of every domain.
    pub async fn problems(&self, domain: Option<&str>) -> Result<Vec<DomainProblem>, HostingError> {
        const Q: &str = "SELECT domain, code, subject, severity, message, first_seen, last_seen \
             FROM domain_problems WHERE ($1 IS NULL OR domain = $1) ORDER BY domain, code, subject";
        type Tuple = (String, String, String, String, String, i64, i64);
        on_pool!(self, |pool| {
            let rows: Vec<Tuple> =
                sqlx::query_as(Q).bind(domain).fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, code, subject, severity, message, first_seen, last_seen)| {
                    DomainProblem {
                        domain,
                        code,
                        subject,
                        severity,
                        message,
                        first_seen,
                        last_seen,
                    }
                })
                .collect())
        })
    }

    /// When `domain` was last checked by monitoring.
    pub async fn checked_at(&self, domain: &str) -> Result<Option<i64>, HostingError> {
        const Q: &str = "SELECT checked_at FROM domain_checks WHERE domain = $1";
        on_pool!(self, |pool| {
            let row: Option<(i64,)> = sqlx::query_as(Q)
                .bind(domain)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.map(|(t,)| t))
        })
    }

    /// Records the result of checking `domain` at `now`: `found` replaces its problems (a
    /// problem seen before keeps its `first_seen`); returns what appeared and what went away.
    /// Written by one monitor at a time (the caller holds the monitoring lease).
    pub async fn replace_problems(
        &self,
        domain: &str,
        found: &[DomainProblem],
        now: i64,
    ) -> Result<ProblemChanges, HostingError> {
        const UPSERT: &str = "INSERT INTO domain_problems (domain, code, subject, severity, \
             message, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (domain, code, subject) DO UPDATE SET severity = excluded.severity, \
             message = excluded.message, last_seen = excluded.last_seen";
        const DELETE: &str =
            "DELETE FROM domain_problems WHERE domain = $1 AND code = $2 AND subject = $3";
        const CHECKED: &str = "INSERT INTO domain_checks (domain, checked_at) VALUES ($1, $2) \
             ON CONFLICT (domain) DO UPDATE SET checked_at = excluded.checked_at";
        let before = self.problems(Some(domain)).await?;
        let key = |p: &DomainProblem| (p.code.clone(), p.subject.clone());
        let mut changes = ProblemChanges::default();
        for p in found {
            if !before.iter().any(|b| key(b) == key(p)) {
                changes.new.push(DomainProblem { first_seen: now, last_seen: now, ..p.clone() });
            }
        }
        for b in &before {
            if !found.iter().any(|p| key(p) == key(b)) {
                changes.resolved.push(b.clone());
            }
        }
        on_pool!(self, |pool| {
            let e = |error| self.err(error);
            let mut tx = pool.begin().await.map_err(e)?;
            for p in found {
                sqlx::query(UPSERT)
                    .bind(domain)
                    .bind(&p.code)
                    .bind(&p.subject)
                    .bind(&p.severity)
                    .bind(&p.message)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(e)?;
            }
            for r in &changes.resolved {
                sqlx::query(DELETE)
                    .bind(domain)
                    .bind(&r.code)
                    .bind(&r.subject)
                    .execute(&mut *tx)
                    .await
                    .map_err(e)?;
            }
            sqlx::query(CHECKED).bind(domain).bind(now).execute(&mut *tx).await.map_err(e)?;
            tx.commit().await.map_err(e)?;
            Ok::<(), HostingError>(())
        })?;
        Ok(changes)
    }

    /// Every stored certificate's validity, without the chain or key (listings).
    pub async fn certificate_validity(&self) -> Result<Vec<CertificateValidity>, HostingError> {
        const Q: &str = "SELECT domain, source, not_before, not_after FROM hosted_certificates \
             ORDER BY domain";
        on_pool!(self, |pool| {
            let rows: Vec<(String, String, i64, i64)> =
                sqlx::query_as(Q).fetch_all(pool).await.map_err(|e| self.err(e))?;
            Ok(rows
                .into_iter()
                .map(|(domain, source, not_before, not_after)| CertificateValidity {
                    domain,
                    source,
                    not_before,
                    not_after,
                })
                .collect())
        })
    }

    /// When monitoring last checked each domain it has checked: (domain, unix seconds).
    pub async fn check_times(&self) -> Result<Vec<(String, i64)>, HostingError> {
        const Q: &str = "SELECT domain, checked_at FROM domain_checks ORDER BY domain";
        on_pool!(self, |pool| { sqlx::query_as(Q).fetch_all(pool).await.map_err(|e| self.err(e)) })
    }
}
