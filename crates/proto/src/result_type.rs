//! TLS-RPT result types, RFC 8460 §4.3, and the one mapping from MTA-STS
//! failures to them.
//!
//! The registry ("STARTTLS Validation Result Types", RFC 8460 §6.6) is
//! extensible by Expert Review; unknown values are kept losslessly in
//! [`ResultType::Other`].

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `result-type` value (RFC 8460 §4.3), in RFC order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultType {
    /// §4.3.1 "starttls-not-supported: This indicates that the recipient MX
    /// did not support STARTTLS."
    StartTlsNotSupported,
    /// §4.3.1 "certificate-host-mismatch: This indicates that the
    /// certificate presented did not adhere to the constraints specified in
    /// the MTA-STS or DANE policy, e.g., if the MX hostname does not match
    /// any identities listed in the subject alternative name (SAN)."
    CertificateHostMismatch,
    /// §4.3.1 "certificate-expired: This indicates that the certificate has
    /// expired."
    CertificateExpired,
    /// §4.3.1 "certificate-not-trusted: This is a label that covers multiple
    /// certificate-related failures that include, but are not limited to,
    /// errors such as untrusted/unknown certification authorities (CAs),
    /// certificate name constraints, certificate chain errors, etc."
    CertificateNotTrusted,
    /// §4.3.1 "validation-failure: This indicates a general failure for a
    /// reason not matching a category above."
    ValidationFailure,
    /// §4.3.2.1 "tlsa-invalid: This indicates a validation error in the
    /// TLSA record associated with a DANE policy."
    TlsaInvalid,
    /// §4.3.2.1 "dnssec-invalid: This indicates that no valid records were
    /// returned from the recursive resolver."
    DnssecInvalid,
    /// §4.3.2.1 "dane-required: This indicates that the sending system is
    /// configured to require DANE TLSA records for all the MX hosts of the
    /// destination domain, but no DNSSEC-validated TLSA records were present
    /// for the MX host that is the subject of the report."
    DaneRequired,
    /// §4.3.2.2 "sts-policy-fetch-error: This indicates a failure to retrieve
    /// an MTA-STS policy, for example, because the policy host is
    /// unreachable."
    StsPolicyFetchError,
    /// §4.3.2.2 "sts-policy-invalid: This indicates a validation error for
    /// the overall MTA-STS Policy."
    StsPolicyInvalid,
    /// §4.3.2.2 "sts-webpki-invalid: This indicates that the MTA-STS Policy
    /// could not be authenticated using PKIX validation."
    StsWebpkiInvalid,
    /// A value not in RFC 8460, kept as found.
    Other(String),
}

impl ResultType {
    /// Every registered value, in RFC order.
    pub const ALL: [Self; 11] = [
        Self::StartTlsNotSupported,
        Self::CertificateHostMismatch,
        Self::CertificateExpired,
        Self::CertificateNotTrusted,
        Self::ValidationFailure,
        Self::TlsaInvalid,
        Self::DnssecInvalid,
        Self::DaneRequired,
        Self::StsPolicyFetchError,
        Self::StsPolicyInvalid,
        Self::StsWebpkiInvalid,
    ];

    /// The exact registry string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::StartTlsNotSupported => "starttls-not-supported",
            Self::CertificateHostMismatch => "certificate-host-mismatch",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
            Self::TlsaInvalid => "tlsa-invalid",
            Self::DnssecInvalid => "dnssec-invalid",
            Self::DaneRequired => "dane-required",
            Self::StsPolicyFetchError => "sts-policy-fetch-error",
            Self::StsPolicyInvalid => "sts-policy-invalid",
            Self::StsWebpkiInvalid => "sts-webpki-invalid",
            Self::Other(s) => s,
        }
    }

    /// Maps a string to a value; unknown strings (including differently
    /// cased ones: registry values are lower-case) become [`ResultType::Other`].
    pub fn from_name(s: &str) -> Self {
        Self::ALL
            .iter()
            .find(|r| r.as_str() == s)
            .cloned()
            .unwrap_or_else(|| Self::Other(s.to_owned()))
    }

    /// Whether the value is one registered by RFC 8460.
    pub fn is_registered(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    /// The RFC 8460 section defining the value, if registered.
    pub fn section(&self) -> Option<&'static str> {
        match self {
            Self::StartTlsNotSupported
            | Self::CertificateHostMismatch
            | Self::CertificateExpired
            | Self::CertificateNotTrusted
            | Self::ValidationFailure => Some("§4.3.1"),
            Self::TlsaInvalid | Self::DnssecInvalid | Self::DaneRequired => Some("§4.3.2.1"),
            Self::StsPolicyFetchError | Self::StsPolicyInvalid | Self::StsWebpkiInvalid => {
                Some("§4.3.2.2")
            }
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultType {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_name(s))
    }
}

impl From<&str> for ResultType {
    fn from(s: &str) -> Self {
        Self::from_name(s)
    }
}

impl Serialize for ResultType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from_name(&s))
    }
}

/// Why an MX certificate failed PKIX validation (RFC 8461 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// notAfter is in the past.
    Expired,
    /// notBefore is in the future.
    NotYetValid,
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// No DNS-ID in the certificate matches the MX host.
    NameMismatch,
    /// A signature in the chain does not verify.
    BadSignature,
    /// The certificate is revoked.
    Revoked,
    /// The certificate is not valid for TLS server authentication.
    InvalidPurpose,
    /// Anything else, described.
    Other(String),
}

impl CertificateProblem {
    /// The result type to report (RFC 8460 §4.3.1).
    ///
    /// - `Expired` → `certificate-expired` ("the certificate has expired").
    /// - `NotYetValid` → `validation-failure`: §4.3.1 defines
    ///   `certificate-expired` only as "has expired", so a certificate that
    ///   is not valid *yet* falls under "a general failure for a reason not
    ///   matching a category above"; the reason code
    ///   `certificate-not-yet-valid` says which.
    /// - `UnknownIssuer`, `BadSignature` → `certificate-not-trusted`
    ///   ("untrusted/unknown certification authorities (CAs) ... certificate
    ///   chain errors").
    /// - `NameMismatch` → `certificate-host-mismatch`.
    /// - `Revoked`, `InvalidPurpose`, `Other` → `validation-failure`.
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::Expired => ResultType::CertificateExpired,
            Self::UnknownIssuer | Self::BadSignature => ResultType::CertificateNotTrusted,
            Self::NameMismatch => ResultType::CertificateHostMismatch,
            Self::NotYetValid | Self::Revoked | Self::InvalidPurpose | Self::Other(_) => {
                ResultType::ValidationFailure
            }
        }
    }

    /// A `failure-reason-code` to go with [`Self::result_type`]. RFC 8460
    /// §4.3.1 says it SHOULD accompany `certificate-not-trusted` and
    /// `validation-failure`.
    pub fn failure_reason_code(&self) -> Option<&'static str> {
        match self {
            Self::Expired | Self::NameMismatch | Self::Other(_) => None,
            Self::NotYetValid => Some("certificate-not-yet-valid"),
            Self::UnknownIssuer => Some("certificate-unknown-issuer"),
            Self::BadSignature => Some("certificate-bad-signature"),
            Self::Revoked => Some("certificate-revoked"),
            Self::InvalidPurpose => Some("certificate-invalid-purpose"),
        }
    }
}

/// A reportable MTA-STS failure (RFC 8461 §6, RFC 8460 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StsFailure {
    /// The policy could not be fetched though the TXT record exists.
    PolicyFetch,
    /// The policy was fetched but is invalid (syntax or media type).
    PolicyInvalid,
    /// The certificate of `mta-sts.<domain>` failed PKIX validation.
    WebPkiInvalid,
    /// The MX did not offer STARTTLS.
    StartTlsNotSupported,
    /// The MX host matches no `mx` pattern of the policy (RFC 8461 §4.1).
    MxNotInPolicy,
    /// The MX certificate failed validation (RFC 8461 §4.2).
    Certificate(CertificateProblem),
}

impl StsFailure {
    /// The result type to report. RFC 8460 has no dedicated value for an MX
    /// missing from the policy, so `MxNotInPolicy` is `validation-failure`
    /// with reason code `mtasts-policy-mx-mismatch` (as mox reports it).
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::PolicyFetch => ResultType::StsPolicyFetchError,
            Self::PolicyInvalid => ResultType::StsPolicyInvalid,
            Self::WebPkiInvalid => ResultType::StsWebpkiInvalid,
            Self::StartTlsNotSupported => ResultType::StartTlsNotSupported,
            Self::MxNotInPolicy => ResultType::ValidationFailure,
            Self::Certificate(p) => p.result_type(),
        }
    }

    /// The `failure-reason-code` to send, if any.
    pub fn failure_reason_code(&self) -> Option<&'static str> {
        match self {
            Self::MxNotInPolicy => Some("mtasts-policy-mx-mismatch"),
            Self::Certificate(p) => p.failure_reason_code(),
            Self::PolicyFetch
            | Self::PolicyInvalid
            | Self::WebPkiInvalid
            | Self::StartTlsNotSupported => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    #[test]
    fn registry_strings_round_trip() {
        let names = [
            "starttls-not-supported",
            "certificate-host-mismatch",
            "certificate-expired",
            "certificate-not-trusted",
            "validation-failure",
            "tlsa-invalid",
            "dnssec-invalid",
            "dane-required",
            "sts-policy-fetch-error",
            "sts-policy-invalid",
            "sts-webpki-invalid",
        ];
        for (r, name) in ResultType::ALL.iter().zip(names) {
            assert_eq!(r.as_str(), name);
            assert_eq!(name.parse::<ResultType>().unwrap(), *r);
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{name}\""));
            assert!(r.is_registered());
            assert!(r.section().is_some());
        }
        let other: ResultType = serde_json::from_str("\"Some-New-Type\"").unwrap();
        assert_eq!(other, ResultType::Other("Some-New-Type".into()));
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"Some-New-Type\"");
        assert!(!ResultType::from("STARTTLS-NOT-SUPPORTED").is_registered());
    }

    #[test]
    fn mapping() {
        use CertificateProblem as C;
        for (failure, rt, code) in [
            (StsFailure::PolicyFetch, "sts-policy-fetch-error", None),
            (StsFailure::PolicyInvalid, "sts-policy-invalid", None),
            (StsFailure::WebPkiInvalid, "sts-webpki-invalid", None),
            (StsFailure::StartTlsNotSupported, "starttls-not-supported", None),
            (StsFailure::MxNotInPolicy, "validation-failure", Some("mtasts-policy-mx-mismatch")),
            (StsFailure::Certificate(C::Expired), "certificate-expired", None),
            (
                StsFailure::Certificate(C::NotYetValid),
                "validation-failure",
                Some("certificate-not-yet-valid"),
            ),
            (
                StsFailure::Certificate(C::UnknownIssuer),
                "certificate-not-trusted",
                Some("certificate-unknown-issuer"),
            ),
            (
                StsFailure::Certificate(C::BadSignature),
                "certificate-not-trusted",
                Some("certificate-bad-signature"),
            ),
            (StsFailure::Certificate(C::NameMismatch), "certificate-host-mismatch", None),
            (
                StsFailure::Certificate(C::Revoked),
                "validation-failure",
                Some("certificate-revoked"),
            ),
            (
                StsFailure::Certificate(C::InvalidPurpose),
                "validation-failure",
                Some("certificate-invalid-purpose"),
            ),
            (StsFailure::Certificate(C::Other("x".into())), "validation-failure", None),
        ] {
            assert_eq!(failure.result_type().as_str(), rt, "{failure:?}");
            assert_eq!(failure.failure_reason_code(), code, "{failure:?}");
        }
    }
}
