//! What this instance serves: every hosted domain's policy and its policy host's certificate,
//! held in memory and reloaded from the database when its [`Generation`] changes.
//!
//! The database is read only to reload: a request never waits on it, and when it goes away
//! the last good policies and certificates keep being served (a domain owner's senders must
//! not see the policy vanish because a database restarted). A certificate that does not load
//! keeps the previous good one for its domain and is logged.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::Bytes;
use mtasts_store::hosting::{Generation, HostingError, HostingStore, StoredCertificate};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::http::Challenges;

/// A policy as served.
#[derive(Clone, Debug)]
pub struct Served {
    /// The hosted domain.
    pub domain: Arc<str>,
    /// The policy file, exactly as stored.
    pub body: Bytes,
    /// Its TXT `id`.
    pub policy_id: Arc<str>,
}

#[derive(Default)]
struct Snapshot {
    generation: Option<Generation>,
    /// `mta-sts.<domain>` → policy.
    policies: HashMap<Box<str>, Served>,
    /// `mta-sts.<domain>` → certificate.
    certs: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// `mta-sts.<domain>` → the stored row's (updated_at, not_after) the key was built from.
    cert_versions: HashMap<Box<str>, (i64, i64)>,
}

/// The in-memory catalogue. Cheap to share (`Arc`); reads never block on a reload for longer
/// than swapping a pointer.
#[derive(Default)]
pub struct Catalog {
    snapshot: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.current();
        f.debug_struct("Catalog")
            .field("policies", &s.policies.len())
            .field("certificates", &s.certs.len())
            .finish()
    }
}

/// A certificate row that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("the certificate stored for mta-sts.{domain} cannot be used: {reason}")]
pub struct CertLoadError {
    /// The hosted domain.
    pub domain: String,
    /// Why.
    pub reason: String,
}

/// Turns a stored certificate into the key rustls presents.
pub fn certified_key(cert: &StoredCertificate) -> Result<CertifiedKey, CertLoadError> {
    let err = |reason: String| CertLoadError { domain: cert.domain.clone(), reason };
    let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("the chain is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(err("the chain holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .map_err(|e| err(format!("the key is not PEM: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| err(format!("the key does not match the certificate or is unusable: {e}")))
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Whether anything changed (the generation moved).
    pub changed: bool,
    /// Policies served now.
    pub policies: usize,
    /// Certificates presented now.
    pub certificates: usize,
    /// Certificates that did not load (the previous good one, if any, is kept).
    pub bad_certificates: Vec<String>,
}

impl Catalog {
    /// An empty catalogue.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The policy for the policy host `host` (`mta-sts.<domain>`, lower case).
    pub fn policy(&self, host: &str) -> Option<Served> {
        self.current().policies.get(host).cloned()
    }

    /// The certificate for the policy host `host`.
    pub fn certificate(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.current().certs.get(host).cloned()
    }

    /// How many policies are served.
    pub fn len(&self) -> usize {
        self.current().policies.len()
    }

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reloads from `store` if its generation changed since the last reload. On error the
    /// catalogue is left as it was (the last good state keeps being served).
    pub async fn reload(&self, store: &HostingStore) -> Result<Reloaded, HostingError> {
        let generation = store.generation().await?;
        let old = self.current();
        if old.generation == Some(generation) {
            return Ok(Reloaded {
                changed: false,
                policies: old.policies.len(),
                certificates: old.certs.len(),
                bad_certificates: Vec::new(),
            });
        }
        let domains = store.list(None).await?;
        let certs = store.certificates().await?;
        let mut next = Snapshot { generation: Some(generation), ..Snapshot::default() };
        for d in domains {
            let host: Box<str> = format!("mta-sts.{}", d.domain).into();
            next.policies.insert(
                host,
                Served {
                    domain: d.domain.as_str().into(),
                    body: Bytes::from(d.policy_text.into_bytes()),
                    policy_id: d.policy_id.into(),
                },
            );
        }
        let mut bad = Vec::new();
        for c in certs {
            let host: Box<str> = format!("mta-sts.{}", c.domain).into();
            let version = (c.updated_at, c.not_after);
            if old.cert_versions.get(&host) == Some(&version)
                && let Some(key) = old.certs.get(&host)
            {
                next.certs.insert(host.clone(), key.clone());
                next.cert_versions.insert(host, version);
                continue;
            }
            match certified_key(&c) {
                Ok(key) => {
                    next.certs.insert(host.clone(), Arc::new(key));
                    next.cert_versions.insert(host, version);
                }
                Err(e) => {
                    tracing::error!("{e}; the previous certificate, if any, stays in use");
                    bad.push(c.domain.clone());
                    if let Some(key) = old.certs.get(&host) {
                        next.certs.insert(host.clone(), key.clone());
                        if let Some(v) = old.cert_versions.get(&host) {
                            next.cert_versions.insert(host, *v);
                        }
                    }
                }
            }
        }
        let reloaded = Reloaded {
            changed: true,
            policies: next.policies.len(),
            certificates: next.certs.len(),
            bad_certificates: bad,
        };
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(reloaded)
    }
}

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Chooses the certificate by SNI from a [`Catalog`]. A client without SNI, or asking for a
/// name not hosted here, gets no certificate: the handshake fails (RFC 8461 §3.3 senders
/// always send SNI `mta-sts.<domain>`). A CA validating TLS-ALPN-01 (ALPN `acme-tls/1` and
/// nothing else, RFC 8737 §3) gets the pending challenge certificate for the name instead.
#[derive(Debug)]
pub struct SniResolver {
    catalog: Arc<Catalog>,
    challenges: Arc<Challenges>,
}

impl SniResolver {
    /// A resolver over `catalog`, with TLS-ALPN-01 answers from `challenges`.
    pub fn new(catalog: Arc<Catalog>, challenges: Arc<Challenges>) -> Self {
        Self { catalog, challenges }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        let name = name.trim_end_matches('.');
        let name: std::borrow::Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name.to_ascii_lowercase().into()
        } else {
            name.into()
        };
        if hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN)) {
            return self.challenges.alpn(&name);
        }
        self.catalog.certificate(&name)
    }
}

/// The TLS configuration of the policy server: certificates by SNI from `catalog`, TLS 1.2
/// and 1.3 (ring), HTTP/1.1 by ALPN (and `acme-tls/1` for TLS-ALPN-01 validation, answered
/// from `challenges`).
pub fn tls_config(
    catalog: Arc<Catalog>,
    challenges: Arc<Challenges>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    // The server's preference (RFC 8446 §4.1.1 lets the server choose): AES-128-GCM, then
    // ChaCha20-Poly1305, then AES-256-GCM, TLS 1.3 before TLS 1.2. All are strong; the first
    // two hash with SHA-256, which most CPUs compute in hardware, where SHA-384's key schedule
    // costs a new connection about a tenth of its CPU time.
    provider.cipher_suites.sort_by_key(|s| {
        let name = format!("{:?}", s.suite());
        let strength = if name.contains("AES_128") {
            0
        } else if name.contains("CHACHA20") {
            1
        } else {
            2
        };
        (u8::from(!name.starts_with("TLS13")), strength)
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver::new(catalog, challenges)));
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    // One TLS 1.3 ticket per connection, not rustls's two: a sender fetches a policy once per
    // `max_age` and resumes rarely; each ticket costs a full handshake a key derivation and an
    // encryption.
    config.send_tls13_tickets = 1;
    // Resumption by ticket as well as by session id: senders and load tests that reconnect
    // skip the full handshake.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(16_384);
    Ok(config)
}

/// A certificate for `mta-sts.<domain>` from PEM text (a manual certificate, or one just
/// issued by ACME), checked before it is stored: the chain and key parse and belong together,
/// and the leaf names `mta-sts.<domain>` (RFC 8461 §3.3, RFC 6125: by DNS name in the
/// subjectAltName, a `*.<domain>` wildcard included).
pub fn checked_certificate(
    domain: &str,
    chain_pem: &str,
    key_pem: &str,
    source: &str,
    now: i64,
) -> Result<StoredCertificate, CertLoadError> {
    let mut cert = StoredCertificate {
        domain: domain.to_owned(),
        chain_pem: chain_pem.to_owned(),
        key_pem: key_pem.to_owned(),
        not_before: 0,
        not_after: 0,
        source: source.to_owned(),
        updated_at: now,
    };
    let key = certified_key(&cert)?;
    let err = |reason: String| CertLoadError { domain: domain.to_owned(), reason };
    let leaf = key.end_entity_cert().map_err(|e| err(format!("no leaf certificate: {e}")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| err(format!("the leaf certificate does not parse: {e}")))?;
    cert.not_before = parsed.validity().not_before.timestamp();
    cert.not_after = parsed.validity().not_after.timestamp();
    let host = format!("mta-sts.{domain}");
    let names: Vec<String> = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.trim_end_matches('.').to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let covers = names
        .iter()
        .any(|n| *n == host || n.strip_prefix("*.").is_some_and(|parent| parent == domain));
    if !covers {
        let listed = if names.is_empty() { "no DNS names".to_owned() } else { names.join(", ") };
        return Err(err(format!("it is for {listed}, not {host}")));
    }
    if cert.not_after <= now {
        return Err(err(format!(
            "it expired on {}",
            time::OffsetDateTime::from_unix_timestamp(cert.not_after)
                .map(|t| t.date().to_string())
                .unwrap_or_default()
        )));
    }
    Ok(cert)
}
