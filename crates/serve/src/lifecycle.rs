//! The rules of a hosted domain's lifecycle, pure (no I/O, no clock): which names may be
//! hosted, the next policy `id`, how `max_age` grows after promotion, the records to publish,
//! which live MX hosts a policy leaves out, and when a retired domain's records may go.
//!
//! - RFC 8461 §3.1: every policy change gets a new `id` (here: the change's UTC timestamp,
//!   made unique against the previous id).
//! - RFC 8461 §3.2: `max_age` at most 31 557 600 s; weeks or more once stable.
//! - RFC 8461 §8.1: the new policy is served before the TXT record announces its id.
//! - RFC 8461 §8.3: to stop, publish `mode: none` with a new id, keep serving it until the
//!   longest `max_age` ever published has passed, then remove the records.

use mtasts_proto::MAX_AGE_MAX;
use mtasts_proto::generate::{STARTER_MAX_AGE, SUGGESTED_TTL, policy_id, sts_txt, tlsrpt_txt};
use mtasts_proto::{DomainName, MxSet, Policy, PolicyId};
use serde::Serialize;
use time::OffsetDateTime;

/// The `max_age` steps after promotion to `enforce`: one week, then 30 days, then the RFC 8461
/// §3.2 maximum (about a year). `promote` on an `enforce` domain moves to the next step.
pub const MAX_AGE_STEPS: [u32; 3] = [604_800, 2_592_000, MAX_AGE_MAX];

/// `max_age` of the `mode: none` policy published by `retire` (RFC 8461 §8.3 suggests a short
/// one; senders that refresh learn at once that the policy is gone).
pub const RETIRE_MAX_AGE: u32 = STARTER_MAX_AGE;

/// Why a name cannot be hosted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameRefusal {
    /// Not a domain name (IP literal, overlong label, bad characters…): the parser's words.
    #[error("{input:?} cannot be hosted: {reason}")]
    Invalid {
        /// As given.
        input: String,
        /// The parser's reason (names the rule).
        reason: String,
    },
    /// A top-level domain: nobody receives mail for a whole TLD.
    #[error("{input:?} cannot be hosted: it is a top-level domain, not a mail domain")]
    TopLevel {
        /// As given.
        input: String,
    },
    /// A public suffix (`co.uk`, `github.io`): names under it belong to different owners, so
    /// nobody can publish a policy for all of them.
    #[error(
        "{input:?} cannot be hosted: it is a public suffix (publicsuffix.org, {section} section), under which each name has its own owner; host one of those names (e.g. example.{input})"
    )]
    PublicSuffix {
        /// As given.
        input: String,
        /// `ICANN` or `private`.
        section: &'static str,
    },
    /// The policy host itself, or the TXT / TLS-RPT names, given instead of the mail domain.
    #[error("{input:?} cannot be hosted: give the mail domain ({suggestion}), not the {what}")]
    ServiceName {
        /// As given.
        input: String,
        /// The domain meant, probably.
        suggestion: String,
        /// `policy host` or `TXT record name`.
        what: &'static str,
    },
}

/// The mail domain to host, from what an administrator typed.
pub fn hosted_name(input: &str) -> Result<DomainName, NameRefusal> {
    let trimmed = input.trim();
    let name = DomainName::from_user_input(trimmed)
        .map_err(|e| NameRefusal::Invalid { input: trimmed.to_owned(), reason: e.to_string() })?;
    if name.labels().count() < 2 {
        return Err(NameRefusal::TopLevel { input: trimmed.to_owned() });
    }
    // A name with no registrable part is a public suffix itself.
    if psl::domain(name.as_str().as_bytes()).is_none()
        && let Some(suffix) = psl::suffix(name.as_str().as_bytes())
        && suffix.is_known()
    {
        let section = match suffix.typ() {
            Some(psl::Type::Private) => "private",
            _ => "ICANN",
        };
        return Err(NameRefusal::PublicSuffix { input: name.as_str().to_owned(), section });
    }
    for (prefix, what) in [
        ("mta-sts.", "policy host"),
        ("_mta-sts.", "TXT record name"),
        ("_smtp._tls.", "TLS-RPT record name"),
    ] {
        if let Some(rest) = name.as_str().strip_prefix(prefix)
            && rest.contains('.')
        {
            return Err(NameRefusal::ServiceName {
                input: trimmed.to_owned(),
                suggestion: rest.to_owned(),
                what,
            });
        }
    }
    Ok(name)
}

/// The `id` for a new version made at `now`: its UTC timestamp (`YYYYMMDDHHMMSS`), or, when
/// that is not after `previous` (two changes in one second, a clock set back), `previous`'s
/// digits with a counter, so the id always changes (RFC 8461 §3.1).
pub fn next_id(now: OffsetDateTime, previous: Option<&str>) -> PolicyId {
    let fresh = policy_id(now);
    let Some(previous) = previous else { return fresh };
    if fresh.as_str() > previous && !previous.starts_with(fresh.as_str()) {
        return fresh;
    }
    // `<14 digits>` → `<14 digits>n2`, `…n2` → `…n3`: alphanumeric, at most 32 characters.
    let (stem, n) = match previous.rsplit_once('n') {
        Some((stem, n)) if n.parse::<u32>().is_ok() && !stem.is_empty() => {
            (stem, n.parse::<u32>().unwrap_or(1))
        }
        _ => (previous, 1),
    };
    let mut stem: String = stem.chars().filter(char::is_ascii_alphanumeric).collect();
    stem.truncate(20);
    PolicyId::new(&format!("{stem}n{}", n.saturating_add(1))).unwrap_or(fresh)
}

/// The next `max_age` step above `current` after promotion, `None` at the top.
pub fn next_max_age(current: u32) -> Option<u32> {
    MAX_AGE_STEPS.into_iter().find(|&step| step > current)
}

/// The live MX hosts `policy` does not cover (RFC 8461 §4.1 matching): under `enforce`,
/// mail to each of them would not be delivered.
pub fn uncovered(policy: &Policy, live: &MxSet) -> Vec<String> {
    live.names().into_iter().filter(|host| !policy.mx().iter().any(|p| p.matches(host))).collect()
}

/// What the hosting service publishes on its side, given to every domain's records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// The name customers point `mta-sts.<domain>` at by CNAME (this service's host name);
    /// `None` when the administrator points the name at the service's addresses themselves.
    pub cname_target: Option<DomainName>,
    /// Where TLS-RPT reports go (`mailto:` / `https:` URIs, RFC 8460 §3); empty: no record.
    /// [`DOMAIN_PLACEHOLDER`] in a URI stands for each hosted domain, so that
    /// `https://mta-sts.{domain}/v1/tlsrpt` sends each domain's reports to its own policy host
    /// (where `serve --receive-reports` takes them, under the certificate it already has).
    pub rua: Vec<String>,
}

/// Stands for the hosted domain in [`Service::rua`].
pub const DOMAIN_PLACEHOLDER: &str = "{domain}";

/// The DNS records a hosted domain publishes, as zone-file lines, in RFC 8461 §8.1's order:
/// the CNAME that makes the policy reachable first, the TXT record that announces it last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Records {
    /// `mta-sts.<domain>. CNAME <service>.`, when the service has a CNAME target.
    pub cname: Option<String>,
    /// `_smtp._tls.<domain>. TXT "v=TLSRPTv1; rua=…"`, when the service takes reports.
    pub tlsrpt_txt: Option<String>,
    /// `_mta-sts.<domain>. TXT "v=STSv1; id=…;"`.
    pub sts_txt: String,
}

/// The records for `domain` with policy id `id`.
pub fn records(domain: &DomainName, id: &PolicyId, service: &Service) -> Records {
    Records {
        cname: service.cname_target.as_ref().map(|target| {
            format!("{}. {SUGGESTED_TTL} IN CNAME {}.", domain.policy_host(), target.as_str())
        }),
        tlsrpt_txt: (!service.rua.is_empty()).then(|| {
            tlsrpt_txt(domain, &service.rua.join(",").replace(DOMAIN_PLACEHOLDER, domain.as_str()))
        }),
        sts_txt: sts_txt(domain, id),
    }
}

/// Where a retired domain stands (RFC 8461 §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Retirement {
    /// The domain publishes `enforce` or `testing`.
    Active,
    /// `mode: none` is published; senders may still hold an older policy until `until` (unix
    /// seconds): keep the records and the policy host.
    Draining {
        /// Retired at + the longest `max_age` ever published.
        until: i64,
    },
    /// Every sender's cached policy has expired: the records and the CNAME may be removed.
    Removable {
        /// Since when.
        since: i64,
    },
}

/// The retirement state at `now` of a domain retired at `retired_at` whose longest published
/// `max_age` is `longest_max_age`.
pub fn retirement(retired_at: Option<i64>, longest_max_age: i64, now: i64) -> Retirement {
    let Some(at) = retired_at else { return Retirement::Active };
    let until = at.saturating_add(longest_max_age);
    if now >= until {
        Retirement::Removable { since: until }
    } else {
        Retirement::Draining { until }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mtasts_proto::MxRecord;
    use mtasts_proto::generate::policy_for;
    use mtasts_proto::policy::Mode;
    use time::macros::datetime;

    #[test]
    fn names_that_cannot_be_hosted() {
        assert_eq!(hosted_name(" Example.COM. ").unwrap().as_str(), "example.com");
        for bad in ["192.0.2.1", "[IPv6:2001:db8::1]", "com", "a..b", &"x".repeat(64)] {
            assert!(hosted_name(bad).is_err(), "{bad}");
        }
        let long = format!("{}.example", "x".repeat(64));
        assert!(matches!(hosted_name(&long), Err(NameRefusal::Invalid { .. })));
        let e = hosted_name("mta-sts.example.com").unwrap_err();
        assert!(e.to_string().contains("give the mail domain (example.com)"), "{e}");
        assert!(hosted_name("_mta-sts.example.com").is_err());
        // A domain that merely starts with the letters is fine.
        assert!(hosted_name("mta-sts.com").is_ok());
        // Public suffixes, of either section; names under them, and unknown TLDs, are fine.
        let e = hosted_name("co.uk").unwrap_err();
        assert!(matches!(e, NameRefusal::PublicSuffix { section: "ICANN", .. }), "{e}");
        assert!(e.to_string().contains("it is a public suffix"), "{e}");
        assert!(matches!(
            hosted_name("github.io"),
            Err(NameRefusal::PublicSuffix { section: "private", .. })
        ));
        assert!(hosted_name("example.co.uk").is_ok());
        assert!(hosted_name("shop.test").is_ok());
    }

    #[test]
    fn every_change_gets_a_new_id() {
        let now = datetime!(2026-12-04 13:00:00 UTC);
        assert_eq!(next_id(now, None).as_str(), "20261204130000");
        assert_eq!(next_id(now, Some("20261203000000")).as_str(), "20261204130000");
        // Same second, twice more; a clock set back.
        let a = next_id(now, Some("20261204130000"));
        assert_eq!(a.as_str(), "20261204130000n2");
        assert_eq!(next_id(now, Some(a.as_str())).as_str(), "20261204130000n3");
        assert_eq!(next_id(now, Some("20301231000000")).as_str(), "20301231000000n2");
        // An operator's own id (letters, 32 characters) still changes and stays valid.
        let own = "abcdefghijklmnopqrstuvwxyz012345";
        let next = next_id(now, Some(own));
        assert_ne!(next.as_str(), own);
        assert!(next.as_str().len() <= 32);
    }

    #[test]
    fn max_age_grows_in_steps() {
        assert_eq!(next_max_age(86_400), Some(604_800));
        assert_eq!(next_max_age(604_800), Some(2_592_000));
        assert_eq!(next_max_age(2_592_000), Some(MAX_AGE_MAX));
        assert_eq!(next_max_age(MAX_AGE_MAX), None);
    }

    #[test]
    fn uncovered_hosts() {
        let p = policy_for(Mode::Enforce, 86_400, &["*.mail.example".into()]).unwrap();
        let live = MxSet::from_records(vec![
            MxRecord::new(10, "a.mail.example"),
            MxRecord::new(20, "backup.other.example"),
            MxRecord::new(30, "x.y.mail.example"),
        ]);
        // §4.1: a wildcard covers exactly one label.
        assert_eq!(uncovered(&p, &live), ["backup.other.example", "x.y.mail.example"]);
    }

    #[test]
    fn records_in_publishing_order() {
        let d = DomainName::parse_ascii("example.com").unwrap();
        let service = Service {
            cname_target: Some(DomainName::parse_ascii("sts.provider.example").unwrap()),
            rua: vec!["mailto:tlsrpt@provider.example".into()],
        };
        let r = records(&d, &PolicyId::new("1").unwrap(), &service);
        assert_eq!(
            r.cname.as_deref(),
            Some("mta-sts.example.com. 3600 IN CNAME sts.provider.example.")
        );
        assert_eq!(r.sts_txt, "_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=1;\"");
        assert!(r.tlsrpt_txt.unwrap().contains("rua=mailto:tlsrpt@provider.example"));
        let own = Service {
            rua: vec!["https://mta-sts.{domain}/v1/tlsrpt".into()],
            ..Service::default()
        };
        let r = records(&d, &PolicyId::new("1").unwrap(), &own);
        assert!(
            r.tlsrpt_txt
                .unwrap()
                .ends_with("\"v=TLSRPTv1; rua=https://mta-sts.example.com/v1/tlsrpt\"")
        );
        let bare = records(&d, &PolicyId::new("1").unwrap(), &Service::default());
        assert_eq!((bare.cname, bare.tlsrpt_txt), (None, None));
    }

    #[test]
    fn retirement_waits_for_the_longest_max_age() {
        assert_eq!(retirement(None, 100, 1_000), Retirement::Active);
        assert_eq!(
            retirement(Some(1_000), 604_800, 2_000),
            Retirement::Draining { until: 605_800 }
        );
        assert_eq!(
            retirement(Some(1_000), 604_800, 605_800),
            Retirement::Removable { since: 605_800 }
        );
    }
}
