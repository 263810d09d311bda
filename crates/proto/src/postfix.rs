//! What a Postfix `smtp_tls_policy_maps` lookup answers for an MTA-STS policy (the TLS policy
//! table grammar of postconf(5) and TLS_README, and the Postfix ≥ 3.10 TLSRPT attributes of
//! TLSRPT_README). Pure: the caller supplies the policy and the live MX names.
//!
//! RFC 8461 §5: under `enforce` a sender "MUST NOT deliver" to an MX host that fails the MX match
//! or certificate validation; `testing` delivers anyway; `none` is no policy. Postfix's `secure`
//! level checks the server certificate against the `match=` names.
//!
//! Exact §4.1 matching: Postfix < 3.10 reads a `match=` entry `.example.com` as "any number of
//! labels followed by `.example.com`", wider than RFC 8461 §4.1 where `*.example.com` covers
//! exactly one label. So a wildcard pattern is answered as the live MX names it matches (each
//! exactly one label below the pattern's domain); the `.example.com` form is kept only as a
//! compatibility option ([`ZoneOptions::wildcard_dot`]). An answer never has an empty `match=`:
//! when no MX host can be matched under `enforce`, the answer is `TEMP` (mail waits in the queue,
//! RFC 8461 §5.1: treat as transient) rather than a `match=` Postfix would read as "anything".
//!
//! `policy_failure` (TLSRPT_README, Postfix ≥ 3.10): "forces MTA-STS policy enforcement to
//! fail with the indicated error, even if a server certificate would satisfy conventional PKI
//! constraints". With the TLSRPT attributes on, the no-MX-matches case is answered so
//! ([`Answer::PolicyFailure`]): mail waits as under `TEMP`, and Postfix reports each attempt
//! to the recipient's TLSRPT address as `validation-failure` with the MX host it tried. The
//! resolver's other policy-level failures (`sts-policy-fetch-error`, `sts-policy-invalid`,
//! `sts-webpki-invalid`) are never answered with it: with a cached policy RFC 8461 §5.1
//! says to deliver under that policy, and without one as if there were no policy, so forcing
//! a failure there would hold mail the RFC delivers. Those go to the collector as datagrams
//! (`mtasts resolver --tlsrpt-socket`) instead.

use std::fmt;

use crate::domain::DomainName;
use crate::policy::{Mode, Policy};
use crate::socketmap::REPLY_MAX_BYTES;

/// Per-zone choices (the socketmap name selects a zone; the names follow
/// postfix-mta-sts-resolver's configuration keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneOptions {
    /// Enforce `mode: testing` policies too (`strict_testing`).
    pub strict_testing: bool,
    /// Add `servername=hostname` (RFC 8461 §7.1: SNI is the MX name). Postfix < 3.4 rejects the
    /// attribute (`require_sni: false` there).
    pub require_sni: bool,
    /// Add the Postfix ≥ 3.10 TLSRPT attributes (`tlsrpt`); Postfix ≤ 3.9 rejects them.
    pub tlsrpt: bool,
    /// Answer `*.example.com` as `.example.com` (postfix-mta-sts-resolver's form), which Postfix
    /// < 3.10 matches at any depth. Off by default.
    pub wildcard_dot: bool,
    /// DANE takes precedence over MTA-STS (RFC 8461 §2; the rules are in [`crate::dane`]):
    /// `dane-only` when every MX host has usable, DNSSEC-validated TLSA records. On by default;
    /// it needs a validating resolver (one that sets the AD bit), and changes nothing without.
    pub dane: bool,
}

impl Default for ZoneOptions {
    fn default() -> Self {
        Self {
            strict_testing: false,
            require_sni: true,
            tlsrpt: false,
            wildcard_dot: false,
            dane: true,
        }
    }
}

/// A lookup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Verified TLS to a host whose certificate matches one of `matches`.
    Secure {
        /// Host names (or `.domain` in the compatibility form), never empty.
        matches: Vec<String>,
        /// `servername=hostname`.
        servername: bool,
        /// The TLSRPT attributes, when asked for.
        tlsrpt: Option<TlsRptAttributes>,
    },
    /// DANE takes precedence (RFC 8461 §2): every MX host has usable, validated TLSA
    /// records, and Postfix must authenticate each by them (`dane-only`; see [`crate::dane`]).
    DaneOnly,
    /// Opportunistic DANE (`dane`): DANE for the MX hosts with usable TLSA records, Postfix's
    /// opportunistic TLS for the others (RFC 7672 §2.2; see [`crate::dane`]).
    Dane,
    /// No policy applies: Postfix uses its default TLS level.
    NotFound,
    /// Defer the mail and look again later (the reason is logged by Postfix).
    Temp(String),
    /// The policy fails for every MX host (Postfix ≥ 3.10 with the TLSRPT attributes): the
    /// mail waits, and Postfix reports the failure through TLSRPT. `match=` is
    /// [`POLICY_FAILURE_MATCH`], a name no certificate can be issued for, so even an MTA that
    /// ignored `policy_failure` would accept no host.
    PolicyFailure {
        /// `servername=hostname`.
        servername: bool,
        /// The TLSRPT attributes Postfix reports with.
        tlsrpt: TlsRptAttributes,
        /// `policy_failure`.
        failure: PolicyFailure,
        /// Why, for logs and `mtasts resolver query` (Postfix is not told).
        reason: String,
    },
}

/// The `match=` of a [`Answer::PolicyFailure`]: under `.invalid` (RFC 6761 §6.4), so no
/// certificate authority issues a certificate that could satisfy it.
pub const POLICY_FAILURE_MATCH: &str = "policy-failure.invalid";

/// A `policy_failure` value (TLSRPT_README; the RFC 8460 §4.3 result types of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFailure {
    /// `sts-policy-fetch-error`.
    FetchError,
    /// `sts-policy-invalid`.
    Invalid,
    /// `sts-webpki-invalid`.
    WebPkiInvalid,
    /// `validation-failure`: here, no MX host matches the policy (RFC 8461 §4.1; reported so
    /// by mox too, RFC 8460 having no narrower type).
    ValidationFailure,
}

impl PolicyFailure {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FetchError => "sts-policy-fetch-error",
            Self::Invalid => "sts-policy-invalid",
            Self::WebPkiInvalid => "sts-webpki-invalid",
            Self::ValidationFailure => "validation-failure",
        }
    }
}

/// The Postfix ≥ 3.10 TLSRPT attributes of an STS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptAttributes {
    /// `policy_domain`.
    pub domain: String,
    /// `mx_host_pattern`, one per `mx:` line, in policy order.
    pub mx_patterns: Vec<String>,
    /// `policy_string`, one per policy line, in policy order (RFC 8460 §4.4).
    pub policy_strings: Vec<String>,
}

/// Decides the answer for `domain`'s `policy`, given the MX names the DNS has now.
pub fn answer(
    domain: &DomainName,
    policy: &Policy,
    live_mx: &[String],
    options: ZoneOptions,
) -> Answer {
    match policy.mode() {
        Mode::None => return Answer::NotFound,
        Mode::Testing if !options.strict_testing => return Answer::NotFound,
        _ => {}
    }
    let mut matches: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !matches.contains(&name) {
            matches.push(name);
        }
    };
    for pattern in policy.mx() {
        if !pattern.is_wildcard() {
            add(pattern.domain().as_str().to_owned());
        } else if options.wildcard_dot {
            add(format!(".{}", pattern.domain().as_str()));
        } else {
            for mx in live_mx {
                if pattern.matches(mx) {
                    add(mx.trim_end_matches('.').to_ascii_lowercase());
                }
            }
        }
    }
    let attributes = || TlsRptAttributes {
        domain: domain.as_str().to_owned(),
        mx_patterns: policy.mx().iter().map(ToString::to_string).collect(),
        policy_strings: policy.to_policy_lines(),
    };
    if matches.is_empty() {
        let reason = format!(
            "no MX host of {} ({}) matches its MTA-STS policy (mx: {}); mail waits until one does",
            domain.as_str(),
            if live_mx.is_empty() { "none found".to_owned() } else { live_mx.join(", ") },
            policy.mx().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
        // With no MX host there is nothing for Postfix to try and report: TEMP.
        if !options.tlsrpt || live_mx.is_empty() {
            return Answer::Temp(reason);
        }
        return Answer::PolicyFailure {
            servername: options.require_sni,
            tlsrpt: attributes(),
            failure: PolicyFailure::ValidationFailure,
            reason,
        };
    }
    let tlsrpt = options.tlsrpt.then(attributes);
    Answer::Secure { matches, servername: options.require_sni, tlsrpt }
}

impl Answer {
    /// The socketmap reply payload, within [`REPLY_MAX_BYTES`]: when the TLSRPT attributes
    /// would make it longer, they are left out; when even the bare answer is too long, `TEMP`.
    /// A [`Answer::PolicyFailure`] too long is `TEMP` with its reason: `policy_failure` is
    /// never dropped from an answer that keeps its `match=`.
    pub fn reply(&self) -> String {
        let text = self.to_string();
        if text.len() <= REPLY_MAX_BYTES {
            return text;
        }
        if let Self::PolicyFailure { reason, .. } = self {
            let temp = Self::Temp(reason.clone()).to_string();
            if temp.len() <= REPLY_MAX_BYTES {
                return temp;
            }
        }
        if let Self::Secure { matches, servername, tlsrpt: Some(_) } = self {
            let bare =
                Self::Secure { matches: matches.clone(), servername: *servername, tlsrpt: None };
            let text = bare.to_string();
            if text.len() <= REPLY_MAX_BYTES {
                return text;
            }
        }
        "TEMP the policy answer is longer than Postfix accepts (100000 bytes)".to_owned()
    }
}

impl fmt::Display for Answer {
    /// The reply payload: `OK secure match=a:b servername=hostname …`, `NOTFOUND `, `TEMP …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("NOTFOUND "),
            Self::DaneOnly => f.write_str("OK dane-only"),
            Self::Dane => f.write_str("OK dane"),
            Self::Temp(reason) => write!(f, "TEMP {reason}"),
            Self::Secure { matches, servername, tlsrpt } => {
                write!(f, "OK secure match={}", matches.join(":"))?;
                if *servername {
                    f.write_str(" servername=hostname")?;
                }
                if let Some(t) = tlsrpt {
                    t.fmt(f)?;
                }
                Ok(())
            }
            Self::PolicyFailure { servername, tlsrpt, failure, .. } => {
                write!(f, "OK secure match={POLICY_FAILURE_MATCH}")?;
                if *servername {
                    f.write_str(" servername=hostname")?;
                }
                tlsrpt.fmt(f)?;
                write!(f, " policy_failure={}", failure.as_str())
            }
        }
    }
}

impl fmt::Display for TlsRptAttributes {
    /// The attributes, each after a space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " policy_type=sts policy_domain={}", self.domain)?;
        for p in &self.mx_patterns {
            write!(f, " mx_host_pattern={p}")?;
        }
        // A value with spaces goes in braces: `{ name = value }` (postconf(5)).
        for s in &self.policy_strings {
            write!(f, " {{ policy_string = {s} }}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn domain() -> DomainName {
        DomainName::parse_ascii("example.com").unwrap()
    }

    fn policy(mode: &str, mx: &[&str]) -> Policy {
        let mut text = format!("version: STSv1\nmode: {mode}\n");
        for m in mx {
            text.push_str(&format!("mx: {m}\n"));
        }
        text.push_str("max_age: 604800\n");
        Policy::parse(&text).unwrap().value
    }

    fn live(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn enforce_exact_patterns() {
        let a = answer(
            &domain(),
            &policy("enforce", &["mx1.example.com", "mx2.example.com"]),
            &[],
            ZoneOptions::default(),
        );
        assert_eq!(
            a.reply(),
            "OK secure match=mx1.example.com:mx2.example.com servername=hostname"
        );
    }

    #[test]
    fn wildcards_become_the_live_mx_names_one_label_deep() {
        let p = policy("enforce", &["*.example.com"]);
        let mx = live(&["a.example.com", "b.a.example.com", "example.com", "c.example.com"]);
        let a = answer(&domain(), &p, &mx, ZoneOptions::default());
        assert_eq!(a.reply(), "OK secure match=a.example.com:c.example.com servername=hostname");
        let compat =
            ZoneOptions { wildcard_dot: true, require_sni: false, ..ZoneOptions::default() };
        assert_eq!(answer(&domain(), &p, &mx, compat).reply(), "OK secure match=.example.com");
    }

    #[test]
    fn never_an_empty_match_list() {
        let p = policy("enforce", &["*.example.com"]);
        let a = answer(&domain(), &p, &live(&["b.a.example.com"]), ZoneOptions::default());
        assert!(matches!(a, Answer::Temp(_)), "{a}");
        assert!(a.reply().starts_with("TEMP no MX host of example.com (b.a.example.com)"));
        assert!(!a.reply().contains("match="));
    }

    #[test]
    fn testing_and_none() {
        let t = policy("testing", &["mx.example.com"]);
        assert_eq!(answer(&domain(), &t, &[], ZoneOptions::default()), Answer::NotFound);
        assert_eq!(Answer::NotFound.reply(), "NOTFOUND ");
        let strict = ZoneOptions { strict_testing: true, ..ZoneOptions::default() };
        assert!(
            answer(&domain(), &t, &[], strict)
                .reply()
                .starts_with("OK secure match=mx.example.com")
        );
        let n = Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\n").unwrap().value;
        assert_eq!(answer(&domain(), &n, &[], strict), Answer::NotFound);
    }

    #[test]
    fn tlsrpt_attributes_in_policy_order() {
        let p = policy("enforce", &["mx1.example.com", "*.example.com"]);
        let opts = ZoneOptions { tlsrpt: true, ..ZoneOptions::default() };
        let reply = answer(&domain(), &p, &live(&["mx2.example.com"]), opts).reply();
        assert_eq!(
            reply,
            "OK secure match=mx1.example.com:mx2.example.com servername=hostname \
             policy_type=sts policy_domain=example.com \
             mx_host_pattern=mx1.example.com mx_host_pattern=*.example.com \
             { policy_string = version: STSv1 } { policy_string = mode: enforce } \
             { policy_string = mx: mx1.example.com } { policy_string = mx: *.example.com } \
             { policy_string = max_age: 604800 }"
        );
    }

    #[test]
    fn no_mx_match_with_tlsrpt_is_a_reported_policy_failure() {
        let p = policy("enforce", &["*.example.com"]);
        let live = live(&["mx.other.net"]);
        let opts = ZoneOptions { tlsrpt: true, ..ZoneOptions::default() };
        let a = answer(&domain(), &p, &live, opts);
        assert!(matches!(a, Answer::PolicyFailure { .. }), "{a}");
        assert_eq!(
            a.reply(),
            "OK secure match=policy-failure.invalid servername=hostname \
             policy_type=sts policy_domain=example.com mx_host_pattern=*.example.com \
             { policy_string = version: STSv1 } { policy_string = mode: enforce } \
             { policy_string = mx: *.example.com } { policy_string = max_age: 604800 } \
             policy_failure=validation-failure"
        );
        // The host that failed the match is never named in `match=`.
        assert!(!a.reply().contains("other.net"));
        // Without the attributes (Postfix ≤ 3.9), or with no MX host to try: TEMP.
        assert!(matches!(answer(&domain(), &p, &live, ZoneOptions::default()), Answer::Temp(_)));
        assert!(matches!(answer(&domain(), &p, &[], opts), Answer::Temp(_)));
        // Testing mode delivers anyway (RFC 8461 §5): no failure is forced.
        let t = policy("testing", &["*.example.com"]);
        assert_eq!(answer(&domain(), &t, &live, opts), Answer::NotFound);
    }

    #[test]
    fn a_policy_failure_too_long_for_postfix_is_temp_never_secure_without_it() {
        let names: Vec<String> = (0..2500).map(|i| format!("*.d{i:04}.example.com")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let p = policy("enforce", &refs);
        let opts = ZoneOptions { tlsrpt: true, ..ZoneOptions::default() };
        let a = answer(&domain(), &p, &live(&["mx.other.net"]), opts);
        assert!(matches!(a, Answer::PolicyFailure { .. }));
        let reply = a.reply();
        assert!(reply.starts_with("TEMP no MX host of example.com"), "{}", &reply[..80]);
        assert!(reply.len() <= REPLY_MAX_BYTES);
    }

    #[test]
    fn reply_stays_within_postfix_limit() {
        let names: Vec<String> = (0..2500).map(|i| format!("mx{i:04}.example.com")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let p = policy("enforce", &refs);
        let opts = ZoneOptions { tlsrpt: true, ..ZoneOptions::default() };
        let reply = answer(&domain(), &p, &[], opts).reply();
        assert!(reply.len() <= REPLY_MAX_BYTES);
        assert!(reply.starts_with("OK secure match=mx0000.example.com:"));
        assert!(!reply.contains("policy_string"));
    }
}
