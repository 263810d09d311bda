//! Delivery results summed per UTC day and group (pure). A group is what one RFC 8460 report
//! entry describes: one recipient domain, one TLSRPT record text (a record changed during the
//! day gets its own report, as the record names where reports go) and one policy (type,
//! strings, policy domain, MX patterns; RFC 8460 §4.4 `policy`). Per group: the successful and
//! failed sessions (§4.2), and per distinct failure detail the failed sessions (§4.4
//! `failure-details`, whose `failed-session-count` is the count).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use mtasts_proto::datagram::{Datagram, Failure};
use mtasts_proto::report::PolicyType;
use mtasts_store::outbound::{FailureRow, SessionRow};
use time::Date;

/// A fast, non-cryptographic hasher (FxHash's multiply-rotate) for the in-memory sums: the
/// keys are the MTA's own results, and SipHash's protection against chosen keys costs a
/// fifth of the collector's time.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0_u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The policy part of a group's identity (RFC 8460 §4.4 `policy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-string`.
    pub strings: Vec<String>,
    /// `policy-domain`.
    pub domain: Option<String>,
    /// `mx-host`.
    pub mx_hosts: Vec<String>,
}

impl PolicyKey {
    /// The stored JSON (RFC 8460 §4.4 key names; `policy-domain` left out when absent, as
    /// libtlsrpt leaves it out for `no-policy-found`).
    pub fn to_json(&self) -> String {
        let mut o = serde_json::Map::new();
        o.insert("policy-type".into(), self.policy_type.as_str().into());
        o.insert("policy-string".into(), self.strings.clone().into());
        if let Some(d) = &self.domain {
            o.insert("policy-domain".into(), d.clone().into());
        }
        o.insert("mx-host".into(), self.mx_hosts.clone().into());
        serde_json::Value::Object(o).to_string()
    }
}

/// A group's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupId {
    /// The UTC day the sessions happened on.
    pub day: Date,
    /// The recipient domain.
    pub domain: String,
    /// The TLSRPT record text.
    pub record: String,
    /// The policy.
    pub policy: PolicyKey,
}

/// A group's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Successful sessions.
    pub successes: u64,
    /// Failed sessions.
    pub failures: u64,
    /// Failed sessions per failure detail.
    pub details: Map<Failure, u64>,
}

/// One delivery attempt as the groups it counts in: per policy, its group, whether it failed
/// and its failure details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    policies: Vec<(GroupId, bool, Vec<Failure>)>,
}

impl Prepared {
    /// The groups of `datagram`, received on `day`.
    pub fn new(day: Date, datagram: Datagram) -> Self {
        let Datagram { domain, record, policies } = datagram;
        let domain = domain.as_str().to_owned();
        let policies = policies
            .into_iter()
            .map(|p| {
                let id = GroupId {
                    day,
                    domain: domain.clone(),
                    record: record.clone(),
                    policy: PolicyKey {
                        policy_type: p.policy_type,
                        strings: p.strings,
                        domain: p.domain,
                        mx_hosts: p.mx_hosts,
                    },
                };
                (id, p.failed, p.failures)
            })
            .collect();
        Self { policies }
    }
}

/// Datagrams seen before, byte for byte, and their groups: a site sends the same few
/// thousand datagrams (one per recipient domain and outcome) over and over, and a repeat is
/// counted without parsing it again. Bounded; emptied when full and at each new day.
#[derive(Debug, Default)]
pub struct Memo {
    day: Option<Date>,
    seen: Map<Box<[u8]>, Prepared>,
}

/// Datagrams remembered by a [`Memo`].
pub const MEMO_ENTRIES: usize = 65_536;

impl Memo {
    /// Adds the datagram `bytes`, received on `day`, to `sums`: from its remembered groups,
    /// or parsed (and remembered).
    pub fn add_to(
        &mut self,
        sums: &mut Aggregate,
        day: Date,
        bytes: &[u8],
    ) -> Result<(), mtasts_proto::datagram::DatagramError> {
        if self.day != Some(day) || self.seen.len() >= MEMO_ENTRIES {
            self.seen.clear();
            self.day = Some(day);
        }
        if let Some(p) = self.seen.get(bytes) {
            sums.add_prepared(p);
            return Ok(());
        }
        let prepared = Prepared::new(day, Datagram::parse(bytes)?);
        sums.add_prepared(&prepared);
        self.seen.insert(bytes.into(), prepared);
        Ok(())
    }
}

/// Results summed in memory, bounded: past `max_groups` groups, or `max_details` details in
/// one group, further ones are counted in [`Aggregate::dropped`] instead of kept (the
/// session itself still counts in its group when the group exists).
#[derive(Debug, Clone)]
pub struct Aggregate {
    groups: Map<GroupId, Counts>,
    max_groups: usize,
    max_details: usize,
    datagrams: u64,
    dropped: u64,
}

/// Groups kept in memory between two writes, by default: far more than the distinct
/// (domain, policy) pairs a busy site sends to in a second.
pub const MAX_GROUPS: usize = 1_000_000;
/// Distinct failure details kept per group and write, by default.
pub const MAX_DETAILS: usize = 10_000;

impl Default for Aggregate {
    fn default() -> Self {
        Self::new(MAX_GROUPS, MAX_DETAILS)
    }
}

impl Aggregate {
    /// An empty aggregate with these bounds.
    pub fn new(max_groups: usize, max_details: usize) -> Self {
        Self { groups: Map::default(), max_groups, max_details, datagrams: 0, dropped: 0 }
    }

    /// Adds one delivery attempt that happened on `day`.
    pub fn add(&mut self, day: Date, datagram: Datagram) {
        self.add_prepared(&Prepared::new(day, datagram));
    }

    /// Adds one delivery attempt already turned into its groups (the collector keeps these
    /// for datagrams it sees again byte for byte: most are repeats).
    pub fn add_prepared(&mut self, prepared: &Prepared) {
        self.datagrams += 1;
        for (id, failed, failures) in &prepared.policies {
            let full = self.groups.len() >= self.max_groups;
            let counts = match self.groups.get_mut(id) {
                Some(c) => c,
                None if full => {
                    self.dropped += 1;
                    continue;
                }
                None => self.groups.entry(id.clone()).or_default(),
            };
            if *failed {
                counts.failures += 1;
            } else {
                counts.successes += 1;
            }
            for f in failures {
                let n = counts.details.len();
                match counts.details.get_mut(f) {
                    Some(c) => *c += 1,
                    None if n >= self.max_details => self.dropped += 1,
                    None => {
                        counts.details.insert(f.clone(), 1);
                    }
                }
            }
        }
    }

    /// Adds everything of `other` (another reader's, or a write that failed, kept for the
    /// next one).
    pub fn merge(&mut self, other: Self) {
        self.datagrams += other.datagrams;
        self.dropped += other.dropped;
        for (id, c) in other.groups {
            let full = self.groups.len() >= self.max_groups;
            let mine = match self.groups.get_mut(&id) {
                Some(m) => m,
                None if full => {
                    self.dropped += c.successes + c.failures;
                    continue;
                }
                None => self.groups.entry(id).or_default(),
            };
            mine.successes += c.successes;
            mine.failures += c.failures;
            for (f, n) in c.details {
                *mine.details.entry(f).or_default() += n;
            }
        }
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.dropped == 0
    }

    /// Datagrams added.
    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Policy results or details not kept because a bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The groups and their counts.
    pub fn iter(&self) -> impl Iterator<Item = (&GroupId, &Counts)> {
        self.groups.iter()
    }

    /// The store's rows for these counts.
    pub fn rows(&self) -> (Vec<SessionRow>, Vec<FailureRow>) {
        let mut sessions = Vec::with_capacity(self.groups.len());
        let mut failures = Vec::new();
        for (id, c) in &self.groups {
            let day = day_text(id.day);
            let policy = id.policy.to_json();
            let group_key = group_key(&id.domain, &id.record, &policy);
            for (f, n) in &c.details {
                let detail = serde_json::to_string(f).unwrap_or_default();
                failures.push(FailureRow {
                    day: day.clone(),
                    group_key: group_key.clone(),
                    detail_key: hex_sha256(&[detail.as_bytes()]),
                    detail,
                    sessions: i64::try_from(*n).unwrap_or(i64::MAX),
                });
            }
            sessions.push(SessionRow {
                day,
                group_key,
                domain: id.domain.clone(),
                record: id.record.clone(),
                policy,
                successes: i64::try_from(c.successes).unwrap_or(i64::MAX),
                failures: i64::try_from(c.failures).unwrap_or(i64::MAX),
            });
        }
        (sessions, failures)
    }
}

/// `YYYY-MM-DD`.
pub fn day_text(day: Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day())
}

/// The stored key of a group.
pub fn group_key(domain: &str, record: &str, policy_json: &str) -> String {
    hex_sha256(&[domain.as_bytes(), b"\0", record.as_bytes(), b"\0", policy_json.as_bytes()])
}

/// The stored key of a record text.
pub fn record_key(record: &str) -> String {
    hex_sha256(&[record.as_bytes()])
}

/// Lower-case hex SHA-256 of the concatenated parts.
pub fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    fn dg(json: &str) -> Datagram {
        Datagram::parse(json.as_bytes()).unwrap()
    }

    const OK: &str = r#"{"dpv":"1","d":"a.example","pr":"v=TLSRPTv1; rua=mailto:r@a.example","policies":[{"policy-type":2,"policy-string":["version: STSv1","mode: enforce","mx: mx.a.example","max_age: 86400"],"policy-domain":"a.example","mx-host":["mx.a.example"],"t":0,"f":0}]}"#;
    const BAD: &str = r#"{"dpv":"1","d":"a.example","pr":"v=TLSRPTv1; rua=mailto:r@a.example","policies":[{"policy-type":2,"policy-string":["version: STSv1","mode: enforce","mx: mx.a.example","max_age: 86400"],"policy-domain":"a.example","mx-host":["mx.a.example"],"failure-details":[{"c":202,"r":"192.0.2.1","n":"mx.a.example"}],"t":1,"f":1}]}"#;

    #[test]
    fn sessions_count_by_final_result_and_details_by_value() {
        let mut a = Aggregate::default();
        let day = date!(2026 - 12 - 03);
        a.add(day, dg(OK));
        a.add(day, dg(OK));
        a.add(day, dg(BAD));
        a.add(day, dg(BAD));
        assert_eq!(a.groups(), 1);
        let (_, c) = a.iter().next().unwrap();
        assert_eq!((c.successes, c.failures), (2, 2));
        assert_eq!(c.details.values().copied().collect::<Vec<_>>(), vec![2]);
        let (s, f) = a.rows();
        assert_eq!(s[0].day, "2026-12-03");
        assert_eq!(f[0].sessions, 2);
        assert_eq!(f[0].group_key, s[0].group_key);
    }

    #[test]
    fn another_day_or_record_is_another_group() {
        let mut a = Aggregate::default();
        a.add(date!(2026 - 12 - 03), dg(OK));
        a.add(date!(2026 - 12 - 04), dg(OK));
        a.add(date!(2026 - 12 - 04), dg(&OK.replace("mailto:r@", "mailto:s@")));
        assert_eq!(a.groups(), 3);
    }

    #[test]
    fn bounds_drop_and_count_instead_of_growing() {
        let mut a = Aggregate::new(1, 1);
        let day = date!(2026 - 12 - 03);
        a.add(day, dg(BAD));
        a.add(day, dg(&BAD.replace("192.0.2.1", "192.0.2.2")));
        a.add(day, dg(&OK.replace("a.example\",\"pr", "b.example\",\"pr")));
        assert_eq!(a.groups(), 1);
        assert_eq!(a.dropped(), 2);
        let (_, c) = a.iter().next().unwrap();
        assert_eq!(c.failures, 2, "the session still counts when its detail is dropped");
    }

    #[test]
    fn a_remembered_datagram_counts_like_a_parsed_one() {
        let day = date!(2026 - 12 - 03);
        let mut memo = Memo::default();
        let mut a = Aggregate::default();
        let mut b = Aggregate::default();
        for json in [OK, BAD, OK, BAD, BAD, OK] {
            memo.add_to(&mut a, day, json.as_bytes()).unwrap();
            b.add(day, dg(json));
        }
        assert_eq!(a.rows().0, b.rows().0);
        assert_eq!(a.rows().1, b.rows().1);
        assert_eq!(memo.seen.len(), 2);
        // Another day: the memo starts again (the day is part of the groups).
        memo.add_to(&mut a, date!(2026 - 12 - 04), OK.as_bytes()).unwrap();
        assert_eq!(a.groups(), 2);
        assert!(memo.add_to(&mut a, day, b"junk").is_err());
    }

    #[test]
    fn merge_adds() {
        let day = date!(2026 - 12 - 03);
        let mut a = Aggregate::default();
        a.add(day, dg(BAD));
        let mut b = Aggregate::default();
        b.add(day, dg(BAD));
        b.add(day, dg(OK));
        a.merge(b);
        let (_, c) = a.iter().next().unwrap();
        assert_eq!((c.successes, c.failures, a.datagrams()), (1, 2, 3));
        assert_eq!(c.details.values().sum::<u64>(), 2);
    }
}
