//! The records and policy files the checker tells administrators to publish.
//!
//! Everything produced here is parsed back with `mtasts-proto` in the tests, so a suggestion can
//! never itself be invalid.

use mtasts_proto::{DomainName, MaxAge, Mode, MxPattern, Policy};
use time::OffsetDateTime;

/// TTL used in suggested zone-file lines.
pub const SUGGESTED_TTL: u32 = 3600;

/// `max_age` for a starter policy in `testing` mode: one day, so mistakes expire quickly.
pub const STARTER_MAX_AGE: u32 = 86_400;

/// `max_age` suggested for `enforce`: RFC 8461 §3.2 notes weeks or more are the norm once a
/// policy is stable; one week is the usual first step.
pub const ENFORCE_MAX_AGE: u32 = 604_800;

/// A policy id from a timestamp: `YYYYMMDDHHMMSS`, 14 digits, within RFC 8461 §3.1's
/// `1*32(ALPHA / DIGIT)`. Changing the policy means publishing a new id, and a timestamp is new.
pub fn policy_id(now: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// The `_mta-sts` TXT record as a zone-file line.
pub fn sts_txt(domain: &DomainName, now: OffsetDateTime) -> String {
    format!(
        "{}. {SUGGESTED_TTL} IN TXT \"v=STSv1; id={};\"",
        domain.mta_sts_txt_name(),
        policy_id(now)
    )
}

/// The `_smtp._tls` TXT record as a zone-file line, sending reports to `tlsrpt@<domain>`.
pub fn tlsrpt_txt(domain: &DomainName) -> String {
    format!(
        "{}. {SUGGESTED_TTL} IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@{}\"",
        domain.tlsrpt_txt_name(),
        domain.as_str()
    )
}

/// A policy listing exactly `hosts` (exact names; a wildcard would also cover hosts that do not
/// exist yet, which the administrator should decide).
pub fn policy_for(mode: Mode, max_age: u32, hosts: &[String]) -> Option<String> {
    let mut patterns = Vec::new();
    for host in hosts {
        let pattern = MxPattern::parse(host).ok()?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    let max_age = MaxAge::new(max_age).ok()?;
    Policy::new(mode, max_age, patterns).ok().map(|p| p.to_string())
}

/// `policy` with `mode` and the extra `mx:` lines, keeping everything else.
pub fn amended_policy(
    policy: &Policy,
    mode: Mode,
    add_mx: &[String],
    max_age: Option<u32>,
) -> Option<String> {
    let mut patterns: Vec<MxPattern> = policy.mx().to_vec();
    for host in add_mx {
        let pattern = MxPattern::parse(host).ok()?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    let max_age = match max_age {
        Some(secs) => MaxAge::new(secs).ok()?,
        None => policy.max_age(),
    };
    Policy::new(mode, max_age, patterns).ok().map(|p| p.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mtasts_proto::{StsRecord, TlsRptRecord};

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
        assert_eq!(policy_id(now()), "20261123090507");
        let sts = sts_txt(&domain(), now());
        assert!(sts.starts_with("_mta-sts.example.com. 3600 IN TXT "));
        let rec = StsRecord::parse(txt_value(&sts)).unwrap();
        assert_eq!(rec.value.id().as_str(), "20261123090507");
        let rpt = tlsrpt_txt(&domain());
        TlsRptRecord::parse(txt_value(&rpt)).unwrap();
    }

    #[test]
    fn starter_policy_parses_and_lists_hosts() {
        let text = policy_for(
            Mode::Testing,
            STARTER_MAX_AGE,
            &["mx1.example.com".into(), "mx2.example.com".into()],
        )
        .unwrap();
        let p = Policy::parse(&text).unwrap().value;
        assert_eq!(p.mode(), Mode::Testing);
        assert_eq!(p.mx().len(), 2);
        assert!(p.matching_pattern("mx2.example.com").is_some());
        assert_eq!(policy_for(Mode::Enforce, 1, &["192.0.2.1".into()]), None);
    }

    #[test]
    fn amended_policy_adds_missing_hosts() {
        let p =
            Policy::parse("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n")
                .unwrap()
                .value;
        let text = amended_policy(
            &p,
            Mode::Enforce,
            &["backup.example.com".into(), "mx1.example.com".into()],
            None,
        )
        .unwrap();
        let q = Policy::parse(&text).unwrap().value;
        assert_eq!(q.mx().len(), 2);
        assert!(q.matching_pattern("backup.example.com").is_some());
        assert_eq!(q.max_age(), p.max_age());
    }
}
