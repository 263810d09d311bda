//! The TLS-RPT aggregate report, RFC 8460 §4.
//!
//! §4: "The report is composed as a plaintext file encoded in the I-JSON
//! format (\[RFC7493\])." The fields are those of §4.4; every JSON key keeps
//! its RFC spelling through serde renames, and unknown fields are kept in the
//! `extra` map of the object they appeared in.
//!
//! Two parsers share one walker over a [`serde_json::Value`]:
//! - [`Report::parse_strict`] applies the RFC rules;
//! - [`Report::parse_lenient`] accepts the quirks seen in real reports and
//!   records each one as a [`Tolerated`] entry with its JSON path. A known
//!   field that is present but malformed, and is not a listed quirk, is an
//!   error naming its path in both modes: nothing is silently defaulted.
//!
//! Fields treated as optional even in strict mode, because the RFC's own
//! Appendix B or its §4.3.2.2 failure types leave them out:
//! `sending-mta-ip`, `receiving-mx-hostname`, `receiving-ip`,
//! `receiving-mx-helo`, `additional-information`, `failure-reason-code`,
//! `failure-details` and `mx-host`; `policy-string` may be absent for
//! `no-policy-found`.
//!
//! Serialising a [`Report`] gives RFC-conformant JSON with RFC 3339 UTC
//! dates (`…Z`), `mx-host` as an array (erratum EID 6241) and
//! `policy-string` always present.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::domain::{DomainError, DomainName};
use crate::result_type::ResultType;

/// Largest report accepted, 10 MiB. RFC 8460 §5.2 notes that receivers
/// commonly limit the size of reports they accept; 10 MB is the common
/// figure.
pub const REPORT_MAX_BYTES: usize = 10 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A TLS-RPT aggregate report (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `organization-name`: the organisation responsible for the report.
    #[serde(rename = "organization-name")]
    pub organization_name: String,
    /// `date-range`.
    #[serde(rename = "date-range")]
    pub date_range: DateRange,
    /// `contact-info`: how to contact the party responsible for the report.
    /// `None` only when parsed leniently from a report that lacked it.
    #[serde(rename = "contact-info", skip_serializing_if = "Option::is_none")]
    pub contact_info: Option<String>,
    /// `report-id`: a unique identifier for the report.
    #[serde(rename = "report-id")]
    pub report_id: String,
    /// `policies`: one entry per policy applied.
    pub policies: Vec<PolicyReport>,
    /// Unknown top-level fields, in input order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `date-range` (RFC 8460 §4.4). §4.1 asks for reports covering a full UTC
/// day, 00:00-24:00. Stored in UTC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DateRange {
    /// `start-datetime`.
    #[serde(rename = "start-datetime", serialize_with = "ser_datetime")]
    pub start: OffsetDateTime,
    /// `end-datetime`.
    #[serde(rename = "end-datetime", serialize_with = "ser_datetime")]
    pub end: OffsetDateTime,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `policies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// `policy`.
    pub policy: PolicyDetails,
    /// `summary`.
    pub summary: Summary,
    /// `failure-details`.
    #[serde(rename = "failure-details")]
    pub failure_details: Vec<FailureDetail>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `policy` (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDetails {
    /// `policy-type`.
    #[serde(rename = "policy-type")]
    pub policy_type: PolicyType,
    /// `policy-string`: for STS, one policy line per element (RFC 8460 §4.5).
    #[serde(rename = "policy-string")]
    pub policy_string: Vec<String>,
    /// `policy-domain`, in A-label form.
    #[serde(rename = "policy-domain", skip_serializing_if = "Option::is_none")]
    pub policy_domain: Option<DomainName>,
    /// `mx-host`: the MX patterns of an STS policy, as given (prefixes such
    /// as `mx: ` seen in the wild are kept).
    #[serde(rename = "mx-host", skip_serializing_if = "Vec::is_empty")]
    pub mx_host: Vec<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `policy-type` (RFC 8460 §4.4): "tlsa", "sts" or "no-policy-found".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// `sts`: an MTA-STS policy.
    Sts,
    /// `tlsa`: a DANE TLSA policy.
    Tlsa,
    /// `no-policy-found`.
    NoPolicyFound,
    /// Any other value (lenient parsing only).
    Other(String),
}

impl PolicyType {
    /// The JSON string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sts => "sts",
            Self::Tlsa => "tlsa",
            Self::NoPolicyFound => "no-policy-found",
            Self::Other(s) => s,
        }
    }

    /// Maps the JSON string; unknown values become [`PolicyType::Other`].
    pub fn from_name(s: &str) -> Self {
        match s {
            "sts" => Self::Sts,
            "tlsa" => Self::Tlsa,
            "no-policy-found" => Self::NoPolicyFound,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PolicyType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PolicyType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from_name(&s))
    }
}

/// `summary` (RFC 8460 §4.2, §4.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// `total-successful-session-count`.
    #[serde(rename = "total-successful-session-count")]
    pub total_successful_session_count: u64,
    /// `total-failure-session-count`.
    #[serde(rename = "total-failure-session-count")]
    pub total_failure_session_count: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `failure-details` (RFC 8460 §4.3, §4.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureDetail {
    /// `result-type`.
    #[serde(rename = "result-type")]
    pub result_type: ResultType,
    /// `sending-mta-ip`.
    #[serde(rename = "sending-mta-ip", skip_serializing_if = "Option::is_none")]
    pub sending_mta_ip: Option<IpAddr>,
    /// `receiving-mx-hostname`.
    #[serde(rename = "receiving-mx-hostname", skip_serializing_if = "Option::is_none")]
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    #[serde(rename = "receiving-mx-helo", skip_serializing_if = "Option::is_none")]
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`.
    #[serde(rename = "receiving-ip", skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<IpAddr>,
    /// `failed-session-count`.
    #[serde(rename = "failed-session-count")]
    pub failed_session_count: u64,
    /// `additional-information` (RFC 8460 "additional-info-uri"; not
    /// validated as a URI, since Appendix B itself puts spaces in it).
    #[serde(rename = "additional-information", skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<String>,
    /// `failure-reason-code`.
    #[serde(rename = "failure-reason-code", skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn ser_datetime<S: Serializer>(dt: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let utc = dt
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| serde::ser::Error::custom("date-time out of range"))?;
    let text = utc.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

/// A deviation from RFC 8460 accepted by [`Report::parse_lenient`], or a
/// noteworthy fact about the report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tolerated {
    /// JSON path, e.g. `policies[0].policy.mx-host`.
    pub path: String,
    /// Stable kebab-case code; see [`Report::parse_lenient`] for the list.
    pub code: &'static str,
    /// Explanation citing the RFC section.
    pub message: String,
    /// Whether [`Report::parse_strict`] rejects the input because of this.
    pub rfc_violation: bool,
}

impl fmt::Display for Tolerated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.code)
    }
}

/// What is wrong with a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportErrorKind {
    /// Larger than [`REPORT_MAX_BYTES`].
    #[error(
        "RFC 8460 §5.2: the report is {size} bytes, more than the {REPORT_MAX_BYTES}-byte limit"
    )]
    TooLarge {
        /// Size in bytes.
        size: usize,
    },
    /// Not parseable JSON (including non-UTF-8 input and nesting too deep).
    #[error("RFC 8460 §4: the report is not valid I-JSON: {message}")]
    Json {
        /// The parser's message.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A UTF-8 byte-order mark before the JSON text.
    #[error("RFC 8259 §8.1: JSON text must not begin with a byte-order mark")]
    ByteOrderMark,
    /// A required field is absent.
    #[error("RFC 8460 §4.4: required field is missing")]
    Missing,
    /// A field has the wrong JSON type.
    #[error("RFC 8460 §4.4: expected {expected}, found {found}")]
    WrongType {
        /// The JSON type required.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// Not an RFC 3339 date-time.
    #[error("RFC 8460 §4.4: {value:?} is not an RFC 3339 date-time")]
    InvalidDateTime {
        /// The value.
        value: String,
    },
    /// An RFC 3339 date-time without the required offset.
    #[error("RFC 3339 §5.6: {value:?} has no time zone offset (\"Z\" or \"±hh:mm\")")]
    MissingTimezone {
        /// The value.
        value: String,
    },
    /// A date-time whose UTC form falls outside years 0000–9999.
    #[error("RFC 3339 §5.6: {value:?} is outside the years 0000 to 9999 in UTC")]
    DateOutOfRange {
        /// The value.
        value: String,
    },
    /// `end-datetime` before `start-datetime`.
    #[error("RFC 8460 §4.4: end-datetime {end} is before start-datetime {start}")]
    DateRangeReversed {
        /// Start, RFC 3339.
        start: String,
        /// End, RFC 3339.
        end: String,
    },
    /// A count that is not a non-negative integer fitting in 64 bits.
    #[error("RFC 8460 §4.4: a session count must be a non-negative integer, found {value}")]
    InvalidCount {
        /// The JSON text of the value.
        value: String,
    },
    /// Not an IPv4 or IPv6 address.
    #[error("RFC 8460 §4.4: {value:?} is not an IPv4 or IPv6 address")]
    InvalidIp {
        /// The value.
        value: String,
    },
    /// `policy-domain` not a domain name.
    #[error("RFC 8460 §4.4: policy-domain {value:?} is invalid: {error}")]
    InvalidDomain {
        /// The value.
        value: String,
        /// Why.
        #[source]
        error: DomainError,
    },
    /// `policy-type` other than sts, tlsa, no-policy-found.
    #[error(
        "RFC 8460 §4.4: policy-type must be \"sts\", \"tlsa\" or \"no-policy-found\", found {value:?}"
    )]
    UnknownPolicyType {
        /// The value.
        value: String,
    },
}

/// A report error at a JSON path (empty for the whole document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportError {
    /// JSON path, e.g. `policies[0].summary.total-failure-session-count`.
    pub path: String,
    /// What is wrong.
    pub kind: ReportErrorKind,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ReportErrorKind::InvalidDomain { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Report {
    /// Parses a report with the rules of RFC 8460 §4: required fields
    /// present and well-typed, RFC 3339 date-times with an offset,
    /// `policies` an array, `mx-host` an array, `policy-type` one of the
    /// three defined values, counts non-negative integers.
    pub fn parse_strict(json: &[u8]) -> Result<Self, ReportError> {
        Walker::new(false).parse(json)
    }

    /// Parses a report from the wild, accepting known quirks and recording
    /// each in the returned list.
    ///
    /// Codes that strict parsing rejects (`rfc_violation: true`):
    /// - `utf8-bom`: a byte-order mark before the JSON;
    /// - `field-null`: a field set to `null` is read as absent (e.g.
    ///   Stalwart's `contact-info: null`);
    /// - `contact-info-missing`;
    /// - `datetime-no-timezone`: no offset (Microsoft 2023); UTC assumed;
    /// - `date-range-reversed`: end before start;
    /// - `policy-type-unknown`: kept as [`PolicyType::Other`];
    /// - `policy-string-missing`: for `sts`/`tlsa`; read as empty;
    /// - `policy-domain-missing` (tlsrpt-reporter, Google `no-policy-found`
    ///   variants); `policy-domain-u-label`: converted to the A-label;
    /// - `mx-host-string`: a single string (RFC 8460 Appendix B, erratum
    ///   EID 6241) read as a one-element array;
    /// - `count-missing`: a summary count absent; read as 0;
    /// - `ip-empty`: an IP field holding `""`; read as absent.
    ///
    /// Notes (`rfc_violation: false`): `date-range-end-next-day` (end at
    /// 00:00:00 of the following day, Mail.ru and Stalwart),
    /// `policy-string-json-encoded` (Microsoft TLSA: one element holding a
    /// JSON array), `mx-host-prefixed` (`"mx: host"`, kept as is),
    /// `result-type-unknown`, `failure-detail-field-missing` (no
    /// `sending-mta-ip`, `receiving-mx-hostname` or `receiving-ip`),
    /// `failure-count-mismatch` (the sum of `failed-session-count` differs
    /// from `total-failure-session-count`), `unknown-field`.
    pub fn parse_lenient(json: &[u8]) -> Result<(Self, Vec<Tolerated>), ReportError> {
        let mut walker = Walker::new(true);
        let report = walker.parse(json)?;
        Ok((report, walker.tolerated))
    }

    /// Strict parsing of an already-decoded JSON value.
    pub fn from_value_strict(value: Value) -> Result<Self, ReportError> {
        Walker::new(false).report(value)
    }

    /// Sum of `total-successful-session-count` over all policies
    /// (saturating).
    pub fn total_successful(&self) -> u64 {
        self.policies
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.summary.total_successful_session_count))
    }

    /// Sum of `total-failure-session-count` over all policies (saturating).
    pub fn total_failure(&self) -> u64 {
        self.policies
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.summary.total_failure_session_count))
    }
}

impl<'de> Deserialize<'de> for Report {
    /// Deserialises with the strict rules of [`Report::parse_strict`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value_strict(value).map_err(serde::de::Error::custom)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

fn err(path: impl Into<String>, kind: ReportErrorKind) -> ReportError {
    ReportError { path: path.into(), kind }
}

fn wrong_type(path: impl Into<String>, expected: &'static str, found: &Value) -> ReportError {
    err(path, ReportErrorKind::WrongType { expected, found: type_name(found) })
}

fn rfc3339(dt: OffsetDateTime) -> String {
    dt.format(&Rfc3339).unwrap_or_else(|_| format!("{dt}"))
}

struct Walker {
    lenient: bool,
    tolerated: Vec<Tolerated>,
}

impl Walker {
    fn new(lenient: bool) -> Self {
        Self { lenient, tolerated: Vec::new() }
    }

    /// An RFC deviation: an error when strict, recorded when lenient.
    fn quirk(
        &mut self,
        path: &str,
        code: &'static str,
        message: String,
        strict: ReportErrorKind,
    ) -> Result<(), ReportError> {
        if !self.lenient {
            return Err(err(path, strict));
        }
        self.tolerated.push(Tolerated {
            path: path.to_owned(),
            code,
            message,
            rfc_violation: true,
        });
        Ok(())
    }

    /// A fact worth knowing that is not an RFC violation (lenient only).
    fn note(&mut self, path: &str, code: &'static str, message: String) {
        if self.lenient {
            self.tolerated.push(Tolerated {
                path: path.to_owned(),
                code,
                message,
                rfc_violation: false,
            });
        }
    }

    fn parse(&mut self, json: &[u8]) -> Result<Report, ReportError> {
        if json.len() > REPORT_MAX_BYTES {
            return Err(err("", ReportErrorKind::TooLarge { size: json.len() }));
        }
        let json = match json.strip_prefix(UTF8_BOM) {
            Some(rest) => {
                self.quirk(
                    "",
                    "utf8-bom",
                    "RFC 8259 §8.1: a byte-order mark precedes the JSON text; ignored".into(),
                    ReportErrorKind::ByteOrderMark,
                )?;
                rest
            }
            None => json,
        };
        let value: Value = serde_json::from_slice(json).map_err(|e| {
            err(
                "",
                ReportErrorKind::Json {
                    message: e.to_string(),
                    line: e.line(),
                    column: e.column(),
                },
            )
        })?;
        self.report(value)
    }

    /// Removes `key`; a `null` counts as absent when lenient (recorded).
    fn take(
        &mut self,
        obj: &mut Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<Option<Value>, ReportError> {
        match obj.shift_remove(key) {
            Some(Value::Null) if self.lenient => {
                self.quirk(
                    &key_path(parent, key),
                    "field-null",
                    "RFC 8460 §4.4: the field is null; read as absent".into(),
                    ReportErrorKind::Missing,
                )?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    fn object(&self, value: Value, path: &str) -> Result<Map<String, Value>, ReportError> {
        match value {
            Value::Object(m) => Ok(m),
            other => Err(wrong_type(path, "an object", &other)),
        }
    }

    fn req_object(
        &mut self,
        obj: &mut Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<Map<String, Value>, ReportError> {
        let path = key_path(parent, key);
        match self.take(obj, parent, key)? {
            None => Err(err(path, ReportErrorKind::Missing)),
            Some(v) => self.object(v, &path),
        }
    }

    fn req_string(
        &mut self,
        obj: &mut Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<String, ReportError> {
        let path = key_path(parent, key);
        match self.take(obj, parent, key)? {
            None => Err(err(path, ReportErrorKind::Missing)),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(wrong_type(path, "a string", &v)),
        }
    }

    fn opt_string(
        &mut self,
        obj: &mut Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<Option<String>, ReportError> {
        match self.take(obj, parent, key)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(key_path(parent, key), "a string", &v)),
        }
    }

    fn count_value(&self, value: &Value, path: &str) -> Result<u64, ReportError> {
        value
            .as_u64()
            .ok_or_else(|| err(path, ReportErrorKind::InvalidCount { value: value.to_string() }))
    }

    fn extras(&mut self, obj: Map<String, Value>, parent: &str) -> Map<String, Value> {
        if self.lenient {
            for key in obj.keys() {
                let path = key_path(parent, key);
                self.note(
                    &path,
                    "unknown-field",
                    format!("RFC 8460 §4.4 does not define {key:?}; kept as is"),
                );
            }
        }
        obj
    }

    fn report(&mut self, value: Value) -> Result<Report, ReportError> {
        let mut obj = self.object(value, "")?;
        let organization_name = self.req_string(&mut obj, "", "organization-name")?;
        let date_range = self.date_range(&mut obj)?;
        let contact_info = match self.take(&mut obj, "", "contact-info")? {
            None => {
                self.quirk(
                    "contact-info",
                    "contact-info-missing",
                    "RFC 8460 §4.4: contact-info is missing".into(),
                    ReportErrorKind::Missing,
                )?;
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(v) => return Err(wrong_type("contact-info", "a string", &v)),
        };
        let report_id = self.req_string(&mut obj, "", "report-id")?;
        let policies = match self.take(&mut obj, "", "policies")? {
            None => return Err(err("policies", ReportErrorKind::Missing)),
            Some(Value::Array(items)) => items,
            Some(v) => return Err(wrong_type("policies", "an array", &v)),
        };
        let mut out = Vec::with_capacity(policies.len());
        for (i, item) in policies.into_iter().enumerate() {
            out.push(self.policy_report(item, &format!("policies[{i}]"))?);
        }
        let extra = self.extras(obj, "");
        Ok(Report { organization_name, date_range, contact_info, report_id, policies: out, extra })
    }

    fn date_range(&mut self, obj: &mut Map<String, Value>) -> Result<DateRange, ReportError> {
        let parent = "date-range";
        let mut dr = self.req_object(obj, "", parent)?;
        let start = self.datetime(&mut dr, parent, "start-datetime")?;
        let end = self.datetime(&mut dr, parent, "end-datetime")?;
        if end < start {
            self.quirk(
                parent,
                "date-range-reversed",
                "RFC 8460 §4.4: end-datetime is before start-datetime".into(),
                ReportErrorKind::DateRangeReversed { start: rfc3339(start), end: rfc3339(end) },
            )?;
        }
        let midnight = time::Time::MIDNIGHT;
        if start.time() == midnight
            && end.time() == midnight
            && start.date().next_day() == Some(end.date())
        {
            self.note(
                "date-range.end-datetime",
                "date-range-end-next-day",
                "RFC 8460 §4.1: the range ends at 00:00:00 of the next day rather than 23:59:59 (Appendix B style); the day is still covered".into(),
            );
        }
        let extra = self.extras(dr, parent);
        Ok(DateRange { start, end, extra })
    }

    fn datetime(
        &mut self,
        obj: &mut Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<OffsetDateTime, ReportError> {
        let path = key_path(parent, key);
        let text = self.req_string(obj, parent, key)?;
        let parsed = match OffsetDateTime::parse(&text, &Rfc3339) {
            Ok(dt) => dt,
            Err(_) => {
                let local = PrimitiveDateTime::parse(
                    &text,
                    format_description!(
                        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
                    ),
                )
                .map_err(|_| {
                    err(path.as_str(), ReportErrorKind::InvalidDateTime { value: text.clone() })
                })?;
                self.quirk(
                    &path,
                    "datetime-no-timezone",
                    format!("RFC 3339 §5.6: {text:?} has no time zone offset; UTC assumed"),
                    ReportErrorKind::MissingTimezone { value: text.clone() },
                )?;
                local.assume_utc()
            }
        };
        match parsed.checked_to_offset(UtcOffset::UTC) {
            Some(utc) if (0..=9999).contains(&utc.year()) => Ok(utc),
            _ => Err(err(path, ReportErrorKind::DateOutOfRange { value: text })),
        }
    }

    fn policy_report(&mut self, value: Value, path: &str) -> Result<PolicyReport, ReportError> {
        let mut obj = self.object(value, path)?;
        let policy_path = key_path(path, "policy");
        let mut policy_obj = self.req_object(&mut obj, path, "policy")?;
        let policy = self.policy_details(&mut policy_obj, &policy_path)?;
        let policy_extra = self.extras(policy_obj, &policy_path);
        let policy = PolicyDetails { extra: policy_extra, ..policy };

        let summary_path = key_path(path, "summary");
        let mut summary_obj = self.req_object(&mut obj, path, "summary")?;
        let mut counts = [0u64; 2];
        for (slot, key) in
            counts.iter_mut().zip(["total-successful-session-count", "total-failure-session-count"])
        {
            let p = key_path(&summary_path, key);
            *slot = match self.take(&mut summary_obj, &summary_path, key)? {
                Some(v) => self.count_value(&v, &p)?,
                None => {
                    self.quirk(
                        &p,
                        "count-missing",
                        format!("RFC 8460 §4.4: {key} is missing; read as 0"),
                        ReportErrorKind::Missing,
                    )?;
                    0
                }
            };
        }
        let summary = Summary {
            total_successful_session_count: counts[0],
            total_failure_session_count: counts[1],
            extra: self.extras(summary_obj, &summary_path),
        };

        let details_path = key_path(path, "failure-details");
        let details = match self.take(&mut obj, path, "failure-details")? {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(v) => return Err(wrong_type(details_path, "an array", &v)),
        };
        let mut failure_details = Vec::with_capacity(details.len());
        for (i, item) in details.into_iter().enumerate() {
            failure_details.push(self.failure_detail(item, &format!("{details_path}[{i}]"))?);
        }
        if !failure_details.is_empty() {
            let sum =
                failure_details.iter().try_fold(0u64, |a, d| a.checked_add(d.failed_session_count));
            if sum != Some(summary.total_failure_session_count) {
                let shown = sum.map_or_else(|| "more than 2^64".to_owned(), |s| s.to_string());
                self.note(
                    &key_path(&summary_path, "total-failure-session-count"),
                    "failure-count-mismatch",
                    format!(
                        "RFC 8460 §4.4: total-failure-session-count is {} but the failed-session-count values add up to {shown} (failure types may overlap, so totals cannot be derived from details)",
                        summary.total_failure_session_count
                    ),
                );
            }
        }
        let extra = self.extras(obj, path);
        Ok(PolicyReport { policy, summary, failure_details, extra })
    }

    fn policy_details(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &str,
    ) -> Result<PolicyDetails, ReportError> {
        let type_text = self.req_string(obj, path, "policy-type")?;
        let policy_type = PolicyType::from_name(&type_text);
        if let PolicyType::Other(value) = &policy_type {
            self.quirk(
                &key_path(path, "policy-type"),
                "policy-type-unknown",
                format!("RFC 8460 §4.4: policy-type {value:?} is not \"sts\", \"tlsa\" or \"no-policy-found\"; kept as is"),
                ReportErrorKind::UnknownPolicyType {
                    value: value.clone(),
                },
            )?;
        }

        let ps_path = key_path(path, "policy-string");
        let policy_string = match self.take(obj, path, "policy-string")? {
            None => {
                if policy_type != PolicyType::NoPolicyFound {
                    self.quirk(
                        &ps_path,
                        "policy-string-missing",
                        format!("RFC 8460 §4.4: policy-string is missing for policy-type {type_text:?}; read as empty"),
                        ReportErrorKind::Missing,
                    )?;
                }
                Vec::new()
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(wrong_type(format!("{ps_path}[{i}]"), "a string", &other));
                        }
                    }
                }
                if policy_type == PolicyType::Tlsa
                    && out.len() == 1
                    && out[0].starts_with('[')
                    && serde_json::from_str::<Vec<String>>(&out[0]).is_ok()
                {
                    self.note(
                        &format!("{ps_path}[0]"),
                        "policy-string-json-encoded",
                        "RFC 8460 §4.5: the TLSA records are one JSON-encoded array in a single string instead of one string per record; kept as is".into(),
                    );
                }
                out
            }
            Some(v) => return Err(wrong_type(ps_path, "an array of strings", &v)),
        };

        let pd_path = key_path(path, "policy-domain");
        let policy_domain = match self.take(obj, path, "policy-domain")? {
            None => {
                self.quirk(
                    &pd_path,
                    "policy-domain-missing",
                    "RFC 8460 §4.4: policy-domain is missing".into(),
                    ReportErrorKind::Missing,
                )?;
                None
            }
            Some(Value::String(s)) => match DomainName::parse_ascii(&s) {
                Ok(d) => Some(d),
                Err(error @ DomainError::NotALabel { .. }) => {
                    match DomainName::from_user_input(&s) {
                        Ok(d) => {
                            self.quirk(
                                &pd_path,
                                "policy-domain-u-label",
                                format!(
                                    "RFC 8460 §4.4: policy-domain {s:?} is a U-label; read as {:?}",
                                    d.as_str()
                                ),
                                ReportErrorKind::InvalidDomain { value: s.clone(), error },
                            )?;
                            Some(d)
                        }
                        Err(_) => {
                            return Err(err(
                                pd_path,
                                ReportErrorKind::InvalidDomain { value: s, error },
                            ));
                        }
                    }
                }
                Err(error) => {
                    return Err(err(pd_path, ReportErrorKind::InvalidDomain { value: s, error }));
                }
            },
            Some(v) => return Err(wrong_type(pd_path, "a string", &v)),
        };

        let mx_path = key_path(path, "mx-host");
        let mx_host = match self.take(obj, path, "mx-host")? {
            None => Vec::new(),
            Some(Value::String(s)) => {
                self.quirk(
                    &mx_path,
                    "mx-host-string",
                    "RFC 8460 §4.4 (erratum EID 6241): mx-host must be an array; a single string (as in Appendix B) is read as a one-element array".into(),
                    ReportErrorKind::WrongType {
                        expected: "an array of strings",
                        found: "a string",
                    },
                )?;
                vec![s]
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(wrong_type(format!("{mx_path}[{i}]"), "a string", &other));
                        }
                    }
                }
                out
            }
            Some(v) => return Err(wrong_type(mx_path, "an array of strings", &v)),
        };
        for (i, mx) in mx_host.iter().enumerate() {
            if mx.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("mx:")) {
                self.note(
                    &format!("{mx_path}[{i}]"),
                    "mx-host-prefixed",
                    format!("RFC 8460 §4.4: mx-host {mx:?} carries the policy-line prefix \"mx:\"; kept as is"),
                );
            }
        }
        Ok(PolicyDetails { policy_type, policy_string, policy_domain, mx_host, extra: Map::new() })
    }

    fn ip(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<IpAddr>, ReportError> {
        let p = key_path(path, key);
        match self.take(obj, path, key)? {
            None => {
                self.note(
                    &p,
                    "failure-detail-field-missing",
                    format!("RFC 8460 §4.4: {key} is absent"),
                );
                Ok(None)
            }
            Some(Value::String(s)) if s.is_empty() => {
                self.quirk(
                    &p,
                    "ip-empty",
                    format!("RFC 8460 §4.4: {key} is an empty string; read as absent"),
                    ReportErrorKind::InvalidIp { value: s },
                )?;
                Ok(None)
            }
            Some(Value::String(s)) => match s.parse::<IpAddr>() {
                Ok(ip) => Ok(Some(ip)),
                Err(_) => Err(err(p, ReportErrorKind::InvalidIp { value: s })),
            },
            Some(v) => Err(wrong_type(p, "a string", &v)),
        }
    }

    fn failure_detail(&mut self, value: Value, path: &str) -> Result<FailureDetail, ReportError> {
        let mut obj = self.object(value, path)?;
        let rt_text = self.req_string(&mut obj, path, "result-type")?;
        let result_type = ResultType::from_name(&rt_text);
        if !result_type.is_registered() {
            self.note(
                &key_path(path, "result-type"),
                "result-type-unknown",
                format!(
                    "RFC 8460 §4.3: result-type {rt_text:?} is not in the registry; kept as is"
                ),
            );
        }
        let sending_mta_ip = self.ip(&mut obj, path, "sending-mta-ip")?;
        let receiving_mx_hostname = self.opt_string(&mut obj, path, "receiving-mx-hostname")?;
        if receiving_mx_hostname.is_none() {
            self.note(
                &key_path(path, "receiving-mx-hostname"),
                "failure-detail-field-missing",
                "RFC 8460 §4.4: receiving-mx-hostname is absent".into(),
            );
        }
        let receiving_mx_helo = self.opt_string(&mut obj, path, "receiving-mx-helo")?;
        let receiving_ip = self.ip(&mut obj, path, "receiving-ip")?;
        let count_path = key_path(path, "failed-session-count");
        let failed_session_count = match self.take(&mut obj, path, "failed-session-count")? {
            None => return Err(err(count_path, ReportErrorKind::Missing)),
            Some(v) => self.count_value(&v, &count_path)?,
        };
        let additional_information = self.opt_string(&mut obj, path, "additional-information")?;
        let failure_reason_code = self.opt_string(&mut obj, path, "failure-reason-code")?;
        let extra = self.extras(obj, path);
        Ok(FailureDetail {
            result_type,
            sending_mta_ip,
            receiving_mx_hostname,
            receiving_mx_helo,
            receiving_ip,
            failed_session_count,
            additional_information,
            failure_reason_code,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "organization-name": "Company-X",
            "date-range": {
                "start-datetime": "2016-04-01T00:00:00Z",
                "end-datetime": "2016-04-01T23:59:59Z"
            },
            "contact-info": "sts-reporting@company-x.example",
            "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
            "policies": [{
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing",
                                      "mx: *.mail.company-y.example", "max_age: 86400"],
                    "policy-domain": "company-y.example",
                    "mx-host": ["*.mail.company-y.example"]
                },
                "summary": {
                    "total-successful-session-count": 5326,
                    "total-failure-session-count": 303
                },
                "failure-details": [{
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "2001:db8:abcd:0012::1",
                    "receiving-mx-hostname": "mx1.mail.company-y.example",
                    "receiving-ip": "203.0.113.56",
                    "failed-session-count": 303
                }]
            }]
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    fn edit(f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v = base();
        f(&mut v);
        bytes(&v)
    }

    fn codes(t: &[Tolerated]) -> Vec<&'static str> {
        t.iter().map(|t| t.code).collect()
    }

    #[test]
    fn strict_accepts_clean_report() {
        let r = Report::parse_strict(&bytes(&base())).unwrap();
        assert_eq!(r.organization_name, "Company-X");
        assert_eq!(r.policies[0].policy.policy_type, PolicyType::Sts);
        assert_eq!(r.policies[0].failure_details[0].result_type, ResultType::CertificateExpired);
        let (l, t) = Report::parse_lenient(&bytes(&base())).unwrap();
        assert_eq!(l, r);
        assert!(t.is_empty(), "{t:?}");
        assert_eq!(r.total_successful(), 5326);
        assert_eq!(r.total_failure(), 303);
    }

    #[test]
    fn serialize_uses_rfc_keys_and_utc() {
        let input = edit(|v| {
            v["date-range"]["start-datetime"] = json!("2016-04-01T02:00:00+02:00");
        });
        let r = Report::parse_strict(&input).unwrap();
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["date-range"]["start-datetime"], "2016-04-01T00:00:00Z");
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec!["organization-name", "date-range", "contact-info", "report-id", "policies"]
        );
        let fd = &out["policies"][0]["failure-details"][0];
        assert_eq!(fd["sending-mta-ip"], "2001:db8:abcd:12::1");
        assert!(fd.get("receiving-mx-helo").is_none());
        assert_eq!(Report::parse_strict(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
        let via_serde: Report = serde_json::from_value(out).unwrap();
        assert_eq!(via_serde, r);
    }

    #[test]
    fn unknown_fields_kept() {
        let input = edit(|v| {
            v["x-top"] = json!(1);
            v["policies"][0]["policy"]["x-p"] = json!([true]);
            v["policies"][0]["failure-details"][0]["x-fd"] = json!({"a": null});
        });
        let r = Report::parse_strict(&input).unwrap();
        assert_eq!(r.extra["x-top"], json!(1));
        assert_eq!(r.policies[0].policy.extra["x-p"], json!([true]));
        let (_, t) = Report::parse_lenient(&input).unwrap();
        assert_eq!(codes(&t), vec!["unknown-field"; 3]);
        assert_eq!(t[0].path, "policies[0].policy.x-p");
        let again = Report::parse_strict(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn tolerated_quirks() {
        type Edit = fn(&mut Value);
        let cases: Vec<(Edit, &str, &str, ReportErrorKind)> = vec![
            (
                |v| v["date-range"]["start-datetime"] = json!("2016-04-01T00:00:00"),
                "datetime-no-timezone",
                "date-range.start-datetime",
                ReportErrorKind::MissingTimezone { value: "2016-04-01T00:00:00".into() },
            ),
            (
                |v| v["contact-info"] = Value::Null,
                "field-null",
                "contact-info",
                ReportErrorKind::WrongType { expected: "a string", found: "null" },
            ),
            (
                |v| {
                    v.as_object_mut().unwrap().shift_remove("contact-info");
                },
                "contact-info-missing",
                "contact-info",
                ReportErrorKind::Missing,
            ),
            (
                |v| v["policies"][0]["policy"]["mx-host"] = json!("*.mail.company-y.example"),
                "mx-host-string",
                "policies[0].policy.mx-host",
                ReportErrorKind::WrongType { expected: "an array of strings", found: "a string" },
            ),
            (
                |v| {
                    v["policies"][0]["policy"]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("policy-domain");
                },
                "policy-domain-missing",
                "policies[0].policy.policy-domain",
                ReportErrorKind::Missing,
            ),
            (
                |v| {
                    v["policies"][0]["policy"]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("policy-string");
                },
                "policy-string-missing",
                "policies[0].policy.policy-string",
                ReportErrorKind::Missing,
            ),
            (
                |v| v["policies"][0]["policy"]["policy-type"] = json!("weird"),
                "policy-type-unknown",
                "policies[0].policy.policy-type",
                ReportErrorKind::UnknownPolicyType { value: "weird".into() },
            ),
            (
                |v| {
                    v["policies"][0]["summary"]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("total-failure-session-count");
                },
                "count-missing",
                "policies[0].summary.total-failure-session-count",
                ReportErrorKind::Missing,
            ),
            (
                |v| v["policies"][0]["failure-details"][0]["receiving-ip"] = json!(""),
                "ip-empty",
                "policies[0].failure-details[0].receiving-ip",
                ReportErrorKind::InvalidIp { value: "".into() },
            ),
            (
                |v| v["policies"][0]["policy"]["policy-domain"] = json!("bücher.example"),
                "policy-domain-u-label",
                "policies[0].policy.policy-domain",
                ReportErrorKind::InvalidDomain {
                    value: "bücher.example".into(),
                    error: DomainError::NotALabel {
                        input: "bücher.example".into(),
                        a_label: Some("xn--bcher-kva.example".into()),
                    },
                },
            ),
            (
                |v| v["date-range"]["end-datetime"] = json!("2016-03-31T00:00:00Z"),
                "date-range-reversed",
                "date-range",
                ReportErrorKind::DateRangeReversed {
                    start: "2016-04-01T00:00:00Z".into(),
                    end: "2016-03-31T00:00:00Z".into(),
                },
            ),
        ];
        for (f, code, path, strict_kind) in cases {
            let input = edit(f);
            let (r, t) = Report::parse_lenient(&input).unwrap_or_else(|e| panic!("{code}: {e}"));
            let hit = t.iter().find(|t| t.code == code).unwrap_or_else(|| panic!("{code}: {t:?}"));
            assert_eq!(hit.path, path, "{code}");
            assert!(hit.rfc_violation, "{code}");
            let e = Report::parse_strict(&input).unwrap_err();
            assert_eq!(e, ReportError { path: path.into(), kind: strict_kind }, "{code}");
            // What lenient parsing produced serialises to JSON the lenient
            // parser reads back identically.
            let again = Report::parse_lenient(&serde_json::to_vec(&r).unwrap()).unwrap().0;
            assert_eq!(again, r, "{code}");
        }
    }

    #[test]
    fn notes() {
        let input = edit(|v| {
            v["date-range"]["end-datetime"] = json!("2016-04-02T00:00:00Z");
            v["policies"][0]["policy"]["mx-host"] = json!(["mx: mx.example"]);
            v["policies"][0]["failure-details"][0]["failed-session-count"] = json!(2);
            v["policies"][0]["failure-details"][0]["result-type"] = json!("new-type");
            v["policies"][0]["failure-details"][0]
                .as_object_mut()
                .unwrap()
                .shift_remove("sending-mta-ip");
        });
        let r = Report::parse_strict(&input).unwrap();
        assert_eq!(
            r.policies[0].failure_details[0].result_type,
            ResultType::Other("new-type".into())
        );
        let (_, t) = Report::parse_lenient(&input).unwrap();
        let mut c = codes(&t);
        c.sort_unstable();
        assert_eq!(
            c,
            vec![
                "date-range-end-next-day",
                "failure-count-mismatch",
                "failure-detail-field-missing",
                "mx-host-prefixed",
                "result-type-unknown"
            ]
        );
        assert!(t.iter().all(|t| !t.rfc_violation));
        let tlsa = edit(|v| {
            v["policies"][0]["policy"]["policy-type"] = json!("tlsa");
            v["policies"][0]["policy"]["policy-string"] = json!(["[\"3 1 1 AB\",\"3 1 1 CD\"]"]);
        });
        let (_, t) = Report::parse_lenient(&tlsa).unwrap();
        assert_eq!(codes(&t), vec!["policy-string-json-encoded"]);
    }

    #[test]
    fn errors_name_their_path() {
        type Edit = fn(&mut Value);
        let cases: Vec<(Edit, &str, fn(&ReportErrorKind) -> bool)> = vec![
            (|v| *v = json!([]), "", |k| matches!(k, ReportErrorKind::WrongType { .. })),
            (
                |v| {
                    v.as_object_mut().unwrap().shift_remove("organization-name");
                },
                "organization-name",
                |k| matches!(k, ReportErrorKind::Missing),
            ),
            (
                |v| v["report-id"] = json!(5),
                "report-id",
                |k| matches!(k, ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["policies"] = json!({}),
                "policies",
                |k| matches!(k, ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["date-range"]["start-datetime"] = json!("yesterday"),
                "date-range.start-datetime",
                |k| matches!(k, ReportErrorKind::InvalidDateTime { .. }),
            ),
            (
                |v| v["policies"][0]["summary"]["total-failure-session-count"] = json!(-1),
                "policies[0].summary.total-failure-session-count",
                |k| matches!(k, ReportErrorKind::InvalidCount { .. }),
            ),
            (
                |v| v["policies"][0]["summary"]["total-successful-session-count"] = json!(1.5),
                "policies[0].summary.total-successful-session-count",
                |k| matches!(k, ReportErrorKind::InvalidCount { .. }),
            ),
            (
                |v| v["policies"][0]["summary"]["total-successful-session-count"] = json!("5"),
                "policies[0].summary.total-successful-session-count",
                |k| matches!(k, ReportErrorKind::InvalidCount { .. }),
            ),
            (
                |v| v["policies"][0]["failure-details"][0]["sending-mta-ip"] = json!("300.1.1.1"),
                "policies[0].failure-details[0].sending-mta-ip",
                |k| matches!(k, ReportErrorKind::InvalidIp { .. }),
            ),
            (
                |v| {
                    v["policies"][0]["failure-details"][0]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("failed-session-count");
                },
                "policies[0].failure-details[0].failed-session-count",
                |k| matches!(k, ReportErrorKind::Missing),
            ),
            (
                |v| v["policies"][0]["policy"]["policy-domain"] = json!("192.0.2.1"),
                "policies[0].policy.policy-domain",
                |k| matches!(k, ReportErrorKind::InvalidDomain { .. }),
            ),
            (
                |v| v["policies"][0]["policy"]["mx-host"] = json!([1]),
                "policies[0].policy.mx-host[0]",
                |k| matches!(k, ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["policies"][0]["policy"]["policy-string"] = json!("version: STSv1"),
                "policies[0].policy.policy-string",
                |k| matches!(k, ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["policies"][0]["failure-details"] = json!([1]),
                "policies[0].failure-details[0]",
                |k| matches!(k, ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["policies"][0]["summary"] = Value::Null,
                "policies[0].summary",
                |k| matches!(k, ReportErrorKind::Missing | ReportErrorKind::WrongType { .. }),
            ),
            (
                |v| v["date-range"]["start-datetime"] = json!("0000-01-01T00:00:00+01:00"),
                "date-range.start-datetime",
                |k| matches!(k, ReportErrorKind::DateOutOfRange { .. }),
            ),
        ];
        for (f, path, check) in cases {
            let input = edit(f);
            for result in [
                Report::parse_strict(&input).map(|_| ()),
                Report::parse_lenient(&input).map(|_| ()),
            ] {
                let e = result.unwrap_err();
                assert_eq!(e.path, path, "{e}");
                assert!(check(&e.kind), "{e:?}");
                assert!(e.to_string().contains("RFC"), "{e}");
            }
        }
    }

    #[test]
    fn hostile_inputs() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let huge_num = edit(|v| {
            v["policies"][0]["summary"]["total-failure-session-count"] =
                serde_json::from_str("123456789012345678901234567890").unwrap();
        });
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            b"\0\0\0".to_vec(),
            b"\xff\xfe{}".to_vec(),
            deep.into_bytes(),
            huge_num,
            b"{\"organization-name\":\"\xff\"}".to_vec(),
            b"\xEF\xBB\xBF{}".to_vec(),
            b"1e999999".to_vec(),
        ];
        for input in inputs {
            assert!(Report::parse_strict(&input).is_err());
            assert!(Report::parse_lenient(&input).is_err());
        }
        let big = vec![b' '; REPORT_MAX_BYTES + 1];
        assert_eq!(
            Report::parse_strict(&big).unwrap_err().kind,
            ReportErrorKind::TooLarge { size: REPORT_MAX_BYTES + 1 }
        );
        let bom = [UTF8_BOM, &bytes(&base())].concat();
        assert_eq!(Report::parse_strict(&bom).unwrap_err().kind, ReportErrorKind::ByteOrderMark);
        let (_, t) = Report::parse_lenient(&bom).unwrap();
        assert_eq!(codes(&t), vec!["utf8-bom"]);
    }

    #[test]
    fn max_size_boundary() {
        let mut exact = bytes(&base());
        exact.resize(REPORT_MAX_BYTES, b' ');
        assert!(Report::parse_strict(&exact).is_ok());
        exact.push(b' ');
        assert!(matches!(
            Report::parse_strict(&exact).unwrap_err().kind,
            ReportErrorKind::TooLarge { .. }
        ));
    }
}
