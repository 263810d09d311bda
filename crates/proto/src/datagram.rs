//! The delivery-result datagram of libtlsrpt (sys4's TLSRPT client library, linked into
//! Postfix ≥ 3.10), protocol version 1 (`"dpv":"1"`): one JSON object per delivery attempt,
//! sent to the collector's unix datagram socket. Not an RFC; the format is libtlsrpt's (its
//! `tlsrpt.h` and `doc/example.txt`), and what it carries is RFC 8460 §4's report data for
//! one session:
//!
//! ```json
//! {"dpv":"1","d":"example.com","pr":"v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
//!  "policies":[{"policy-type":2,"policy-string":["version: STSv1","mode: enforce",…],
//!   "policy-domain":"example.com","mx-host":["*.mail.example.com"],
//!   "failure-details":[{"c":202,"s":"192.0.2.1","n":"mx.example.com","h":"mx.example.com",
//!     "r":"198.51.100.7","a":"…","f":"…"}],
//!   "t":1,"f":1}]}
//! ```
//!
//! - `d`: the recipient (policy) domain; `pr`: the `_smtp._tls` TXT record text as the MTA
//!   looked it up (reports are grouped per distinct record text).
//! - `policy-type`: 1 `tlsa`, 2 `sts`, 9 `no-policy-found` (RFC 8460 §4.4 `policy-type`).
//! - `failure-details[].c`: the failure code, 201-205 and 301-306 (see [`result_type_of`]);
//!   `s` sending-mta-ip, `n` receiving-mx-hostname, `h` receiving-mx-helo, `r` receiving-ip,
//!   `a` additional-information, `f` failure-reason-code; each may be absent.
//! - `t`: the number of failure details; `f`: the policy's final result, 0 success, 1 failure.
//!   libtlsrpt lets a policy end in success with details added, or in failure without any:
//!   the session counts as successful or failed by `f` alone (RFC 8460 §4.2 counts sessions).
//!
//! [`Datagram::parse`] is strict about what it needs (a known protocol version, a domain, the
//! policy type and final result, codes it knows) and names the broken field; it ignores keys it
//! does not know, as a newer library may add some. [`Datagram::to_json`] writes the same
//! format, for the resolver's own results and for test emitters.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainName;
use crate::report::PolicyType;
use crate::result_type::ResultType;

/// The protocol version this module reads and writes.
pub const PROTOCOL_VERSION: &str = "1";

/// The largest datagram read: a delivery request with many policy strings and failures stays
/// far below; a unix datagram socket's own limit is about 200 KiB by default.
pub const DATAGRAM_MAX_BYTES: usize = 256 * 1024;

/// One delivery attempt's TLS results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// `d`: the recipient domain, in A-label form.
    pub domain: DomainName,
    /// `pr`: the TLSRPT record text the MTA found (empty when it found none).
    pub record: String,
    /// `policies`: each policy applied in the attempt.
    pub policies: Vec<PolicyOutcome>,
}

/// One policy of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyOutcome {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-string`.
    pub strings: Vec<String>,
    /// `policy-domain` (absent for `no-policy-found`).
    pub domain: Option<String>,
    /// `mx-host`: the policy's MX patterns.
    pub mx_hosts: Vec<String>,
    /// `failure-details`.
    pub failures: Vec<Failure>,
    /// `f`: true when the policy's final result is a failure.
    pub failed: bool,
}

/// One failure detail of a delivery attempt (RFC 8460 §4.4 `failure-details`, without the
/// count: each datagram is one session).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Failure {
    /// `c`, as a result type.
    #[serde(rename = "result-type", with = "result_type_name")]
    pub result_type: ResultType,
    /// `s`: sending-mta-ip.
    #[serde(rename = "sending-mta-ip", skip_serializing_if = "Option::is_none", default)]
    pub sending_ip: Option<IpAddr>,
    /// `n`: receiving-mx-hostname.
    #[serde(rename = "receiving-mx-hostname", skip_serializing_if = "Option::is_none", default)]
    pub mx_hostname: Option<String>,
    /// `h`: receiving-mx-helo.
    #[serde(rename = "receiving-mx-helo", skip_serializing_if = "Option::is_none", default)]
    pub helo: Option<String>,
    /// `r`: receiving-ip.
    #[serde(rename = "receiving-ip", skip_serializing_if = "Option::is_none", default)]
    pub receiving_ip: Option<IpAddr>,
    /// `a`: additional-information.
    #[serde(rename = "additional-information", skip_serializing_if = "Option::is_none", default)]
    pub additional: Option<String>,
    /// `f`: failure-reason-code.
    #[serde(rename = "failure-reason-code", skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

mod result_type_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::result_type::ResultType;

    pub(super) fn serialize<S: Serializer>(r: &ResultType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(r.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ResultType, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ResultType::from_name(&s))
    }
}

/// The result type of a libtlsrpt failure code (`tlsrpt_failure_t`).
pub fn result_type_of(code: u64) -> Option<ResultType> {
    Some(match code {
        201 => ResultType::StartTlsNotSupported,
        202 => ResultType::CertificateHostMismatch,
        203 => ResultType::CertificateNotTrusted,
        204 => ResultType::CertificateExpired,
        205 => ResultType::ValidationFailure,
        301 => ResultType::StsPolicyFetchError,
        302 => ResultType::StsPolicyInvalid,
        303 => ResultType::StsWebpkiInvalid,
        304 => ResultType::TlsaInvalid,
        305 => ResultType::DnssecInvalid,
        306 => ResultType::DaneRequired,
        _ => return None,
    })
}

/// The libtlsrpt failure code of a registered result type.
pub fn code_of(result_type: &ResultType) -> Option<u64> {
    (201..=205).chain(301..=306).find(|c| result_type_of(*c).as_ref() == Some(result_type))
}

/// The libtlsrpt `policy-type` number of a policy type.
pub fn policy_type_code(policy_type: &PolicyType) -> Option<u64> {
    match policy_type {
        PolicyType::Tlsa => Some(1),
        PolicyType::Sts => Some(2),
        PolicyType::NoPolicyFound => Some(9),
        PolicyType::Other(_) => None,
    }
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// Not JSON, or not the shape of a datagram.
    #[error("not a libtlsrpt datagram: {0}")]
    Json(String),
    /// A protocol version this collector does not read.
    #[error("datagram protocol version `dpv` is {0:?}; this collector reads version \"1\"")]
    Version(String),
    /// A field that must be present is not.
    #[error("datagram field `{0}` is missing")]
    Missing(&'static str),
    /// A field's value is not valid.
    #[error("datagram field `{field}` is invalid: {why}")]
    Invalid {
        /// JSON path, e.g. `policies[0].failure-details[1].c`.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// Larger than [`DATAGRAM_MAX_BYTES`].
    #[error("datagram of {0} bytes is larger than the {DATAGRAM_MAX_BYTES}-byte limit")]
    TooLarge(usize),
}

#[derive(Deserialize)]
struct RawDatagram<'a> {
    #[serde(borrow)]
    dpv: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    d: Option<std::borrow::Cow<'a, str>>,
    pr: Option<String>,
    policies: Option<Vec<RawPolicy>>,
}

#[derive(Deserialize)]
struct RawPolicy {
    #[serde(rename = "policy-type")]
    policy_type: Option<u64>,
    #[serde(rename = "policy-string", default)]
    strings: Option<Vec<String>>,
    #[serde(rename = "policy-domain", default)]
    domain: Option<String>,
    #[serde(rename = "mx-host", default)]
    mx_hosts: Option<Vec<String>>,
    #[serde(rename = "failure-details", default)]
    failures: Option<Vec<RawFailure>>,
    #[serde(default)]
    t: Option<u64>,
    f: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawFailure {
    c: Option<u64>,
    s: Option<String>,
    n: Option<String>,
    h: Option<String>,
    r: Option<String>,
    a: Option<String>,
    f: Option<String>,
}

/// An address field. One that is not an IP address is left out rather than refusing the
/// datagram: the session still counts, and a report may omit the field (RFC 8460 §4.4).
fn ip(value: Option<String>) -> Option<IpAddr> {
    value.as_deref().and_then(|v| v.parse().ok())
}

fn text(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl Datagram {
    /// Parses one datagram.
    pub fn parse(bytes: &[u8]) -> Result<Self, DatagramError> {
        if bytes.len() > DATAGRAM_MAX_BYTES {
            return Err(DatagramError::TooLarge(bytes.len()));
        }
        let raw: RawDatagram<'_> = serde_json::from_slice(bytes).map_err(|e| {
            DatagramError::Json(format!("{e} (line {}, column {})", e.line(), e.column()))
        })?;
        match raw.dpv.as_deref() {
            Some(PROTOCOL_VERSION) => {}
            Some(other) => return Err(DatagramError::Version(other.to_owned())),
            None => return Err(DatagramError::Missing("dpv")),
        }
        let d = raw.d.ok_or(DatagramError::Missing("d"))?;
        // Postfix sends A-labels: the strict ASCII parser first, UTS-46 only for anything else.
        let domain =
            DomainName::parse_ascii(&d).or_else(|_| DomainName::from_user_input(&d)).map_err(
                |e| DatagramError::Invalid { field: "d".into(), why: format!("{d:?}: {e}") },
            )?;
        let raw_policies = raw.policies.ok_or(DatagramError::Missing("policies"))?;
        if raw_policies.is_empty() {
            return Err(DatagramError::Invalid {
                field: "policies".into(),
                why: "no policy (libtlsrpt sends at least one per delivery request)".into(),
            });
        }
        let mut policies = Vec::with_capacity(raw_policies.len());
        for (i, p) in raw_policies.into_iter().enumerate() {
            let at = |name: &str| format!("policies[{i}].{name}");
            let policy_type = match p.policy_type {
                Some(1) => PolicyType::Tlsa,
                Some(2) => PolicyType::Sts,
                Some(9) => PolicyType::NoPolicyFound,
                Some(n) => {
                    return Err(DatagramError::Invalid {
                        field: at("policy-type"),
                        why: format!("{n} is not 1 (tlsa), 2 (sts) or 9 (no-policy-found)"),
                    });
                }
                None => return Err(DatagramError::Missing("policy-type")),
            };
            // libtlsrpt writes 0 or 1; tlsrpt-collectd also takes JSON booleans.
            let failed = match p.f {
                Some(serde_json::Value::Bool(b)) => b,
                Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => false,
                Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => true,
                Some(other) => {
                    return Err(DatagramError::Invalid {
                        field: at("f"),
                        why: format!("{other} is not 0 (success) or 1 (failure)"),
                    });
                }
                None => return Err(DatagramError::Missing("f")),
            };
            let mut failures = Vec::new();
            for (j, f) in p.failures.unwrap_or_default().into_iter().enumerate() {
                let fat = |name: &str| format!("policies[{i}].failure-details[{j}].{name}");
                let code = f.c.ok_or(DatagramError::Missing("failure-details[].c"))?;
                let result_type = result_type_of(code).ok_or_else(|| DatagramError::Invalid {
                    field: fat("c"),
                    why: format!("{code} is not a failure code (201-205, 301-306)"),
                })?;
                failures.push(Failure {
                    result_type,
                    sending_ip: ip(f.s),
                    mx_hostname: text(f.n),
                    helo: text(f.h),
                    receiving_ip: ip(f.r),
                    additional: text(f.a),
                    reason: text(f.f),
                });
            }
            // `t` is the library's own count of the details; a mismatch means a truncated or
            // hand-made datagram, whose details are still each one failure.
            let _ = p.t;
            policies.push(PolicyOutcome {
                policy_type,
                strings: p.strings.unwrap_or_default(),
                domain: text(p.domain),
                mx_hosts: p.mx_hosts.unwrap_or_default(),
                failures,
                failed,
            });
        }
        Ok(Self { domain, record: raw.pr.unwrap_or_default(), policies })
    }

    /// The datagram in libtlsrpt's format (fields in the library's order). Policy types and
    /// result types libtlsrpt has no number for are left out.
    pub fn to_json(&self) -> String {
        let policies: Vec<serde_json::Value> = self
            .policies
            .iter()
            .filter_map(|p| {
                let mut o = serde_json::Map::new();
                o.insert("policy-type".into(), policy_type_code(&p.policy_type)?.into());
                o.insert("policy-string".into(), p.strings.clone().into());
                if let Some(d) = &p.domain {
                    o.insert("policy-domain".into(), d.clone().into());
                }
                o.insert("mx-host".into(), p.mx_hosts.clone().into());
                let details: Vec<serde_json::Value> = p
                    .failures
                    .iter()
                    .filter_map(|f| {
                        let mut d = serde_json::Map::new();
                        d.insert("c".into(), code_of(&f.result_type)?.into());
                        let mut put = |k: &str, v: Option<String>| {
                            if let Some(v) = v {
                                d.insert(k.into(), v.into());
                            }
                        };
                        put("s", f.sending_ip.map(|i| i.to_string()));
                        put("n", f.mx_hostname.clone());
                        put("h", f.helo.clone());
                        put("r", f.receiving_ip.map(|i| i.to_string()));
                        put("a", f.additional.clone());
                        put("f", f.reason.clone());
                        Some(serde_json::Value::Object(d))
                    })
                    .collect();
                o.insert("t".into(), details.len().into());
                o.insert("failure-details".into(), details.into());
                o.insert("f".into(), u64::from(p.failed).into());
                Some(serde_json::Value::Object(o))
            })
            .collect();
        serde_json::json!({
            "dpv": PROTOCOL_VERSION,
            "d": self.domain.as_str(),
            "pr": self.record,
            "policies": policies,
        })
        .to_string()
    }
}

impl fmt::Display for PolicyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} policy", self.policy_type)?;
        if let Some(d) = &self.domain {
            write!(f, " of {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STS_FAILURE: &str = r#"{"dpv":"1","d":"company-y.example","pr":"v=TLSRPTv1; rua=mailto:r@company-y.example","policies":[{"policy-type":2,"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example","max_age: 86400"],"policy-domain":"company-y.example","mx-host":["*.mail.company-y.example"],"failure-details":[{"c":302,"s":"1.2.3.4","n":"mailin.example.com","h":"test-ehlo.example.com","r":"11.22.33.44","a":"This is additional information","f":"999 TEST ERROR"},{"c":303,"s":"1.2.3.5"}],"t":2,"f":1}]}"#;

    #[test]
    fn the_library_example_parses() {
        let d = Datagram::parse(STS_FAILURE.as_bytes()).unwrap();
        assert_eq!(d.domain.as_str(), "company-y.example");
        assert_eq!(d.policies.len(), 1);
        let p = &d.policies[0];
        assert_eq!(p.policy_type, PolicyType::Sts);
        assert!(p.failed);
        assert_eq!(p.strings.len(), 4);
        assert_eq!(p.failures[0].result_type, ResultType::StsPolicyInvalid);
        assert_eq!(p.failures[0].receiving_ip, Some("11.22.33.44".parse().unwrap()));
        assert_eq!(p.failures[1].result_type, ResultType::StsWebpkiInvalid);
        assert_eq!(p.failures[1].mx_hostname, None);
    }

    #[test]
    fn written_datagrams_parse_back_equal() {
        let d = Datagram::parse(STS_FAILURE.as_bytes()).unwrap();
        let again = Datagram::parse(d.to_json().as_bytes()).unwrap();
        assert_eq!(d, again);
    }

    #[test]
    fn no_policy_found_without_domain_and_unknown_keys_are_accepted() {
        let d = Datagram::parse(
            br#"{"dpv":"1","d":"example.net","pr":"","policies":[{"policy-type":9,"t":0,"f":0,"new":1}],"x":true}"#,
        )
        .unwrap();
        assert_eq!(d.policies[0].policy_type, PolicyType::NoPolicyFound);
        assert_eq!(d.policies[0].domain, None);
        assert!(!d.policies[0].failed);
    }

    #[test]
    fn broken_datagrams_name_their_field() {
        let cases: &[(&str, &str)] = &[
            ("not json", "not a libtlsrpt datagram"),
            (r#"{"dpv":"2","d":"a.example","policies":[]}"#, "version"),
            (r#"{"d":"a.example","policies":[]}"#, "`dpv` is missing"),
            (r#"{"dpv":"1","policies":[]}"#, "`d` is missing"),
            (r#"{"dpv":"1","d":"a.example","policies":[]}"#, "`policies` is invalid"),
            (r#"{"dpv":"1","d":"-bad-.example","policies":[{"policy-type":2,"f":0}]}"#, "`d`"),
            (
                r#"{"dpv":"1","d":"a.example","policies":[{"policy-type":3,"f":0}]}"#,
                "policies[0].policy-type",
            ),
            (
                r#"{"dpv":"1","d":"a.example","policies":[{"policy-type":2,"f":7}]}"#,
                "policies[0].f",
            ),
            (r#"{"dpv":"1","d":"a.example","policies":[{"policy-type":2}]}"#, "`f` is missing"),
            (
                r#"{"dpv":"1","d":"a.example","policies":[{"policy-type":2,"f":1,"failure-details":[{"c":999}]}]}"#,
                "failure-details[0].c",
            ),
        ];
        for (input, want) in cases {
            let e = Datagram::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e} lacks {want}");
        }
        let big = vec![b' '; DATAGRAM_MAX_BYTES + 1];
        assert!(matches!(Datagram::parse(&big), Err(DatagramError::TooLarge(_))));
    }

    #[test]
    fn an_address_that_is_not_one_is_left_out_and_the_session_kept() {
        let d = Datagram::parse(
            br#"{"dpv":"1","d":"a.example","policies":[{"policy-type":2,"f":1,"failure-details":[{"c":201,"s":"nope","r":"192.0.2.1"}]}]}"#,
        )
        .unwrap();
        assert_eq!(d.policies[0].failures[0].sending_ip, None);
        assert_eq!(d.policies[0].failures[0].receiving_ip, Some("192.0.2.1".parse().unwrap()));
        let b = Datagram::parse(
            br#"{"dpv":"1","d":"a.example","policies":[{"policy-type":2,"f":true}]}"#,
        )
        .unwrap();
        assert!(b.policies[0].failed);
    }

    #[test]
    fn every_code_maps_both_ways() {
        for code in (201..=205).chain(301..=306) {
            let r = result_type_of(code).unwrap();
            assert_eq!(code_of(&r), Some(code));
        }
        assert_eq!(result_type_of(901), None);
        assert_eq!(code_of(&ResultType::Other("x".into())), None);
    }
}
