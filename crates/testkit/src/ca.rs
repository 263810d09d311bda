//! A test certificate authority (rcgen) and the leaf certificates it issues.
//!
//! Every key is ECDSA P-256, which both TLS 1.2 (ECDHE-ECDSA suites) and TLS 1.3 accept.
//! Fixtures for the pitfalls of RFC 8461 §3.3 ("the certificate presented by the Policy
//! Host MUST be valid for the 'mta-sts' host name and chain to a root CA that is trusted by
//! the Sending MTA") and §4.1 (MX certificates) are made with [`CertSpec`]: expired,
//! not-yet-valid, wrong name ([`CertSpec::valid_for`] with another name), untrusted (a second
//! [`TestCa`]) and self-signed ([`TestCa::self_signed`]).

use std::{fmt, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// Errors while making certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// rcgen refused the parameters (for example a name that is not a valid DNS name).
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls could not load the generated key.
    #[error("rustls rejected the generated key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A self-signed certificate authority for tests.
pub struct TestCa {
    name: String,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").field("name", &self.name).finish_non_exhaustive()
    }
}

fn serial() -> SerialNumber {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let mut bytes = Vec::with_capacity(17);
    // Leading 0x01 keeps the INTEGER positive and non-zero.
    bytes.push(0x01);
    bytes.extend_from_slice(&nanos.to_be_bytes());
    bytes.extend_from_slice(&(n ^ u64::from(std::process::id())).to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// A rustls client configuration (ring, TLS 1.2 and 1.3) trusting exactly `roots`: for test
/// clients (an empty store for plain-HTTP or plain-IMAP clients that never do TLS).
#[allow(clippy::expect_used)]
pub fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl TestCa {
    /// A new CA whose subject common name is `name` (the world uses "mtasts test CA").
    ///
    /// Panics only if rcgen cannot generate a P-256 key, which does not happen in practice;
    /// see [`TestCa::try_new`].
    #[allow(clippy::expect_used)]
    pub fn new(name: &str) -> Self {
        Self::try_new(name).expect("rcgen could not create a test CA")
    }

    /// Like [`TestCa::new`], returning errors.
    pub fn try_new(name: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "mtasts testkit");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(3650);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            name: name.to_owned(),
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's subject common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// A rustls root store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        // A certificate we just generated always parses.
        let _ = roots.add(self.cert_der());
        roots
    }

    /// Issues a server certificate (leaf, then this CA) for `spec`.
    ///
    /// Panics if rcgen refuses the names; see [`TestCa::try_issue`].
    #[allow(clippy::expect_used)]
    pub fn issue(&self, spec: &CertSpec) -> IssuedCert {
        self.try_issue(spec).expect("rcgen could not issue a test certificate")
    }

    /// Like [`TestCa::issue`], returning errors.
    pub fn try_issue(&self, spec: &CertSpec) -> Result<IssuedCert, CaError> {
        let key = KeyPair::generate()?;
        let params = leaf_params(spec)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let pem = format!("{}{}", cert.pem(), self.cert_pem());
        IssuedCert::new(vec![cert.der().clone(), self.cert_der()], key, pem)
    }

    /// A self-signed leaf certificate for `spec` (not a CA, chains to nothing).
    #[allow(clippy::expect_used)]
    pub fn self_signed(spec: &CertSpec) -> IssuedCert {
        Self::try_self_signed(spec).expect("rcgen could not create a self-signed certificate")
    }

    /// Like [`TestCa::self_signed`], returning errors.
    pub fn try_self_signed(spec: &CertSpec) -> Result<IssuedCert, CaError> {
        let key = KeyPair::generate()?;
        let params = leaf_params(spec)?;
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        IssuedCert::new(vec![cert.der().clone()], key, pem)
    }
}

fn leaf_params(spec: &CertSpec) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::new(spec.names.clone())?;
    let mut dn = DistinguishedName::new();
    if let Some(first) = spec.names.first() {
        dn.push(DnType::CommonName, first.as_str());
    }
    params.distinguished_name = dn;
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.serial_number = Some(serial());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// What a leaf certificate should say: subject alternative names and validity period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    /// DNS names (or IP addresses) put in the subjectAltName extension; the first is also the CN.
    pub names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

impl CertSpec {
    /// Valid now: from one day ago to 90 days ahead.
    pub fn valid_for(names: &[&str]) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            names: owned(names),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(90),
        }
    }

    /// Expired: from 90 days ago until yesterday.
    pub fn expired(names: &[&str]) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            names: owned(names),
            not_before: now - Duration::days(90),
            not_after: now - Duration::days(1),
        }
    }

    /// Not yet valid: from tomorrow for 90 days.
    pub fn not_yet_valid(names: &[&str]) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            names: owned(names),
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(91),
        }
    }
}

/// A certificate chain and its private key, ready for a rustls server.
#[derive(Clone)]
pub struct IssuedCert {
    /// The chain: leaf first, then the issuing CA (absent for self-signed certificates).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The leaf's SubjectPublicKeyInfo, DER (for DANE "3 1 x" records).
    pub spki_der: Vec<u8>,
    /// The chain as PEM (leaf first), for servers that read files (dovecot).
    pub chain_pem: String,
    /// The key as PEM (PKCS#8).
    pub key_pem: String,
    certified: Arc<CertifiedKey>,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert").field("chain_len", &self.chain.len()).finish_non_exhaustive()
    }
}

impl IssuedCert {
    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: KeyPair,
        chain_pem: String,
    ) -> Result<Self, CaError> {
        let spki_der = key.subject_public_key_info();
        let key_pem = key.serialize_pem();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)?;
        let certified = Arc::new(CertifiedKey::new(chain.clone(), signer));
        Ok(Self { chain, key: Arc::new(key_der), spki_der, certified, chain_pem, key_pem })
    }

    /// The chain and key as a rustls `CertifiedKey` (ring signer).
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.certified)
    }

    /// The leaf certificate, DER.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo: the data of a DANE `3 1 1` TLSA record.
    pub fn spki_sha256(&self) -> Vec<u8> {
        sha256(&self.spki_der)
    }

    /// A clone of the private key (rustls wants it by value).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// SHA-256 with ring, reached through rustls' provider so no extra dependency is needed.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    match suite.tls13() {
        Some(s) => s.common.hash_provider.hash(data).as_ref().to_vec(),
        None => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
    }
}
