//! A closed day's sums → RFC 8460 reports (pure): one report per policy domain and TLSRPT
//! record text (§4: a report per policy domain; the record says where it goes, so a record
//! changed during the day gets its own), its gzip body (§5.2), file name (§5.1) and the
//! report mail (§5.3) before signing.

use std::collections::BTreeMap;
use std::io::Write;

use mtasts_proto::DomainName;
use mtasts_proto::datagram::Failure;
use mtasts_proto::report::{
    DateRange, FailureDetail, PolicyDetails, PolicyReport, PolicyType, Report, Summary,
};
use mtasts_proto::tlsrpt_record::{ReportUri, TlsRptRecord};
use mtasts_store::outbound::{FailureRow, SessionRow};
use serde_json::Map;
use time::{Date, OffsetDateTime, Time};

use crate::aggregate::record_key;

/// Failure details kept per policy in one report, the most frequent first: a report stays far
/// under the 10 MB receivers commonly accept (§5.2).
pub const MAX_DETAILS_PER_POLICY: usize = 1000;

/// Who sends the reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `organization-name` (§4.4).
    pub organization: String,
    /// `contact-info` (§4.4): an e-mail address (its domain is the submitter) or a URI.
    pub contact: String,
    /// The submitter domain: `TLS-Report-Submitter` (§5.3) and the file name's sender (§5.1).
    pub submitter: String,
}

/// One report of a day, ready to send.
#[derive(Clone, Debug)]
pub struct DayReport {
    /// The policy domain.
    pub domain: String,
    /// The TLSRPT record text the MTA found.
    pub record: String,
    /// The record's stored key.
    pub record_key: String,
    /// The report.
    pub report: Report,
    /// Where it goes (the record's `rua`), empty when the record does not parse.
    pub destinations: Vec<ReportUri>,
    /// Why there is nowhere to send it, when so.
    pub no_destination: Option<String>,
}

/// The day's start and end as RFC 8460 §4.1 wants them: 00:00:00Z to 23:59:59Z (the end as
/// Appendix B, mox and tlsrpt-reporter write it).
pub fn day_range(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    let start = day.with_time(Time::MIDNIGHT).assume_utc();
    (start, start + time::Duration::seconds(86_399))
}

/// The report id: the day, the domain and the record's key; the same on every retry.
pub fn report_id(day: Date, domain: &str, record_key: &str) -> String {
    let key = record_key.get(..12).unwrap_or(record_key);
    format!("{}T00:00:00Z_{domain}_{key}", crate::aggregate::day_text(day))
}

/// Builds the day's reports.
pub fn day_reports(
    day: Date,
    sessions: &[SessionRow],
    failures: &[FailureRow],
    identity: &Identity,
) -> Vec<DayReport> {
    let mut details: BTreeMap<&str, Vec<&FailureRow>> = BTreeMap::new();
    for f in failures {
        details.entry(f.group_key.as_str()).or_default().push(f);
    }
    let mut by_report: BTreeMap<(&str, &str), Vec<&SessionRow>> = BTreeMap::new();
    for s in sessions {
        by_report.entry((s.domain.as_str(), s.record.as_str())).or_default().push(s);
    }
    let (start, end) = day_range(day);
    by_report
        .into_iter()
        .map(|((domain, record), groups)| {
            let key = record_key(record);
            let policies = groups
                .iter()
                .map(|g| policy_report(g, details.get(g.group_key.as_str()).map_or(&[][..], |v| v)))
                .collect();
            let report = Report {
                organization_name: identity.organization.clone(),
                date_range: DateRange { start, end, extra: Map::new() },
                contact_info: Some(identity.contact.clone()),
                report_id: report_id(day, domain, &key),
                policies,
                extra: Map::new(),
            };
            let (destinations, no_destination) = match TlsRptRecord::parse(record) {
                Ok(parsed) => (parsed.value.rua().to_vec(), None),
                Err(_) if record.is_empty() => {
                    (Vec::new(), Some("the MTA found no TLSRPT record".to_owned()))
                }
                Err(e) => {
                    (Vec::new(), Some(format!("the TLSRPT record {record:?} is invalid: {e}")))
                }
            };
            DayReport {
                domain: domain.to_owned(),
                record: record.to_owned(),
                record_key: key,
                report,
                destinations,
                no_destination,
            }
        })
        .collect()
}

fn policy_report(group: &SessionRow, details: &[&FailureRow]) -> PolicyReport {
    let v: serde_json::Value = serde_json::from_str(&group.policy).unwrap_or_default();
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let policy = PolicyDetails {
        policy_type: PolicyType::from_name(
            v.get("policy-type").and_then(|t| t.as_str()).unwrap_or("no-policy-found"),
        ),
        policy_string: strings("policy-string"),
        policy_domain: v
            .get("policy-domain")
            .and_then(|d| d.as_str())
            .and_then(|d| DomainName::parse_ascii(d).ok()),
        mx_host: strings("mx-host"),
        extra: Map::new(),
    };
    let mut rows: Vec<&&FailureRow> = details.iter().collect();
    rows.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.detail_key.cmp(&b.detail_key)));
    let failure_details = rows
        .into_iter()
        .take(MAX_DETAILS_PER_POLICY)
        .filter_map(|r| {
            let f: Failure = serde_json::from_str(&r.detail).ok()?;
            Some(FailureDetail {
                result_type: f.result_type,
                sending_mta_ip: f.sending_ip,
                receiving_mx_hostname: f.mx_hostname,
                receiving_mx_helo: f.helo,
                receiving_ip: f.receiving_ip,
                failed_session_count: u64::try_from(r.sessions).unwrap_or(0),
                additional_information: f.additional,
                failure_reason_code: f.reason,
                extra: Map::new(),
            })
        })
        .collect();
    PolicyReport {
        policy,
        summary: Summary {
            total_successful_session_count: u64::try_from(group.successes).unwrap_or(0),
            total_failure_session_count: u64::try_from(group.failures).unwrap_or(0),
            extra: Map::new(),
        },
        failure_details,
        extra: Map::new(),
    }
}

/// The report as JSON (I-JSON, §4).
pub fn report_json(report: &Report) -> Vec<u8> {
    serde_json::to_vec(report).unwrap_or_default()
}

/// The report gzip-compressed (§5.2).
pub fn gzip(json: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(json);
    enc.finish().unwrap_or_default()
}

/// The §5.1 file name: `submitter!domain!begin!end!unique-id.json.gz`, begin and end in unix
/// seconds, the unique id alphanumeric.
pub fn file_name(identity: &Identity, r: &DayReport) -> String {
    let key = r.record_key.get(..8).unwrap_or(&r.record_key);
    format!(
        "{}!{}!{}!{}!{key}.json.gz",
        identity.submitter,
        r.domain,
        r.report.date_range.start.unix_timestamp(),
        r.report.date_range.end.unix_timestamp()
    )
}

/// The address of a `mailto:` URI (RFC 6068): the query dropped, percent-escapes decoded.
pub fn mailto_address(uri: &str) -> Option<String> {
    let rest = uri.get(..7).filter(|s| s.eq_ignore_ascii_case("mailto:")).map(|_| &uri[7..])?;
    let addr = rest.split('?').next().unwrap_or_default();
    let bytes = addr.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| addr.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8(out).ok()?;
    (s.contains('@') && !s.contains(['\r', '\n', ',', '<', '>'])).then_some(s)
}

/// Base64 (RFC 4648) in lines of 76 characters ending in CRLF, as MIME bodies want them
/// (RFC 2045 §6.8).
pub fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 76 * 2 + 2);
    // Base64 is ASCII: every 76-byte chunk is whole characters.
    for line in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// The headers a report mail's DKIM signature covers (§3: `TLS-Report-Domain` and
/// `TLS-Report-Submitter` SHOULD be among them).
pub const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "TLS-Report-Domain",
    "TLS-Report-Submitter",
];

/// The §5.3 report mail (not yet signed): `multipart/report; report-type="tlsrpt"`, a short
/// human-readable part, then the gzip report as `application/tlsrpt+gzip`; the
/// `TLS-Report-Domain` and `TLS-Report-Submitter` headers, the Subject of §5.3, and
/// `TLS-Required: No` (RFC 8689: a report about broken TLS must still get through).
pub fn report_mail(
    identity: &Identity,
    from: &str,
    to: &str,
    r: &DayReport,
    gz: &[u8],
    now: OffsetDateTime,
) -> Vec<u8> {
    let date = now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    let boundary = format!("tlsrpt-{}", r.record_key.get(..16).unwrap_or(&r.record_key));
    let id = &r.report.report_id;
    let day = crate::aggregate::day_text(r.report.date_range.start.date());
    let (ok, failed) = r.report.policies.iter().fold((0, 0), |(o, f), p| {
        (o + p.summary.total_successful_session_count, f + p.summary.total_failure_session_count)
    });
    format!(
        "From: {from}\r\n\
         To: {to}\r\n\
         Subject: Report Domain: {domain} Submitter: {sub} Report-ID: <{id}@{sub}>\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.{nanos}@{sub}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\
         TLS-Report-Domain: {domain}\r\n\
         TLS-Report-Submitter: {sub}\r\n\
         TLS-Required: No\r\n\
         Auto-Submitted: auto-generated\r\n\
         \r\n\
         This is a multi-part message in MIME format.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=\"us-ascii\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         This is an aggregate TLS report (RFC 8460) from {org} for {domain},\r\n\
         covering {day} (UTC): {ok} successful and {failed} failed sessions.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/tlsrpt+gzip\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\
         \r\n\
         {body}\
         \r\n\
         --{boundary}--\r\n",
        domain = r.domain,
        sub = identity.submitter,
        nanos = now.unix_timestamp_nanos(),
        org = identity.organization.replace(['\r', '\n'], " "),
        file = file_name(identity, r),
        body = base64_lines(gz),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    #[test]
    fn base64_body_lines_are_76_characters_and_decode_back() {
        use base64::Engine;
        let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let text = base64_lines(&bytes);
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(text.ends_with("\r\n"));
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76), "{text}");
        let joined = lines.concat();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(joined).unwrap(), bytes);
        assert_eq!(base64_lines(b""), "");
    }

    fn identity() -> Identity {
        Identity {
            organization: "Example Sender".into(),
            contact: "tlsrpt@sender.example".into(),
            submitter: "sender.example".into(),
        }
    }

    fn rows() -> (Vec<SessionRow>, Vec<FailureRow>) {
        let policy = r#"{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.a.example","max_age: 86400"],"policy-domain":"a.example","mx-host":["mx.a.example"]}"#;
        let s = vec![
            SessionRow {
                day: "2026-12-03".into(),
                group_key: "g1".into(),
                domain: "a.example".into(),
                record: "v=TLSRPTv1; rua=mailto:tls%2Creports@a.example,https://r.a.example/v1"
                    .into(),
                policy: policy.into(),
                successes: 10,
                failures: 2,
            },
            SessionRow {
                day: "2026-12-03".into(),
                group_key: "g2".into(),
                domain: "b.example".into(),
                record: "not a record".into(),
                policy: r#"{"policy-type":"no-policy-found","policy-string":[],"mx-host":[]}"#
                    .into(),
                successes: 3,
                failures: 0,
            },
        ];
        let f = vec![FailureRow {
            day: "2026-12-03".into(),
            group_key: "g1".into(),
            detail_key: "d1".into(),
            detail: r#"{"result-type":"certificate-expired","receiving-ip":"192.0.2.1","receiving-mx-hostname":"mx.a.example"}"#.into(),
            sessions: 2,
        }];
        (s, f)
    }

    #[test]
    fn a_day_becomes_one_strict_report_per_domain_and_record() {
        let (s, f) = rows();
        let reports = day_reports(date!(2026 - 12 - 03), &s, &f, &identity());
        assert_eq!(reports.len(), 2);
        let a = &reports[0];
        assert_eq!(a.domain, "a.example");
        assert_eq!(a.destinations.len(), 2);
        let json = report_json(&a.report);
        let parsed = Report::parse_strict(&json).unwrap();
        assert_eq!(parsed, a.report);
        assert_eq!(parsed.policies[0].summary.total_successful_session_count, 10);
        assert_eq!(parsed.policies[0].failure_details[0].failed_session_count, 2);
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""start-datetime":"2026-12-03T00:00:00Z""#), "{text}");
        assert!(text.contains(r#""end-datetime":"2026-12-03T23:59:59Z""#), "{text}");
        assert!(reports[1].no_destination.as_deref().unwrap().contains("invalid"));
        // Stable under retries.
        let again = day_reports(date!(2026 - 12 - 03), &s, &f, &identity());
        assert_eq!(again[0].report.report_id, a.report.report_id);
    }

    #[test]
    fn mailto_addresses_are_decoded() {
        // A decoded comma would be a second address (RFC 6068): refused rather than guessed.
        assert_eq!(mailto_address("mailto:tls%2Creports@a.example"), None);
        assert_eq!(mailto_address("mailto:r@a.example?subject=x").as_deref(), Some("r@a.example"));
        assert_eq!(mailto_address("MAILTO:r%40x@a.example").as_deref(), Some("r@x@a.example"));
        assert_eq!(mailto_address("https://a.example"), None);
        assert_eq!(mailto_address("mailto:r@a.example%0D%0ABcc:x@y"), None);
    }

    #[test]
    fn the_mail_has_the_section_5_3_shape() {
        let (s, f) = rows();
        let r = &day_reports(date!(2026 - 12 - 03), &s, &f, &identity())[0];
        let gz = gzip(&report_json(&r.report));
        let now = OffsetDateTime::from_unix_timestamp(1_796_342_400).unwrap();
        let mail = String::from_utf8(report_mail(
            &identity(),
            "noreply@sender.example",
            "r@a.example",
            r,
            &gz,
            now,
        ))
        .unwrap();
        assert!(mail.contains("Content-Type: multipart/report; report-type=\"tlsrpt\""));
        assert!(mail.contains("TLS-Report-Domain: a.example\r\n"));
        assert!(mail.contains("TLS-Report-Submitter: sender.example\r\n"));
        assert!(mail.contains(&format!("Report-ID: <{}@sender.example>", r.report.report_id)));
        assert!(mail.contains("Content-Type: application/tlsrpt+gzip"));
        assert!(mail.contains("filename=\"sender.example!a.example!1796256000!1796342399!"));
        assert!(mail.lines().all(|l| l.len() <= 998));
    }
}
