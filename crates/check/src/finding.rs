//! Findings: what the checker tells an administrator, each with a stable code.
//!
//! Codes are part of the interface (scripts and the JSON output match on them). Never rename
//! one; add a new code instead. `Code::ALL` lists every code, and `docs/findings.md` documents
//! each (a test keeps the two in step).

use std::fmt;

use serde::Serialize;

use crate::fix::Fix;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something works as it should.
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// Works today, but is fragile, incomplete or will break.
    Warning,
    /// Broken: senders will not apply the policy, or mail will not be delivered.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// Which part of a deployment a finding is about (used to group the text output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// The domain name and the check itself.
    Domain,
    /// The `_mta-sts` TXT record.
    StsRecord,
    /// The policy host and file.
    Policy,
    /// The MX hosts and their TLS.
    Mx,
    /// The `_smtp._tls` TLS-RPT record.
    TlsRpt,
    /// DANE and DNSSEC.
    Dane,
}

impl Area {
    /// A heading for the text output.
    pub fn title(self) -> &'static str {
        match self {
            Self::Domain => "Domain",
            Self::StsRecord => "MTA-STS TXT record",
            Self::Policy => "Policy",
            Self::Mx => "MX hosts",
            Self::TlsRpt => "TLS-RPT",
            Self::Dane => "DANE / DNSSEC",
        }
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $sev:ident, $area:ident, $rfc:literal, $title:literal; )*) => {
        /// Every finding the checker can report.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code { $(
            #[doc = $title]
            $variant,
        )* }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable kebab-case code.
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code),* } }

            /// The default severity (some findings are raised or lowered by context, e.g. a
            /// certificate problem is an error under `enforce` and a warning without a policy).
            pub fn severity(self) -> Severity { match self { $(Code::$variant => Severity::$sev),* } }

            /// The part of the deployment it concerns.
            pub fn area(self) -> Area { match self { $(Code::$variant => Area::$area),* } }

            /// The rule it is about.
            pub fn rfc(self) -> &'static str { match self { $(Code::$variant => $rfc),* } }

            /// A one-line title.
            pub fn title(self) -> &'static str { match self { $(Code::$variant => $title),* } }
        }
    };
}

codes! {
    DomainInvalid = "domain-invalid", Error, Domain, "RFC 8461 §3.1", "The input is not a valid domain name";
    DomainNotFound = "domain-not-found", Error, Domain, "RFC 5321 §5.1", "The domain does not exist in DNS";
    DomainDeadline = "domain-deadline", Error, Domain, "RFC 8461 §3.3", "The check did not finish within the per-domain deadline (a scan option)";

    StsNotDeployed = "sts-not-deployed", Warning, StsRecord, "RFC 8461 §3", "No MTA-STS: senders cannot detect TLS downgrades for this domain";
    StsTxtOk = "sts-txt-ok", Ok, StsRecord, "RFC 8461 §3.1", "The _mta-sts TXT record is valid";
    StsTxtMissing = "sts-txt-missing", Error, StsRecord, "RFC 8461 §3.1", "A policy is published but the _mta-sts TXT record is missing, so senders never fetch it";
    StsTxtMultiple = "sts-txt-multiple", Error, StsRecord, "RFC 8461 §3.1", "More than one v=STSv1 TXT record: senders treat the domain as having no policy";
    StsTxtInvalid = "sts-txt-invalid", Error, StsRecord, "RFC 8461 §3.1", "The v=STSv1 TXT record breaks the record syntax: senders ignore it";
    StsTxtDiscarded = "sts-txt-discarded", Warning, StsRecord, "RFC 8461 §3.1", "A TXT record at _mta-sts looks like an STS record but does not begin with v=STSv1, so it is discarded";
    StsTxtWarning = "sts-txt-warning", Warning, StsRecord, "RFC 8461 §3.1", "The TXT record is accepted, with a caveat";
    StsTxtDelegated = "sts-txt-delegated", Info, StsRecord, "RFC 8461 §8.2", "The _mta-sts record is delegated by CNAME";
    StsTxtDnsError = "sts-txt-dns-error", Error, StsRecord, "RFC 8461 §5", "DNS could not answer for the _mta-sts TXT record; the check is incomplete";

    PolicyHostMissing = "policy-host-missing", Error, Policy, "RFC 8461 §3.3", "The policy host mta-sts.<domain> does not exist in DNS";
    PolicyHostDnsError = "policy-host-dns-error", Error, Policy, "RFC 8461 §3.3", "DNS could not answer for the policy host";
    PolicyUnreachable = "policy-https-unreachable", Error, Policy, "RFC 8461 §3.3", "The policy host does not accept HTTPS connections";
    PolicyTimeout = "policy-https-timeout", Error, Policy, "RFC 8461 §3.3", "The policy host is too slow: the fetch ran out of time";
    PolicyCertUntrusted = "policy-cert-untrusted", Error, Policy, "RFC 8461 §3.3", "The policy host's certificate does not chain to a trusted root";
    PolicyCertExpired = "policy-cert-expired", Error, Policy, "RFC 8461 §3.3", "The policy host's certificate has expired or is not yet valid";
    PolicyCertWrongName = "policy-cert-wrong-name", Error, Policy, "RFC 8461 §3.3", "The policy host's certificate is not valid for mta-sts.<domain>";
    PolicyCertInvalid = "policy-cert-invalid", Error, Policy, "RFC 8461 §3.3", "The policy host's certificate fails validation";
    PolicyCertExpiring = "policy-cert-expiring", Warning, Policy, "RFC 8461 §3.3", "The policy host's certificate expires soon";
    PolicyTlsFailed = "policy-tls-failed", Error, Policy, "RFC 8461 §3.3", "The TLS handshake with the policy host failed";
    PolicyRedirect = "policy-redirect", Error, Policy, "RFC 8461 §3.3", "The policy URL redirects; senders must not follow redirects";
    PolicyHttpStatus = "policy-http-status", Error, Policy, "RFC 8461 §3.3", "The policy URL does not answer 200";
    PolicyContentType = "policy-content-type", Error, Policy, "RFC 8461 §3.2", "The policy is not served as text/plain";
    PolicyTooLarge = "policy-too-large", Error, Policy, "RFC 8461 §3.3", "The policy is larger than the 64 KiB senders accept";
    PolicyFetchFailed = "policy-fetch-failed", Error, Policy, "RFC 8461 §3.3", "The policy could not be read";
    PolicyInvalid = "policy-invalid", Error, Policy, "RFC 8461 §3.2", "The policy file breaks the policy syntax: senders ignore it";
    PolicyWarning = "policy-warning", Warning, Policy, "RFC 8461 §3.2", "The policy is accepted, with a caveat";
    PolicyOk = "policy-ok", Ok, Policy, "RFC 8461 §3.2", "The policy is valid";
    PolicyModeTesting = "policy-mode-testing", Info, Policy, "RFC 8461 §5", "mode: testing: failures are reported, not enforced";
    PolicyReadyToEnforce = "policy-ready-to-enforce", Info, Policy, "RFC 8461 §5", "Every MX passes: the policy can move to mode: enforce";
    PolicyModeNone = "policy-mode-none", Warning, Policy, "RFC 8461 §5", "mode: none: MTA-STS is switched off for this domain";
    PolicyMaxAgeShort = "policy-max-age-short", Warning, Policy, "RFC 8461 §3.2", "max_age is short: a downgrade attacker only has to wait for the cache to expire";
    PolicyMaxAgeLow = "policy-max-age-low", Info, Policy, "RFC 8461 §3.2", "max_age is under a week; weeks or more protect better once the policy is stable";

    MxNotCovered = "mx-not-covered", Error, Mx, "RFC 8461 §4.1", "An MX host is not matched by any mx: line: enforcing senders will not deliver to it";
    MxWildcardTooDeep = "mx-wildcard-too-deep", Error, Mx, "RFC 8461 §4.1", "A wildcard mx: pattern covers one label only, not this deeper MX host";
    MxPatternUnused = "mx-pattern-unused", Warning, Mx, "RFC 8461 §4.1", "An mx: pattern matches none of the domain's MX hosts";
    MxCovered = "mx-covered", Ok, Mx, "RFC 8461 §4.1", "Every MX host is matched by the policy";
    MxNull = "mx-null", Info, Mx, "RFC 7505", "The domain publishes a null MX: it accepts no mail, so MTA-STS and TLS-RPT have nothing to protect";
    MxNullMixed = "mx-null-mixed", Error, Mx, "RFC 7505 §3", "A null MX is published beside other MX records, which RFC 7505 forbids";
    MxImplicit = "mx-implicit", Info, Mx, "RFC 5321 §5.1", "No MX records: mail goes to the domain's own address (implicit MX)";
    MxDnsError = "mx-dns-error", Error, Mx, "RFC 8461 §5", "DNS could not answer for the MX records; the check is incomplete";
    MxHostUnresolvable = "mx-host-unresolvable", Error, Mx, "RFC 5321 §5.1", "An MX host name has no address";
    MxUnreachable = "mx-unreachable", Warning, Mx, "RFC 8461 §4", "An MX host could not be reached on the SMTP port from here";
    MxTimeout = "mx-timeout", Warning, Mx, "RFC 8461 §4", "An MX host stopped answering during the SMTP dialogue";
    MxSmtpError = "mx-smtp-error", Warning, Mx, "RFC 5321 §4.2", "An MX host answered the SMTP dialogue with an error";
    MxStartTlsMissing = "mx-starttls-missing", Error, Mx, "RFC 8461 §4", "An MX host does not offer STARTTLS";
    MxTlsFailed = "mx-tls-failed", Error, Mx, "RFC 8461 §7.2", "The TLS handshake with an MX host failed";
    MxCertUntrusted = "mx-cert-untrusted", Error, Mx, "RFC 8461 §4.2", "An MX certificate does not chain to a trusted root";
    MxCertExpired = "mx-cert-expired", Error, Mx, "RFC 8461 §4.2", "An MX certificate has expired or is not yet valid";
    MxCertWrongName = "mx-cert-wrong-name", Error, Mx, "RFC 8461 §4.2", "An MX certificate is not valid for the MX host name";
    MxCertInvalid = "mx-cert-invalid", Error, Mx, "RFC 8461 §4.2", "An MX certificate fails validation";
    MxCertExpiring = "mx-cert-expiring", Warning, Mx, "RFC 8461 §4.2", "An MX certificate expires soon";
    MxTlsOk = "mx-tls-ok", Ok, Mx, "RFC 8461 §4.2", "An MX host offers STARTTLS with a valid certificate";
    MxNotProbed = "mx-not-probed", Info, Mx, "RFC 8461 §4", "MX hosts were not probed (--no-smtp)";

    TlsRptMissing = "tlsrpt-missing", Warning, TlsRpt, "RFC 8460 §3", "No TLS-RPT record: you will not hear about TLS failures";
    TlsRptInvalid = "tlsrpt-invalid", Error, TlsRpt, "RFC 8460 §3", "The TLS-RPT record breaks the record syntax: reporters ignore it";
    TlsRptMultiple = "tlsrpt-multiple", Error, TlsRpt, "RFC 8460 §3", "More than one v=TLSRPTv1 record: reporters treat the domain as not using TLS-RPT";
    TlsRptWarning = "tlsrpt-warning", Warning, TlsRpt, "RFC 8460 §3", "The TLS-RPT record is accepted, with a caveat";
    TlsRptDnsError = "tlsrpt-dns-error", Warning, TlsRpt, "RFC 8460 §3", "DNS could not answer for the TLS-RPT record";
    TlsRptOk = "tlsrpt-ok", Ok, TlsRpt, "RFC 8460 §3", "The TLS-RPT record is valid";

    DaneTlsa = "dane-tlsa", Info, Dane, "RFC 8461 §2", "An MX host publishes DANE TLSA records";
    DnssecStatus = "dnssec-status", Info, Dane, "RFC 4035 §3.2.3", "What the resolver says about DNSSEC for the domain";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The catalogue of codes as a Markdown document (`docs/findings.md` is this text; a test
/// keeps them equal).
pub fn catalogue_markdown() -> String {
    let mut out = String::from(
        "# Finding codes of `mtasts check`\n\n\
         Generated from `crates/check/src/finding.rs` (`Code::ALL`); a test fails when this file \
         and the code disagree. Run `MTASTS_UPDATE_DOCS=1 cargo test -p mtasts-check` to \
         regenerate it.\n\n\
         Codes are stable: scripts may match on them. The severity shown is the default; some \
         findings are raised or lowered by context (a certificate problem is an error under \
         `mode: enforce`, a warning under `testing` or without a policy).\n",
    );
    let mut area = None;
    for code in Code::ALL {
        if area != Some(code.area()) {
            area = Some(code.area());
            out.push_str(&format!(
                "\n## {}\n\n| code | severity | rule | meaning |\n|---|---|---|---|\n",
                code.area().title()
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            code.as_str(),
            code.severity(),
            code.rfc(),
            code.title()
        ));
    }
    out
}

/// One thing the checker found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity in context.
    pub severity: Severity,
    /// The part of the deployment.
    pub area: Area,
    /// The RFC section the rule lives in.
    pub rfc: &'static str,
    /// What it is about, when not the domain itself (an MX host, a record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// One line saying what is wrong (or right), with the values involved.
    pub message: String,
    /// The parser's own code for a `*-warning` finding (e.g. `policy-version-not-first`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
    /// The exact fix, when there is one: what to do, and the policy and records to publish
    /// (JSON keys `fix`, `fix_policy`, `fix_records`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: code.severity(),
            area: code.area(),
            rfc: code.rfc(),
            subject: None,
            message: message.into(),
            warning: None,
            fix: None,
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the fix.
    pub fn fix(mut self, fix: impl Into<Fix>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Sets the parser warning code.
    pub fn warning(mut self, code: &'static str) -> Self {
        self.warning = Some(code);
        self
    }

    /// Overrides the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{code} is not kebab-case"
            );
            assert!(code.rfc().starts_with("RFC "), "{code} cites no RFC");
        }
    }
}
