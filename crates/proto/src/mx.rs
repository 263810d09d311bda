//! A domain's mail exchangers, as SMTP decides them: RFC 5321 §5.1 (explicit and implicit MX)
//! and RFC 7505 (null MX).
//!
//! The DNS answer is gathered elsewhere; this module only decides what it means, so the checker,
//! the resolver and the hosting service agree on it.
//!
//! - RFC 5321 §5.1: "If an empty list of MXs is returned, the address is treated as if it was
//!   associated with an implicit MX RR, with a preference of 0, pointing to that host."
//! - RFC 7505 §3: "A domain that advertises a null MX MUST NOT advertise any other MX RR." A null
//!   MX is a single record with preference 0 and the root as exchange (`0 .`).
//! - RFC 7505 §4.1: a sender "MUST NOT attempt to deliver" to a domain with a null MX. Such a
//!   domain receives no mail, so MTA-STS and TLS-RPT have nothing to protect there.

use serde::Serialize;

use crate::domain::DomainName;

/// One MX record as the DNS returned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxRecord {
    /// Preference: lower is tried first.
    pub preference: u16,
    /// The exchange host, lower case, without the trailing dot; empty for the root (`.`).
    pub exchange: String,
}

impl MxRecord {
    /// A record.
    pub fn new(preference: u16, exchange: impl Into<String>) -> Self {
        let exchange: String = exchange.into();
        let exchange = exchange.trim_end_matches('.').to_ascii_lowercase();
        Self { preference, exchange }
    }

    /// True when the exchange is the root name: the RFC 7505 null MX marker.
    pub fn is_root(&self) -> bool {
        self.exchange.is_empty()
    }
}

/// How the domain's mail exchangers were determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MxKind {
    /// MX records name the hosts.
    Explicit,
    /// No MX RRset: the domain itself is the one host (RFC 5321 §5.1).
    Implicit,
    /// A null MX (RFC 7505): the domain accepts no mail.
    Null,
    /// A null MX beside other MX records, which RFC 7505 §3 forbids. The other records are kept
    /// in [`MxSet::hosts`]; senders may bounce or try them.
    NullMixed,
}

/// The mail exchangers of a domain. [`MxSet::hosts`] never contains the root name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxSet {
    /// Hosts in preference order, each once (the root name left out).
    pub hosts: Vec<MxRecord>,
    /// How they were found.
    pub kind: MxKind,
}

impl MxSet {
    /// The set for an MX RRset (RFC 5321 §5.1, RFC 7505 §3). Records are sorted by preference
    /// then name; a name listed twice is kept once, at its best preference.
    pub fn from_records(mut records: Vec<MxRecord>) -> Self {
        let has_root = records.iter().any(MxRecord::is_root);
        records.retain(|r| !r.is_root());
        records.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
        let mut hosts: Vec<MxRecord> = Vec::with_capacity(records.len());
        for r in records {
            if !hosts.iter().any(|h| h.exchange == r.exchange) {
                hosts.push(r);
            }
        }
        let kind = match (has_root, hosts.is_empty()) {
            (true, true) => MxKind::Null,
            (true, false) => MxKind::NullMixed,
            (false, _) => MxKind::Explicit,
        };
        Self { hosts, kind }
    }

    /// The set when the domain has no MX RRset but has an address (RFC 5321 §5.1).
    pub fn implicit(domain: &DomainName) -> Self {
        Self { hosts: vec![MxRecord::new(0, domain.as_str())], kind: MxKind::Implicit }
    }

    /// True unless the domain publishes only a null MX: a domain that receives mail.
    pub fn accepts_mail(&self) -> bool {
        self.kind != MxKind::Null
    }

    /// The host names, in preference order.
    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.exchange.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn null_mx_alone_accepts_no_mail() {
        let set = MxSet::from_records(vec![MxRecord::new(0, ".")]);
        assert_eq!(set.kind, MxKind::Null);
        assert!(set.hosts.is_empty());
        assert!(!set.accepts_mail());
    }

    #[test]
    fn null_mx_mixed_keeps_only_real_hosts() {
        let set =
            MxSet::from_records(vec![MxRecord::new(0, "."), MxRecord::new(10, "MX1.Example.com.")]);
        assert_eq!(set.kind, MxKind::NullMixed);
        assert_eq!(set.names(), ["mx1.example.com"]);
        assert!(set.accepts_mail());
    }

    #[test]
    fn explicit_sorted_and_deduplicated() {
        let set = MxSet::from_records(vec![
            MxRecord::new(20, "b.example"),
            MxRecord::new(10, "c.example"),
            MxRecord::new(10, "a.example"),
            MxRecord::new(30, "a.example"),
        ]);
        assert_eq!(set.kind, MxKind::Explicit);
        assert_eq!(set.names(), ["a.example", "c.example", "b.example"]);
        assert_eq!(set.hosts[0].preference, 10);
    }

    #[test]
    fn implicit_mx_is_the_domain() {
        let d = DomainName::parse_ascii("example.org").unwrap();
        let set = MxSet::implicit(&d);
        assert_eq!(set.kind, MxKind::Implicit);
        assert_eq!(set.names(), ["example.org"]);
    }
}
