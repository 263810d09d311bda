//! A whole test world of mail domains under the reserved TLD `.test` (RFC 2606), and the
//! named [`Scenario`]s, one per pitfall seen in the field.
//!
//! # Addresses and ports
//!
//! Each world takes a block `127.A.B.0/24` (A in 1..=254, so never `127.0.x.x`; B in 0..=255)
//! chosen from a process-wide counter mixed with the pid and the clock, so parallel tests and
//! parallel test processes rarely collide. In that block:
//!
//! * `127.A.B.1` — the HTTPS server, port [`World::https_port`]; every `mta-sts.<domain>` with
//!   [`PolicyHost::Serve`] resolves here and the SNI name picks the behaviour;
//! * `127.A.B.2` and up — one address per distinct MX host (in order of first appearance); all
//!   SMTP servers listen on the same port [`World::smtp_port`];
//! * `127.A.B.254` — nothing listens ([`World::dead_addr`]): connections are refused.
//!
//! The ports are found by binding the first listener to port 0 and the others to the same
//! port; on any bind error the whole allocation is retried with another block (up to
//! [`MAX_ALLOCATION_ATTEMPTS`] times). Linux routes all of 127.0.0.0/8 to `lo`. The DNS server
//! is on `127.0.0.1` (its own ephemeral port, UDP and TCP).
//!
//! [`WorldBuilder::standard_ports`] moves the DNS server to `127.A.B.253:53` and uses ports
//! 443 and 25; [`WorldBuilder::shared_hosts`] (implied by [`WorldBuilder::generated`]) puts
//! MX names on a pool of SMTP servers instead of one address each (see its documentation).

use std::{
    collections::{HashMap, HashSet},
    io,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use std::sync::Arc;

use tempfile::TempDir;
use tokio::net::{TcpListener, UdpSocket};

use crate::{
    ca::{CertSpec, IssuedCert, TestCa},
    dns::{DnsServer, Zone},
    https::{HttpBehaviour, HttpsHost, HttpsServer, VirtualHost},
    smtp::{SmtpBehaviour, SmtpServer},
};

/// How many address blocks [`WorldBuilder::build`] tries before giving up.
pub const MAX_ALLOCATION_ATTEMPTS: usize = 20;
/// The `id=` of every scenario's TXT record unless the scenario is about it.
pub const DEFAULT_STS_ID: &str = "20260101T000000";
/// The `max_age` of every scenario's policy unless the scenario is about it (one week).
pub const DEFAULT_MAX_AGE: u32 = 604_800;
/// Host offset of the HTTPS server in the world's /24.
pub const HTTPS_HOST: u8 = 1;
/// Host offset of the address where nothing listens.
pub const DEAD_HOST: u8 = 254;
/// The name in certificates made for [`CertKind::WrongName`].
pub const WRONG_NAME: &str = "wrong-name.test";
/// Host offset of the DNS server with [`WorldBuilder::standard_ports`] (port 53).
pub const DNS_HOST: u8 = 253;
/// Policy host names per certificate with [`WorldBuilder::shared_hosts`] (Let's Encrypt's
/// limit).
pub const DEFAULT_CERT_GROUP: usize = 100;
/// MX host names per certificate with [`WorldBuilder::shared_hosts`].
pub const DEFAULT_MX_CERT_GROUP: usize = 1;
/// The standard ports used with [`WorldBuilder::standard_ports`].
pub const STANDARD_DNS_PORT: u16 = 53;
/// HTTPS port with [`WorldBuilder::standard_ports`].
pub const STANDARD_HTTPS_PORT: u16 = 443;
/// SMTP port with [`WorldBuilder::standard_ports`].
pub const STANDARD_SMTP_PORT: u16 = 25;

/// The policy file text: `version`, `mode`, one `mx` line per pattern, `max_age`, LF endings.
pub fn policy_text(mode: &str, max_age: u32, mx: &[&str]) -> String {
    let mut s = format!("version: STSv1\nmode: {mode}\n");
    for m in mx {
        s.push_str("mx: ");
        s.push_str(m);
        s.push('\n');
    }
    s.push_str(&format!("max_age: {max_age}\n"));
    s
}

/// Which certificate a server presents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Issued by the world's CA for the right name, valid now.
    #[default]
    Valid,
    /// Issued by the world's CA for the right name, expired yesterday.
    Expired,
    /// Issued by the world's CA for the right name, valid from tomorrow.
    NotYetValid,
    /// Issued by the world's CA, valid now, for [`WRONG_NAME`] only.
    WrongName,
    /// Right name, valid now, signed by another CA that is not in [`World::ca_pem_path`].
    Untrusted,
    /// Right name, valid now, self-signed leaf.
    SelfSigned,
}

/// Where `mta-sts.<domain>` points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PolicyHost {
    /// No DNS name `mta-sts.<domain>` at all (NXDOMAIN).
    #[default]
    Absent,
    /// `mta-sts.<domain>` resolves to [`World::dead_addr`], where nothing listens.
    Unreachable,
    /// `mta-sts.<domain>` resolves to the HTTPS server, which presents `cert` for it and
    /// answers as `behaviour`.
    Serve {
        /// The certificate for `mta-sts.<domain>`.
        cert: CertKind,
        /// What the host answers.
        behaviour: HttpBehaviour,
    },
}

/// What listens on an MX host's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmtpKind {
    /// SMTP offering STARTTLS.
    StartTls,
    /// SMTP without STARTTLS.
    NoStartTls,
    /// Accepts TCP, never sends a byte.
    Silent,
}

/// One MX record and the host behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxSpec {
    /// MX preference.
    pub preference: u16,
    /// Exchange host name; it gets an A record to its own address in the world.
    pub host: String,
    /// What listens there; `None` = the A record exists but nothing listens (refused).
    pub smtp: Option<SmtpKind>,
    /// The STARTTLS certificate (names = `[host]`).
    pub cert: CertKind,
}

impl MxSpec {
    /// A well-behaved MX: STARTTLS with a valid certificate.
    pub fn good(preference: u16, host: &str) -> Self {
        Self {
            preference,
            host: host.to_owned(),
            smtp: Some(SmtpKind::StartTls),
            cert: CertKind::Valid,
        }
    }
}

/// An SMTP server at the domain's own address (RFC 5321 §5.1 implicit MX, used when the
/// domain has no MX RRset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplicitMx {
    /// What listens at the domain's address.
    pub smtp: Option<SmtpKind>,
    /// Its certificate (names = `[domain]`).
    pub cert: CertKind,
}

/// Everything a domain can publish. All names are absolute; a trailing dot is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSpec {
    /// The domain, e.g. "good.test".
    pub name: String,
    /// TXT RRs at `_mta-sts.<name>`, each a list of character-strings.
    pub sts_txt: Vec<Vec<String>>,
    /// Where `mta-sts.<name>` points and what it serves.
    pub policy_host: PolicyHost,
    /// MX RRs at `<name>` and their hosts.
    pub mx: Vec<MxSpec>,
    /// TXT RRs at `_smtp._tls.<name>` (TLS-RPT, RFC 8460 §3).
    pub tlsrpt_txt: Vec<Vec<String>>,
    /// TLSA RRs: (owner, usage, selector, matching type, data).
    pub tlsa: Vec<(String, u8, u8, u8, Vec<u8>)>,
    /// Other TXT RRs: (owner, character-strings).
    pub extra_txt: Vec<(String, Vec<String>)>,
    /// Names answered SERVFAIL.
    pub servfail: Vec<String>,
    /// Names never answered.
    pub silent: Vec<String>,
    /// An A record at `<name>` itself with an SMTP server behind it.
    pub implicit_mx: Option<ImplicitMx>,
    /// Publish the RFC 7505 null MX `0 .` (besides any `mx` records).
    pub null_mx: bool,
    /// CNAME RRs: (owner, target). No automatic A record is added at an owner.
    pub cnames: Vec<(String, String)>,
    /// Names given an A record to the HTTPS server's address (e.g. CNAME targets).
    pub https_aliases: Vec<String>,
    /// Publish `_25._tcp.<mx> TLSA 3 1 1 <sha256(SPKI)>` matching each SMTP host's actual
    /// certificate (RFC 7672 DANE-EE).
    pub dane_from_certs: bool,
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

impl DomainSpec {
    /// A domain that publishes nothing at all.
    pub fn empty(name: &str) -> Self {
        Self { name: name.to_owned(), ..Self::default() }
    }

    /// The well-configured domain every scenario starts from: TXT
    /// `v=STSv1; id=20260101T000000;`, an enforce policy (max_age one week) for `mx1.<name>`
    /// served 200 text/plain with a valid certificate, MX 10 `mx1.<name>` with STARTTLS and a
    /// valid certificate, TLS-RPT `v=TLSRPTv1; rua=mailto:tlsrpt@<name>`.
    pub fn good(name: &str) -> Self {
        let mx1 = format!("mx1.{name}");
        Self {
            name: name.to_owned(),
            sts_txt: vec![vec![format!("v=STSv1; id={DEFAULT_STS_ID};")]],
            policy_host: PolicyHost::Serve {
                cert: CertKind::Valid,
                behaviour: HttpBehaviour::ok_text(policy_text("enforce", DEFAULT_MAX_AGE, &[&mx1])),
            },
            mx: vec![MxSpec::good(10, &mx1)],
            tlsrpt_txt: vec![vec![format!("v=TLSRPTv1; rua=mailto:tlsrpt@{name}")]],
            ..Self::default()
        }
    }

    /// Replaces the policy host's behaviour with `200 text/plain` serving `body` (the
    /// certificate kind is kept; an absent or unreachable host becomes a served one).
    pub fn with_policy(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.set_behaviour(HttpBehaviour::ok_text(body));
        self
    }

    /// Replaces the policy host's behaviour.
    pub fn set_behaviour(&mut self, behaviour: HttpBehaviour) {
        let cert = match &self.policy_host {
            PolicyHost::Serve { cert, .. } => *cert,
            _ => CertKind::Valid,
        };
        self.policy_host = PolicyHost::Serve { cert, behaviour };
    }

    /// Sets the policy host's certificate kind (no effect unless it is [`PolicyHost::Serve`]).
    pub fn set_policy_cert(&mut self, kind: CertKind) {
        if let PolicyHost::Serve { cert, .. } = &mut self.policy_host {
            *cert = kind;
        }
    }

    /// The domain name, lower case, without a trailing dot.
    pub(crate) fn norm_name(&self) -> String {
        norm(&self.name)
    }
}

pub(crate) fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

macro_rules! scenarios {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// A named fixture: one domain (sometimes with helpers) showing one pitfall.
        ///
        /// The domain is `<name>.test`. Unless the scenario is about it, the domain is
        /// [`DomainSpec::good`]. New scenarios are added here and in [`Scenario::spec`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Scenario {
            $( $(#[$doc])* $variant, )*
        }

        impl Scenario {
            /// Every scenario, in declaration order.
            pub const ALL: &'static [Scenario] = &[ $( Scenario::$variant, )* ];

            /// The kebab-case name, e.g. "txt-duplicate".
            pub fn name(&self) -> &'static str {
                match self {
                    $( Scenario::$variant => $name, )*
                }
            }
        }
    };
}

scenarios! {
    /// Everything right.
    Good => "good",
    /// TXT record split into two character-strings ("v=STSv1; id=2026" "0101T000000;"): fine
    /// once joined (RFC 8461 §3.1).
    GoodSplitTxt => "good-split-txt",
    /// Policy `mx: *.<d>` covering MX `mx1.<d>` and `mx2.<d>`: fine.
    GoodWildcard => "good-wildcard",
    /// `_mta-sts.<d>` and `mta-sts.<d>` are CNAMEs to a hosting provider: fine (the
    /// certificate is still for `mta-sts.<d>`).
    GoodCnameDelegated => "good-cname-delegated",
    /// A valid policy served with `Transfer-Encoding: chunked`: fine.
    HttpsChunked => "https-chunked",
    /// No MTA-STS and no TLS-RPT at all, just MX.
    NoMtaSts => "no-mta-sts",
    /// The policy host serves a policy but there is no `_mta-sts` TXT record.
    TxtMissing => "txt-missing",
    /// Two `v=STSv1` TXT records with different ids (RFC 8461 §3.1: treat as no record).
    TxtDuplicate => "txt-duplicate",
    /// `id=2026-01-01`: "-" is not allowed in an id (1*32(ALPHA / DIGIT)).
    TxtInvalidId => "txt-invalid-id",
    /// `v=STSv1;` without the required id.
    TxtMissingId => "txt-missing-id",
    /// `id=123; v=STSv1;`: the version must come first, so the record is discarded.
    TxtNotFirst => "txt-not-first",
    /// Only `v=spf1 -all` at `_mta-sts`: no STS record.
    TxtUnrelatedOnly => "txt-unrelated-only",
    /// TXT published but `mta-sts.<d>` does not exist (NXDOMAIN).
    PolicyHostNxdomain => "policy-host-nxdomain",
    /// `mta-sts.<d>` resolves to an address where nothing listens.
    PolicyHostUnreachable => "policy-host-unreachable",
    /// Policy host certificate signed by a CA the client does not trust.
    HttpsUntrustedCert => "https-untrusted-cert",
    /// Policy host certificate expired.
    HttpsExpiredCert => "https-expired-cert",
    /// Policy host certificate for another name.
    HttpsWrongNameCert => "https-wrong-name-cert",
    /// 301 to `https://www.<d>/mta-sts.txt` (redirects MUST NOT be followed, RFC 8461 §3.3).
    HttpsRedirect => "https-redirect",
    /// 404 for the policy path.
    Https404 => "https-404",
    /// 500 for the policy path.
    Https500 => "https-500",
    /// Policy served as text/html (RFC 8461 §3.2 wants text/plain).
    HttpsContentTypeHtml => "https-content-type-html",
    /// Policy served as `text/plain; charset=utf-8`: fine, must NOT be flagged.
    HttpsContentTypeCharset => "https-content-type-charset",
    /// Endless body without Content-Length (clients must cap the size, 64 KiB suggested).
    HttpsTooLarge => "https-too-large",
    /// TLS handshake completes, no HTTP answer ever (clients must time out).
    HttpsHang => "https-hang",
    /// Body trickled at 1 byte per second (clients must time out).
    HttpsSlow => "https-slow",
    /// `mode: enforcing` (not a valid mode).
    PolicySyntaxError => "policy-syntax-error",
    /// Policy without `max_age`.
    PolicyMissingMaxAge => "policy-missing-max-age",
    /// `mx: 192.0.2.25`: MX patterns are host names, not IP addresses.
    PolicyIpMx => "policy-ip-mx",
    /// `mode` before `version`: version must be the first field.
    PolicyVersionNotFirst => "policy-version-not-first",
    /// `max_age: 31557601`, over the 31557600 maximum.
    PolicyMaxAgeTooLarge => "policy-max-age-too-large",
    /// `max_age: 3600`: legal but too short to protect (weeks are recommended).
    PolicyMaxAgeShort => "policy-max-age-short",
    /// `mode: testing`: failures are only reported.
    PolicyModeTesting => "policy-mode-testing",
    /// `mode: none` with no mx lines: policy withdrawal.
    PolicyModeNone => "policy-mode-none",
    /// MX `backup.<d>` (preference 20) is not listed in the policy.
    MxNotCovered => "mx-not-covered",
    /// Policy lists `old-mx.<d>`, which is not an MX any more.
    MxPatternUnused => "mx-pattern-unused",
    /// Policy `*.<d>` but MX `a.mx.<d>`: a wildcard matches one label only.
    MxWildcardTooDeep => "mx-wildcard-too-deep",
    /// MX does not offer STARTTLS.
    MxNoStarttls => "mx-no-starttls",
    /// MX certificate signed by an untrusted CA.
    MxCertUntrusted => "mx-cert-untrusted",
    /// MX certificate expired.
    MxCertExpired => "mx-cert-expired",
    /// MX certificate for another name.
    MxCertWrongName => "mx-cert-wrong-name",
    /// MX certificate self-signed.
    MxCertSelfSigned => "mx-cert-self-signed",
    /// `mode: testing` with a wrong-name MX certificate (report, do not block).
    MxCertBadTestingMode => "mx-cert-bad-testing-mode",
    /// MX accepts TCP and never says anything.
    MxSilent => "mx-silent",
    /// MX has an A record but nothing listens there.
    MxUnreachable => "mx-unreachable",
    /// No MX RRset; the domain's own A record runs SMTP (RFC 5321 implicit MX); policy `mx: <d>`.
    ImplicitMx => "implicit-mx",
    /// Only the null MX `0 .` (RFC 7505), no MTA-STS, no TLS-RPT: a domain that takes no mail.
    NullMx => "null-mx",
    /// The null MX `0 .` beside a real MX, which RFC 7505 §3 forbids; policy as `good`.
    NullMxMixed => "null-mx-mixed",
    /// No TLS-RPT record.
    TlsrptMissing => "tlsrpt-missing",
    /// `v=TLSRPTv1; rua=ftp://x`: only mailto: and https: are allowed (RFC 8460 §3).
    TlsrptInvalid => "tlsrpt-invalid",
    /// Two TLS-RPT records (RFC 8460 §3: treat as none).
    TlsrptDuplicate => "tlsrpt-duplicate",
    /// DANE TLSA `3 1 1` at `_25._tcp.mx1.<d>` matching the MX certificate, besides MTA-STS.
    DaneTlsa => "dane-tlsa",
    /// SERVFAIL for `_mta-sts.<d>` (temporary failure, not "no policy").
    DnsServfail => "dns-servfail",
    /// No answer at all for `_mta-sts.<d>` (clients must time out).
    DnsTimeout => "dns-timeout",
}

impl Scenario {
    /// The scenario's domain: `<name>.test`.
    pub fn domain(&self) -> String {
        format!("{}.test", self.name())
    }

    /// Looks a scenario up by its kebab-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The domains this scenario installs (the first is [`Scenario::domain`]).
    pub fn spec(&self) -> Vec<DomainSpec> {
        let d = self.domain();
        let d = d.as_str();
        let mx1 = format!("mx1.{d}");
        let mx1 = mx1.as_str();
        let mut s = DomainSpec::good(d);
        let enforce = |mx: &[&str]| policy_text("enforce", DEFAULT_MAX_AGE, mx);
        match self {
            Self::Good => {}
            Self::GoodSplitTxt => {
                s.sts_txt = vec![strings(&["v=STSv1; id=2026", "0101T000000;"])];
            }
            Self::GoodWildcard => {
                let mx2 = format!("mx2.{d}");
                s.mx = vec![MxSpec::good(10, mx1), MxSpec::good(20, &mx2)];
                s = s.with_policy(enforce(&[&format!("*.{d}")]));
            }
            Self::GoodCnameDelegated => {
                let sts_target = format!("_mta-sts.{}.provider-hosting.test", self.name());
                s.cnames = vec![
                    (format!("_mta-sts.{d}"), sts_target.clone()),
                    (format!("mta-sts.{d}"), "policy.provider-hosting.test".to_owned()),
                ];
                s.extra_txt = std::mem::take(&mut s.sts_txt)
                    .into_iter()
                    .map(|t| (sts_target.clone(), t))
                    .collect();
                s.https_aliases = vec!["policy.provider-hosting.test".to_owned()];
            }
            Self::HttpsChunked => s.set_behaviour(HttpBehaviour::Chunked {
                content_type: "text/plain".to_owned(),
                body: enforce(&[mx1]).into_bytes(),
            }),
            Self::NoMtaSts => {
                s.sts_txt.clear();
                s.policy_host = PolicyHost::Absent;
                s.tlsrpt_txt.clear();
            }
            Self::TxtMissing => s.sts_txt.clear(),
            Self::TxtDuplicate => {
                s.sts_txt = vec![
                    vec![format!("v=STSv1; id={DEFAULT_STS_ID};")],
                    strings(&["v=STSv1; id=20260202T000000;"]),
                ];
            }
            Self::TxtInvalidId => s.sts_txt = vec![strings(&["v=STSv1; id=2026-01-01;"])],
            Self::TxtMissingId => s.sts_txt = vec![strings(&["v=STSv1;"])],
            Self::TxtNotFirst => s.sts_txt = vec![strings(&["id=123; v=STSv1;"])],
            Self::TxtUnrelatedOnly => s.sts_txt = vec![strings(&["v=spf1 -all"])],
            Self::PolicyHostNxdomain => s.policy_host = PolicyHost::Absent,
            Self::PolicyHostUnreachable => s.policy_host = PolicyHost::Unreachable,
            Self::HttpsUntrustedCert => s.set_policy_cert(CertKind::Untrusted),
            Self::HttpsExpiredCert => s.set_policy_cert(CertKind::Expired),
            Self::HttpsWrongNameCert => s.set_policy_cert(CertKind::WrongName),
            Self::HttpsRedirect => s.set_behaviour(HttpBehaviour::Redirect {
                status: 301,
                location: format!("https://www.{d}/mta-sts.txt"),
            }),
            Self::Https404 => s.set_behaviour(HttpBehaviour::Respond {
                status: 404,
                content_type: Some("text/plain".to_owned()),
                body: b"not found\n".to_vec(),
            }),
            Self::Https500 => s.set_behaviour(HttpBehaviour::Respond {
                status: 500,
                content_type: Some("text/plain".to_owned()),
                body: b"internal error\n".to_vec(),
            }),
            Self::HttpsContentTypeHtml => s.set_behaviour(HttpBehaviour::Respond {
                status: 200,
                content_type: Some("text/html".to_owned()),
                body: enforce(&[mx1]).into_bytes(),
            }),
            Self::HttpsContentTypeCharset => s.set_behaviour(HttpBehaviour::Respond {
                status: 200,
                content_type: Some("text/plain; charset=utf-8".to_owned()),
                body: enforce(&[mx1]).into_bytes(),
            }),
            Self::HttpsTooLarge => {
                s.set_behaviour(HttpBehaviour::Endless { content_type: "text/plain".to_owned() })
            }
            Self::HttpsHang => s.set_behaviour(HttpBehaviour::Hang),
            Self::HttpsSlow => s.set_behaviour(HttpBehaviour::Slow {
                content_type: "text/plain".to_owned(),
                body: enforce(&[mx1]).into_bytes(),
                bytes_per_second: 1,
            }),
            Self::PolicySyntaxError => {
                s = s.with_policy(policy_text("enforcing", DEFAULT_MAX_AGE, &[mx1]));
            }
            Self::PolicyMissingMaxAge => {
                s = s.with_policy(format!("version: STSv1\nmode: enforce\nmx: {mx1}\n"));
            }
            Self::PolicyIpMx => s = s.with_policy(enforce(&[mx1, "192.0.2.25"])),
            Self::PolicyVersionNotFirst => {
                s = s.with_policy(format!(
                    "mode: enforce\nversion: STSv1\nmx: {mx1}\nmax_age: {DEFAULT_MAX_AGE}\n"
                ));
            }
            Self::PolicyMaxAgeTooLarge => {
                s = s.with_policy(policy_text("enforce", 31_557_601, &[mx1]));
            }
            Self::PolicyMaxAgeShort => s = s.with_policy(policy_text("enforce", 3600, &[mx1])),
            Self::PolicyModeTesting => {
                s = s.with_policy(policy_text("testing", DEFAULT_MAX_AGE, &[mx1]));
            }
            Self::PolicyModeNone => s = s.with_policy(policy_text("none", DEFAULT_MAX_AGE, &[])),
            Self::MxNotCovered => s.mx.push(MxSpec::good(20, &format!("backup.{d}"))),
            Self::MxPatternUnused => {
                s = s.with_policy(enforce(&[mx1, &format!("old-mx.{d}")]));
            }
            Self::MxWildcardTooDeep => {
                s.mx = vec![MxSpec::good(10, &format!("a.mx.{d}"))];
                s = s.with_policy(enforce(&[&format!("*.{d}")]));
            }
            Self::MxNoStarttls => s.mx[0].smtp = Some(SmtpKind::NoStartTls),
            Self::MxCertUntrusted => s.mx[0].cert = CertKind::Untrusted,
            Self::MxCertExpired => s.mx[0].cert = CertKind::Expired,
            Self::MxCertWrongName => s.mx[0].cert = CertKind::WrongName,
            Self::MxCertSelfSigned => s.mx[0].cert = CertKind::SelfSigned,
            Self::MxCertBadTestingMode => {
                s.mx[0].cert = CertKind::WrongName;
                s = s.with_policy(policy_text("testing", DEFAULT_MAX_AGE, &[mx1]));
            }
            Self::MxSilent => s.mx[0].smtp = Some(SmtpKind::Silent),
            Self::MxUnreachable => s.mx[0].smtp = None,
            Self::ImplicitMx => {
                s.mx.clear();
                s.implicit_mx =
                    Some(ImplicitMx { smtp: Some(SmtpKind::StartTls), cert: CertKind::Valid });
                s = s.with_policy(enforce(&[d]));
            }
            Self::NullMx => {
                s.mx.clear();
                s.null_mx = true;
                s.sts_txt.clear();
                s.policy_host = PolicyHost::Absent;
                s.tlsrpt_txt.clear();
            }
            Self::NullMxMixed => s.null_mx = true,
            Self::TlsrptMissing => s.tlsrpt_txt.clear(),
            Self::TlsrptInvalid => s.tlsrpt_txt = vec![strings(&["v=TLSRPTv1; rua=ftp://x"])],
            Self::TlsrptDuplicate => {
                s.tlsrpt_txt.push(vec![format!("v=TLSRPTv1; rua=mailto:tlsrpt2@{d}")])
            }
            Self::DaneTlsa => s.dane_from_certs = true,
            Self::DnsServfail => s.servfail = vec![format!("_mta-sts.{d}")],
            Self::DnsTimeout => s.silent = vec![format!("_mta-sts.{d}")],
        }
        vec![s]
    }
}

/// Builds a [`World`].
#[derive(Debug, Default)]
pub struct WorldBuilder {
    domains: Vec<DomainSpec>,
    layout: Layout,
}

/// How a world is laid out and served (see [`WorldBuilder`]'s switches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) standard_ports: bool,
    pub(crate) shared_hosts: bool,
    pub(crate) quiet: bool,
    pub(crate) keep_zone_file: bool,
    pub(crate) cert_group: usize,
    pub(crate) mx_cert_group: usize,
}

impl WorldBuilder {
    /// Installs the scenario's domain(s).
    pub fn scenario(mut self, s: Scenario) -> Self {
        self.domains.extend(s.spec());
        self
    }

    /// Installs every scenario.
    pub fn all_scenarios(mut self) -> Self {
        for s in Scenario::ALL {
            self.domains.extend(s.spec());
        }
        self
    }

    /// Installs a custom domain. If two specs have the same name, the first wins.
    pub fn domain(mut self, spec: DomainSpec) -> Self {
        self.domains.push(spec);
        self
    }

    /// Installs `n` generated domains (see [`crate::generated::generate`]) and switches to
    /// [`WorldBuilder::shared_hosts`], which they need (they have far more MX hosts than
    /// one /24 has addresses).
    pub fn generated(mut self, n: usize, seed: u64) -> Self {
        self.domains.extend(crate::generated::generate(n, seed).into_iter().map(|g| g.spec));
        self.layout.shared_hosts = true;
        self
    }

    /// Serves on the standard ports: DNS on `127.A.B.253:53` (UDP and TCP; see
    /// [`DNS_HOST`]), HTTPS on port 443 and SMTP on port 25, for clients that cannot be told
    /// other ports. Needs the privilege to bind ports below 1024.
    pub fn standard_ports(mut self) -> Self {
        self.layout.standard_ports = true;
        self
    }

    /// Virtual hosting, for worlds of many thousands of domains in one /24:
    ///
    /// * MX host names no longer get an address each; they are spread over a pool of SMTP
    ///   servers by kind (STARTTLS: `127.A.B.2`–`.241`; no STARTTLS: `.242`–`.247`; silent:
    ///   `.248`–`.250`; "nothing listens": [`World::dead_addr`]), and each server picks its
    ///   STARTTLS certificate by the SNI name, so every MX name still has its own
    ///   certificate (of its [`CertKind`]) and its own DNS name;
    /// * certificates are issued for groups of names (see [`WorldBuilder::cert_group`])
    ///   rather than one per name: policy hosts by [`WorldBuilder::cert_group`], MX hosts by
    ///   [`WorldBuilder::mx_cert_group`].
    ///
    /// [`World::smtp`] then returns the pool server that answers for the host.
    pub fn shared_hosts(mut self) -> Self {
        self.layout.shared_hosts = true;
        self
    }

    /// Keeps no logs of DNS queries, HTTPS requests or SMTP sessions (their accessors
    /// return nothing), so that a long benchmark does not grow the world's memory.
    pub fn quiet(mut self) -> Self {
        self.layout.quiet = true;
        self
    }

    /// Keeps the world's DNS data as zone-file text ([`World::zone_file`]), so that another
    /// DNS server (e.g. Debian's `nsd`) can serve the same records.
    pub fn keep_zone_file(mut self) -> Self {
        self.layout.keep_zone_file = true;
        self
    }

    /// With [`WorldBuilder::shared_hosts`]: policy host names per certificate (default
    /// [`DEFAULT_CERT_GROUP`], the most subject alternative names Let's Encrypt puts in one
    /// certificate).
    pub fn cert_group(mut self, names: usize) -> Self {
        self.layout.cert_group = names;
        self
    }

    /// With [`WorldBuilder::shared_hosts`]: MX host names per certificate (default
    /// [`DEFAULT_MX_CERT_GROUP`]: one, as most MX hosts have; clients that keep the names of
    /// the certificates they saw would otherwise carry every group's names for every host).
    pub fn mx_cert_group(mut self, names: usize) -> Self {
        self.layout.mx_cert_group = names;
        self
    }

    /// Starts every server. Panics with a clear message if it cannot (it is test support);
    /// see [`WorldBuilder::try_build`].
    pub async fn build(self) -> World {
        match self.try_build().await {
            Ok(w) => w,
            Err(e) => panic!("mtasts-testkit: cannot build the test world: {e}"),
        }
    }

    /// Starts every server.
    pub async fn try_build(self) -> io::Result<World> {
        let mut layout = self.layout;
        if layout.cert_group == 0 {
            layout.cert_group = DEFAULT_CERT_GROUP;
        }
        if layout.mx_cert_group == 0 {
            layout.mx_cert_group = DEFAULT_MX_CERT_GROUP;
        }
        if layout.shared_hosts {
            crate::shared::build_shared(self.domains, layout).await
        } else {
            build(self.domains, layout).await
        }
    }

    /// For synchronous tests (e.g. ones that run the `mtasts` binary and wait for it): builds
    /// the world on its own multi-threaded tokio runtime, which keeps serving while the
    /// calling thread blocks. Must not be called from inside a tokio runtime. Panics like
    /// [`WorldBuilder::build`].
    ///
    /// (Inside `#[tokio::test]`, which is single-threaded, blocking the test thread would
    /// also stop the world's servers: use `#[tokio::test(flavor = "multi_thread")]` or
    /// `tokio::task::spawn_blocking` there instead.)
    pub fn build_blocking(self) -> BlockingWorld {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mtasts-testkit-world")
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("mtasts-testkit: cannot start a tokio runtime for the world: {e}"),
        };
        let world = rt.block_on(self.build());
        BlockingWorld { world: Some(world), rt: Some(rt) }
    }
}

/// A [`World`] running on its own runtime threads; derefs to [`World`]. See
/// [`WorldBuilder::build_blocking`].
#[derive(Debug)]
pub struct BlockingWorld {
    world: Option<World>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::ops::Deref for BlockingWorld {
    type Target = World;

    fn deref(&self) -> &World {
        match &self.world {
            Some(w) => w,
            None => unreachable!("the world is only taken in Drop"),
        }
    }
}

impl Drop for BlockingWorld {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _guard = rt.enter();
                self.world.take();
            }
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}

/// A running test world: DNS, HTTPS policy hosts, SMTP servers, a CA and its PEM file.
/// Every server stops when the world is dropped.
#[derive(Debug)]
pub struct World {
    pub(crate) dns: DnsServer,
    pub(crate) https: HttpsServer,
    pub(crate) smtp: HashMap<String, SmtpServer>,
    /// With shared hosts: the pool's SMTP servers, and which one answers for each host.
    pub(crate) pool: Vec<SmtpServer>,
    pub(crate) pool_of: HashMap<String, usize>,
    pub(crate) addrs: HashMap<String, Ipv4Addr>,
    pub(crate) ca: TestCa,
    pub(crate) untrusted_ca: TestCa,
    pub(crate) block: (u8, u8),
    pub(crate) https_port: u16,
    pub(crate) smtp_port: u16,
    pub(crate) domains: Vec<String>,
    pub(crate) ca_pem_path: PathBuf,
    pub(crate) zone_file: Option<String>,
    pub(crate) _dir: TempDir,
}

impl World {
    /// A builder with no domains.
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    /// The DNS server to give the client as its only resolver.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.addr()
    }

    /// The DNS server (for [`DnsServer::queries`]).
    pub fn dns(&self) -> &DnsServer {
        &self.dns
    }

    /// The port to use instead of 443.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// Address of the HTTPS server (all `mta-sts.<domain>` names resolve to its IP).
    pub fn https_addr(&self) -> SocketAddr {
        self.https.addr()
    }

    /// The port to use instead of 25.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// PEM file holding only the world's CA, to use as the trust roots.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The world's (trusted) CA.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The CA behind [`CertKind::Untrusted`] certificates (not in [`World::ca_pem_path`]).
    pub fn untrusted_ca(&self) -> &TestCa {
        &self.untrusted_ca
    }

    /// The HTTPS server (for [`HttpsServer::requests`]).
    pub fn https(&self) -> &HttpsServer {
        &self.https
    }

    /// The SMTP server of an MX host (or of an implicit-MX domain), if one listens there.
    pub fn smtp(&self, mx_host: &str) -> Option<&SmtpServer> {
        let host = norm(mx_host);
        self.smtp.get(&host).or_else(|| self.pool_of.get(&host).and_then(|i| self.pool.get(*i)))
    }

    /// The address the world gave `host` (MX hosts, implicit-MX domains, `mta-sts.*` names
    /// resolving to the HTTPS server or to the dead address).
    pub fn host_addr(&self, host: &str) -> Option<Ipv4Addr> {
        self.addrs.get(&norm(host)).copied()
    }

    /// The address in this world's block where nothing listens.
    pub fn dead_addr(&self) -> Ipv4Addr {
        block_ip(self.block, DEAD_HOST)
    }

    /// The world's loopback block as `(A, B)` of `127.A.B.0/24`.
    pub fn block(&self) -> (u8, u8) {
        self.block
    }

    /// The domains installed (lower case).
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// With [`WorldBuilder::keep_zone_file`]: every record the world's DNS server serves, as
    /// one zone-file text with origin `.` ([`Zone::to_zone_file`]).
    pub fn zone_file(&self) -> Option<&str> {
        self.zone_file.as_deref()
    }
}

pub(crate) fn block_ip((a, b): (u8, u8), host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, host)
}

/// Number of usable blocks: A in 1..=254, B in 0..=255.
const BLOCKS: u32 = 254 * 256;

pub(crate) fn next_block() -> (u8, u8) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static BASE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(2_654_435_761).wrapping_add(nanos.wrapping_mul(40_503))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Successive worlds in one process walk the blocks with a stride coprime to BLOCKS.
    let idx = base.wrapping_add(n.wrapping_mul(257)) % BLOCKS;
    ((1 + idx / 256) as u8, (idx % 256) as u8)
}

struct Host {
    name: String,
    offset: u8,
    smtp: Option<SmtpKind>,
    cert: CertKind,
}

struct Bound {
    block: (u8, u8),
    https: TcpListener,
    smtp: Vec<(usize, TcpListener)>,
    smtp_port: u16,
    dns: Option<(UdpSocket, TcpListener)>,
}

/// With standard ports: the DNS sockets on `127.A.B.253:53`.
pub(crate) async fn bind_dns(
    block: (u8, u8),
    layout: Layout,
) -> io::Result<Option<(UdpSocket, TcpListener)>> {
    if !layout.standard_ports {
        return Ok(None);
    }
    let addr = SocketAddr::from((block_ip(block, DNS_HOST), STANDARD_DNS_PORT));
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(addr).await?;
    Ok(Some((udp, tcp)))
}

/// The DNS server on the sockets bound by [`bind_dns`], or on `127.0.0.1` (ephemeral port).
pub(crate) async fn start_dns(
    sockets: Option<(UdpSocket, TcpListener)>,
    zone: Zone,
) -> io::Result<DnsServer> {
    match sockets {
        Some((udp, tcp)) => DnsServer::start_on(udp, tcp, zone),
        None => DnsServer::start(zone).await,
    }
}

async fn bind_block(block: (u8, u8), hosts: &[Host], layout: Layout) -> io::Result<Bound> {
    let (https_port, smtp_port) =
        if layout.standard_ports { (STANDARD_HTTPS_PORT, STANDARD_SMTP_PORT) } else { (0, 0) };
    let https = TcpListener::bind((block_ip(block, HTTPS_HOST), https_port)).await?;
    let mut smtp = Vec::new();
    let mut port = smtp_port;
    for (i, host) in hosts.iter().enumerate() {
        if host.smtp.is_none() {
            continue;
        }
        let l = TcpListener::bind((block_ip(block, host.offset), port)).await?;
        port = l.local_addr()?.port();
        smtp.push((i, l));
    }
    if port == 0 {
        // No SMTP server at all: still hand out a port on which nothing listens.
        let probe = TcpListener::bind((block_ip(block, DEAD_HOST - 1), 0)).await?;
        port = probe.local_addr()?.port();
    }
    let dns = bind_dns(block, layout).await?;
    Ok(Bound { block, https, smtp, smtp_port: port, dns })
}

pub(crate) fn make_cert(
    kind: CertKind,
    name: &str,
    ca: &TestCa,
    untrusted: &TestCa,
) -> io::Result<IssuedCert> {
    let r = match kind {
        CertKind::Valid => ca.try_issue(&CertSpec::valid_for(&[name])),
        CertKind::Expired => ca.try_issue(&CertSpec::expired(&[name])),
        CertKind::NotYetValid => ca.try_issue(&CertSpec::not_yet_valid(&[name])),
        CertKind::WrongName => ca.try_issue(&CertSpec::valid_for(&[WRONG_NAME])),
        CertKind::Untrusted => untrusted.try_issue(&CertSpec::valid_for(&[name])),
        CertKind::SelfSigned => TestCa::try_self_signed(&CertSpec::valid_for(&[name])),
    };
    r.map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("certificate for {name}: {e}"))
    })
}

/// Adds every record of `specs` (all but the A records of MX hosts) to `zone`, and the
/// addresses of policy hosts and HTTPS aliases to `addrs`. `spki` gives the SHA-256 of an
/// SMTP host's certificate key, for `dane_from_certs`.
/// The zone of a world: an A record per host (unless the host name is a CNAME owner), then
/// every domain's records ([`fill_zone`]). Returns the zone and the address of each name.
pub(crate) fn build_zone(
    specs: &[DomainSpec],
    host_ips: impl IntoIterator<Item = (String, Ipv4Addr)>,
    quiet: bool,
    https_ip: Ipv4Addr,
    dead_ip: Ipv4Addr,
    spki: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> (Zone, HashMap<String, Ipv4Addr>) {
    let cname_owners: HashSet<String> =
        specs.iter().flat_map(|s| s.cnames.iter().map(|(o, _)| norm(o))).collect();
    let mut addrs: HashMap<String, Ipv4Addr> = HashMap::new();
    let mut zone = Zone::new();
    if quiet {
        zone.without_query_log();
    }
    for (name, ip) in host_ips {
        if !cname_owners.contains(&name) {
            zone.a(&name, ip);
        }
        addrs.insert(name, ip);
    }
    fill_zone(&mut zone, specs, https_ip, dead_ip, &cname_owners, &mut addrs, spki);
    (zone, addrs)
}

pub(crate) fn fill_zone(
    zone: &mut Zone,
    specs: &[DomainSpec],
    https_ip: Ipv4Addr,
    dead_ip: Ipv4Addr,
    cname_owners: &HashSet<String>,
    addrs: &mut HashMap<String, Ipv4Addr>,
    spki: &dyn Fn(&str) -> Option<Vec<u8>>,
) {
    for spec in specs {
        let d = spec.norm_name();
        for (owner, target) in &spec.cnames {
            zone.cname(owner, target);
        }
        for txt in &spec.sts_txt {
            zone.txt(&format!("_mta-sts.{d}"), &txt_refs(txt));
        }
        let policy_host = format!("mta-sts.{d}");
        let policy_ip = match spec.policy_host {
            PolicyHost::Absent => None,
            PolicyHost::Unreachable => Some(dead_ip),
            PolicyHost::Serve { .. } => Some(https_ip),
        };
        if let Some(ip) = policy_ip {
            addrs.insert(policy_host.clone(), ip);
            if !cname_owners.contains(&policy_host) {
                zone.a(&policy_host, ip);
            }
        }
        for alias in &spec.https_aliases {
            addrs.insert(norm(alias), https_ip);
            zone.a(alias, https_ip);
        }
        for mx in &spec.mx {
            zone.mx(&d, mx.preference, &mx.host);
        }
        if spec.null_mx {
            // RFC 7505 §3: preference 0, exchange the root.
            zone.mx(&d, 0, ".");
        }
        for txt in &spec.tlsrpt_txt {
            zone.txt(&format!("_smtp._tls.{d}"), &txt_refs(txt));
        }
        for (owner, usage, selector, matching, data) in &spec.tlsa {
            zone.tlsa(owner, *usage, *selector, *matching, data);
        }
        if spec.dane_from_certs {
            let mut names: Vec<String> = spec.mx.iter().map(|m| norm(&m.host)).collect();
            if spec.implicit_mx.is_some() {
                names.push(d.clone());
            }
            for name in names {
                if let Some(hash) = spki(&name) {
                    zone.tlsa(&format!("_25._tcp.{name}"), 3, 1, 1, &hash);
                }
            }
        }
        for (owner, txt) in &spec.extra_txt {
            zone.txt(owner, &txt_refs(txt));
        }
        for name in &spec.servfail {
            zone.servfail(name);
        }
        for name in &spec.silent {
            zone.silent(name);
        }
    }
}

pub(crate) fn txt_refs(parts: &[String]) -> Vec<&str> {
    parts.iter().map(String::as_str).collect()
}

async fn build(specs: Vec<DomainSpec>, layout: Layout) -> io::Result<World> {
    // Deduplicate domains by name, first wins.
    let mut seen = HashSet::new();
    let specs: Vec<DomainSpec> = specs.into_iter().filter(|s| seen.insert(s.norm_name())).collect();

    let ca = TestCa::try_new("mtasts test CA").map_err(io::Error::other)?;
    let untrusted_ca = TestCa::try_new("mtasts untrusted CA").map_err(io::Error::other)?;

    // Hosts that get their own address, in order of first appearance.
    let mut hosts: Vec<Host> = Vec::new();
    let mut add_host = |name: &str, smtp: Option<SmtpKind>, cert: CertKind| -> io::Result<()> {
        let name = norm(name);
        if hosts.iter().any(|h| h.name == name) {
            return Ok(());
        }
        let offset = u8::try_from(hosts.len() + 2)
            .ok()
            .filter(|o| *o < DEAD_HOST - 1)
            .ok_or_else(|| io::Error::other("too many MX hosts for one /24 world"))?;
        hosts.push(Host { name, offset, smtp, cert });
        Ok(())
    };
    for spec in &specs {
        for mx in &spec.mx {
            add_host(&mx.host, mx.smtp, mx.cert)?;
        }
        if let Some(imx) = &spec.implicit_mx {
            add_host(&spec.name, imx.smtp, imx.cert)?;
        }
    }

    // Certificates do not depend on addresses: make them once.
    let mut smtp_certs: HashMap<String, IssuedCert> = HashMap::new();
    for h in &hosts {
        if h.smtp.is_some() || specs.iter().any(|s| s.dane_from_certs) {
            smtp_certs.insert(h.name.clone(), make_cert(h.cert, &h.name, &ca, &untrusted_ca)?);
        }
    }
    let mut https_hosts: HashMap<String, HttpsHost> = HashMap::new();
    for spec in &specs {
        if let PolicyHost::Serve { cert, behaviour } = &spec.policy_host {
            let name = format!("mta-sts.{}", spec.norm_name());
            let cert = make_cert(*cert, &name, &ca, &untrusted_ca)?;
            https_hosts.insert(name, HttpsHost { cert, behaviour: behaviour.clone() });
        }
    }

    // Addresses and ports.
    let mut last_err = None;
    let mut bound = None;
    for _ in 0..MAX_ALLOCATION_ATTEMPTS {
        match bind_block(next_block(), &hosts, layout).await {
            Ok(b) => {
                bound = Some(b);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(bound) = bound else {
        let e = last_err.unwrap_or_else(|| io::Error::other("no attempt made"));
        return Err(io::Error::new(
            e.kind(),
            format!(
                "could not bind listeners in any of {MAX_ALLOCATION_ATTEMPTS} loopback blocks \
                 127.A.B.0/24 (is 127.0.0.0/8 routed to lo?): {e}"
            ),
        ));
    };
    let block = bound.block;
    let https_ip = block_ip(block, HTTPS_HOST);
    let dead_ip = block_ip(block, DEAD_HOST);
    let https_port = bound.https.local_addr()?.port();

    // DNS data.
    let spki = |name: &str| smtp_certs.get(name).map(IssuedCert::spki_sha256);
    let host_ips = hosts.iter().map(|h| (h.name.clone(), block_ip(block, h.offset)));
    let (zone, addrs) = build_zone(&specs, host_ips, layout.quiet, https_ip, dead_ip, &spki);
    let zone_file = zone_file_if(layout, &zone)?;

    // Servers.
    let https_hosts = https_hosts
        .into_iter()
        .map(|(name, h)| {
            (name, VirtualHost { key: h.cert.certified_key(), behaviour: Arc::new(h.behaviour) })
        })
        .collect();
    let https = HttpsServer::start_virtual(bound.https, https_hosts, !layout.quiet).await?;
    let no_sni = Arc::new(HashMap::new());
    let mut smtp = HashMap::new();
    for (i, listener) in bound.smtp {
        let h = &hosts[i];
        let kind = h.smtp.unwrap_or(SmtpKind::Silent);
        let behaviour = SmtpBehaviour {
            banner: format!("{} ESMTP testkit", h.name),
            starttls: kind == SmtpKind::StartTls,
            cert: smtp_certs.get(&h.name).cloned(),
            silent: kind == SmtpKind::Silent,
        };
        let server =
            SmtpServer::start_virtual(listener, behaviour, Arc::clone(&no_sni), !layout.quiet)
                .await?;
        smtp.insert(h.name.clone(), server);
    }
    let dns = start_dns(bound.dns, zone).await?;

    let dir = tempfile::Builder::new().prefix("mtasts-world-").tempdir()?;
    let ca_pem_path = dir.path().join("ca.pem");
    std::fs::write(&ca_pem_path, ca.cert_pem())?;
    std::fs::write(dir.path().join("untrusted-ca.pem"), untrusted_ca.cert_pem())?;

    Ok(World {
        dns,
        https,
        smtp,
        pool: Vec::new(),
        pool_of: HashMap::new(),
        addrs,
        ca,
        untrusted_ca,
        block,
        https_port,
        smtp_port: bound.smtp_port,
        domains: specs.iter().map(DomainSpec::norm_name).collect(),
        ca_pem_path,
        zone_file,
        _dir: dir,
    })
}

/// The zone's text when the layout asks to keep it.
pub(crate) fn zone_file_if(layout: Layout, zone: &Zone) -> io::Result<Option<String>> {
    if !layout.keep_zone_file {
        return Ok(None);
    }
    zone.to_zone_file().map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}
