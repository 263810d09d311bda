//! Generated worlds for benchmarks: `n` domains `d000000.bench.test`, `d000001.bench.test`,
//! … with a deterministic mix (from a seed) of good, testing, `none`, absent and broken
//! MTA-STS, on MX hosts drawn from big shared providers, mid-size hosters and distinct
//! per-domain hosts. See [`generate`] for the exact mix and
//! [`WorldBuilder::generated`](crate::WorldBuilder::generated) to serve it.

use crate::{
    https::HttpBehaviour,
    world::{CertKind, DEFAULT_MAX_AGE, DomainSpec, MxSpec, PolicyHost, SmtpKind, policy_text},
};

/// The parent of every generated domain.
pub const GENERATED_SUFFIX: &str = "bench.test";
/// The big shared provider's MX hosts: `mx1.bigmail.test` … `mx4.bigmail.test`.
pub const BIGMAIL_HOSTS: usize = 4;
/// Number of mid-size hosting providers, `mx.h00.bench-hosting.test` … .
pub const HOSTERS: usize = 50;

/// What a generated domain is meant to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// Everything right, `mode: enforce`.
    GoodEnforce,
    /// Everything right, `mode: testing`.
    GoodTesting,
    /// Everything right, `mode: none`.
    ModeNone,
    /// No `_mta-sts` record and no policy host: the domain does not use MTA-STS.
    NoMtaSts,
    /// MTA-STS published but broken as the [`Breakage`] says.
    Broken(Breakage),
}

/// How a broken generated domain is broken (each fails fast: none of them waits for a
/// timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Breakage {
    /// `id=2026-01-01` in the TXT record.
    TxtInvalidId,
    /// Two `v=STSv1` TXT records.
    TxtDuplicate,
    /// TXT present, `mta-sts.<d>` does not exist.
    PolicyHostNxdomain,
    /// `mta-sts.<d>` resolves to an address where nothing listens.
    PolicyHostUnreachable,
    /// 404 for the policy.
    Policy404,
    /// Policy served as text/html.
    ContentTypeHtml,
    /// 301 redirect.
    Redirect,
    /// `mode: enforcing`.
    PolicySyntaxError,
    /// No `max_age`.
    PolicyMissingMaxAge,
    /// Policy host certificate expired.
    PolicyCertExpired,
    /// Policy host certificate from an untrusted CA.
    PolicyCertUntrusted,
    /// A second MX not matched by the policy.
    MxNotCovered,
    /// The MX does not offer STARTTLS.
    MxNoStarttls,
    /// The MX certificate expired.
    MxCertExpired,
    /// The MX certificate is for another name.
    MxCertWrongName,
    /// Nothing listens on the MX (connection refused).
    MxUnreachable,
}

impl Breakage {
    /// Every breakage, in a fixed order.
    pub const ALL: &'static [Self] = &[
        Self::TxtInvalidId,
        Self::TxtDuplicate,
        Self::PolicyHostNxdomain,
        Self::PolicyHostUnreachable,
        Self::Policy404,
        Self::ContentTypeHtml,
        Self::Redirect,
        Self::PolicySyntaxError,
        Self::PolicyMissingMaxAge,
        Self::PolicyCertExpired,
        Self::PolicyCertUntrusted,
        Self::MxNotCovered,
        Self::MxNoStarttls,
        Self::MxCertExpired,
        Self::MxCertWrongName,
        Self::MxUnreachable,
    ];

    /// Kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TxtInvalidId => "txt-invalid-id",
            Self::TxtDuplicate => "txt-duplicate",
            Self::PolicyHostNxdomain => "policy-host-nxdomain",
            Self::PolicyHostUnreachable => "policy-host-unreachable",
            Self::Policy404 => "https-404",
            Self::ContentTypeHtml => "https-content-type-html",
            Self::Redirect => "https-redirect",
            Self::PolicySyntaxError => "policy-syntax-error",
            Self::PolicyMissingMaxAge => "policy-missing-max-age",
            Self::PolicyCertExpired => "https-expired-cert",
            Self::PolicyCertUntrusted => "https-untrusted-cert",
            Self::MxNotCovered => "mx-not-covered",
            Self::MxNoStarttls => "mx-no-starttls",
            Self::MxCertExpired => "mx-cert-expired",
            Self::MxCertWrongName => "mx-cert-wrong-name",
            Self::MxUnreachable => "mx-unreachable",
        }
    }

    /// True if the breakage is in the domain's own MX host (so it needs a host of its own).
    fn breaks_mx(&self) -> bool {
        matches!(
            self,
            Self::MxNoStarttls | Self::MxCertExpired | Self::MxCertWrongName | Self::MxUnreachable
        )
    }
}

impl Profile {
    /// Kebab-case name: `good-enforce`, `good-testing`, `mode-none`, `no-mta-sts`, or
    /// `broken:<breakage>`.
    pub fn name(&self) -> String {
        match self {
            Self::GoodEnforce => "good-enforce".to_owned(),
            Self::GoodTesting => "good-testing".to_owned(),
            Self::ModeNone => "mode-none".to_owned(),
            Self::NoMtaSts => "no-mta-sts".to_owned(),
            Self::Broken(b) => format!("broken:{}", b.name()),
        }
    }
}

/// Which MX setup a generated domain uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MxPool {
    /// Two of `mx1..mx4.bigmail.test` (policy `mx: *.bigmail.test`).
    BigMail,
    /// One `mx.hNN.bench-hosting.test`.
    Hoster,
    /// `mx1.<d>` (and sometimes `mx2.<d>`), used by this domain only.
    Own,
}

/// One generated domain: its spec and what it is meant to show.
#[derive(Clone, Debug)]
pub struct GeneratedDomain {
    /// Everything the domain publishes.
    pub spec: DomainSpec,
    /// The intended outcome.
    pub profile: Profile,
    /// Where its MX records point.
    pub mx_pool: MxPool,
}

/// SplitMix64: small, fast, deterministic, good enough for picking a mix (the generated
/// world, the `tlsrpt-emit` datagram stream).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The name of generated domain number `i`: `d000123.bench.test`.
pub fn domain_name(i: usize) -> String {
    format!("d{i:06}.{GENERATED_SUFFIX}")
}

/// `n` generated domains, the same for the same `(n, seed)` and each domain the same for the
/// same `(i, seed)` whatever `n` (so a bigger world contains the smaller one).
///
/// The mix, per domain, independently: 35 % [`Profile::GoodEnforce`], 10 %
/// [`Profile::GoodTesting`], 5 % [`Profile::ModeNone`], 25 % [`Profile::NoMtaSts`], 25 %
/// [`Profile::Broken`] (the [`Breakage`]s equally likely). MX hosts: 40 % of domains use
/// two of the four `mx*.bigmail.test` hosts, 10 % one of [`HOSTERS`] hosters, the other
/// 50 % (and every domain whose breakage is in its MX) have their own `mx1.<d>` (30 % of
/// those also `mx2.<d>`). 80 % of domains with MTA-STS publish TLS-RPT (10 % of the others),
/// 80 % publish SPF `v=spf1 mx -all` and 70 % DMARC `p=reject`, as real domains do (tools
/// that check SPF and DMARC have real records to parse).
pub fn generate(n: usize, seed: u64) -> Vec<GeneratedDomain> {
    (0..n).map(|i| generate_one(i, seed)).collect()
}

/// Domain number `i` of the world generated with `seed`.
pub fn generate_one(i: usize, seed: u64) -> GeneratedDomain {
    let mut rng =
        Rng(seed.wrapping_mul(0xA076_1D64_78BD_642F)
            ^ (i as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB));
    // Warm up so that neighbouring (seed, i) pairs diverge.
    rng.next_u64();
    let d = domain_name(i);
    let roll = rng.below(100);
    let profile = match roll {
        0..35 => Profile::GoodEnforce,
        35..45 => Profile::GoodTesting,
        45..50 => Profile::ModeNone,
        50..75 => Profile::NoMtaSts,
        _ => {
            let k = rng.below(Breakage::ALL.len() as u64) as usize;
            Profile::Broken(Breakage::ALL[k])
        }
    };
    let pool_roll = rng.below(100);
    let mut mx_pool = match pool_roll {
        0..40 => MxPool::BigMail,
        40..50 => MxPool::Hoster,
        _ => MxPool::Own,
    };
    if matches!(profile, Profile::Broken(b) if b.breaks_mx()) {
        mx_pool = MxPool::Own;
    }

    // MX records and the policy's mx: lines that cover them.
    let (mx, patterns): (Vec<MxSpec>, Vec<String>) = match mx_pool {
        MxPool::BigMail => {
            let k = rng.below(BIGMAIL_HOSTS as u64) as usize;
            let a = format!("mx{}.bigmail.test", k + 1);
            let b = format!("mx{}.bigmail.test", (k + 1) % BIGMAIL_HOSTS + 1);
            (vec![MxSpec::good(10, &a), MxSpec::good(20, &b)], vec!["*.bigmail.test".to_owned()])
        }
        MxPool::Hoster => {
            let h = format!("mx.h{:02}.bench-hosting.test", rng.below(HOSTERS as u64));
            (vec![MxSpec::good(10, &h)], vec![h])
        }
        MxPool::Own => {
            let mut mx = vec![MxSpec::good(10, &format!("mx1.{d}"))];
            if rng.below(100) < 30 {
                mx.push(MxSpec::good(20, &format!("mx2.{d}")));
            }
            let patterns = mx.iter().map(|m| m.host.clone()).collect();
            (mx, patterns)
        }
    };
    let tlsrpt_roll = rng.below(100);
    let spf_roll = rng.below(100);
    let dmarc_roll = rng.below(100);

    let pats: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let mut s = DomainSpec::good(&d);
    s.sts_txt = vec![vec![format!("v=STSv1; id=20260101T{i:06};")]];
    s.mx = mx;
    s = s.with_policy(policy_text("enforce", DEFAULT_MAX_AGE, &pats));
    let has_sts = profile != Profile::NoMtaSts;
    if !(has_sts && tlsrpt_roll < 80 || !has_sts && tlsrpt_roll < 10) {
        s.tlsrpt_txt.clear();
    }
    if spf_roll < 80 {
        s.extra_txt.push((d.clone(), vec!["v=spf1 mx -all".to_owned()]));
    }
    if dmarc_roll < 70 {
        s.extra_txt.push((
            format!("_dmarc.{d}"),
            vec![format!("v=DMARC1; p=reject; rua=mailto:dmarc@{d}")],
        ));
    }
    let html = |body: String| HttpBehaviour::Respond {
        status: 200,
        content_type: Some("text/html".to_owned()),
        body: body.into_bytes(),
    };
    match profile {
        Profile::GoodEnforce => {}
        Profile::GoodTesting => s = s.with_policy(policy_text("testing", DEFAULT_MAX_AGE, &pats)),
        Profile::ModeNone => s = s.with_policy(policy_text("none", DEFAULT_MAX_AGE, &[])),
        Profile::NoMtaSts => {
            s.sts_txt.clear();
            s.policy_host = PolicyHost::Absent;
        }
        Profile::Broken(b) => match b {
            Breakage::TxtInvalidId => s.sts_txt = vec![vec!["v=STSv1; id=2026-01-01;".to_owned()]],
            Breakage::TxtDuplicate => {
                s.sts_txt.push(vec!["v=STSv1; id=20260202T000000;".to_owned()])
            }
            Breakage::PolicyHostNxdomain => s.policy_host = PolicyHost::Absent,
            Breakage::PolicyHostUnreachable => s.policy_host = PolicyHost::Unreachable,
            Breakage::Policy404 => s.set_behaviour(HttpBehaviour::Respond {
                status: 404,
                content_type: Some("text/plain".to_owned()),
                body: b"not found\n".to_vec(),
            }),
            Breakage::ContentTypeHtml => {
                s.set_behaviour(html(policy_text("enforce", DEFAULT_MAX_AGE, &pats)));
            }
            Breakage::Redirect => s.set_behaviour(HttpBehaviour::Redirect {
                status: 301,
                location: format!("https://www.{d}/mta-sts.txt"),
            }),
            Breakage::PolicySyntaxError => {
                s = s.with_policy(policy_text("enforcing", DEFAULT_MAX_AGE, &pats));
            }
            Breakage::PolicyMissingMaxAge => {
                let mut body = "version: STSv1\nmode: enforce\n".to_owned();
                for p in &pats {
                    body.push_str(&format!("mx: {p}\n"));
                }
                s = s.with_policy(body);
            }
            Breakage::PolicyCertExpired => s.set_policy_cert(CertKind::Expired),
            Breakage::PolicyCertUntrusted => s.set_policy_cert(CertKind::Untrusted),
            Breakage::MxNotCovered => s.mx.push(MxSpec::good(30, &format!("backup.{d}"))),
            Breakage::MxNoStarttls => s.mx[0].smtp = Some(SmtpKind::NoStartTls),
            Breakage::MxCertExpired => s.mx[0].cert = CertKind::Expired,
            Breakage::MxCertWrongName => s.mx[0].cert = CertKind::WrongName,
            Breakage::MxUnreachable => s.mx[0].smtp = None,
        },
    }
    GeneratedDomain { spec: s, profile, mx_pool }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn deterministic_and_prefix_stable() {
        let a = generate(200, 7);
        let b = generate(300, 7);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.spec, y.spec);
            assert_eq!(x.profile, y.profile);
        }
        let c = generate(200, 8);
        assert!(a.iter().zip(&c).any(|(x, y)| x.profile != y.profile));
    }

    #[test]
    fn the_mix_is_roughly_as_documented() {
        let n = 20_000;
        let all = generate(n, 1);
        let mut by: HashMap<&'static str, usize> = HashMap::new();
        for g in &all {
            let k = match g.profile {
                Profile::GoodEnforce => "enforce",
                Profile::GoodTesting => "testing",
                Profile::ModeNone => "none",
                Profile::NoMtaSts => "absent",
                Profile::Broken(_) => "broken",
            };
            *by.entry(k).or_default() += 1;
        }
        let pct = |k: &str| by.get(k).copied().unwrap_or(0) * 100 / n;
        assert!((33..=37).contains(&pct("enforce")), "{by:?}");
        assert!((8..=12).contains(&pct("testing")), "{by:?}");
        assert!((4..=6).contains(&pct("none")), "{by:?}");
        assert!((23..=27).contains(&pct("absent")), "{by:?}");
        assert!((23..=27).contains(&pct("broken")), "{by:?}");
        let breakages: HashSet<Breakage> = all
            .iter()
            .filter_map(|g| match g.profile {
                Profile::Broken(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(breakages.len(), Breakage::ALL.len());
        let big = all.iter().filter(|g| g.mx_pool == MxPool::BigMail).count();
        assert!((35..=41).contains(&(big * 100 / n)), "{big}");
        let names: HashSet<&str> = all.iter().map(|g| g.spec.name.as_str()).collect();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn good_policies_cover_their_mx() {
        for g in generate(2000, 3) {
            if g.profile != Profile::GoodEnforce {
                continue;
            }
            let PolicyHost::Serve { behaviour: HttpBehaviour::Respond { body, .. }, .. } =
                &g.spec.policy_host
            else {
                panic!("{} serves no policy", g.spec.name);
            };
            let body = String::from_utf8_lossy(body);
            for mx in &g.spec.mx {
                let covered = body.lines().filter_map(|l| l.strip_prefix("mx: ")).any(|p| {
                    p == mx.host
                        || p.strip_prefix("*.").is_some_and(|suffix| {
                            mx.host.split_once('.').is_some_and(|(_, rest)| rest == suffix)
                        })
                });
                assert!(covered, "{} does not cover {}", g.spec.name, mx.host);
            }
        }
    }
}
