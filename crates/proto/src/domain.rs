//! Domain names as MTA-STS and TLS-RPT use them.
//!
//! RFC 8461 §3.2: "In the case of Internationalized Domain Names (\[RFC5891\]),
//! the "mx" field MUST specify the Punycode-encoded A-label \[RFC3492\] and not
//! the Unicode-encoded U-label." RFC 8460 §4.4 asks the same for
//! `policy-domain`. A [`DomainName`] is therefore always stored in lower-case
//! A-label form, without a trailing dot, with LDH labels (RFC 1123 §2.1,
//! RFC 5890 §2.3.1) of 1 to [`LABEL_MAX_LEN`] octets and at most
//! [`DOMAIN_MAX_LEN`] octets in total. IP addresses are rejected: RFC 8461
//! §3.4 "address literals are not supported".

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest label: 63 octets (RFC 1035 §2.3.4).
pub const LABEL_MAX_LEN: usize = 63;

/// Longest name in text form without the trailing dot: 253 octets
/// (RFC 1035 §2.3.4 allows 255 octets on the wire, which is 253 characters of
/// presentation form).
pub const DOMAIN_MAX_LEN: usize = 253;

/// Why a string is not a valid domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The input is empty (or only a dot).
    #[error("RFC 1035 §2.3.1: a domain name must not be empty")]
    Empty,
    /// Longer than [`DOMAIN_MAX_LEN`].
    #[error(
        "RFC 1035 §2.3.4: a domain name must be at most {DOMAIN_MAX_LEN} characters, found {len}"
    )]
    TooLong {
        /// Length found, in octets.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error("RFC 1035 §2.3.1: empty label in {input:?}")]
    EmptyLabel {
        /// The whole input.
        input: String,
    },
    /// A label longer than [`LABEL_MAX_LEN`].
    #[error(
        "RFC 1035 §2.3.4: label {label:?} has {len} characters, at most {LABEL_MAX_LEN} allowed"
    )]
    LabelTooLong {
        /// The offending label.
        label: String,
        /// Its length in octets.
        len: usize,
    },
    /// A character other than a letter, digit or hyphen.
    #[error(
        "RFC 1123 §2.1: label {label:?} contains {ch:?}; only letters, digits and \"-\" are allowed"
    )]
    InvalidCharacter {
        /// The offending label.
        label: String,
        /// The first bad character.
        ch: char,
    },
    /// A label that starts or ends with a hyphen.
    #[error("RFC 1123 §2.1: label {label:?} must not start or end with \"-\"")]
    HyphenAtLabelEdge {
        /// The offending label.
        label: String,
    },
    /// Non-ASCII input where an A-label was required.
    #[error("RFC 8461 §3.2: {input:?} contains non-ASCII characters; use the A-label form{}", a_label.as_ref().map(|a| format!(" {a:?}")).unwrap_or_default())]
    NotALabel {
        /// The input.
        input: String,
        /// The A-label form, when the input converts cleanly.
        a_label: Option<String>,
    },
    /// An `xn--` label that is not valid Punycode / IDNA.
    #[error("RFC 5891 §5.4: {label:?} is not a valid A-label")]
    InvalidALabel {
        /// The offending label.
        label: String,
    },
    /// An IPv4 or IPv6 address instead of a name.
    #[error("RFC 8461 §3.4: {input:?} is an IP address; a domain name is required")]
    IpAddress {
        /// The input.
        input: String,
    },
    /// The last label is all digits, which no top-level domain is.
    #[error("RFC 3696 §2: the top-level label of {input:?} is all-numeric")]
    NumericTld {
        /// The input.
        input: String,
    },
    /// UTS-46 processing of user input failed.
    #[error("RFC 5891 / UTS-46: {input:?} cannot be converted to an A-label domain")]
    Idna {
        /// The input.
        input: String,
    },
}

/// A domain name in lower-case A-label form, with no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// `example.com`, the name RFC 2606 reserves for examples (placeholders in suggested
    /// records when no domain is known).
    pub fn example() -> Self {
        Self("example.com".to_owned())
    }

    /// Parses a name that must already be in A-label (ASCII) form.
    ///
    /// Letters are folded to lower case and one trailing dot is removed.
    /// U-labels are rejected with [`DomainError::NotALabel`] and IP addresses
    /// with [`DomainError::IpAddress`].
    pub fn parse_ascii(s: &str) -> Result<Self, DomainError> {
        if !s.is_ascii() {
            return Err(DomainError::NotALabel {
                input: s.to_owned(),
                a_label: idna::domain_to_ascii(s).ok(),
            });
        }
        if looks_like_ip(s) {
            return Err(DomainError::IpAddress { input: s.to_owned() });
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        if name.is_empty() {
            return Err(DomainError::Empty);
        }
        if name.len() > DOMAIN_MAX_LEN {
            return Err(DomainError::TooLong { len: name.len() });
        }
        let lower = name.to_ascii_lowercase();
        let mut has_xn = false;
        for label in lower.split('.') {
            if label.is_empty() {
                return Err(DomainError::EmptyLabel { input: s.to_owned() });
            }
            if label.len() > LABEL_MAX_LEN {
                return Err(DomainError::LabelTooLong {
                    label: label.to_owned(),
                    len: label.len(),
                });
            }
            if let Some(ch) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
                return Err(DomainError::InvalidCharacter { label: label.to_owned(), ch });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::HyphenAtLabelEdge { label: label.to_owned() });
            }
            if let Some(puny) = label.strip_prefix("xn--") {
                has_xn = true;
                if puny.is_empty() || idna::punycode::decode_to_string(puny).is_none() {
                    return Err(DomainError::InvalidALabel { label: label.to_owned() });
                }
            }
        }
        if lower.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DomainError::NumericTld { input: s.to_owned() });
        }
        if has_xn {
            let (_, result) = idna::domain_to_unicode(&lower);
            if result.is_err() {
                let label =
                    lower.split('.').find(|l| l.starts_with("xn--")).unwrap_or(&lower).to_owned();
                return Err(DomainError::InvalidALabel { label });
            }
        }
        Ok(Self(lower))
    }

    /// Parses a name typed by a person: U-labels are converted to A-labels
    /// with UTS-46 processing (`idna::domain_to_ascii`), surrounding
    /// whitespace is ignored, then [`DomainName::parse_ascii`] applies.
    pub fn from_user_input(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if looks_like_ip(s) {
            return Err(DomainError::IpAddress { input: s.to_owned() });
        }
        if s.is_ascii() {
            return Self::parse_ascii(s);
        }
        let ascii =
            idna::domain_to_ascii(s).map_err(|_| DomainError::Idna { input: s.to_owned() })?;
        Self::parse_ascii(&ascii)
    }

    /// The name, lower-case, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels, left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The TXT record name of the MTA-STS record: `_mta-sts.<domain>`
    /// (RFC 8461 §3.1).
    pub fn mta_sts_txt_name(&self) -> String {
        format!("_mta-sts.{}", self.0)
    }

    /// The host that serves the policy: `mta-sts.<domain>` (RFC 8461 §3.3).
    pub fn policy_host(&self) -> String {
        format!("mta-sts.{}", self.0)
    }

    /// The policy URL. RFC 8461 §3.3: "the policy is served at
    /// `https://mta-sts.<Policy Domain>/.well-known/mta-sts.txt`".
    pub fn policy_url(&self) -> String {
        format!("https://mta-sts.{}/.well-known/mta-sts.txt", self.0)
    }

    /// The TXT record name of the TLS-RPT record: `_smtp._tls.<domain>`
    /// (RFC 8460 §3).
    pub fn tlsrpt_txt_name(&self) -> String {
        format!("_smtp._tls.{}", self.0)
    }

    /// Whether `self` equals `other` or is a subdomain of it.
    pub fn is_subdomain_of(&self, other: &Self) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.0.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

/// Whether the input is an IPv4/IPv6 address or an SMTP address literal.
fn looks_like_ip(s: &str) -> bool {
    let t = s.strip_suffix('.').unwrap_or(s);
    let inner = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(t);
    let inner =
        inner.get(..5).filter(|p| p.eq_ignore_ascii_case("ipv6:")).map_or(inner, |_| &inner[5..]);
    inner.parse::<IpAddr>().is_ok()
}

impl FromStr for DomainName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_ascii(s)
    }
}

impl TryFrom<&str> for DomainName {
    type Error = DomainError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse_ascii(s)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for DomainName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DomainName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse_ascii(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    #[test]
    fn valid_names() {
        for (input, expected) in [
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("a-b.example", "a-b.example"),
            ("localhost", "localhost"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("1.example.com", "1.example.com"),
        ] {
            assert_eq!(DomainName::parse_ascii(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn invalid_names() {
        let cases: &[(&str, fn(&DomainError) -> bool)] = &[
            ("", |e| matches!(e, DomainError::Empty)),
            (".", |e| matches!(e, DomainError::Empty)),
            ("example.com..", |e| matches!(e, DomainError::EmptyLabel { .. })),
            (".example.com", |e| matches!(e, DomainError::EmptyLabel { .. })),
            ("a..b", |e| matches!(e, DomainError::EmptyLabel { .. })),
            ("a_b.example", |e| matches!(e, DomainError::InvalidCharacter { ch: '_', .. })),
            ("a b.example", |e| matches!(e, DomainError::InvalidCharacter { .. })),
            ("*.example", |e| matches!(e, DomainError::InvalidCharacter { .. })),
            ("-a.example", |e| matches!(e, DomainError::HyphenAtLabelEdge { .. })),
            ("a-.example", |e| matches!(e, DomainError::HyphenAtLabelEdge { .. })),
            (
                "bücher.example",
                |e| matches!(e, DomainError::NotALabel { a_label: Some(a), .. } if a == "xn--bcher-kva.example"),
            ),
            ("192.0.2.1", |e| matches!(e, DomainError::IpAddress { .. })),
            ("2001:db8::1", |e| matches!(e, DomainError::IpAddress { .. })),
            ("[192.0.2.1]", |e| matches!(e, DomainError::IpAddress { .. })),
            ("[IPv6:2001:db8::1]", |e| matches!(e, DomainError::IpAddress { .. })),
            ("1.2.3", |e| matches!(e, DomainError::NumericTld { .. })),
            ("xn--.example", |e| matches!(e, DomainError::HyphenAtLabelEdge { .. })),
            ("xn--zz.example", |e| matches!(e, DomainError::InvalidALabel { .. })),
            ("xn--a.example", |e| matches!(e, DomainError::InvalidALabel { .. })),
        ];
        for (input, check) in cases {
            let err = DomainName::parse_ascii(input).unwrap_err();
            assert!(check(&err), "{input}: {err:?}");
            assert!(err.to_string().contains("RFC"), "{err}");
        }
    }

    #[test]
    fn length_limits() {
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        assert!(DomainName::parse_ascii(&format!("{l63}.example")).is_ok());
        assert!(matches!(
            DomainName::parse_ascii(&format!("{l64}.example")),
            Err(DomainError::LabelTooLong { len: 64, .. })
        ));
        // 4 * 63 + 3 dots = 255 > 253; build exactly 253 and 254.
        let base = format!("{l63}.{l63}.{l63}."); // 192
        let n253 = format!("{base}{}", "b".repeat(253 - base.len()));
        let n254 = format!("{base}{}", "b".repeat(254 - base.len()));
        assert_eq!(n253.len(), 253);
        assert!(DomainName::parse_ascii(&n253).is_ok());
        assert!(DomainName::parse_ascii(&format!("{n253}.")).is_ok());
        assert!(matches!(DomainName::parse_ascii(&n254), Err(DomainError::TooLong { len: 254 })));
    }

    #[test]
    fn user_input() {
        assert_eq!(
            DomainName::from_user_input(" Bücher.Example ").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        assert_eq!(DomainName::from_user_input("EXAMPLE.com").unwrap().as_str(), "example.com");
        assert!(matches!(
            DomainName::from_user_input("192.0.2.1"),
            Err(DomainError::IpAddress { .. })
        ));
    }

    #[test]
    fn derived_names() {
        let d = DomainName::parse_ascii("example.com").unwrap();
        assert_eq!(d.mta_sts_txt_name(), "_mta-sts.example.com");
        assert_eq!(d.policy_host(), "mta-sts.example.com");
        assert_eq!(d.policy_url(), "https://mta-sts.example.com/.well-known/mta-sts.txt");
        assert_eq!(d.tlsrpt_txt_name(), "_smtp._tls.example.com");
        assert_eq!(d.labels().collect::<Vec<_>>(), vec!["example", "com"]);
        let sub = DomainName::parse_ascii("a.example.com").unwrap();
        assert!(sub.is_subdomain_of(&d));
        assert!(d.is_subdomain_of(&d));
        assert!(!DomainName::parse_ascii("aexample.com").unwrap().is_subdomain_of(&d));
    }

    #[test]
    fn serde_as_string() {
        let d: DomainName = serde_json::from_str("\"Example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"example.com\"");
        assert!(serde_json::from_str::<DomainName>("\"1.2.3.4\"").is_err());
    }
}
