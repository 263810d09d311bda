//! A parsed report to the rows the store keeps: every field, unknown ones included (as JSON),
//! plus the report as received. No I/O.

use mtasts_proto::report::{Report, Tolerated};
use mtasts_store::reports::{NewFailure, NewPolicy, NewReport};
use serde_json::Value;

use crate::intake::Extracted;

/// How a report arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// By mail (RFC 8460 §5.3).
    Mail,
    /// By HTTPS POST (§5.4).
    Https,
    /// From a file given on the command line.
    File,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Https => "https",
            Self::File => "file",
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn tolerated_json(t: &[Tolerated]) -> String {
    let list: Vec<Value> = t
        .iter()
        .map(|t| {
            serde_json::json!({
                "path": t.path, "code": t.code, "message": t.message, "rfc_violation": t.rfc_violation
            })
        })
        .collect();
    json(&list)
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The rows for `e`, received through `channel` at `received_at` (unix seconds), with the DKIM
/// result when checked. The report as received moves into the row (no copy).
pub fn new_report(
    e: Extracted,
    channel: Channel,
    received_at: i64,
    dkim: Option<&str>,
) -> NewReport {
    let r: &Report = &e.report;
    // The intake parsed it as JSON, which is UTF-8 (RFC 8259 §8.1): the lossy path is never
    // taken for a parsed report, only kept so no byte sequence can panic here.
    let raw_json = String::from_utf8(e.raw_json)
        .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned());
    NewReport {
        organization: r.organization_name.clone(),
        report_id: r.report_id.clone(),
        start: r.date_range.start.unix_timestamp(),
        end: r.date_range.end.unix_timestamp(),
        contact_info: r.contact_info.clone(),
        channel: channel.as_str().to_owned(),
        submitter: e.headers.submitter.clone(),
        report_domain: e.headers.report_domain.clone(),
        dkim: dkim.map(str::to_owned),
        warnings_json: tolerated_json(&e.tolerated),
        raw_json,
        received_at,
        policies: r
            .policies
            .iter()
            .map(|p| NewPolicy {
                policy_type: p.policy.policy_type.as_str().to_owned(),
                policy_domain: p.policy.policy_domain.as_ref().map(|d| d.as_str().to_owned()),
                policy_strings_json: json(&p.policy.policy_string),
                mx_hosts_json: json(&p.policy.mx_host),
                successful: count(p.summary.total_successful_session_count),
                failed: count(p.summary.total_failure_session_count),
                extra_json: json(&p.extra),
                failures: p
                    .failure_details
                    .iter()
                    .map(|f| NewFailure {
                        result_type: f.result_type.as_str().to_owned(),
                        sending_ip: f.sending_mta_ip.map(|ip| ip.to_string()),
                        receiving_mx_hostname: f.receiving_mx_hostname.clone(),
                        receiving_mx_helo: f.receiving_mx_helo.clone(),
                        receiving_ip: f.receiving_ip.map(|ip| ip.to_string()),
                        failed_sessions: count(f.failed_session_count),
                        additional_information: f.additional_information.clone(),
                        failure_reason_code: f.failure_reason_code.clone(),
                        extra_json: json(&f.extra),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A stored report as the JSON document `report show` and the API give: the lenient parser's
/// reading of the report as received, every field (unknown ones under their own names). The
/// stored text itself when it no longer parses (it did when it was stored).
pub fn parsed_document(raw_json: &str) -> Value {
    match Report::parse_lenient(raw_json.as_bytes()) {
        Ok((report, _)) => serde_json::to_value(&report).unwrap_or(Value::Null),
        Err(_) => serde_json::from_str(raw_json).unwrap_or_else(|_| Value::String(raw_json.into())),
    }
}
