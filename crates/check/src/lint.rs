//! Offline checks of what is about to be published: a policy file, `_mta-sts` and `_smtp._tls`
//! TXT records (as zone-file lines or bare record text). `mtasts lint` runs the same parsers and
//! the same judges as `check`, on text instead of network answers, so its findings carry the
//! same codes, messages and fixes.
//!
//! Pure: no I/O, no clock (`now` only dates the ids in suggested fixes).

use mtasts_net::dns::TxtAnswer;
use mtasts_net::{DnsError, FetchedPolicy};
use mtasts_proto::{DomainName, MxRecord, MxSet};
use time::OffsetDateTime;

use crate::finding::{Code, Finding};
use crate::judge::{self, Judging, StsState};
use crate::observations::{Observations, Probes};
use crate::report::{DomainReport, ReportBuilder};

/// What a text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Decide from the text: TXT records when the first line looks like one (`v=…`, a quoted
    /// string, a zone-file `TXT` line), otherwise a policy file.
    Auto,
    /// A policy file (RFC 8461 §3.2).
    Policy,
    /// `_mta-sts` TXT record text, one record per line (RFC 8461 §3.1).
    Sts,
    /// `_smtp._tls` TXT record text, one record per line (RFC 8460 §3).
    TlsRpt,
}

/// What to lint against.
#[derive(Clone, Debug)]
pub struct LintOptions {
    /// How to read the text.
    pub kind: Kind,
    /// The domain the text is for (names in fixes). Without it, the owner name of a zone-file
    /// line, else `example.com`.
    pub domain: Option<DomainName>,
    /// MX hosts the policy must cover (RFC 8461 §4.1); empty: coverage is not judged.
    pub mx: Vec<String>,
}

impl Default for LintOptions {
    fn default() -> Self {
        Self { kind: Kind::Auto, domain: None, mx: Vec::new() }
    }
}

/// Lints one text named `name` (a file name, or `-` for standard input).
pub fn lint(name: &str, bytes: &[u8], options: &LintOptions, now: OffsetDateTime) -> DomainReport {
    let kind = match options.kind {
        Kind::Auto => detect(bytes),
        k => k,
    };
    let mut out = ReportBuilder::new(name, None);
    let records = match kind {
        Kind::Policy => Records::default(),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => Records::parse(text, kind),
            Err(_) => {
                out.push(Finding::new(
                    Code::StsTxtInvalid,
                    "the text is not UTF-8; TXT records are ASCII (RFC 8461 §3.1, RFC 8460 §3)",
                ));
                return out.finish(std::time::Duration::ZERO);
            }
        },
    };
    let domain = options
        .domain
        .clone()
        .or_else(|| records.owner.clone())
        .unwrap_or_else(DomainName::example);
    let mx = if options.mx.is_empty() {
        Err(not_looked_up(&domain))
    } else {
        Ok(MxSet::from_records(
            options
                .mx
                .iter()
                .map(|h| MxRecord::new(10, h.trim_end_matches('.').to_ascii_lowercase()))
                .collect(),
        ))
    };
    let obs = Observations {
        sts_txt: Ok(answer(records.sts.clone())),
        tlsrpt_txt: Ok(answer(records.tlsrpt.clone())),
        policy: Ok(FetchedPolicy {
            // The policy judge names its findings after what was fetched: here, the file.
            url: name.to_owned(),
            body: bytes.to_vec(),
            content_type: "text/plain".into(),
            certificate: None,
            remote_addr: None,
            elapsed_ms: 0,
        }),
        mx,
        probes: Probes::Off,
        dane: None,
        domain,
    };
    let mut j = Judging { obs: &obs, now, out };
    match kind {
        Kind::Policy | Kind::Auto => {
            let policy = judge::policy::judge(&mut j, &StsState::Unknown);
            if !options.mx.is_empty() {
                judge::coverage::judge(&mut j, policy.as_ref());
            }
        }
        Kind::Sts | Kind::TlsRpt => {
            if records.sts.is_empty() && records.tlsrpt.is_empty() {
                j.push(Finding::new(Code::StsTxtInvalid, "the text holds no TXT record"));
            }
            if !records.sts.is_empty() && judge::txt::judge(&mut j) == StsState::Absent {
                j.push(
                    Finding::new(Code::StsTxtInvalid, "no record begins with v=STSv1;")
                        .subject(obs.domain.mta_sts_txt_name()),
                );
            }
            if !records.tlsrpt.is_empty() {
                judge::tlsrpt::judge(&mut j);
            }
        }
    }
    j.out.finish(std::time::Duration::ZERO)
}

fn answer(records: Vec<String>) -> TxtAnswer {
    TxtAnswer { records, cname_chain: Vec::new(), ttl: None }
}

fn not_looked_up(domain: &DomainName) -> DnsError {
    DnsError::NoData { name: domain.as_str().to_owned(), rtype: "MX".into(), negative_ttl: None }
}

/// TXT records if the first meaningful line looks like one, else a policy.
fn detect(bytes: &[u8]) -> Kind {
    let text = String::from_utf8_lossy(bytes);
    let Some(first) = meaningful_lines(&text).next() else { return Kind::Policy };
    let lower = first.to_ascii_lowercase();
    let zone_line = lower.split_ascii_whitespace().any(|t| t == "txt");
    if lower.starts_with("v=")
        || lower.starts_with('"')
        || lower.starts_with("_mta-sts.")
        || lower.starts_with("_smtp._tls.")
        || zone_line
    {
        Kind::Sts
    } else {
        Kind::Policy
    }
}

fn meaningful_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim_end).filter(|l| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with(';') && !t.starts_with('$') && !t.starts_with('#')
    })
}

/// TXT record texts sorted by the name they are for.
#[derive(Debug, Default)]
struct Records {
    sts: Vec<String>,
    tlsrpt: Vec<String>,
    /// The domain named by the first owner name seen.
    owner: Option<DomainName>,
}

impl Records {
    /// One record per line: a zone-file line (`_mta-sts.example.com. 3600 IN TXT "v=STSv1; …"`,
    /// several quoted strings concatenated as RFC 8461 §3.1 and RFC 8460 §3 require), a quoted
    /// string, or bare record text. A record goes by its owner name when it has one, else by its
    /// version tag, else by `kind`.
    fn parse(text: &str, kind: Kind) -> Self {
        let mut out = Self::default();
        for line in meaningful_lines(text) {
            let (owner, value) = split_zone_line(line);
            let owner = owner.map(|o| o.trim_end_matches('.').to_ascii_lowercase());
            let is_tlsrpt = match owner.as_deref() {
                Some(o) if o.starts_with("_smtp._tls.") => true,
                Some(o) if o.starts_with("_mta-sts.") => false,
                _ => match kind {
                    Kind::TlsRpt => true,
                    Kind::Sts => value.to_ascii_lowercase().starts_with("v=tlsrpt"),
                    _ => false,
                },
            };
            if out.owner.is_none() {
                out.owner = owner
                    .as_deref()
                    .and_then(|o| o.split_once('.').map(|(_, rest)| rest))
                    .map(|rest| rest.strip_prefix("_tls.").unwrap_or(rest))
                    .and_then(|d| DomainName::parse_ascii(d).ok());
            }
            if is_tlsrpt { out.tlsrpt.push(value) } else { out.sts.push(value) }
        }
        out
    }
}

/// Splits a zone-file TXT line into its owner name (when it has one) and the record text; a
/// line that is not one is returned whole as record text.
fn split_zone_line(line: &str) -> (Option<&str>, String) {
    let trimmed = line.trim();
    if trimmed.starts_with('"') {
        return (None, character_strings(trimmed));
    }
    let tokens: Vec<&str> = trimmed.split_ascii_whitespace().collect();
    if let Some(at) = tokens.iter().position(|t| t.eq_ignore_ascii_case("TXT")) {
        // The rest of the line after the TXT token, as written (quoted strings keep spaces).
        let mut rest = trimmed;
        for t in &tokens[..=at] {
            rest = rest.trim_start();
            rest = &rest[t.len()..];
        }
        let owner = (at > 0 && !line.starts_with(char::is_whitespace)).then(|| tokens[0]);
        return (owner, character_strings(rest.trim()));
    }
    (None, trimmed.to_owned())
}

/// The concatenation of the RFC 1035 §5.1 character-strings in `text`: quoted strings (with
/// `\"`, `\\` and `\DDD` escapes) or unquoted words.
fn character_strings(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let quoted = c == '"';
        if quoted {
            chars.next();
        }
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => break,
                c if !quoted && c.is_whitespace() => break,
                ';' if !quoted => {
                    // A comment to the end of the line.
                    return out;
                }
                '\\' => {
                    let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit))
                        .take(3)
                        .collect();
                    if digits.is_empty() {
                        if let Some(next) = chars.next() {
                            out.push(next);
                        }
                    } else if let Some(ch) = digits.parse::<u8>().ok().map(char::from) {
                        out.push(ch);
                    }
                }
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::finding::Severity;
    use crate::report::{ExitStatus, Outcome};

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-03 10:00:00 UTC);

    fn codes(r: &DomainReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn run(text: &str, options: &LintOptions) -> DomainReport {
        lint("input.txt", text.as_bytes(), options, NOW)
    }

    #[test]
    fn a_good_policy_is_clean_and_findings_name_the_file() {
        let r = run(
            "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n",
            &LintOptions::default(),
        );
        assert_eq!(codes(&r), ["policy-ok"]);
        assert_eq!(ExitStatus::of(&r), ExitStatus::Clean);
        assert_eq!(r.findings[0].subject.as_deref(), Some("input.txt"));
        assert_eq!(r.outcome, Outcome::Checked);
    }

    #[test]
    fn a_broken_policy_gets_check_s_message() {
        let r = run("version: STSv1\nmode: enforce\nmax_age: 604800\n", &LintOptions::default());
        assert_eq!(codes(&r), ["policy-invalid"]);
        assert_eq!(ExitStatus::of(&r), ExitStatus::Problems);
        assert!(r.findings[0].message.contains("mx"), "{}", r.findings[0].message);
        let r = run(
            "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 3600\n",
            &LintOptions::default(),
        );
        assert!(codes(&r).contains(&"policy-max-age-short"), "{:?}", codes(&r));
    }

    #[test]
    fn coverage_of_given_mx_hosts() {
        let options = LintOptions {
            mx: vec!["mx1.example.com.".into(), "backup.example.net".into()],
            ..LintOptions::default()
        };
        let r =
            run("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n", &options);
        let f = r.findings.iter().find(|f| f.code == Code::MxNotCovered).unwrap();
        assert_eq!(f.subject.as_deref(), Some("backup.example.net"));
        assert_eq!(f.severity, Severity::Error);
        assert!(f.fix.as_ref().unwrap().policy().unwrap().contains("mx: backup.example.net"));
    }

    #[test]
    fn zone_file_lines_are_read_with_their_owner_names() {
        let zone = "; records\n\
            _mta-sts.example.org. 3600 IN TXT \"v=STSv1; \" \"id=20261203;\"\n\
            _smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.org\"\n";
        let r = run(zone, &LintOptions::default());
        assert_eq!(codes(&r), ["sts-txt-ok", "tlsrpt-ok"]);
        assert_eq!(r.sts_record.as_deref(), Some("v=STSv1; id=20261203;"));
        assert_eq!(r.findings[0].subject.as_deref(), Some("_mta-sts.example.org"));
    }

    #[test]
    fn bare_record_text_and_its_errors() {
        let r = run("v=STSv1; id=2026-12-03;", &LintOptions::default());
        assert_eq!(codes(&r), ["sts-txt-invalid"]);
        // The fix offers a record with a valid id for the domain given.
        let options = LintOptions {
            domain: Some(DomainName::parse_ascii("example.net").unwrap()),
            ..LintOptions::default()
        };
        let r = run("v=STSv1; id=2026-12-03;", &options);
        let fix = r.findings[0].fix.as_ref().unwrap();
        assert!(fix.records()[0].starts_with("_mta-sts.example.net. 3600 IN TXT \"v=STSv1; id="));
        // Missing semicolon: discarded (a warning), and then there is no record (an error).
        let r = run("v=STSv1 id=1", &LintOptions::default());
        assert_eq!(codes(&r), ["sts-txt-discarded", "sts-txt-invalid"]);
        // Two records are one too many.
        let r = run("v=STSv1; id=1;\nv=STSv1; id=2;\n", &LintOptions::default());
        assert_eq!(codes(&r), ["sts-txt-multiple"]);
        let r = run("v=TLSRPTv1; rua=ftp://example.com", &LintOptions::default());
        assert_eq!(codes(&r), ["tlsrpt-invalid"]);
    }

    #[test]
    fn kind_forces_the_reading() {
        let options = LintOptions { kind: Kind::TlsRpt, ..LintOptions::default() };
        let r = run("\"v=TLSRPTv1;\" \" rua=mailto:a@example.com\"", &options);
        assert_eq!(codes(&r), ["tlsrpt-ok"]);
        let options = LintOptions { kind: Kind::Policy, ..LintOptions::default() };
        let r = run("v=STSv1; id=1;", &options);
        assert_eq!(codes(&r), ["policy-invalid"]);
    }

    #[test]
    fn character_strings_follow_rfc_1035() {
        assert_eq!(character_strings(r#""a b" "c\"d" e\059f ; comment"#), "a bc\"de;f");
        assert_eq!(character_strings(r#""v=STSv1;\032id=1;""#), "v=STSv1; id=1;");
    }
}
