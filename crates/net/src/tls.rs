//! TLS client configuration, certificate inspection and the mapping from rustls errors to the
//! certificate problems of `mtasts-proto` (and from there to RFC 8460 §4.3 result types).
//!
//! All rustls-specific code of this crate lives here, so a rustls upgrade touches one module.

use std::sync::{Arc, Mutex, PoisonError};

use mtasts_proto::result_type::CertificateProblem;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;

/// A client config that validates server certificates against `roots` (RFC 8461 §3.3, §4.2),
/// offering TLS 1.2 and 1.3 only (RFC 8461 §7.2: "TLS version 1.2 or later").
pub fn strict_client_config(roots: Arc<RootCertStore>) -> ClientConfig {
    crate::install_crypto_provider();
    ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
}

/// What the recording verifier saw.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// The presented chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The verdict of full PKIX validation against the roots and the expected name.
    pub verdict: Option<Result<(), rustls::Error>>,
}

/// A verifier that runs the real WebPKI validation, records the chain and the verdict, and lets
/// the handshake go on regardless, so a probe can finish the SMTP dialogue and report the
/// certificate problem afterwards. Handshake signatures are still checked for real.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Recorded>,
}

impl RecordingVerifier {
    /// A verifier over `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Result<Arc<Self>, rustls::Error> {
        crate::install_crypto_provider();
        let inner = WebPkiServerVerifier::builder(roots)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(Arc::new(Self { inner, seen: Mutex::new(Recorded::default()) }))
    }

    /// What was recorded so far.
    pub fn recorded(&self) -> Recorded {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A client config that uses this verifier.
    pub fn client_config(self: &Arc<Self>) -> ClientConfig {
        crate::install_crypto_provider();
        ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.chain = std::iter::once(end_entity.clone().into_owned())
            .chain(intermediates.iter().map(|c| c.clone().into_owned()))
            .collect();
        seen.verdict = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The one mapping from a rustls error to a certificate problem. `None` when the error is not
/// about the certificate (a protocol or I/O failure).
pub fn certificate_problem(err: &rustls::Error) -> Option<CertificateProblem> {
    let rustls::Error::InvalidCertificate(cert) = err else { return None };
    Some(match cert {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertificateProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertificateProblem::NotYetValid
        }
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            CertificateProblem::NameMismatch
        }
        CertificateError::BadSignature => CertificateProblem::BadSignature,
        CertificateError::Revoked => CertificateProblem::Revoked,
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            CertificateProblem::InvalidPurpose
        }
        other => CertificateProblem::Other(format!("{other:?}")),
    })
}

/// A short kebab-case name for a certificate problem (used in JSON output).
pub fn problem_name(problem: &CertificateProblem) -> String {
    match problem {
        CertificateProblem::Expired => "expired".into(),
        CertificateProblem::NotYetValid => "not-yet-valid".into(),
        CertificateProblem::UnknownIssuer => "unknown-issuer".into(),
        CertificateProblem::NameMismatch => "name-mismatch".into(),
        CertificateProblem::BadSignature => "bad-signature".into(),
        CertificateProblem::Revoked => "revoked".into(),
        CertificateProblem::InvalidPurpose => "invalid-purpose".into(),
        other => format!("other: {other:?}"),
    }
}

/// Serialises an optional problem as `{"kind": …, "result-type": …}` (RFC 8460 §4.3 name).
pub fn serialize_problem<S: serde::Serializer>(
    problem: &Option<CertificateProblem>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match problem {
        None => s.serialize_none(),
        Some(p) => {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("kind", &problem_name(p))?;
            map.serialize_entry("result-type", p.result_type().as_str())?;
            map.end()
        }
    }
}

/// Every error in a chain, descending into `std::io::Error` wrappers too (whose `source()`
/// skips the wrapped error; hyper and tokio-rustls nest them two deep).
pub fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            return Some(inner);
        }
        e.source()
    })
}

/// Finds a rustls error in an error's chain (reqwest and std::io wrap it).
pub fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    error_chain(err).find_map(|e| e.downcast_ref::<rustls::Error>())
}

/// The facts a checker needs from a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

impl CertInfo {
    /// Parses a DER certificate; `None` if it cannot be parsed.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(n) = name {
                    dns_names.push(n.to_ascii_lowercase());
                }
            }
        }
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            dns_names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Whole days until expiry at `now` (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// The negotiated TLS parameters of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsParams {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl TlsParams {
    /// Reads the parameters from a finished client connection.
    pub fn from_connection(conn: &rustls::ClientConnection) -> Self {
        Self {
            version: conn.protocol_version().map_or_else(|| "unknown".into(), |v| format!("{v:?}")),
            cipher: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".into(), |c| format!("{:?}", c.suite())),
        }
    }
}
