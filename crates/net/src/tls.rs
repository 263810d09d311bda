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

/// A certificate error in an administrator's words: "expired on 2026-11-23, 10 days ago"
/// rather than rustls's text in UNIX seconds. The times come from the error itself (the
/// validation time and the certificate's bounds), so the text is the same whenever it is read.
pub fn describe_certificate_error(err: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = err else { return err.to_string() };
    match cert {
        CertificateError::ExpiredContext { time, not_after } => {
            let (t, end) = (unix(time), unix(not_after));
            format!("the certificate expired on {}, {} ago", day(end), span(t.saturating_sub(end)))
        }
        CertificateError::Expired => "the certificate has expired".into(),
        CertificateError::NotValidYetContext { time, not_before } => {
            let (t, start) = (unix(time), unix(not_before));
            format!(
                "the certificate is not valid before {}, {} from now (is the server's clock right?)",
                day(start),
                span(start.saturating_sub(t))
            )
        }
        CertificateError::NotValidYet => "the certificate is not valid yet".into(),
        CertificateError::NotValidForNameContext { expected, presented } => {
            let names = if presented.is_empty() {
                "no DNS names".to_owned()
            } else {
                presented.iter().map(|p| presented_name(p)).collect::<Vec<_>>().join(", ")
            };
            format!("the certificate is not valid for {}: it names {names}", expected.to_str())
        }
        CertificateError::NotValidForName => {
            "the certificate is not valid for this host name".into()
        }
        CertificateError::UnknownIssuer => "the certificate is not issued by a trusted CA \
             (self-signed, a private CA, or the intermediate certificate is not sent)"
            .into(),
        CertificateError::BadSignature => "the certificate's signature does not verify".into(),
        CertificateError::Revoked => "the certificate has been revoked".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not issued for TLS server authentication".into()
        }
        _ => err.to_string(),
    }
}

/// A name the certificate presents, without rustls's Debug wrapping (`DnsName("a.example")`
/// is `a.example`, `IpAddress(192.0.2.1)` is `192.0.2.1`).
fn presented_name(p: &str) -> &str {
    let inner = match (p.find('('), p.strip_suffix(')')) {
        (Some(open), Some(body)) if p[..open].chars().all(char::is_alphanumeric) => {
            &body[open + 1..]
        }
        _ => p,
    };
    inner.strip_prefix('"').and_then(|i| i.strip_suffix('"')).unwrap_or(inner)
}

fn unix(t: &UnixTime) -> u64 {
    t.as_secs()
}

/// A UTC day, `YYYY-MM-DD`.
fn day(secs: u64) -> String {
    let t =
        i64::try_from(secs).ok().and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok());
    match t {
        Some(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        None => format!("{secs} s after 1970"),
    }
}

/// A duration in the largest whole unit that fits: "10 days", "3 hours", "1 minute".
fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 86_400 => (1, "day"),
        s if s >= 7_200 => (s / 3_600, "hours"),
        s if s >= 3_600 => (1, "hour"),
        s if s >= 120 => (s / 60, "minutes"),
        s if s >= 60 => (1, "minute"),
        s => (s, if s == 1 { "second" } else { "seconds" }),
    };
    format!("{n} {unit}")
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

#[cfg(test)]
mod describe_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rustls_pki_types::ServerName;
    use std::time::Duration;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    /// Issue 15, defect 8: "expired on 2026-11-23, 10 days ago", not UNIX seconds.
    #[test]
    fn defect_8_certificate_errors_read_as_an_administrator_writes_them() {
        // 2026-11-23T12:00:00Z and ten days later.
        let not_after = 1_795_435_200;
        let err = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: at(not_after + 10 * 86_400 + 5),
            not_after: at(not_after),
        });
        assert_eq!(
            describe_certificate_error(&err),
            "the certificate expired on 2026-11-23, 10 days ago"
        );
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            time: at(not_after),
            not_before: at(not_after + 3 * 3_600),
        });
        assert!(
            describe_certificate_error(&err)
                .starts_with("the certificate is not valid before 2026-11-23, 3 hours from now")
        );
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("mx.example.com").unwrap(),
            presented: vec!["other.example.net".into()],
        });
        assert_eq!(
            describe_certificate_error(&err),
            "the certificate is not valid for mx.example.com: it names other.example.net"
        );
        assert!(!describe_certificate_error(&err).contains("UnixTime"));
        assert_eq!(span(59), "59 seconds");
        assert_eq!(span(86_400), "1 day");
    }

    #[test]
    fn presented_names_lose_their_debug_wrapping() {
        assert_eq!(presented_name("DnsName(\"wrong-name.test\")"), "wrong-name.test");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("plain.example"), "plain.example");
    }
}
