//! Records and policy files to publish: what `check` suggests and what a hosting service
//! serves. Everything produced here parses with this crate's own parsers (tested below), so a
//! suggestion can never itself be invalid.
//!
//! - RFC 8461 §3.1: the `_mta-sts` TXT record `v=STSv1; id=<1*32 ALPHA/DIGIT>;`, whose id must
//!   change whenever the policy changes.
//! - RFC 8461 §3.2: the policy file, one `key: value` field per line, CRLF or LF.
//! - RFC 8461 §8.1: publish the policy before the TXT record that announces it.
//! - RFC 8460 §3: the `_smtp._tls` TXT record `v=TLSRPTv1; rua=<uri>`.

use time::OffsetDateTime;

use crate::domain::DomainName;
use crate::policy::{MaxAge, Mode, MxPattern, Policy, PolicyError};
use crate::sts_record::PolicyId;

/// TTL used in suggested zone-file lines.
pub const SUGGESTED_TTL: u32 = 3600;

/// `max_age` for a starter policy in `testing` mode: one day, so mistakes expire quickly.
pub const STARTER_MAX_AGE: u32 = 86_400;

/// `max_age` suggested for `enforce`: RFC 8461 §3.2 notes weeks or more are the norm once a
/// policy is stable; one week is the usual first step.
pub const ENFORCE_MAX_AGE: u32 = 604_800;

/// A policy id from a timestamp: `YYYYMMDDHHMMSS`, 14 digits, within RFC 8461 §3.1's
/// `1*32(ALPHA / DIGIT)`. Changing the policy means publishing a new id, and a timestamp is new.
pub fn policy_id(now: OffsetDateTime) -> PolicyId {
    let now = now.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year().clamp(0, 9999),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    // 14 ASCII digits: always within `1*32(ALPHA / DIGIT)`.
    PolicyId::from_valid(text)
}

/// The `_mta-sts` TXT record as a zone-file line.
pub fn sts_txt(domain: &DomainName, id: &PolicyId) -> String {
    format!("{}. {SUGGESTED_TTL} IN TXT \"v=STSv1; id={id};\"", domain.mta_sts_txt_name())
}

/// The `_smtp._tls` TXT record as a zone-file line, sending reports to `rua` (a `mailto:` or
/// `https:` URI).
pub fn tlsrpt_txt(domain: &DomainName, rua: &str) -> String {
    format!("{}. {SUGGESTED_TTL} IN TXT \"v=TLSRPTv1; rua={rua}\"", domain.tlsrpt_txt_name())
}

/// The default report address: `mailto:tlsrpt@<domain>`.
pub fn default_rua(domain: &DomainName) -> String {
    format!("mailto:tlsrpt@{}", domain.as_str())
}

/// Why a policy could not be generated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A host cannot be an `mx:` pattern (an IP address, the root, …).
    #[error("{host:?} cannot be an mx: line: {reason}")]
    BadHost {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The policy itself is invalid (no hosts for enforce/testing, max_age out of range).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A report address is not a valid `rua` URI (RFC 8460 §3).
    #[error("the report address is invalid: {reason}")]
    Rua {
        /// The parser's reason.
        reason: String,
    },
}

/// A policy listing exactly `hosts` (exact names; a wildcard would also cover hosts that do not
/// exist yet, which the administrator should decide).
pub fn policy_for(mode: Mode, max_age: u32, hosts: &[String]) -> Result<Policy, GenerateError> {
    let mut patterns = Vec::new();
    add_patterns(&mut patterns, hosts)?;
    Ok(Policy::new(mode, MaxAge::new(max_age)?, patterns)?)
}

/// `policy` with `mode`, the extra `mx:` lines and (if given) a new `max_age`, keeping its
/// other patterns and every extension field.
pub fn amended_policy(
    policy: &Policy,
    mode: Mode,
    add_mx: &[String],
    max_age: Option<u32>,
) -> Result<Policy, GenerateError> {
    let mut patterns: Vec<MxPattern> = policy.mx().to_vec();
    add_patterns(&mut patterns, add_mx)?;
    let max_age = match max_age {
        Some(secs) => MaxAge::new(secs)?,
        None => policy.max_age(),
    };
    Ok(Policy::new(mode, max_age, patterns)?.with_extensions(policy.extensions().to_vec())?)
}

fn add_patterns(patterns: &mut Vec<MxPattern>, hosts: &[String]) -> Result<(), GenerateError> {
    for host in hosts {
        let pattern = MxPattern::parse(host)
            .map_err(|e| GenerateError::BadHost { host: host.clone(), reason: e.to_string() })?;
        if !patterns.iter().any(|p| p.matches(host)) {
            patterns.push(pattern);
        }
    }
    Ok(())
}

/// Everything a domain publishes to deploy MTA-STS and TLS-RPT, in RFC 8461 §8.1's order:
/// the policy file first, then the TXT record that announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The policy file, served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub policy: Policy,
    /// The policy id announced by the TXT record.
    pub id: PolicyId,
    /// The `_mta-sts` TXT record, as a zone-file line.
    pub sts_txt: String,
    /// The `_smtp._tls` TXT record, as a zone-file line (`None` when no report address).
    pub tlsrpt_txt: Option<String>,
}

/// The records and policy for `domain`: `mode` and `max_age` for exactly `hosts`, the TXT
/// record with `id`, and a TLS-RPT record sending reports to every URI of `rua` (RFC 8460
/// §3: `mailto:` or `https:`, comma-separated in one record). Each part is checked with this
/// crate's own parsers.
pub fn deployment(
    domain: &DomainName,
    mode: Mode,
    max_age: u32,
    hosts: &[String],
    rua: &[String],
    id: PolicyId,
) -> Result<Deployment, GenerateError> {
    let policy = policy_for(mode, max_age, hosts)?;
    let tlsrpt_txt = if rua.is_empty() {
        None
    } else {
        let list = rua.join(",");
        crate::TlsRptRecord::parse(&format!("v=TLSRPTv1; rua={list}"))
            .map_err(|e| GenerateError::Rua { reason: e.to_string() })?;
        Some(tlsrpt_txt(domain, &list))
    };
    Ok(Deployment { sts_txt: sts_txt(domain, &id), policy, id, tlsrpt_txt })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{StsRecord, TlsRptRecord};

    fn domain() -> DomainName {
        DomainName::parse_ascii("example.com").unwrap()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 09:05:07 UTC)
    }

    fn txt_value(line: &str) -> &str {
        let start = line.find('"').unwrap() + 1;
        &line[start..line.len() - 1]
    }

    #[test]
    fn suggested_records_parse() {
        let id = policy_id(now());
        assert_eq!(id.as_str(), "20261123090507");
        let sts = sts_txt(&domain(), &id);
        assert!(sts.starts_with("_mta-sts.example.com. 3600 IN TXT "));
        let rec = StsRecord::parse(txt_value(&sts)).unwrap();
        assert_eq!(rec.value.id().as_str(), "20261123090507");
        let rpt = tlsrpt_txt(&domain(), &default_rua(&domain()));
        TlsRptRecord::parse(txt_value(&rpt)).unwrap();
    }

    #[test]
    fn starter_policy_parses_and_lists_hosts() {
        let p = policy_for(
            Mode::Testing,
            STARTER_MAX_AGE,
            &["mx1.example.com".into(), "mx2.example.com".into()],
        )
        .unwrap();
        let q = Policy::parse(&p.to_string()).unwrap().value;
        assert_eq!(q, p);
        assert_eq!(q.mode(), Mode::Testing);
        assert_eq!(q.mx().len(), 2);
        assert!(matches!(
            policy_for(Mode::Enforce, 1, &["192.0.2.1".into()]),
            Err(GenerateError::BadHost { .. })
        ));
        assert!(matches!(policy_for(Mode::Enforce, 86_400, &[]), Err(GenerateError::Policy(_))));
    }

    #[test]
    fn amended_policy_adds_missing_hosts_and_keeps_extensions() {
        let p = Policy::parse(
            "version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 86400\nx-owner: ops\n",
        )
        .unwrap()
        .value;
        let q = amended_policy(
            &p,
            Mode::Enforce,
            &["backup.example.com".into(), "mx1.example.com".into()],
            Some(ENFORCE_MAX_AGE),
        )
        .unwrap();
        let q = Policy::parse(&q.to_string()).unwrap().value;
        assert_eq!(q.mode(), Mode::Enforce);
        assert_eq!(q.mx().len(), 2);
        assert_eq!(q.max_age().seconds(), ENFORCE_MAX_AGE);
        assert_eq!(q.extensions(), p.extensions());
        assert_eq!(q.extensions()[0].name(), "x-owner");
    }

    #[test]
    fn a_deployment_parses_with_our_parsers() {
        let id = policy_id(now());
        let d = deployment(
            &domain(),
            Mode::Testing,
            STARTER_MAX_AGE,
            &["mx1.example.com".into()],
            &["mailto:tlsrpt@example.com".into(), "https://reports.example.net/v1".into()],
            id.clone(),
        )
        .unwrap();
        assert_eq!(Policy::parse(&d.policy.to_string()).unwrap().value, d.policy);
        assert_eq!(StsRecord::parse(txt_value(&d.sts_txt)).unwrap().value.id(), &id);
        let rpt = d.tlsrpt_txt.unwrap();
        assert_eq!(TlsRptRecord::parse(txt_value(&rpt)).unwrap().value.rua().len(), 2);
        let bad = deployment(
            &domain(),
            Mode::Testing,
            1,
            &["mx.example.com".into()],
            &["ftp://x".into()],
            id.clone(),
        );
        assert!(matches!(bad, Err(GenerateError::Rua { .. })), "{bad:?}");
        // mode: none needs no hosts (RFC 8461 §3.2), the others do.
        assert!(deployment(&domain(), Mode::None, 86_400, &[], &[], id.clone()).is_ok());
        assert!(deployment(&domain(), Mode::Enforce, 86_400, &[], &[], id).is_err());
    }

    #[test]
    fn wildcard_already_covering_a_host_is_not_duplicated() {
        let p = Policy::parse("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n")
            .unwrap()
            .value;
        let q = amended_policy(&p, Mode::Enforce, &["mx.example.com".into()], None).unwrap();
        assert_eq!(q.mx().len(), 1);
    }
}
