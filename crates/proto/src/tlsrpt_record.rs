//! The TLS-RPT TXT record, RFC 8460 §3.
//!
//! ```text
//! tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! field-delim      = *WSP ";" *WSP
//! tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
//! tlsrpt-version   = %s"v=TLSRPTv1"
//! tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri       = URI
//! tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//! tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! §3 (ABNF comment on `tlsrpt-uri`): commas (0x2C), exclamation points
//! (0x21) and semicolons (0x3B) in a URI MUST be percent-encoded. "If the number of resulting
//! records is not one, senders MUST assume the recipient domain does not
//! implement TLSRPT." Records that do not begin with `v=TLSRPTv1` are
//! discarded first.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::diag::{Parsed, Warning};
use crate::domain::DomainName;
use crate::sts_record::Extension;
use crate::syntax::{self, TxtSplitError};

/// The version literal every TLS-RPT record begins with (RFC 8460 §3).
pub const TLSRPT_VERSION: &str = "v=TLSRPTv1";

/// Why a TXT record is not a valid TLS-RPT record, or a URI not a valid
/// reporting URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptRecordError {
    /// A byte outside US-ASCII.
    #[error("RFC 8460 §3: the record must be US-ASCII, found {ch:?} at byte {index}")]
    NotAscii {
        /// Byte offset.
        index: usize,
        /// The character.
        ch: char,
    },
    /// A control character other than HTAB.
    #[error("RFC 8460 §3: control character 0x{byte:02X} at byte {index}")]
    ControlCharacter {
        /// Byte offset.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// Does not begin with `v=TLSRPTv1`.
    #[error("RFC 8460 §3: the record must begin with \"v=TLSRPTv1\" (case-sensitive)")]
    MissingVersion,
    /// Text after the version without ";".
    #[error("RFC 8460 §3: fields must be separated by \";\", found {text:?} after \"v=TLSRPTv1\"")]
    MissingDelimiter {
        /// The text after the version.
        text: String,
    },
    /// `;;`.
    #[error("RFC 8460 §3: field {index} is empty (\";;\")")]
    EmptyField {
        /// 1-based index of the field after the version.
        index: usize,
    },
    /// A field without "=".
    #[error("RFC 8460 §3: field {field:?} has no \"=\"")]
    MissingEquals {
        /// The field.
        field: String,
    },
    /// Whitespace around "=".
    #[error("RFC 8460 §3: no whitespace is allowed around \"=\" in {field:?}")]
    SpaceAroundEquals {
        /// The field.
        field: String,
    },
    /// No `rua` field.
    #[error("RFC 8460 §3: the record must contain a \"rua\" field")]
    MissingRua,
    /// An empty URI in the `rua` list.
    #[error("RFC 8460 §3: empty URI in rua list {list:?}")]
    EmptyUri {
        /// The whole rua value.
        list: String,
    },
    /// A scheme other than `mailto` or `https`.
    #[error(
        "RFC 8460 §3: unsupported URI scheme {scheme:?} in {uri:?}; only \"mailto:\" and \"https:\" are defined"
    )]
    UnsupportedScheme {
        /// The URI.
        uri: String,
        /// The scheme found (empty if none).
        scheme: String,
    },
    /// `!`, `,` or `;` not percent-encoded.
    #[error("RFC 8460 §3: {ch:?} in {uri:?} must be percent-encoded")]
    UnencodedCharacter {
        /// The URI.
        uri: String,
        /// The character.
        ch: char,
    },
    /// A character that no URI may contain.
    #[error("RFC 3986 §2: {ch:?} is not allowed in the URI {uri:?}")]
    InvalidUriCharacter {
        /// The URI.
        uri: String,
        /// The character.
        ch: char,
    },
    /// `%` not followed by two hex digits.
    #[error("RFC 3986 §2.1: bad percent-encoding in {uri:?}")]
    InvalidPercentEncoding {
        /// The URI.
        uri: String,
    },
    /// A `mailto:` URI without a usable address.
    #[error("RFC 8460 §3 / RFC 6068: {uri:?} must name an address local@domain")]
    InvalidMailto {
        /// The URI.
        uri: String,
    },
    /// An `https:` URI without a usable host.
    #[error("RFC 8460 §3 / RFC 3986 §3.2: {uri:?} must have the form https://host[:port]/path")]
    InvalidHttps {
        /// The URI.
        uri: String,
    },
    /// An extension name that breaks `tlsrpt-ext-name`.
    #[error(
        "RFC 8460 §3: extension name {name:?} must be a letter or digit followed by at most 31 letters, digits, \"_\", \"-\" or \".\""
    )]
    InvalidExtensionName {
        /// The name.
        name: String,
    },
    /// An extension value that breaks `tlsrpt-ext-value`.
    #[error(
        "RFC 8460 §3: value of extension {name:?} must be 1 or more visible characters other than \"=\" and \";\", found {value:?}"
    )]
    InvalidExtensionValue {
        /// The name.
        name: String,
        /// The value.
        value: String,
    },
}

/// A reporting URI (`rua`), RFC 8460 §3: "mailto" (RFC 6068) or "https"
/// (RFC 2818). The whole URI text is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReportUri {
    /// `mailto:` — reports are sent by e-mail (RFC 8460 §5.3).
    Mailto(String),
    /// `https:` — reports are POSTed (RFC 8460 §5.4).
    Https(String),
}

impl ReportUri {
    /// Parses one URI. The scheme is case-insensitive.
    pub fn parse(uri: &str) -> Result<Self, TlsRptRecordError> {
        if uri.is_empty() {
            return Err(TlsRptRecordError::EmptyUri { list: String::new() });
        }
        check_uri_chars(uri)?;
        let Some((scheme, rest)) = uri.split_once(':') else {
            return Err(TlsRptRecordError::UnsupportedScheme {
                uri: uri.to_owned(),
                scheme: String::new(),
            });
        };
        if scheme.eq_ignore_ascii_case("mailto") {
            let addr = rest.split_once('?').map_or(rest, |(a, _)| a);
            let valid = addr.rsplit_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && (domain.contains('%')
                        || domain.starts_with('[')
                        || DomainName::parse_ascii(domain).is_ok())
            });
            if !valid {
                return Err(TlsRptRecordError::InvalidMailto { uri: uri.to_owned() });
            }
            Ok(Self::Mailto(uri.to_owned()))
        } else if scheme.eq_ignore_ascii_case("https") {
            let bad = || TlsRptRecordError::InvalidHttps { uri: uri.to_owned() };
            let after = rest.strip_prefix("//").ok_or_else(bad)?;
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = if hostport.starts_with('[') {
                let end = hostport.find(']').ok_or_else(bad)?;
                let port = &hostport[end + 1..];
                if !(port.is_empty() || is_port(port.strip_prefix(':').unwrap_or("x"))) {
                    return Err(bad());
                }
                &hostport[..=end]
            } else {
                match hostport.split_once(':') {
                    Some((h, port)) if is_port(port) => h,
                    Some(_) => return Err(bad()),
                    None => hostport,
                }
            };
            let host_ok = host.starts_with('[')
                || host.parse::<Ipv4Addr>().is_ok()
                || DomainName::parse_ascii(host).is_ok();
            if host.is_empty() || !host_ok {
                return Err(bad());
            }
            Ok(Self::Https(uri.to_owned()))
        } else {
            Err(TlsRptRecordError::UnsupportedScheme {
                uri: uri.to_owned(),
                scheme: scheme.to_owned(),
            })
        }
    }

    /// The URI text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Mailto(s) | Self::Https(s) => s,
        }
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3986 characters, with the RFC 8460 §3 exclusions.
fn check_uri_chars(uri: &str) -> Result<(), TlsRptRecordError> {
    let bytes = uri.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'!' | b',' | b';' => {
                return Err(TlsRptRecordError::UnencodedCharacter {
                    uri: uri.to_owned(),
                    ch: char::from(b),
                });
            }
            b'%' => {
                let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return Err(TlsRptRecordError::InvalidPercentEncoding { uri: uri.to_owned() });
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' | b'$'
            | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b'=' => {}
            _ => {
                let ch = uri[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(TlsRptRecordError::InvalidUriCharacter { uri: uri.to_owned(), ch });
            }
        }
        i += 1;
    }
    Ok(())
}

impl FromStr for ReportUri {
    type Err = TlsRptRecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReportUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReportUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A parsed TLS-RPT record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsRptRecord {
    rua: Vec<ReportUri>,
    extensions: Vec<Extension>,
}

impl TlsRptRecord {
    /// A record with these reporting URIs (at least one).
    pub fn new(rua: Vec<ReportUri>) -> Result<Self, TlsRptRecordError> {
        if rua.is_empty() {
            return Err(TlsRptRecordError::MissingRua);
        }
        Ok(Self { rua, extensions: Vec::new() })
    }

    /// Sets extension fields. Extensions named `rua` or `v` are refused
    /// because they would change the meaning of the record.
    pub fn with_extensions(
        mut self,
        extensions: Vec<Extension>,
    ) -> Result<Self, TlsRptRecordError> {
        if let Some(e) = extensions.iter().find(|e| e.name() == "rua" || e.name() == "v") {
            return Err(TlsRptRecordError::InvalidExtensionName { name: e.name().to_owned() });
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// The reporting URIs, in record order.
    pub fn rua(&self) -> &[ReportUri] {
        &self.rua
    }

    /// Unknown fields, in record order. RFC 8460 §3: unknown fields are
    /// ignored.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Parses one TXT record (strings already joined) with the ABNF of
    /// RFC 8460 §3.
    ///
    /// Warnings: `tlsrpt-duplicate-rua` (more than one `rua` field; the URIs
    /// are appended, as mox does), `tlsrpt-space-after-version`,
    /// `tlsrpt-trailing-whitespace`, `tlsrpt-field-wrong-case` (e.g. `RUA=`).
    pub fn parse(txt: &str) -> Result<Parsed<Self>, TlsRptRecordError> {
        let split = syntax::split_txt(txt, TLSRPT_VERSION).map_err(|e| match e {
            TxtSplitError::NotAscii { index, ch } => TlsRptRecordError::NotAscii { index, ch },
            TxtSplitError::Control { index, byte } => {
                TlsRptRecordError::ControlCharacter { index, byte }
            }
            TxtSplitError::MissingVersion => TlsRptRecordError::MissingVersion,
            TxtSplitError::MissingDelimiter { text } => {
                TlsRptRecordError::MissingDelimiter { text }
            }
            TxtSplitError::EmptyField { index } => TlsRptRecordError::EmptyField { index },
        })?;
        let mut warnings = Vec::new();
        if split.space_after_version {
            warnings.push(Warning::new(
                "tlsrpt-space-after-version",
                None,
                "RFC 8460 §3: whitespace between \"v=TLSRPTv1\" and \";\" is allowed by the ABNF, but records that do not begin with \"v=TLSRPTv1;\" are discarded by some senders",
            ));
        }
        if split.trailing_whitespace {
            warnings.push(Warning::new(
                "tlsrpt-trailing-whitespace",
                None,
                "RFC 8460 §3: whitespace at the end of the record is only allowed around a \";\" delimiter",
            ));
        }
        let mut rua: Vec<ReportUri> = Vec::new();
        let mut rua_fields = 0usize;
        let mut extensions = Vec::new();
        for field in split.fields {
            let Some((name, value)) = syntax::split_kv(field) else {
                return Err(TlsRptRecordError::MissingEquals { field: field.to_owned() });
            };
            if name.ends_with(syntax::is_wsp) || value.starts_with(syntax::is_wsp) {
                return Err(TlsRptRecordError::SpaceAroundEquals { field: field.to_owned() });
            }
            if name == "rua" {
                rua_fields += 1;
                if rua_fields == 2 {
                    warnings.push(Warning::new(
                        "tlsrpt-duplicate-rua",
                        None,
                        "RFC 8460 §3: the record has more than one \"rua\" field; their URIs are combined, but some senders use only one field (list URIs comma-separated in one field)",
                    ));
                }
                for uri in value.split(',') {
                    let uri = syntax::trim_wsp(uri);
                    if uri.is_empty() {
                        return Err(TlsRptRecordError::EmptyUri { list: value.to_owned() });
                    }
                    rua.push(ReportUri::parse(uri)?);
                }
            } else {
                if !syntax::is_ext_name(name) {
                    return Err(TlsRptRecordError::InvalidExtensionName { name: name.to_owned() });
                }
                if !syntax::is_txt_ext_value(value) {
                    return Err(TlsRptRecordError::InvalidExtensionValue {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    });
                }
                if (name != "v" && name.eq_ignore_ascii_case("v"))
                    || name.eq_ignore_ascii_case("rua")
                {
                    warnings.push(Warning::new(
                        "tlsrpt-field-wrong-case",
                        None,
                        format!(
                            "RFC 8460 §3: field names are case-sensitive; {name:?} is an unknown extension, not \"{}\"",
                            name.to_ascii_lowercase()
                        ),
                    ));
                }
                extensions.push(Extension::from_checked(name, value));
            }
        }
        if rua.is_empty() {
            return Err(TlsRptRecordError::MissingRua);
        }
        Ok(Parsed { value: Self { rua, extensions }, warnings })
    }
}

impl fmt::Display for TlsRptRecord {
    /// Canonical form: `v=TLSRPTv1; rua=<uri>,<uri>` then `; name=value`
    /// for each extension.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TLSRPT_VERSION}; rua=")?;
        for (i, uri) in self.rua.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(uri.as_str())?;
        }
        for ext in &self.extensions {
            write!(f, "; {ext}")?;
        }
        Ok(())
    }
}

impl FromStr for TlsRptRecord {
    type Err = TlsRptRecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map(Parsed::into_value)
    }
}

/// The outcome of [`select_tlsrpt_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptDiscovery {
    /// The one TLS-RPT record, parsed.
    pub record: Parsed<TlsRptRecord>,
    /// Its text.
    pub raw: String,
    /// The other TXT records, which do not begin with `v=TLSRPTv1`.
    pub discarded: Vec<String>,
}

/// Why no TLS-RPT record could be selected (RFC 8460 §3). In every case the
/// sender "MUST assume the recipient domain does not implement TLSRPT".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptDiscoveryError {
    /// No record begins with `v=TLSRPTv1`.
    #[error("RFC 8460 §3: no TXT record begins with \"v=TLSRPTv1\" ({} other record(s) discarded)", discarded.len())]
    NoRecord {
        /// The discarded records.
        discarded: Vec<String>,
    },
    /// More than one candidate.
    #[error("RFC 8460 §3: {} TXT records begin with \"v=TLSRPTv1\"; exactly one is required", records.len())]
    Multiple {
        /// The candidates.
        records: Vec<String>,
    },
    /// The one candidate is invalid.
    #[error("invalid TLS-RPT record {raw:?}: {error}")]
    Invalid {
        /// The record text.
        raw: String,
        /// What is wrong.
        #[source]
        error: TlsRptRecordError,
    },
}

/// Whether a TXT record is a TLS-RPT candidate: `v=TLSRPTv1` followed by
/// end-of-record, WSP or ";".
pub fn is_tlsrpt_candidate(txt: &str) -> bool {
    txt.strip_prefix(TLSRPT_VERSION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

/// Selects and parses the TLS-RPT record among the TXT records at
/// `_smtp._tls.<domain>` (RFC 8460 §3). Each input string is one TXT
/// resource record with its character-strings already joined without spaces.
pub fn select_tlsrpt_record(
    txt_records: &[String],
) -> Result<TlsRptDiscovery, TlsRptDiscoveryError> {
    let (candidates, discarded): (Vec<&String>, Vec<&String>) =
        txt_records.iter().partition(|r| is_tlsrpt_candidate(r));
    let discarded: Vec<String> = discarded.into_iter().cloned().collect();
    match candidates.as_slice() {
        [] => Err(TlsRptDiscoveryError::NoRecord { discarded }),
        [one] => match TlsRptRecord::parse(one) {
            Ok(record) => Ok(TlsRptDiscovery { record, raw: (*one).clone(), discarded }),
            Err(error) => Err(TlsRptDiscoveryError::Invalid { raw: (*one).clone(), error }),
        },
        many => Err(TlsRptDiscoveryError::Multiple {
            records: many.iter().map(|s| (*s).clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    fn ok(txt: &str) -> Parsed<TlsRptRecord> {
        TlsRptRecord::parse(txt).unwrap_or_else(|e| panic!("{txt:?}: {e}"))
    }

    #[test]
    fn valid_records() {
        for (txt, n) in [
            ("v=TLSRPTv1;rua=mailto:reports@example.com", 1),
            ("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 1),
            ("v=TLSRPTv1; rua=mailto:a@b.example, https://x.example/r;", 2),
            ("v=TLSRPTv1; rua=MAILTO:a@b.example\t,\thttps://x.example:8443/r?x=1", 2),
            ("v=TLSRPTv1; rua=mailto:a%2Cb@b.example", 1),
            ("v=TLSRPTv1; rua=https://[2001:db8::1]/r", 1),
            ("v=TLSRPTv1; rua=https://192.0.2.1/r", 1),
            ("v=TLSRPTv1; rua=mailto:a@b.example?subject=x; ext=1", 1),
        ] {
            let p = ok(txt);
            assert_eq!(p.value.rua().len(), n, "{txt}");
            assert!(p.is_clean(), "{txt}: {:?}", p.warnings);
        }
        let p = ok("v=TLSRPTv1; rua=mailto:a@b.example,https://x.example/r");
        assert!(matches!(p.value.rua()[0], ReportUri::Mailto(_)));
        assert!(matches!(p.value.rua()[1], ReportUri::Https(_)));
    }

    #[test]
    fn errors() {
        use TlsRptRecordError as E;
        let cases: Vec<(&str, fn(&E) -> bool)> = vec![
            ("", |e| matches!(e, E::MissingVersion)),
            ("v=tlsrptv1; rua=mailto:a@b.example", |e| matches!(e, E::MissingVersion)),
            ("rua=mailto:a@b.example; v=TLSRPTv1", |e| matches!(e, E::MissingVersion)),
            ("v=TLSRPTv1", |e| matches!(e, E::MissingRua)),
            ("v=TLSRPTv1; ext=1", |e| matches!(e, E::MissingRua)),
            ("v=TLSRPTv1; RUA=mailto:a@b.example", |e| matches!(e, E::MissingRua)),
            ("v=TLSRPTv1 rua=mailto:a@b.example", |e| matches!(e, E::MissingDelimiter { .. })),
            ("v=TLSRPTv1;;rua=mailto:a@b.example", |e| matches!(e, E::EmptyField { index: 1 })),
            ("v=TLSRPTv1; rua", |e| matches!(e, E::MissingEquals { .. })),
            ("v=TLSRPTv1; rua =mailto:a@b.example", |e| matches!(e, E::SpaceAroundEquals { .. })),
            ("v=TLSRPTv1; rua= mailto:a@b.example", |e| matches!(e, E::SpaceAroundEquals { .. })),
            ("v=TLSRPTv1; rua=", |e| matches!(e, E::EmptyUri { .. })),
            ("v=TLSRPTv1; rua=mailto:a@b.example,", |e| matches!(e, E::EmptyUri { .. })),
            (
                "v=TLSRPTv1; rua=http://x.example/r",
                |e| matches!(e, E::UnsupportedScheme { scheme, .. } if scheme == "http"),
            ),
            ("v=TLSRPTv1; rua=a@b.example", |e| matches!(e, E::UnsupportedScheme { .. })),
            ("v=TLSRPTv1; rua=mailto:a@b.example!10m", |e| {
                matches!(e, E::UnencodedCharacter { ch: '!', .. })
            }),
            ("v=TLSRPTv1; rua=mailto:a b@b.example", |e| {
                matches!(e, E::InvalidUriCharacter { ch: ' ', .. })
            }),
            ("v=TLSRPTv1; rua=mailto:a@b.example%2", |e| {
                matches!(e, E::InvalidPercentEncoding { .. })
            }),
            ("v=TLSRPTv1; rua=mailto:", |e| matches!(e, E::InvalidMailto { .. })),
            ("v=TLSRPTv1; rua=mailto:ab.example", |e| matches!(e, E::InvalidMailto { .. })),
            ("v=TLSRPTv1; rua=mailto:@b.example", |e| matches!(e, E::InvalidMailto { .. })),
            ("v=TLSRPTv1; rua=mailto:a@b_c", |e| matches!(e, E::InvalidMailto { .. })),
            ("v=TLSRPTv1; rua=https:x.example", |e| matches!(e, E::InvalidHttps { .. })),
            ("v=TLSRPTv1; rua=https:///r", |e| matches!(e, E::InvalidHttps { .. })),
            ("v=TLSRPTv1; rua=https://x.example:http/", |e| matches!(e, E::InvalidHttps { .. })),
            ("v=TLSRPTv1; rua=mailto:a@b.example; _x=1", |e| {
                matches!(e, E::InvalidExtensionName { .. })
            }),
            ("v=TLSRPTv1; rua=mailto:a@b.example; x=", |e| {
                matches!(e, E::InvalidExtensionValue { .. })
            }),
            ("v=TLSRPTv1; rua=mailto:é@b.example", |e| matches!(e, E::NotAscii { .. })),
            ("v=TLSRPTv1; rua=mailto:a@b.example\r", |e| matches!(e, E::ControlCharacter { .. })),
        ];
        for (txt, check) in cases {
            let e = TlsRptRecord::parse(txt).unwrap_err();
            assert!(check(&e), "{txt:?}: {e:?}");
            assert!(e.to_string().starts_with("RFC "), "{e}");
        }
    }

    #[test]
    fn ext_name_boundaries() {
        let n32 = format!("a{}", "b".repeat(31));
        let n33 = format!("a{}", "b".repeat(32));
        let base = "v=TLSRPTv1; rua=mailto:a@b.example";
        assert_eq!(ok(&format!("{base}; {n32}=v")).value.extensions()[0].name(), n32);
        assert_eq!(
            TlsRptRecord::parse(&format!("{base}; {n33}=v")),
            Err(TlsRptRecordError::InvalidExtensionName { name: n33 })
        );
    }

    #[test]
    fn warnings() {
        let p = ok("v=TLSRPTv1; rua=mailto:a@b.example; rua=https://x.example/r");
        assert!(p.has_warning("tlsrpt-duplicate-rua"));
        assert_eq!(p.value.rua().len(), 2);
        assert!(ok("v=TLSRPTv1 ;rua=mailto:a@b.example").has_warning("tlsrpt-space-after-version"));
        assert!(ok("v=TLSRPTv1;rua=mailto:a@b.example ").has_warning("tlsrpt-trailing-whitespace"));
        let p = ok("v=TLSRPTv1;rua=mailto:a@b.example; RUA=mailto:c@d.example");
        assert!(p.has_warning("tlsrpt-field-wrong-case"));
        assert_eq!(p.value.rua().len(), 1);
    }

    #[test]
    fn display_round_trip() {
        let r = ok("v=TLSRPTv1;x=1;rua=mailto:a@b.example , https://x.example/r").value;
        assert_eq!(r.to_string(), "v=TLSRPTv1; rua=mailto:a@b.example,https://x.example/r; x=1");
        assert_eq!(r.to_string().parse::<TlsRptRecord>().unwrap(), r);
        assert!(TlsRptRecord::new(vec![]).is_err());
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn select() {
        assert!(matches!(select_tlsrpt_record(&[]), Err(TlsRptDiscoveryError::NoRecord { .. })));
        let recs = strs(&["v=spf1 -all", "v=TLSRPTv1;rua=mailto:a@b.example"]);
        let d = select_tlsrpt_record(&recs).unwrap();
        assert_eq!(d.discarded, strs(&["v=spf1 -all"]));
        let recs =
            strs(&["v=TLSRPTv1;rua=mailto:a@b.example", "v=TLSRPTv1;rua=mailto:c@b.example"]);
        assert!(matches!(select_tlsrpt_record(&recs), Err(TlsRptDiscoveryError::Multiple { .. })));
        let recs = strs(&["v=TLSRPTv1"]);
        assert!(matches!(
            select_tlsrpt_record(&recs),
            Err(TlsRptDiscoveryError::Invalid { error: TlsRptRecordError::MissingRua, .. })
        ));
        let recs = strs(&["v=TLSRPTv10;rua=mailto:a@b.example"]);
        assert!(matches!(select_tlsrpt_record(&recs), Err(TlsRptDiscoveryError::NoRecord { .. })));
        // Two strings joined without a space by the DNS layer.
        let joined = ["v=TLSRPTv1;rua=mailto:tls", "rpt@example.com"].concat();
        let d = select_tlsrpt_record(&[joined]).unwrap();
        assert_eq!(d.record.value.rua()[0].as_str(), "mailto:tlsrpt@example.com");
    }
}
