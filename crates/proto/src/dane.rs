//! DANE for SMTP as a sender weighs it against MTA-STS (RFC 8461 §2, RFC 7672), as pure rules.
//!
//! RFC 8461 §2: a sender that implements DANE uses it for MX hosts whose TLSA records it
//! validated, and a "valid" or "testing" MTA-STS result must not override a failing DANE
//! validation. RFC 7672 says when DANE applies to a host:
//!
//! * §2.2.1: only when the MX RRset is DNSSEC-validated ("secure"); an insecure MX answer
//!   means no DANE for any of its hosts;
//! * §2.2.2: the TLSA records are at `_25._tcp.<MX host>`, and must be validated too;
//! * §3.1.3: only DANE-TA(2) and DANE-EE(3) records are usable for SMTP; PKIX-TA(0) and
//!   PKIX-EE(1) are unusable, as are unknown selectors and matching types;
//! * §2.1.1: a lookup that fails (SERVFAIL, timeout: possibly an attacker dropping the
//!   answer) is not "no TLSA records": the client must not fall back to weaker security, so
//!   mail waits.
//!
//! The I/O (MX, TLSA and AD-bit lookups) is the caller's; [`precedence`] turns what it found
//! into the Postfix answer.

use crate::postfix::Answer;

/// RFC 7672 §3.1.3: whether one TLSA record (usage, selector, matching type) can authenticate
/// an SMTP server: usage DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1), matching type
/// Full(0), SHA2-256(1) or SHA2-512(2).
pub fn tlsa_usable(usage: u8, selector: u8, matching: u8) -> bool {
    matches!(usage, 2 | 3) && selector <= 1 && matching <= 2
}

/// What the DNS said about one MX host's TLSA records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostDane {
    /// DANE does not apply: no TLSA records (authenticated denial or unsigned), or records
    /// in an answer that was not validated.
    Absent,
    /// Validated TLSA records, at least one of them usable (§3.1.3).
    Usable,
    /// Validated TLSA records, none usable: RFC 7672 §3.1.3 has the client use TLS without
    /// authentication; an MTA-STS policy, if any, asks for more.
    Unusable,
    /// The TLSA lookup failed (SERVFAIL, timeout, a bogus answer a validating resolver turned
    /// into SERVFAIL): whether DANE applies is unknown.
    Failed,
}

/// What the DNS said about DANE for one recipient domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DomainDane {
    /// DANE does not apply to the domain: its MX answer is not DNSSEC-validated (§2.2.1), it
    /// has no MX hosts to look at (null MX, implicit MX), or the MX lookup failed (Postfix then
    /// cannot deliver either).
    #[default]
    NotApplicable,
    /// The MX answer is validated; each MX host's TLSA state.
    Hosts(Vec<(String, HostDane)>),
}

/// The answer once DANE is weighed (RFC 8461 §2): `sts` is the answer from MTA-STS alone.
///
/// * A TLSA lookup failed for a host of a validated MX answer → `TEMP`: never a downgrade
///   from DANE to an MTA-STS or opportunistic answer while DANE's state is unknown (RFC 7672
///   §2.1.1; RFC 8461 §2).
/// * Every MX host has usable TLSA records → `dane-only`: Postfix authenticates each host by
///   DANE, whatever MTA-STS says.
/// * Some hosts have usable TLSA records, others none: with an MTA-STS answer that asks for
///   verified TLS (`secure`), that answer stays (it authenticates every host by WebPKI, and
///   Postfix can name only one level per domain); without one, `dane`: Postfix uses DANE for
///   the hosts that have it and its opportunistic TLS for the others (RFC 7672 §2.2).
/// * Otherwise the MTA-STS answer.
pub fn precedence(sts: Answer, dane: &DomainDane) -> Answer {
    let DomainDane::Hosts(hosts) = dane else { return sts };
    if hosts.is_empty() {
        return sts;
    }
    if let Some((host, _)) = hosts.iter().find(|(_, h)| *h == HostDane::Failed) {
        return Answer::Temp(format!(
            "DANE TLSA lookup for _25._tcp.{host} failed; waiting rather than delivering without DANE (RFC 8461 §2, RFC 7672 §2.1.1)"
        ));
    }
    let usable = hosts.iter().filter(|(_, h)| *h == HostDane::Usable).count();
    if usable == hosts.len() {
        return Answer::DaneOnly;
    }
    match sts {
        Answer::NotFound if usable > 0 => Answer::Dane,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secure() -> Answer {
        Answer::Secure { matches: vec!["mx1.example.com".into()], servername: true, tlsrpt: None }
    }

    fn hosts(states: &[HostDane]) -> DomainDane {
        DomainDane::Hosts(
            states.iter().enumerate().map(|(i, h)| (format!("mx{i}.example.com"), *h)).collect(),
        )
    }

    #[test]
    fn only_dane_ta_and_dane_ee_are_usable_for_smtp() {
        assert!(tlsa_usable(3, 1, 1));
        assert!(tlsa_usable(2, 0, 2));
        assert!(tlsa_usable(3, 0, 0));
        assert!(!tlsa_usable(0, 1, 1), "PKIX-TA is unusable (RFC 7672 §3.1.3)");
        assert!(!tlsa_usable(1, 1, 1), "PKIX-EE is unusable");
        assert!(!tlsa_usable(3, 2, 1), "unknown selector");
        assert!(!tlsa_usable(3, 1, 3), "unknown matching type");
    }

    #[test]
    fn usable_tlsa_on_every_host_takes_precedence_over_sts() {
        use HostDane::Usable;
        assert_eq!(precedence(secure(), &hosts(&[Usable, Usable])), Answer::DaneOnly);
        // A testing (or absent) policy does not override DANE either (§2).
        assert_eq!(precedence(Answer::NotFound, &hosts(&[Usable])), Answer::DaneOnly);
    }

    #[test]
    fn a_failed_tlsa_lookup_defers_instead_of_downgrading() {
        use HostDane::{Failed, Usable};
        for sts in [secure(), Answer::NotFound] {
            let a = precedence(sts, &hosts(&[Usable, Failed]));
            let Answer::Temp(reason) = a else { panic!("expected TEMP, got {a:?}") };
            assert!(reason.contains("_25._tcp.mx1.example.com"), "{reason}");
        }
    }

    #[test]
    fn without_dane_the_sts_answer_stands() {
        use HostDane::{Absent, Unusable, Usable};
        assert_eq!(precedence(secure(), &DomainDane::NotApplicable), secure());
        assert_eq!(precedence(secure(), &hosts(&[])), secure());
        assert_eq!(precedence(secure(), &hosts(&[Absent, Absent])), secure());
        assert_eq!(precedence(secure(), &hosts(&[Unusable])), secure());
        // Mixed: the STS answer authenticates every host; without one, per-host DANE.
        assert_eq!(precedence(secure(), &hosts(&[Usable, Absent])), secure());
        assert_eq!(precedence(Answer::NotFound, &hosts(&[Usable, Absent])), Answer::Dane);
        assert_eq!(precedence(Answer::NotFound, &hosts(&[Absent])), Answer::NotFound);
        let temp = Answer::Temp("no MX host matches".into());
        assert_eq!(precedence(temp.clone(), &hosts(&[Usable, Absent])), temp);
    }
}
