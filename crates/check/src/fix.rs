//! The fix attached to a finding: what to do, in words, plus the exact policy file to serve and
//! the exact records to publish. Policy and records are kept apart from the words so that every
//! renderer can print them verbatim: the policy parser rejects indented lines (` mode: …`), and
//! an indented zone-file line means "same owner as the line before".

use mtasts_proto::generate::{policy_id, sts_txt};
use mtasts_proto::{DomainName, Policy};
use serde::Serialize;
use time::OffsetDateTime;

/// The fix for a finding. Built with [`Fix::new`] and the builder methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What to do, in words (may span lines).
    #[serde(rename = "fix")]
    text: String,
    /// The whole policy file to serve, verbatim, when the fix changes or creates the policy.
    #[serde(rename = "fix_policy", skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    /// Zone-file lines to publish, verbatim, in the order given.
    #[serde(rename = "fix_records", skip_serializing_if = "Vec::is_empty")]
    records: Vec<String>,
}

impl Fix {
    /// A fix said in words.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), policy: None, records: Vec::new() }
    }

    /// A fix that serves `policy` at `https://mta-sts.<domain>/.well-known/mta-sts.txt` and then
    /// publishes a TXT record with a new id. RFC 8461 §3.1: the id changes with every policy
    /// change, and §8.1: the new policy is served before the new id is published (a sender that
    /// sees the new id and fetches the old policy would cache the old one).
    pub fn policy_change(
        text: impl Into<String>,
        domain: &DomainName,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Self {
        let mut text: String = text.into();
        text.push_str(&format!(
            "\nServe the policy below at {}, then change the TXT record's id (RFC 8461 §8.1: policy first).",
            domain.policy_url()
        ));
        Self::new(text).serve_policy(policy).publish(sts_txt(domain, &policy_id(now)))
    }

    /// Adds the policy file to serve.
    pub fn serve_policy(mut self, policy: &Policy) -> Self {
        self.policy = Some(policy.to_string());
        self
    }

    /// Adds a zone-file line to publish.
    pub fn publish(mut self, record: impl Into<String>) -> Self {
        self.records.push(record.into());
        self
    }

    /// The words.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The policy file to serve, verbatim.
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The records to publish, verbatim.
    pub fn records(&self) -> &[String] {
        &self.records
    }
}

impl From<String> for Fix {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Fix {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mtasts_proto::StsRecord;

    #[test]
    fn policy_change_serves_first_and_publishes_a_new_id() {
        let d = DomainName::parse_ascii("example.com").unwrap();
        let p =
            Policy::parse("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 604800\n")
                .unwrap()
                .value;
        let now = time::macros::datetime!(2026-12-03 10:00:00 UTC);
        let fix = Fix::policy_change("Add it.", &d, &p, now);
        assert!(
            fix.text()
                .starts_with("Add it.\nServe the policy below at https://mta-sts.example.com/")
        );
        assert_eq!(Policy::parse(fix.policy().unwrap()).unwrap().value, p);
        let rr = &fix.records()[0];
        assert!(
            rr.starts_with("_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=20261203100000;\"")
        );
        let value = rr.split('"').nth(1).unwrap();
        StsRecord::parse(value).unwrap();
        let json = serde_json::to_value(&fix).unwrap();
        assert_eq!(json["fix_policy"], p.to_string());
        assert_eq!(json["fix_records"][0], *rr);
    }
}
