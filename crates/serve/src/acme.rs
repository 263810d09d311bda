//! Certificates for the policy hosts `mta-sts.<domain>` by ACME (RFC 8555, HTTP-01), stored in
//! the database so every `serve` instance presents them.
//!
//! - **One instance orders at a time**: a round runs only under the `acme` lease of
//!   [`HostingStore::try_lock`], renewed after each domain; another instance skips the round.
//! - **Delegation first**: before ordering, `mta-sts.<domain>` must resolve to this service (a
//!   CNAME to the service host, or one of its addresses); otherwise the order would fail at
//!   the CA and count against its rate limits, so the missing record is named instead.
//! - **When** ([`due`], pure): a domain without a certificate; an ACME certificate with less
//!   than a third of its lifetime or `renew_before` left (whichever comes first); never a
//!   manual certificate. After a failure the next attempt waits ([`backoff`]): 5 minutes,
//!   doubling, at most a day.
//! - **Challenges** are answered on port 80 from memory and, for other instances behind the
//!   same load balancer, from the database (`acme_challenges`), and withdrawn afterwards.
//! - The account key is created once per directory URL and kept in the database.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use mtasts_net::DnsClient;
use mtasts_store::hosting::{
    AcmeStatus, CertificateValidity, HostingError, HostingStore, StoredCertificate,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::OnceCell;

use crate::catalog::checked_certificate;
use crate::http::Challenges;
use crate::lifecycle::Service;

/// The name of the ordering lease.
const LOCK: &str = "acme";
/// How long the lease lasts without renewal (a crashed holder blocks others this long).
const LEASE_SECS: i64 = 600;
/// How long a published HTTP-01 answer lives in the database at most.
const CHALLENGE_SECS: i64 = 3600;
/// The first back-off after a failure; doubled per failure, at most [`MAX_BACKOFF_SECS`].
const FIRST_BACKOFF_SECS: i64 = 300;
/// The longest back-off.
const MAX_BACKOFF_SECS: i64 = 86_400;

/// The challenge the CA is asked to validate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChallengeKind {
    /// HTTP-01 (RFC 8555 §8.3): `http://mta-sts.<domain>/.well-known/acme-challenge/…` on
    /// port 80, answered by every instance on the database.
    #[default]
    Http01,
    /// TLS-ALPN-01 (RFC 8737): a challenge certificate on port 443 for ALPN `acme-tls/1`;
    /// answered by the ordering instance only, so behind a load balancer use HTTP-01.
    TlsAlpn01,
}

/// How `serve` orders certificates.
#[derive(Clone, Debug)]
pub struct AcmeOptions {
    /// The ACME directory URL (Let's Encrypt:
    /// `https://acme-v02.api.letsencrypt.org/directory`).
    pub directory: String,
    /// A PEM file with the root to trust for the ACME server itself (Pebble's test CA);
    /// `None`: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// Account contacts (`mailto:…`).
    pub contact: Vec<String>,
    /// Renew when less than this is left (default 30 days).
    pub renew_before: Duration,
    /// Time between rounds (default an hour).
    pub every: Duration,
    /// Time allowed for one order, from creation to the certificate (default 2 minutes).
    pub order_timeout: Duration,
    /// This service's addresses: `mta-sts.<domain>` resolving to one of them counts as
    /// delegated, besides a CNAME to the service host.
    pub addresses: Vec<IpAddr>,
    /// The challenge type.
    pub challenge: ChallengeKind,
    /// Orders under way at once in a round (default 4).
    pub concurrency: usize,
}

impl AcmeOptions {
    /// Options for `directory` with the defaults.
    pub fn new(directory: impl Into<String>) -> Self {
        Self {
            directory: directory.into(),
            ca_file: None,
            contact: Vec::new(),
            renew_before: Duration::from_secs(30 * 86_400),
            every: Duration::from_secs(3600),
            order_timeout: Duration::from_secs(120),
            addresses: Vec::new(),
            challenge: ChallengeKind::default(),
            concurrency: 4,
        }
    }
}

/// Why a certificate could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// `mta-sts.<domain>` does not point at this service.
    #[error("{host} is not delegated to this service: {found}; publish {want}")]
    NotDelegated {
        /// The policy host.
        host: String,
        /// What DNS says now.
        found: String,
        /// The record to publish.
        want: String,
    },
    /// The delegation could not be looked up.
    #[error("cannot look up {host}: {reason}")]
    Dns {
        /// The policy host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The ACME account could not be created or loaded.
    #[error("ACME account at {directory}: {reason}")]
    Account {
        /// The directory URL.
        directory: String,
        /// Why.
        reason: String,
    },
    /// The CA refused or failed the order.
    #[error("ACME order for {host}: {reason}")]
    Order {
        /// The policy host.
        host: String,
        /// The step and what the CA said.
        reason: String,
    },
    /// The CA issued something that is not a usable certificate for the host.
    #[error("the certificate issued for {host} is unusable: {reason}")]
    Issued {
        /// The policy host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] HostingError),
}

/// Why a domain needs a certificate now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// It has none.
    Missing,
    /// Its ACME certificate is near its end.
    Renewal,
    /// Its stored certificate has expired (manual ones included: ACME takes over).
    Expired,
}

/// Whether a domain needs a certificate at `now` (see the module docs). Pure.
pub fn due(
    cert: Option<&CertificateValidity>,
    status: Option<&AcmeStatus>,
    now: i64,
    renew_before: Duration,
) -> Option<Due> {
    if status.is_some_and(|s| s.next_attempt > now) {
        return None;
    }
    let Some(cert) = cert else { return Some(Due::Missing) };
    if cert.not_after <= now {
        return Some(Due::Expired);
    }
    if cert.source != "acme" {
        return None;
    }
    let lifetime = (cert.not_after - cert.not_before).max(0);
    let before = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX).min(lifetime / 3);
    (cert.not_after - now <= before).then_some(Due::Renewal)
}

/// The wait before the next attempt after the `failures`-th failure in a row. Pure.
pub fn backoff(failures: i64) -> i64 {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_BACKOFF_SECS.saturating_mul(1_i64 << doublings).min(MAX_BACKOFF_SECS)
}

/// Whether `host` as DNS answers it (`cname`, `addresses`) points at the service: a CNAME to
/// the service host, or an address of the service. `Err` says what is missing. Pure.
pub fn delegation(
    host: &str,
    cname: Option<&str>,
    addresses: &[IpAddr],
    service: &Service,
    service_addresses: &[IpAddr],
) -> Result<(), AcmeError> {
    let target = service.cname_target.as_ref().map(|t| t.as_str().to_owned());
    if let (Some(t), Some(c)) = (&target, cname)
        && c.trim_end_matches('.').eq_ignore_ascii_case(t)
    {
        return Ok(());
    }
    if addresses.iter().any(|a| service_addresses.contains(a)) {
        return Ok(());
    }
    if target.is_none() && service_addresses.is_empty() && !addresses.is_empty() {
        // Nothing to compare with: an address at all is the best that can be said.
        return Ok(());
    }
    let found = match (cname, addresses) {
        (Some(c), _) => format!("it is a CNAME to {c}"),
        (None, []) => "it has no address".to_owned(),
        (None, a) => format!(
            "it resolves to {}",
            a.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let want = match (&target, service_addresses.first()) {
        (Some(t), _) => format!("{host}. IN CNAME {t}."),
        (None, Some(IpAddr::V4(a))) => format!("{host}. IN A {a}"),
        (None, Some(IpAddr::V6(a))) => format!("{host}. IN AAAA {a}"),
        (None, None) => format!("an address record for {host}"),
    };
    Err(AcmeError::NotDelegated { host: host.to_owned(), found, want })
}

/// The TLS-ALPN-01 challenge certificate for `host` (RFC 8737 §3): self-signed, the host as
/// its only DNS name, and the critical acmeIdentifier extension holding the SHA-256 digest of
/// the key authorization.
fn alpn_certificate(host: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    let fail = |e: rcgen::Error| format!("cannot make the TLS-ALPN-01 certificate: {e}");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(fail)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: it parses the certificate with webpki, which refuses the
    // critical acmeIdentifier extension this certificate exists to carry.
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("cannot use the TLS-ALPN-01 key: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Another instance held the lease: nothing was done.
    pub busy: bool,
    /// Domains that got a certificate.
    pub issued: Vec<String>,
    /// Domains whose attempt failed, with why.
    pub failed: Vec<(String, String)>,
}

/// The certificate orderer of one instance.
pub struct Acme {
    hosting: HostingStore,
    options: AcmeOptions,
    service: Service,
    dns: Arc<dyn DnsClient>,
    challenges: Arc<Challenges>,
    holder: String,
    account: OnceCell<Account>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("directory", &self.options.directory)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Acme {
    /// An orderer for the domains in `hosting`, answering challenges through `challenges`
    /// (the instance's, served on port 80) and checking delegations through `dns`. `holder`
    /// names this instance in the lease (host name and process id are a good choice).
    pub fn new(
        hosting: HostingStore,
        options: AcmeOptions,
        service: Service,
        dns: Arc<dyn DnsClient>,
        challenges: Arc<Challenges>,
        holder: impl Into<String>,
    ) -> Self {
        Self {
            hosting,
            options,
            service,
            dns,
            challenges,
            holder: holder.into(),
            account: OnceCell::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &AcmeOptions {
        &self.options
    }

    async fn account(&self) -> Result<&Account, AcmeError> {
        self.account.get_or_try_init(|| self.load_account()).await
    }

    async fn load_account(&self) -> Result<Account, AcmeError> {
        let directory = &self.options.directory;
        let err = |reason: String| AcmeError::Account { directory: directory.clone(), reason };
        let builder = || match &self.options.ca_file {
            Some(path) => Account::builder_with_root(path)
                .map_err(|e| err(format!("cannot use --acme-ca {}: {e}", path.display()))),
            None => Account::builder().map_err(|e| err(e.to_string())),
        };
        if let Some(stored) = self.hosting.acme_account(directory).await? {
            let credentials = serde_json::from_str(&stored)
                .map_err(|e| err(format!("the stored account does not parse: {e}")))?;
            return builder()?
                .from_credentials(credentials)
                .await
                .map_err(|e| err(format!("cannot load the stored account: {e}")));
        }
        let contact: Vec<&str> = self.options.contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = builder()?
            .create(&new, directory.clone(), None)
            .await
            .map_err(|e| err(format!("cannot create an account: {e}")))?;
        let json = serde_json::to_string(&credentials)
            .map_err(|e| err(format!("cannot serialise the account: {e}")))?;
        let stored = self.hosting.put_acme_account(directory, &json, unix_now()).await?;
        if stored == json {
            tracing::info!(directory = %directory, "ACME account created");
            return Ok(account);
        }
        // Another instance created one first: use that one.
        let credentials = serde_json::from_str(&stored)
            .map_err(|e| err(format!("the stored account does not parse: {e}")))?;
        builder()?.from_credentials(credentials).await.map_err(|e| err(e.to_string()))
    }

    /// Checks that `mta-sts.<domain>` points at this service (see [`delegation`]).
    pub async fn check_delegation(&self, domain: &str) -> Result<(), AcmeError> {
        let host = format!("mta-sts.{domain}");
        let dns_err =
            |e: mtasts_net::DnsError| AcmeError::Dns { host: host.clone(), reason: e.to_string() };
        let (cname, ips) = tokio::join!(self.dns.cname(&host), self.dns.ip(&host));
        let cname = cname.map_err(dns_err)?;
        let ips = match ips {
            Ok(ips) => ips,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(dns_err(e)),
        };
        delegation(&host, cname.as_deref(), &ips, &self.service, &self.options.addresses)
    }

    /// Orders, checks and stores a certificate for `mta-sts.<domain>` now (delegation
    /// checked first).
    pub async fn obtain(&self, domain: &str) -> Result<StoredCertificate, AcmeError> {
        self.check_delegation(domain).await?;
        let host = format!("mta-sts.{domain}");
        let timeout = self.options.order_timeout;
        let ordered = tokio::time::timeout(timeout, self.order(domain, &host)).await;
        let (chain, key) = ordered.map_err(|_| AcmeError::Order {
            host: host.clone(),
            reason: format!("no certificate within {} s", timeout.as_secs()),
        })??;
        let cert = checked_certificate(domain, &chain, &key, "acme", unix_now())
            .map_err(|e| AcmeError::Issued { host: host.clone(), reason: e.reason })?;
        self.hosting.put_certificate(&cert).await?;
        tracing::info!(domain, not_after = cert.not_after, "certificate issued by ACME");
        Ok(cert)
    }

    async fn order(&self, domain: &str, host: &str) -> Result<(String, String), AcmeError> {
        let account = self.account().await?;
        let fail = |step: &str, e: instant_acme::Error| AcmeError::Order {
            host: host.to_owned(),
            reason: format!("{step}: {e}"),
        };
        let identifiers = [Identifier::Dns(host.to_owned())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| fail("new order", e))?;
        let mut tokens = Vec::new();
        let mut alpn = false;
        let result = async {
            let mut authorizations = order.authorizations();
            while let Some(a) = authorizations.next().await {
                let mut a = a.map_err(|e| fail("authorization", e))?;
                match a.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err(AcmeError::Order {
                            host: host.to_owned(),
                            reason: format!("the authorization is {other:?}"),
                        });
                    }
                }
                let kind = match self.options.challenge {
                    ChallengeKind::Http01 => ChallengeType::Http01,
                    ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
                };
                let mut challenge = a.challenge(kind.clone()).ok_or_else(|| AcmeError::Order {
                    host: host.to_owned(),
                    reason: format!("the CA offers no {kind:?} challenge"),
                })?;
                let answer = challenge.key_authorization();
                match self.options.challenge {
                    ChallengeKind::Http01 => {
                        let token = challenge.token.clone();
                        self.challenges.insert(&token, answer.as_str());
                        self.hosting
                            .put_challenge(
                                &token,
                                answer.as_str(),
                                domain,
                                unix_now() + CHALLENGE_SECS,
                            )
                            .await?;
                        tokens.push(token);
                    }
                    ChallengeKind::TlsAlpn01 => {
                        let key = alpn_certificate(host, answer.digest().as_ref())
                            .map_err(|reason| AcmeError::Order { host: host.to_owned(), reason })?;
                        self.challenges.insert_alpn(host, Arc::new(key));
                        alpn = true;
                    }
                }
                challenge.set_ready().await.map_err(|e| fail("challenge", e))?;
            }
            let retry = RetryPolicy::new().timeout(self.options.order_timeout);
            let status = order.poll_ready(&retry).await.map_err(|e| fail("validation", e))?;
            if status != OrderStatus::Ready {
                let why = order
                    .state()
                    .error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| format!("the order is {status:?}"));
                return Err(AcmeError::Order {
                    host: host.to_owned(),
                    reason: format!("validation failed: {why}"),
                });
            }
            let key = order.finalize().await.map_err(|e| fail("finalize", e))?;
            let chain = order.poll_certificate(&retry).await.map_err(|e| fail("certificate", e))?;
            Ok((chain, key))
        }
        .await;
        if alpn {
            self.challenges.remove_alpn(host);
        }
        for token in &tokens {
            self.challenges.remove(token);
            if let Err(e) = self.hosting.remove_challenge(token, unix_now()).await {
                tracing::warn!(error = %e, "cannot withdraw an ACME challenge");
            }
        }
        result
    }

    /// One round: under the lease, every hosted domain [`due`] gets a certificate (or its
    /// failure recorded with the next attempt's time).
    pub async fn round(&self) -> Result<Round, AcmeError> {
        let now = unix_now();
        if !self.hosting.try_lock(LOCK, &self.holder, now, LEASE_SECS).await? {
            return Ok(Round { busy: true, ..Round::default() });
        }
        let result = self.round_locked(now).await;
        if let Err(e) = self.hosting.unlock(LOCK, &self.holder).await {
            tracing::warn!(error = %e, "cannot release the ACME lease (it expires by itself)");
        }
        result
    }

    async fn round_locked(&self, now: i64) -> Result<Round, AcmeError> {
        let domains = self.hosting.list(None).await?;
        let certs = self.hosting.certificate_validity().await?;
        let statuses = self.hosting.acme_statuses().await?;
        let mut round = Round::default();
        let due_now: Vec<(String, i64)> = domains
            .iter()
            .filter_map(|d| {
                let cert = certs.iter().find(|c| c.domain == d.domain);
                let status = statuses.iter().find(|s| s.domain == d.domain);
                due(cert, status, now, self.options.renew_before)
                    .map(|_| (d.domain.clone(), status.map_or(0, |s| s.failures)))
            })
            .collect();
        if due_now.is_empty() {
            return Ok(round);
        }
        // A CA that cannot be reached fails the round once, not every domain.
        self.account().await?;
        // A few orders at a time: each mostly waits for the CA's validation. Each order
        // records its own outcome: the loop below never awaits the database while orders are
        // suspended, since a suspended order may hold a pooled connection (with every connection
        // held so, the loop would wait for one forever).
        let mut orders = futures::stream::iter(due_now.into_iter().map(|(domain, failures)| async move {
            let attempt = unix_now();
            let outcome = match self.obtain(&domain).await {
                Ok(_) => self.hosting.record_acme_attempt(&domain, None, attempt, 0).await.map(|()| None),
                Err(AcmeError::Store(e)) => Err(e),
                Err(e) => {
                    let next = attempt + backoff(failures + 1);
                    let why = e.to_string();
                    tracing::warn!(%domain, error = %why, retry_in_s = next - attempt, "no certificate");
                    self.hosting.record_acme_attempt(&domain, Some(&why), attempt, next).await.map(|()| Some(why))
                }
            };
            let leased = match &outcome {
                Ok(_) => self.hosting.try_lock(LOCK, &self.holder, unix_now(), LEASE_SECS).await,
                Err(_) => Ok(true),
            };
            (domain, outcome, leased)
        }))
        .buffer_unordered(self.options.concurrency.max(1));
        while let Some((domain, outcome, leased)) = orders.next().await {
            match outcome? {
                None => round.issued.push(domain),
                Some(why) => round.failed.push((domain, why)),
            }
            if !leased? {
                tracing::warn!("the ACME lease was taken over; stopping this round");
                break;
            }
        }
        round.issued.sort();
        round.failed.sort();
        Ok(round)
    }

    /// Runs a round at once and then every `options.every` until `shutdown` resolves. A
    /// round that fails (the CA or the database unreachable) is logged once and tried again
    /// every round; its recovery is logged once.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            match self.round().await {
                Ok(r) => {
                    if failing {
                        tracing::info!("ACME rounds work again");
                        failing = false;
                    }
                    if !r.issued.is_empty() || !r.failed.is_empty() {
                        tracing::info!(
                            issued = r.issued.len(),
                            failed = r.failed.len(),
                            "ACME round done"
                        );
                    }
                }
                // Said once until it works again (a dead CA or database every hour is noise).
                Err(e) if !failing => {
                    tracing::error!(error = %e, "ACME round failed; retrying every round");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.options.every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mtasts_proto::DomainName;

    fn cert(source: &str, not_before: i64, not_after: i64) -> CertificateValidity {
        CertificateValidity {
            domain: "example.com".into(),
            source: source.into(),
            not_before,
            not_after,
        }
    }

    const DAY: i64 = 86_400;
    const MONTH: Duration = Duration::from_secs(30 * 86_400);

    #[test]
    fn when_a_certificate_is_due() {
        let now = 1_000 * DAY;
        assert_eq!(due(None, None, now, MONTH), Some(Due::Missing));
        // 90-day ACME certificate: renewed in its last 30 days.
        let c = cert("acme", now - 10 * DAY, now + 80 * DAY);
        assert_eq!(due(Some(&c), None, now, MONTH), None);
        let c = cert("acme", now - 61 * DAY, now + 29 * DAY);
        assert_eq!(due(Some(&c), None, now, MONTH), Some(Due::Renewal));
        // A 6-day certificate: renewed with 2 days left, not at once.
        let c = cert("acme", now - DAY, now + 5 * DAY);
        assert_eq!(due(Some(&c), None, now, MONTH), None);
        let c = cert("acme", now - 4 * DAY, now + 2 * DAY);
        assert_eq!(due(Some(&c), None, now, MONTH), Some(Due::Renewal));
        // Manual certificates are left alone until they expire.
        let c = cert("manual", now - 80 * DAY, now + DAY);
        assert_eq!(due(Some(&c), None, now, MONTH), None);
        let c = cert("manual", now - 80 * DAY, now - 1);
        assert_eq!(due(Some(&c), None, now, MONTH), Some(Due::Expired));
        // A failed attempt waits for its back-off.
        let status = AcmeStatus {
            domain: "example.com".into(),
            failures: 1,
            last_attempt: now - 10,
            last_error: Some("x".into()),
            next_attempt: now + 290,
        };
        assert_eq!(due(None, Some(&status), now, MONTH), None);
        assert_eq!(due(None, Some(&status), now + 290, MONTH), Some(Due::Missing));
    }

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(backoff(1), 300);
        assert_eq!(backoff(2), 600);
        assert_eq!(backoff(4), 2400);
        assert_eq!(backoff(10), 86_400);
        assert_eq!(backoff(1_000), 86_400);
    }

    #[test]
    fn delegation_by_cname_or_address() {
        let service = Service {
            cname_target: Some(DomainName::from_user_input("sts.provider.net").unwrap()),
            rua: vec![],
        };
        let ours: [IpAddr; 1] = ["192.0.2.10".parse().unwrap()];
        let host = "mta-sts.example.com";
        assert!(delegation(host, Some("sts.provider.net."), &[], &service, &ours).is_ok());
        assert!(delegation(host, None, &ours, &service, &ours).is_ok());
        let e = delegation(host, Some("other.host."), &[], &service, &ours).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mta-sts.example.com is not delegated to this service: it is a CNAME to other.host.; \
             publish mta-sts.example.com. IN CNAME sts.provider.net."
        );
        let e = delegation(host, None, &[], &service, &ours).unwrap_err();
        assert!(e.to_string().contains("it has no address"), "{e}");
        let by_address = Service { cname_target: None, rua: vec![] };
        let e = delegation(host, None, &["198.51.100.1".parse().unwrap()], &by_address, &ours)
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "it resolves to 198.51.100.1; publish mta-sts.example.com. IN A 192.0.2.10"
            ),
            "{e}"
        );
    }
}
