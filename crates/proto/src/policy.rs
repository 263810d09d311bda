//! The MTA-STS policy file, RFC 8461 §3.2, and MX host matching, §4.1.
//!
//! ```text
//! sts-policy-record        = sts-policy-field *WSP
//!                            *(sts-policy-term sts-policy-field *WSP)
//!                            [sts-policy-term]
//! sts-policy-field         = sts-policy-version / sts-policy-mode /
//!                            sts-policy-max-age / sts-policy-mx /
//!                            sts-policy-extension
//! sts-policy-field-delim   = ":" *WSP
//! sts-policy-version-field = %s"version"      sts-policy-version-value = %s"STSv1"
//! sts-policy-mode-field    = %s"mode"         sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none"
//! sts-policy-mx-field      = %s"mx"           sts-policy-mx-value = ["*."] Domain
//! sts-policy-max-age-field = %s"max_age"      sts-policy-max-age-value = 1*10(DIGIT)
//! sts-policy-ext-name      = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-policy-term          = LF / CRLF
//! sts-policy-ext-value     = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
//! sts-policy-vchar         = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4
//! ```
//!
//! Field names and the version and mode values are case-sensitive (`%s`,
//! RFC 7405). Per §3.2, when a field other than `mx` appears more than once
//! only the first instance counts, and unknown fields are ignored.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::diag::{Parsed, Warning};
use crate::domain::{DomainError, DomainName};
use crate::syntax;

/// Largest `max_age`, one year. RFC 8461 §3.2: "max_age: Max lifetime of the
/// policy (plaintext non-negative integer seconds, maximum value of
/// 31557600)."
pub const MAX_AGE_MAX: u32 = 31_557_600;

/// Most digits in `max_age`: `sts-policy-max-age-value = 1*10(DIGIT)` (RFC 8461 §3.2).
pub const MAX_AGE_MAX_DIGITS: usize = 10;

/// Largest policy body accepted. RFC 8461 §3.3 lets senders limit the size
/// of the response body and suggests a maximum policy size of 64 kilobytes.
pub const POLICY_MAX_BYTES: usize = 64 * 1024;

/// The version value: `sts-policy-version-value = %s"STSv1"` (RFC 8461 §3.2).
pub const POLICY_VERSION: &str = "STSv1";

/// Longest extension name (RFC 8461 §3.2 `sts-policy-ext-name`).
pub const EXT_NAME_MAX_LEN: usize = syntax::EXT_NAME_MAX_LEN;

const KNOWN_FIELDS: [&str; 4] = ["version", "mode", "mx", "max_age"];

/// The policy's media type. RFC 8461 §3.2: "This resource contains the following CRLF-separated
/// key/value pairs" and §3.3: the HTTP response body is the policy, with "media type of
/// 'text/plain'". Parameters such as `charset=utf-8` are allowed; the type and subtype compare
/// case-insensitively (RFC 9110 §8.3.1). No `Content-Type` at all is not `text/plain`.
pub fn is_policy_media_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/plain"))
    })
}

/// The policy mode (RFC 8461 §3.2, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// "Sending MTAs MUST NOT deliver the message to hosts that fail MX
    /// matching or certificate validation or that do not support STARTTLS."
    Enforce,
    /// "Sending MTAs that also implement the TLSRPT specification \[RFC8460\]
    /// send a report indicating policy application failures (as long as
    /// TLSRPT is also implemented by the recipient domain)."
    Testing,
    /// "In this mode, Sending MTAs should treat the Policy Domain as though
    /// it does not have any active policy."
    None,
}

impl Mode {
    /// The policy text of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = PolicyError;
    /// Case-sensitive, as the ABNF requires.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Self::Enforce),
            "testing" => Ok(Self::Testing),
            "none" => Ok(Self::None),
            _ => Err(PolicyError::new(None, PolicyErrorKind::InvalidMode { value: s.to_owned() })),
        }
    }
}

/// The policy lifetime in seconds, 0 to [`MAX_AGE_MAX`] (RFC 8461 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaxAge(u32);

impl MaxAge {
    /// Checks the §3.2 maximum.
    pub fn new(seconds: u32) -> Result<Self, PolicyError> {
        if seconds > MAX_AGE_MAX {
            return Err(PolicyError::new(
                None,
                PolicyErrorKind::MaxAgeTooLarge { value: u64::from(seconds) },
            ));
        }
        Ok(Self(seconds))
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// The lifetime as a [`Duration`].
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }

    /// Parses `1*10(DIGIT)` and checks the maximum.
    fn parse_value(value: &str) -> Result<Self, PolicyErrorKind> {
        if value.is_empty()
            || value.len() > MAX_AGE_MAX_DIGITS
            || !value.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PolicyErrorKind::InvalidMaxAge { value: value.to_owned() });
        }
        let n: u64 = value
            .parse()
            .map_err(|_| PolicyErrorKind::InvalidMaxAge { value: value.to_owned() })?;
        match u32::try_from(n) {
            Ok(v) if v <= MAX_AGE_MAX => Ok(Self(v)),
            _ => Err(PolicyErrorKind::MaxAgeTooLarge { value: n }),
        }
    }
}

impl fmt::Display for MaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for MaxAge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for MaxAge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(deserializer)?;
        Self::new(n).map_err(serde::de::Error::custom)
    }
}

/// Why an `mx` value is not a valid pattern (RFC 8461 §3.2 `sts-policy-mx-value`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MxPatternError {
    /// The value is empty.
    #[error("RFC 8461 §3.2: the mx value must not be empty")]
    Empty,
    /// Non-ASCII: a U-label.
    #[error("RFC 8461 §3.2: the mx pattern {value:?} must use the A-label (Punycode) form, not the U-label{}", a_label.as_ref().map(|a| format!("; write {a:?}")).unwrap_or_default())]
    NotALabel {
        /// The value found.
        value: String,
        /// The A-label form, when it can be computed.
        a_label: Option<String>,
    },
    /// An IP address.
    #[error("RFC 8461 §3.2: the mx pattern {value:?} is an IP address; a host name is required")]
    IpAddress {
        /// The value found.
        value: String,
    },
    /// `*.*.example.com`.
    #[error(
        "RFC 8461 §4.1: the mx pattern {value:?} has more than one wildcard label; only one leading \"*.\" is allowed"
    )]
    MultipleWildcards {
        /// The value found.
        value: String,
    },
    /// A `*` anywhere other than a whole leftmost label.
    #[error(
        "RFC 8461 §3.2: in the mx pattern {value:?} a \"*\" may only appear as a leading \"*.\""
    )]
    MisplacedWildcard {
        /// The value found.
        value: String,
    },
    /// The domain part is not a valid name.
    #[error("RFC 8461 §3.2: the mx pattern {value:?} is not a valid domain: {error}")]
    InvalidDomain {
        /// The value found.
        value: String,
        /// What is wrong with the domain.
        #[source]
        error: DomainError,
    },
}

/// An `mx` pattern: `["*."] Domain` (RFC 8461 §3.2).
///
/// RFC 8461 §4.1 matches as RFC 6125 does, with the wildcard standing for the
/// entire left-most label only: `*.example.com` matches `mail.example.com`
/// but neither `example.com` nor `foo.bar.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MxPattern {
    wildcard: bool,
    domain: DomainName,
}

impl MxPattern {
    /// Parses a pattern. Letters are folded to lower case and a trailing dot
    /// is removed.
    pub fn parse(s: &str) -> Result<Self, MxPatternError> {
        if s.is_empty() {
            return Err(MxPatternError::Empty);
        }
        let (wildcard, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if !s.is_ascii() {
            let a_label = idna::domain_to_ascii(rest)
                .ok()
                .map(|a| if wildcard { format!("*.{a}") } else { a });
            return Err(MxPatternError::NotALabel { value: s.to_owned(), a_label });
        }
        if rest.starts_with("*.") {
            return Err(MxPatternError::MultipleWildcards { value: s.to_owned() });
        }
        if rest.contains('*') {
            return Err(MxPatternError::MisplacedWildcard { value: s.to_owned() });
        }
        let domain = DomainName::parse_ascii(rest).map_err(|error| match error {
            DomainError::IpAddress { .. } => MxPatternError::IpAddress { value: s.to_owned() },
            error => MxPatternError::InvalidDomain { value: s.to_owned(), error },
        })?;
        Ok(Self { wildcard, domain })
    }

    /// An exact (non-wildcard) pattern for this host.
    pub fn exact(domain: DomainName) -> Self {
        Self { wildcard: false, domain }
    }

    /// A wildcard pattern `*.<domain>`.
    pub fn wildcard(domain: DomainName) -> Self {
        Self { wildcard: true, domain }
    }

    /// Whether the pattern starts with `*.`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The domain after the optional `*.`.
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// Whether an MX host name matches (RFC 8461 §4.1).
    ///
    /// Comparison ignores ASCII case and one trailing dot on `mx_host`. A
    /// wildcard pattern matches exactly one extra, non-empty leftmost label.
    /// `mx_host` is expected in A-label form, as DNS returns it.
    pub fn matches(&self, mx_host: &str) -> bool {
        let host = mx_host.strip_suffix('.').unwrap_or(mx_host);
        let domain = self.domain.as_str();
        if self.wildcard {
            match host.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest.eq_ignore_ascii_case(domain),
                None => false,
            }
        } else {
            host.eq_ignore_ascii_case(domain)
        }
    }
}

impl FromStr for MxPattern {
    type Err = MxPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(self.domain.as_str())
    }
}

impl Serialize for MxPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MxPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An unknown policy field (RFC 8461 §3.2 `sts-policy-extension`), kept so
/// that tools can show it. RFC 8461 §3.2: unknown fields are ignored.
///
/// This is a different type from the TXT record's
/// [`Extension`](crate::sts_record::Extension) because the value grammar
/// differs: a policy value may contain spaces, UTF-8, "=" and ";".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyExtension {
    name: String,
    value: String,
}

impl PolicyExtension {
    /// Validates `sts-policy-ext-name` and `sts-policy-ext-value`. Names of
    /// the defined fields (`version`, `mode`, `mx`, `max_age`) are refused.
    pub fn new(name: &str, value: &str) -> Result<Self, PolicyError> {
        if !syntax::is_ext_name(name) {
            return Err(PolicyError::new(
                None,
                PolicyErrorKind::InvalidFieldName { name: name.to_owned() },
            ));
        }
        if KNOWN_FIELDS.contains(&name) {
            return Err(PolicyError::new(
                None,
                PolicyErrorKind::ReservedExtensionName { name: name.to_owned() },
            ));
        }
        if !is_policy_ext_value(value) {
            return Err(PolicyError::new(
                None,
                PolicyErrorKind::InvalidExtensionValue {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
            ));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// The field name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]`, where
/// `sts-policy-vchar = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4`: no controls, no
/// TAB, no leading or trailing space.
fn is_policy_ext_value(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && v.chars().all(|c| c == ' ' || (!c.is_control() && !c.is_ascii_whitespace()))
}

/// What is wrong with a policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// Larger than [`POLICY_MAX_BYTES`].
    #[error(
        "RFC 8461 §3.3: the policy is {size} bytes, more than the {POLICY_MAX_BYTES}-byte limit"
    )]
    TooLarge {
        /// Size in bytes.
        size: usize,
    },
    /// Not UTF-8.
    #[error("RFC 8461 §3.2: the policy is not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A control character (including a CR that is not part of CRLF).
    #[error("RFC 8461 §3.2: control character {ch:?} is not allowed; lines end in LF or CRLF")]
    ControlCharacter {
        /// The character.
        ch: char,
    },
    /// No fields at all.
    #[error("RFC 8461 §3.2: the policy is empty")]
    Empty,
    /// A line without ":".
    #[error("RFC 8461 §3.2: a line must have the form \"name: value\", found {text:?}")]
    MalformedLine {
        /// The line.
        text: String,
    },
    /// A field name that breaks `sts-policy-ext-name`.
    #[error(
        "RFC 8461 §3.2: field name {name:?} must be a letter or digit followed by at most 31 letters, digits, \"_\", \"-\" or \".\" (no spaces before \":\")"
    )]
    InvalidFieldName {
        /// The name found.
        name: String,
    },
    /// A defined field written with the wrong case, e.g. `Mode:`.
    #[error("RFC 8461 §3.2: field names are case-sensitive; {found:?} is not {expected:?}")]
    FieldWrongCase {
        /// The name found.
        found: String,
        /// The name required.
        expected: &'static str,
    },
    /// No `version` field.
    #[error("RFC 8461 §3.2: the policy must have a \"version: STSv1\" field")]
    MissingVersion,
    /// `version` other than `STSv1`.
    #[error("RFC 8461 §3.2: version must be \"STSv1\" (case-sensitive), found {value:?}")]
    InvalidVersion {
        /// The value found.
        value: String,
    },
    /// No `mode` field.
    #[error("RFC 8461 §3.2: the policy must have a \"mode\" field")]
    MissingMode,
    /// `mode` other than enforce/testing/none.
    #[error(
        "RFC 8461 §3.2: mode must be \"enforce\", \"testing\" or \"none\" (case-sensitive), found {value:?}"
    )]
    InvalidMode {
        /// The value found.
        value: String,
    },
    /// No `max_age` field.
    #[error("RFC 8461 §3.2: the policy must have a \"max_age\" field")]
    MissingMaxAge,
    /// `max_age` not `1*10DIGIT`.
    #[error("RFC 8461 §3.2: max_age must be 1 to {MAX_AGE_MAX_DIGITS} digits, found {value:?}")]
    InvalidMaxAge {
        /// The value found.
        value: String,
    },
    /// `max_age` above [`MAX_AGE_MAX`].
    #[error("RFC 8461 §3.2: max_age must be at most {MAX_AGE_MAX} seconds, found {value}")]
    MaxAgeTooLarge {
        /// The value found.
        value: u64,
    },
    /// Mode enforce or testing without any `mx`.
    #[error("RFC 8461 §3.2: at least one \"mx\" field is required unless mode is \"none\"")]
    MissingMx,
    /// An invalid `mx` value.
    #[error("{error}")]
    InvalidMx {
        /// The value found.
        value: String,
        /// What is wrong with it.
        #[source]
        error: MxPatternError,
    },
    /// An extension value that breaks `sts-policy-ext-value`.
    #[error(
        "RFC 8461 §3.2: the value of field {name:?} must be non-empty text without control characters or tabs, found {value:?}"
    )]
    InvalidExtensionValue {
        /// The field name.
        name: String,
        /// The value found.
        value: String,
    },
    /// Two extensions with one name given to [`Policy::with_extensions`].
    #[error("RFC 8461 §3.2: extension {name:?} is given twice; only the first would count")]
    DuplicateExtension {
        /// The name.
        name: String,
    },
    /// An extension named like a defined field.
    #[error("RFC 8461 §3.2: {name:?} is a defined field, not an extension")]
    ReservedExtensionName {
        /// The name.
        name: String,
    },
}

/// A policy error with the 1-based line it was found on, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line number.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    fn new(line: Option<usize>, kind: PolicyErrorKind) -> Self {
        Self { line, kind }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PolicyErrorKind::InvalidMx { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A parsed MTA-STS policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    mode: Mode,
    max_age: MaxAge,
    mx: Vec<MxPattern>,
    extensions: Vec<PolicyExtension>,
}

impl Policy {
    /// Builds a policy. RFC 8461 §3.2 requires at least one `mx` field
    /// unless the mode is `none` (ABNF comment: "required at least once,
    /// except when mode is "none"").
    pub fn new(mode: Mode, max_age: MaxAge, mx: Vec<MxPattern>) -> Result<Self, PolicyError> {
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::new(None, PolicyErrorKind::MissingMx));
        }
        Ok(Self { mode, max_age, mx, extensions: Vec::new() })
    }

    /// Sets the extension fields. Names must be distinct.
    pub fn with_extensions(
        mut self,
        extensions: Vec<PolicyExtension>,
    ) -> Result<Self, PolicyError> {
        for (i, e) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|p| p.name == e.name) {
                return Err(PolicyError::new(
                    None,
                    PolicyErrorKind::DuplicateExtension { name: e.name.clone() },
                ));
            }
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The lifetime.
    pub fn max_age(&self) -> MaxAge {
        self.max_age
    }

    /// The MX patterns, in policy order.
    pub fn mx(&self) -> &[MxPattern] {
        &self.mx
    }

    /// Unknown fields, in policy order (first instance of each name).
    pub fn extensions(&self) -> &[PolicyExtension] {
        &self.extensions
    }

    /// The first pattern that `mx_host` matches (RFC 8461 §4.1), if any.
    pub fn matching_pattern(&self, mx_host: &str) -> Option<&MxPattern> {
        self.mx.iter().find(|p| p.matches(mx_host))
    }

    /// The policy as lines, one per field, without line terminators: the
    /// `policy-string` of a TLS-RPT report, where RFC 8460 §4.5 puts each
    /// policy line (each `mx` separately) in its own string.
    pub fn to_policy_lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(3 + self.mx.len() + self.extensions.len());
        lines.push(format!("version: {POLICY_VERSION}"));
        lines.push(format!("mode: {}", self.mode));
        for mx in &self.mx {
            lines.push(format!("mx: {mx}"));
        }
        lines.push(format!("max_age: {}", self.max_age));
        for e in &self.extensions {
            lines.push(format!("{}: {}", e.name, e.value));
        }
        lines
    }

    /// Parses a policy body given as bytes, checking size and UTF-8 first.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Parsed<Self>, PolicyError> {
        if bytes.len() > POLICY_MAX_BYTES {
            return Err(PolicyError::new(None, PolicyErrorKind::TooLarge { size: bytes.len() }));
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text),
            Err(e) => {
                let offset = e.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|b| **b == b'\n').count();
                Err(PolicyError::new(Some(line), PolicyErrorKind::NotUtf8 { offset }))
            }
        }
    }

    /// Parses a policy body (RFC 8461 §3.2).
    ///
    /// Fields may come in any order. Warnings:
    /// - `policy-version-not-first`: the RFC does not require `version`
    ///   first, but its examples and many tools put it there;
    /// - `policy-duplicate-field`: a repeated non-`mx` field; the first wins;
    /// - `policy-blank-line`: an empty line, which the ABNF does not allow
    ///   (some senders reject such policies);
    /// - `policy-field-wrong-case`: e.g. `Mode:`, which is an unknown field
    ///   because names are case-sensitive;
    /// - `policy-mx-trailing-dot`: `mx: mail.example.com.` (RFC 5321
    ///   `Domain` has no trailing dot; the dot is removed).
    pub fn parse(text: &str) -> Result<Parsed<Self>, PolicyError> {
        if text.len() > POLICY_MAX_BYTES {
            return Err(PolicyError::new(None, PolicyErrorKind::TooLarge { size: text.len() }));
        }
        let mut warnings = Vec::new();
        let mut version: Option<usize> = None;
        let mut mode: Option<Mode> = None;
        let mut max_age: Option<MaxAge> = None;
        let mut mx = Vec::new();
        let mut extensions: Vec<PolicyExtension> = Vec::new();
        // (name found, expected name, line) for fields written in the wrong case.
        let mut wrong_case: Vec<(String, &'static str, usize)> = Vec::new();
        let mut seen_field = false;

        let mut raw_lines: Vec<&str> = text.split('\n').collect();
        let terminated = text.ends_with('\n');
        if terminated {
            raw_lines.pop();
        }
        let last = raw_lines.len().saturating_sub(1);
        for (index, raw) in raw_lines.iter().enumerate() {
            let lineno = index + 1;
            // Only a CR directly before LF is a line terminator (CRLF).
            let line = if terminated || index < last {
                raw.strip_suffix('\r').unwrap_or(raw)
            } else {
                raw
            };
            let err = |kind| Err(PolicyError::new(Some(lineno), kind));
            if let Some(ch) = line.chars().find(|c| c.is_control() && *c != '\t') {
                return err(PolicyErrorKind::ControlCharacter { ch });
            }
            if syntax::trim_wsp(line).is_empty() {
                warnings.push(Warning::new(
                    "policy-blank-line",
                    Some(lineno),
                    "RFC 8461 §3.2: blank lines are not allowed by the policy ABNF; some senders reject such policies",
                ));
                continue;
            }
            let first_field = !seen_field;
            seen_field = true;
            let Some((name, rest)) = line.split_once(':') else {
                return err(PolicyErrorKind::MalformedLine { text: line.to_owned() });
            };
            if !syntax::is_ext_name(name) {
                return err(PolicyErrorKind::InvalidFieldName { name: name.to_owned() });
            }
            let value = syntax::trim_wsp(rest);
            let duplicate = |warnings: &mut Vec<Warning>| {
                warnings.push(Warning::new(
                    "policy-duplicate-field",
                    Some(lineno),
                    format!(
                        "RFC 8461 §3.2: field {name:?} is repeated; only the first instance is considered, so {value:?} is ignored"
                    ),
                ));
            };
            match name {
                "version" => {
                    if version.is_some() {
                        duplicate(&mut warnings);
                        continue;
                    }
                    if value != POLICY_VERSION {
                        return err(PolicyErrorKind::InvalidVersion { value: value.to_owned() });
                    }
                    version = Some(lineno);
                    if !first_field {
                        warnings.push(Warning::new(
                            "policy-version-not-first",
                            Some(lineno),
                            "RFC 8461 §3.2: fields may come in any order, but \"version\" is conventionally the first line and some tools expect it there",
                        ));
                    }
                }
                "mode" => {
                    if mode.is_some() {
                        duplicate(&mut warnings);
                        continue;
                    }
                    match value.parse::<Mode>() {
                        Ok(m) => mode = Some(m),
                        Err(e) => return err(e.kind),
                    }
                }
                "max_age" => {
                    if max_age.is_some() {
                        duplicate(&mut warnings);
                        continue;
                    }
                    match MaxAge::parse_value(value) {
                        Ok(m) => max_age = Some(m),
                        Err(kind) => return err(kind),
                    }
                }
                "mx" => match MxPattern::parse(value) {
                    Ok(p) => {
                        if value.ends_with('.') {
                            warnings.push(Warning::new(
                                "policy-mx-trailing-dot",
                                Some(lineno),
                                format!(
                                    "RFC 8461 §3.2: mx values are RFC 5321 domains without a trailing dot; {value:?} is read as {p:?}",
                                    p = p.to_string()
                                ),
                            ));
                        }
                        mx.push(p);
                    }
                    Err(error) => {
                        return err(PolicyErrorKind::InvalidMx { value: value.to_owned(), error });
                    }
                },
                _ => {
                    if !is_policy_ext_value(value) {
                        return err(PolicyErrorKind::InvalidExtensionValue {
                            name: name.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                    if let Some(expected) =
                        KNOWN_FIELDS.iter().find(|k| k.eq_ignore_ascii_case(name))
                    {
                        warnings.push(Warning::new(
                            "policy-field-wrong-case",
                            Some(lineno),
                            format!(
                                "RFC 8461 §3.2: field names are case-sensitive; {name:?} is an unknown field and is ignored, not {expected:?}"
                            ),
                        ));
                        wrong_case.push((name.to_owned(), expected, lineno));
                    }
                    if extensions.iter().any(|e| e.name == name) {
                        duplicate(&mut warnings);
                        continue;
                    }
                    extensions
                        .push(PolicyExtension { name: name.to_owned(), value: value.to_owned() });
                }
            }
        }
        if !seen_field {
            return Err(PolicyError::new(None, PolicyErrorKind::Empty));
        }
        let missing = |expected: &'static str, kind: PolicyErrorKind| -> PolicyError {
            match wrong_case.iter().find(|(_, e, _)| *e == expected) {
                Some((found, expected, line)) => PolicyError::new(
                    Some(*line),
                    PolicyErrorKind::FieldWrongCase { found: found.clone(), expected },
                ),
                None => PolicyError::new(None, kind),
            }
        };
        if version.is_none() {
            return Err(missing("version", PolicyErrorKind::MissingVersion));
        }
        let Some(mode) = mode else {
            return Err(missing("mode", PolicyErrorKind::MissingMode));
        };
        let Some(max_age) = max_age else {
            return Err(missing("max_age", PolicyErrorKind::MissingMaxAge));
        };
        if mx.is_empty() && mode != Mode::None {
            return Err(missing("mx", PolicyErrorKind::MissingMx));
        }
        Ok(Parsed { value: Self { mode, max_age, mx, extensions }, warnings })
    }
}

impl fmt::Display for Policy {
    /// The policy file: `version` first, then `mode`, each `mx`, `max_age`
    /// and the extensions, each line ending in LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.to_policy_lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl FromStr for Policy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map(Parsed::into_value)
    }
}

impl Serialize for Policy {
    /// Serialised as the policy text.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    const EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    fn ok(text: &str) -> Parsed<Policy> {
        Policy::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> PolicyError {
        Policy::parse(text).expect_err(text)
    }

    #[test]
    fn media_type_rules() {
        assert!(is_policy_media_type(Some("text/plain")));
        assert!(is_policy_media_type(Some("text/plain; charset=utf-8")));
        assert!(is_policy_media_type(Some("TEXT/Plain ;charset=us-ascii")));
        assert!(!is_policy_media_type(Some("text/html")));
        assert!(!is_policy_media_type(Some("text/plainx")));
        assert!(!is_policy_media_type(Some("application/octet-stream")));
        assert!(!is_policy_media_type(None));
    }

    #[test]
    fn rfc_example_lf_and_crlf() {
        let lf = ok(EXAMPLE);
        assert!(lf.is_clean(), "{:?}", lf.warnings);
        let p = &lf.value;
        assert_eq!(p.mode(), Mode::Enforce);
        assert_eq!(p.max_age().seconds(), 604_800);
        assert_eq!(p.mx().len(), 3);
        assert!(p.mx()[1].is_wildcard());
        let crlf = ok(&EXAMPLE.replace('\n', "\r\n"));
        assert_eq!(crlf.value, lf.value);
        assert!(crlf.is_clean());
        // No final line terminator.
        assert_eq!(ok(EXAMPLE.trim_end()).value, lf.value);
        // Display is the canonical text.
        assert_eq!(lf.value.to_string(), EXAMPLE);
        assert_eq!(ok(&lf.value.to_string()).value, lf.value);
    }

    #[test]
    fn field_order_and_whitespace() {
        let p = ok("mode: testing\nmx: a.example\nmax_age: 1\nversion: STSv1\n");
        assert!(p.has_warning("policy-version-not-first"));
        assert_eq!(p.warnings[0].line, Some(4));
        let p = ok("version:STSv1\nmode:\t testing \t\nmx:  a.example  \nmax_age: 1   \r\n");
        assert!(p.is_clean(), "{:?}", p.warnings);
        assert_eq!(p.value.mode(), Mode::Testing);
        assert_eq!(p.value.mx()[0].to_string(), "a.example");
    }

    #[test]
    fn duplicates_first_wins() {
        let p = ok(
            "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 10\nmax_age: 20\nversion: STSv2\n",
        );
        assert_eq!(p.value.mode(), Mode::Enforce);
        assert_eq!(p.value.max_age().seconds(), 10);
        let dups: Vec<_> = p
            .warnings
            .iter()
            .filter(|w| w.code == "policy-duplicate-field")
            .map(|w| w.line)
            .collect();
        assert_eq!(dups, vec![Some(3), Some(6), Some(7)]);
        // mx is not a duplicate: every instance counts.
        let p = ok("version: STSv1\nmode: enforce\nmx: a.example\nmx: b.example\nmax_age: 1\n");
        assert_eq!(p.value.mx().len(), 2);
        assert!(p.is_clean());
        // Duplicate extensions: first kept.
        let p = ok("version: STSv1\nmode: none\nmax_age: 1\nfoo: 1\nfoo: 2\n");
        assert_eq!(p.value.extensions().len(), 1);
        assert_eq!(p.value.extensions()[0].value(), "1");
        assert!(p.has_warning("policy-duplicate-field"));
    }

    #[test]
    fn mode_none_mx_optional() {
        let p = ok("version: STSv1\nmode: none\nmax_age: 86400\n");
        assert!(p.value.mx().is_empty());
        let p = ok("version: STSv1\nmode: none\nmx: a.example\nmax_age: 86400\n");
        assert_eq!(p.value.mx().len(), 1);
        assert!(Policy::new(Mode::None, MaxAge::new(1).unwrap(), vec![]).is_ok());
        assert_eq!(
            Policy::new(Mode::Testing, MaxAge::new(1).unwrap(), vec![]).unwrap_err().kind,
            PolicyErrorKind::MissingMx
        );
    }

    #[test]
    fn blank_lines_and_extensions() {
        let p = ok("version: STSv1\n\nmode: none\n  \nmax_age: 1\n\n");
        let blanks: Vec<_> =
            p.warnings.iter().filter(|w| w.code == "policy-blank-line").map(|w| w.line).collect();
        assert_eq!(blanks, vec![Some(2), Some(4), Some(6)]);
        let p = ok("version: STSv1\nmode: none\nmax_age: 1\nx-note: hello wörld; a=b\n");
        assert_eq!(p.value.extensions()[0].name(), "x-note");
        assert_eq!(p.value.extensions()[0].value(), "hello wörld; a=b");
        let p = ok("version: STSv1\nmode: none\nmax_age: 1\nMode: enforce\n");
        assert!(p.has_warning("policy-field-wrong-case"));
        let p = ok("version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 1\n");
        assert!(p.has_warning("policy-mx-trailing-dot"));
        assert_eq!(p.value.mx()[0].to_string(), "mail.example.com");
    }

    #[test]
    fn max_age_boundaries() {
        let base = "version: STSv1\nmode: none\nmax_age: ";
        assert_eq!(ok(&format!("{base}31557600\n")).value.max_age().seconds(), MAX_AGE_MAX);
        assert_eq!(ok(&format!("{base}0\n")).value.max_age().seconds(), 0);
        assert_eq!(
            err(&format!("{base}31557601\n")),
            PolicyError::new(Some(3), PolicyErrorKind::MaxAgeTooLarge { value: 31_557_601 })
        );
        // 10 digits are syntactically fine (but too large); 11 are not.
        assert_eq!(
            err(&format!("{base}9999999999\n")).kind,
            PolicyErrorKind::MaxAgeTooLarge { value: 9_999_999_999 }
        );
        assert_eq!(
            err(&format!("{base}00031557600\n")).kind,
            PolicyErrorKind::InvalidMaxAge { value: "00031557600".into() }
        );
        assert!(MaxAge::new(MAX_AGE_MAX).is_ok());
        assert!(MaxAge::new(MAX_AGE_MAX + 1).is_err());
    }

    #[test]
    fn ten_digit_zero_padded_is_valid() {
        let p = ok("version: STSv1\nmode: none\nmax_age: 0031557600\n");
        assert_eq!(p.value.max_age().seconds(), MAX_AGE_MAX);
    }

    #[test]
    fn size_limit() {
        let head = "version: STSv1\nmode: none\nmax_age: 1\nx: ";
        let fill = POLICY_MAX_BYTES - head.len() - 1;
        let exact = format!("{head}{}\n", "a".repeat(fill));
        assert_eq!(exact.len(), POLICY_MAX_BYTES);
        assert!(Policy::parse(&exact).is_ok());
        assert!(Policy::parse_bytes(exact.as_bytes()).is_ok());
        let over = format!("{head}{}\n", "a".repeat(fill + 1));
        assert_eq!(
            err(&over),
            PolicyError::new(None, PolicyErrorKind::TooLarge { size: POLICY_MAX_BYTES + 1 })
        );
        assert_eq!(
            Policy::parse_bytes(over.as_bytes()).unwrap_err().kind,
            PolicyErrorKind::TooLarge { size: POLICY_MAX_BYTES + 1 }
        );
    }

    #[test]
    fn ext_name_boundaries() {
        let n32 = format!("a{}", "b".repeat(31));
        let n33 = format!("a{}", "b".repeat(32));
        let base = "version: STSv1\nmode: none\nmax_age: 1\n";
        assert!(Policy::parse(&format!("{base}{n32}: v\n")).is_ok());
        assert_eq!(
            err(&format!("{base}{n33}: v\n")),
            PolicyError::new(Some(4), PolicyErrorKind::InvalidFieldName { name: n33 })
        );
    }

    #[test]
    fn error_table() {
        use PolicyErrorKind as K;
        let v = "version: STSv1\n";
        let cases: Vec<(String, Option<usize>, K)> = vec![
            ("".into(), None, K::Empty),
            ("\n\n".into(), None, K::Empty),
            (
                format!("{v}mode: none\nmax_age: 1\x0b\n"),
                Some(3),
                K::ControlCharacter { ch: '\x0b' },
            ),
            (format!("{v}mode: none\rmax_age: 1\n"), Some(2), K::ControlCharacter { ch: '\r' }),
            (format!("{v}mode: none\nmax_age: 1\r"), Some(3), K::ControlCharacter { ch: '\r' }),
            (format!("{v}mode: none\nmax_age: 1\0\n"), Some(3), K::ControlCharacter { ch: '\0' }),
            (format!("{v}mode none\n"), Some(2), K::MalformedLine { text: "mode none".into() }),
            (format!("{v}mode : none\n"), Some(2), K::InvalidFieldName { name: "mode ".into() }),
            (format!("{v} mode: none\n"), Some(2), K::InvalidFieldName { name: " mode".into() }),
            (format!("{v}: none\n"), Some(2), K::InvalidFieldName { name: "".into() }),
            ("mode: none\nmax_age: 1\n".into(), None, K::MissingVersion),
            ("version: STSv2\n".into(), Some(1), K::InvalidVersion { value: "STSv2".into() }),
            ("version: stsv1\n".into(), Some(1), K::InvalidVersion { value: "stsv1".into() }),
            (format!("{v}max_age: 1\n"), None, K::MissingMode),
            (format!("{v}mode: Enforce\n"), Some(2), K::InvalidMode { value: "Enforce".into() }),
            (format!("{v}mode: report\n"), Some(2), K::InvalidMode { value: "report".into() }),
            (format!("{v}mode:\n"), Some(2), K::InvalidMode { value: "".into() }),
            (format!("{v}mode: none\n"), None, K::MissingMaxAge),
            (
                format!("{v}mode: none\nmax_age: -1\n"),
                Some(3),
                K::InvalidMaxAge { value: "-1".into() },
            ),
            (
                format!("{v}mode: none\nmax_age: 1d\n"),
                Some(3),
                K::InvalidMaxAge { value: "1d".into() },
            ),
            (
                format!("{v}mode: none\nmax_age: 1 2\n"),
                Some(3),
                K::InvalidMaxAge { value: "1 2".into() },
            ),
            (format!("{v}mode: none\nmax_age:\n"), Some(3), K::InvalidMaxAge { value: "".into() }),
            (format!("{v}mode: enforce\nmax_age: 1\n"), None, K::MissingMx),
            (format!("{v}mode: testing\nmax_age: 1\n"), None, K::MissingMx),
            (
                format!("{v}mode: enforce\nmx:\nmax_age: 1\n"),
                Some(3),
                K::InvalidMx { value: "".into(), error: MxPatternError::Empty },
            ),
            (
                format!("{v}mode: enforce\nmx: 192.0.2.1\nmax_age: 1\n"),
                Some(3),
                K::InvalidMx {
                    value: "192.0.2.1".into(),
                    error: MxPatternError::IpAddress { value: "192.0.2.1".into() },
                },
            ),
            (
                format!("{v}mode: none\nmax_age: 1\nfoo:\n"),
                Some(4),
                K::InvalidExtensionValue { name: "foo".into(), value: "".into() },
            ),
            (
                format!("{v}mode: none\nmax_age: 1\nfoo: a\tb\n"),
                Some(4),
                K::InvalidExtensionValue { name: "foo".into(), value: "a\tb".into() },
            ),
            (
                format!("{v}Mode: enforce\nmx: a.example\nmax_age: 1\n"),
                Some(2),
                K::FieldWrongCase { found: "Mode".into(), expected: "mode" },
            ),
            (
                format!("{v}mode: enforce\nMX: a.example\nmax_age: 1\n"),
                Some(3),
                K::FieldWrongCase { found: "MX".into(), expected: "mx" },
            ),
        ];
        for (text, line, kind) in cases {
            let e = err(&text);
            assert_eq!(e, PolicyError::new(line, kind), "{text:?}");
            let shown = e.to_string();
            assert!(shown.contains("RFC 8461 §"), "{shown}");
            if let Some(l) = line {
                assert!(shown.starts_with(&format!("line {l}: RFC 8461 §")), "{shown}");
            }
        }
        assert_eq!(
            Policy::parse_bytes(b"version: STSv1\nmode: \xff\n").unwrap_err(),
            PolicyError::new(Some(2), PolicyErrorKind::NotUtf8 { offset: 21 })
        );
    }

    #[test]
    fn mx_pattern_parse() {
        for (input, shown, wildcard) in [
            ("mail.example.com", "mail.example.com", false),
            ("*.example.com", "*.example.com", true),
            ("MAIL.Example.COM", "mail.example.com", false),
            ("*.xn--bcher-kva.example", "*.xn--bcher-kva.example", true),
        ] {
            let p = MxPattern::parse(input).unwrap();
            assert_eq!(p.to_string(), shown);
            assert_eq!(p.is_wildcard(), wildcard);
        }
        use MxPatternError as E;
        let cases: Vec<(&str, fn(&E) -> bool)> = vec![
            ("", |e| matches!(e, E::Empty)),
            ("*.*.example.com", |e| matches!(e, E::MultipleWildcards { .. })),
            ("*", |e| matches!(e, E::MisplacedWildcard { .. })),
            ("*example.com", |e| matches!(e, E::MisplacedWildcard { .. })),
            ("mail.*.example.com", |e| matches!(e, E::MisplacedWildcard { .. })),
            ("*.", |e| matches!(e, E::InvalidDomain { error: DomainError::Empty, .. })),
            (".example.com", |e| matches!(e, E::InvalidDomain { .. })),
            ("192.0.2.25", |e| matches!(e, E::IpAddress { .. })),
            ("[2001:db8::25]", |e| matches!(e, E::IpAddress { .. })),
            ("2001:db8::25", |e| matches!(e, E::IpAddress { .. })),
            ("mx_1.example.com", |e| matches!(e, E::InvalidDomain { .. })),
            (
                "mx.bücher.example",
                |e| matches!(e, E::NotALabel { a_label: Some(a), .. } if a == "mx.xn--bcher-kva.example"),
            ),
            (
                "*.bücher.example",
                |e| matches!(e, E::NotALabel { a_label: Some(a), .. } if a == "*.xn--bcher-kva.example"),
            ),
        ];
        for (input, check) in cases {
            let e = MxPattern::parse(input).unwrap_err();
            assert!(check(&e), "{input}: {e:?}");
            assert!(e.to_string().starts_with("RFC 8461 §"), "{e}");
        }
    }

    #[test]
    fn mx_matching_section_4_1() {
        let w = MxPattern::parse("*.example.com").unwrap();
        let e = MxPattern::parse("mail.example.com").unwrap();
        for (pattern, host, expected) in [
            (&w, "mail.example.com", true),
            (&w, "MAIL.Example.Com", true),
            (&w, "mail.example.com.", true),
            (&w, "example.com", false),
            (&w, "a.b.example.com", false),
            (&w, ".example.com", false),
            (&w, "mail.example.com..", false),
            (&w, "mailexample.com", false),
            (&w, "mail.example.org", false),
            (&w, "", false),
            (&e, "mail.example.com", true),
            (&e, "Mail.Example.COM.", true),
            (&e, "x.mail.example.com", false),
            (&e, "example.com", false),
            (&e, "mail.example.co", false),
        ] {
            assert_eq!(pattern.matches(host), expected, "{pattern} vs {host:?}");
        }
        let policy = ok(EXAMPLE).value;
        assert_eq!(
            policy.matching_pattern("foo.example.net").map(ToString::to_string),
            Some("*.example.net".to_owned())
        );
        assert!(policy.matching_pattern("example.net").is_none());
        assert!(policy.matching_pattern("backupmx.example.com.").is_some());
    }

    #[test]
    fn policy_lines_and_serde() {
        let p = ok(EXAMPLE).value;
        assert_eq!(
            p.to_policy_lines(),
            vec![
                "version: STSv1",
                "mode: enforce",
                "mx: mail.example.com",
                "mx: *.example.net",
                "mx: backupmx.example.com",
                "max_age: 604800"
            ]
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
        assert_eq!(serde_json::to_string(&Mode::Testing).unwrap(), "\"testing\"");
        assert_eq!("none".parse::<Mode>().unwrap(), Mode::None);
        assert!("None".parse::<Mode>().is_err());
    }

    #[test]
    fn extensions_api() {
        let ext = PolicyExtension::new("x", "a b").unwrap();
        let p = Policy::new(Mode::None, MaxAge::new(5).unwrap(), vec![])
            .unwrap()
            .with_extensions(vec![ext.clone()])
            .unwrap();
        assert_eq!(ok(&p.to_string()).value, p);
        assert!(PolicyExtension::new("mode", "x").is_err());
        assert!(PolicyExtension::new("x", " a").is_err());
        assert!(PolicyExtension::new("x", "a ").is_err());
        assert!(
            Policy::new(Mode::None, MaxAge::new(5).unwrap(), vec![])
                .unwrap()
                .with_extensions(vec![ext.clone(), ext])
                .is_err()
        );
    }
}
