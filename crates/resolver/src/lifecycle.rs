//! The sender-side policy lifecycle (RFC 8461 §3.1, §3.3, §5.1, §10.2) as pure code: what a
//! lookup must do next, given what is cached for the domain and the time. No I/O and no clock:
//! the caller passes `now` (Unix seconds) and the outcome of each step.
//!
//! A lookup walks these steps:
//!
//! 1. [`DomainState::on_lookup`]: a cached policy whose TXT answer is still within its TTL and
//!    whose `max_age` has not run out is used as it is. A domain remembered as having no policy
//!    is answered from the negative cache until its DNS negative TTL runs out, and one whose
//!    policy fetch failed from the back-off while that and the TXT answer last. Otherwise the
//!    `_mta-sts` TXT record is looked up.
//! 2. [`DomainState::on_txt`]: the record's `id` decides. The same id as the cached, unexpired
//!    policy: the policy is unchanged, no fetch (the TXT answer is trusted for its TTL). A new id,
//!    or no usable cache: fetch, unless a fetch for this domain and id failed less than
//!    [`FETCH_BACKOFF_SECS`] ago (§3.3: "SHOULD wait at least 5 minutes"). No record: a cached,
//!    unexpired policy stays in force (§3.1: "a missing or unusable TXT record does not by
//!    itself remove a cached policy"); without one, the domain is negatively cached. A DNS
//!    failure: the cached policy if there is one, else a temporary failure (the sender retries;
//!    RFC 8461 §5: never fail permanently on a lookup problem).
//! 3. [`DomainState::on_fetch`]: a fetched policy replaces the cache, whatever its mode (a
//!    `mode: none` policy replaces an `enforce` one, §8.3). A failed fetch keeps an unexpired
//!    cached policy (§5.1) and starts the back-off; without a cache the domain is treated as
//!    having no policy (§5.1: "deliver as if there were no MTA-STS policy").
//!
//! [`DomainState::refresh_due`] says when to fetch proactively (§3.3, §10.2), before `max_age`
//! runs out, so that a cached policy never lapses while the domain is in use.

use mtasts_proto::{Policy, PolicyId};

/// After a failed fetch, no new fetch for the same domain and id for this long: 5 minutes
/// (RFC 8461 §3.3).
pub const FETCH_BACKOFF_SECS: i64 = 300;

/// A domain without a policy is remembered at least this long, even with a shorter DNS
/// negative TTL: one minute.
pub const NEGATIVE_TTL_MIN_SECS: i64 = 60;

/// ...and at most this long: one hour, so a newly published policy is seen soon.
pub const NEGATIVE_TTL_MAX_SECS: i64 = 3600;

/// A TXT answer is trusted for its DNS TTL, bounded to this range (seconds): at least 30 s so a
/// zero TTL does not mean a DNS query per message, at most a day.
pub const TXT_TTL_RANGE: (i64, i64) = (30, 86_400);

/// Refresh a cached policy when this fraction of its `max_age` is left (spread by the caller).
pub const REFRESH_AT_REMAINING: f64 = 0.25;

/// A policy as cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The policy.
    pub policy: Policy,
    /// The TXT id it was fetched under.
    pub id: PolicyId,
    /// When it was fetched (Unix seconds).
    pub fetched_at: i64,
}

impl CachedPolicy {
    /// When `max_age` runs out: RFC 8461 §3.2, "cache for up to this value from last policy
    /// fetch time".
    pub fn expires_at(&self) -> i64 {
        self.fetched_at.saturating_add(i64::from(self.policy.max_age().seconds()))
    }

    /// Whether it may still be used at `now`.
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.expires_at()
    }
}

/// Everything remembered about one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainState {
    /// The cached policy, if any (possibly expired).
    pub policy: Option<CachedPolicy>,
    /// Until when the last TXT answer is trusted (Unix seconds).
    pub txt_until: i64,
    /// The domain has no policy until then (negative cache).
    pub no_policy_until: Option<i64>,
    /// A fetch for this id failed; no new attempt for it until then.
    pub backoff: Option<(PolicyId, i64)>,
}

/// What the lookup does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Answer now.
    Decided(Decision),
    /// Look up the `_mta-sts` TXT record, then call [`DomainState::on_txt`].
    LookUpTxt,
    /// Fetch the policy (under this id), then call [`DomainState::on_fetch`].
    Fetch(PolicyId),
}

/// The outcome of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Apply this policy (whatever its mode; `none` and `testing` are the caller's to map).
    Policy {
        /// The policy.
        policy: Policy,
        /// Why this one: fresh from the network, or from the cache and why.
        source: Source,
    },
    /// The domain has no MTA-STS policy (or none usable): deliver as without MTA-STS.
    NoPolicy(NoPolicyReason),
    /// Not known now: defer and try again (a DNS failure with nothing cached).
    Temporary(String),
}

/// Where an applied policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Fetched in this lookup.
    Fetched,
    /// Cached, TXT answer still within its TTL.
    Cache,
    /// Cached; the TXT record has the same id, so the policy is unchanged.
    CacheSameId,
    /// Cached; used because the TXT record is missing or unusable now (§3.1).
    CacheTxtGone,
    /// Cached; used because the DNS could not answer for the TXT record.
    CacheDnsFailed,
    /// Cached; used because fetching the new policy failed (§5.1).
    CacheFetchFailed,
    /// Cached; a fetch for the new id failed less than 5 minutes ago (§3.3 back-off).
    CacheBackoff,
}

impl Source {
    /// A short stable name (`fetched`, `cache`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::Cache => "cache",
            Self::CacheSameId => "cache-same-id",
            Self::CacheTxtGone => "cache-txt-gone",
            Self::CacheDnsFailed => "cache-dns-failed",
            Self::CacheFetchFailed => "cache-fetch-failed",
            Self::CacheBackoff => "cache-backoff",
        }
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Fetched => "fetched now",
            Self::Cache => "cached",
            Self::CacheSameId => "cached; the TXT record has the same id",
            Self::CacheTxtGone => {
                "cached; the TXT record is gone, the cache stays in force (RFC 8461 §3.1)"
            }
            Self::CacheDnsFailed => "cached; the DNS could not answer for the TXT record",
            Self::CacheFetchFailed => "cached; fetching the new policy failed (RFC 8461 §5.1)",
            Self::CacheBackoff => {
                "cached; a fetch for the new id failed less than 5 minutes ago (RFC 8461 §3.3)"
            }
        }
    }
}

/// Why a lookup found no policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoPolicyReason {
    /// No `v=STSv1` record (remembered until the negative TTL runs out).
    NoRecord,
    /// The record exists, but fetching the policy failed and nothing usable is cached.
    FetchFailed(String),
    /// The record exists, but a fetch for its id failed recently (§3.3 back-off).
    Backoff,
}

impl NoPolicyReason {
    /// In words.
    pub fn describe(&self) -> String {
        match self {
            Self::NoRecord => "no _mta-sts TXT record: the domain has no MTA-STS policy".into(),
            Self::FetchFailed(reason) => format!(
                "the TXT record exists but the policy could not be fetched ({reason}) and none is cached: delivered as without MTA-STS (RFC 8461 §5.1)"
            ),
            Self::Backoff => "the TXT record exists but fetching its policy failed less than 5 minutes ago (RFC 8461 §3.3)".into(),
        }
    }
}

/// What the TXT lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtOutcome {
    /// One valid record with this id; the answer's TTL in seconds.
    Record {
        /// The id.
        id: PolicyId,
        /// The TTL of the answer.
        ttl: u32,
    },
    /// No usable record (NXDOMAIN, NODATA, none or several `v=STSv1;` records, invalid);
    /// `negative_ttl` is the DNS negative-caching TTL (SOA minimum), when known.
    NoRecord {
        /// Seconds to remember the absence.
        negative_ttl: Option<u32>,
    },
    /// The DNS could not answer (SERVFAIL, timeout).
    DnsFailed(String),
}

impl DomainState {
    /// Step 1: what a lookup at `now` does first.
    pub fn on_lookup(&self, now: i64) -> Next {
        if let Some(cached) = &self.policy
            && cached.is_fresh(now)
            && now < self.txt_until
        {
            return Next::Decided(self.use_cached(Source::Cache));
        }
        if self.policy.is_none() && self.no_policy_until.is_some_and(|until| now < until) {
            return Next::Decided(Decision::NoPolicy(NoPolicyReason::NoRecord));
        }
        // A fetch failed less than 5 minutes ago, nothing usable is cached, and the TXT answer
        // that led to it is still within its TTL: the TXT lookup would find the same id and
        // end in the same back-off, so answer now (no DNS query per message for a domain
        // whose policy host is broken).
        if !self.policy.as_ref().is_some_and(|c| c.is_fresh(now))
            && now < self.txt_until
            && self.backoff.as_ref().is_some_and(|(_, until)| now < *until)
        {
            return Next::Decided(Decision::NoPolicy(NoPolicyReason::Backoff));
        }
        Next::LookUpTxt
    }

    /// Step 2: the TXT record's answer.
    pub fn on_txt(&mut self, txt: TxtOutcome, now: i64) -> Next {
        let fresh = self.policy.as_ref().filter(|c| c.is_fresh(now)).cloned();
        match txt {
            TxtOutcome::Record { id, ttl } => {
                self.no_policy_until = None;
                let ttl = i64::from(ttl).clamp(TXT_TTL_RANGE.0, TXT_TTL_RANGE.1);
                if let Some(cached) = &fresh
                    && cached.id == id
                {
                    self.txt_until = now.saturating_add(ttl);
                    return Next::Decided(self.use_cached(Source::CacheSameId));
                }
                if let Some((failed_id, until)) = &self.backoff
                    && *failed_id == id
                    && now < *until
                {
                    return Next::Decided(match fresh {
                        Some(_) => self.use_cached(Source::CacheBackoff),
                        None => Decision::NoPolicy(NoPolicyReason::Backoff),
                    });
                }
                self.txt_until = now.saturating_add(ttl);
                Next::Fetch(id)
            }
            TxtOutcome::NoRecord { negative_ttl } => {
                if fresh.is_some() {
                    return Next::Decided(self.use_cached(Source::CacheTxtGone));
                }
                let ttl = negative_ttl
                    .map_or(NEGATIVE_TTL_MAX_SECS, i64::from)
                    .clamp(NEGATIVE_TTL_MIN_SECS, NEGATIVE_TTL_MAX_SECS);
                self.policy = None;
                self.no_policy_until = Some(now.saturating_add(ttl));
                Next::Decided(Decision::NoPolicy(NoPolicyReason::NoRecord))
            }
            TxtOutcome::DnsFailed(reason) => match fresh {
                Some(_) => Next::Decided(self.use_cached(Source::CacheDnsFailed)),
                None => Next::Decided(Decision::Temporary(reason)),
            },
        }
    }

    /// Step 3: the fetch of the policy under `id`.
    pub fn on_fetch(&mut self, id: PolicyId, result: Result<Policy, String>, now: i64) -> Decision {
        match result {
            Ok(policy) => {
                self.backoff = None;
                self.no_policy_until = None;
                self.policy = Some(CachedPolicy { policy: policy.clone(), id, fetched_at: now });
                Decision::Policy { policy, source: Source::Fetched }
            }
            Err(reason) => {
                self.backoff = Some((id, now.saturating_add(FETCH_BACKOFF_SECS)));
                if self.policy.as_ref().is_some_and(|c| c.is_fresh(now)) {
                    self.use_cached(Source::CacheFetchFailed)
                } else {
                    Decision::NoPolicy(NoPolicyReason::FetchFailed(reason))
                }
            }
        }
    }

    /// The TXT answer during a proactive refresh: fetch under the record's id even when it is
    /// the cached one (§10.2: "regardless of the TXT record"), unless that id is in back-off.
    /// Without a record, or when the DNS fails, nothing is fetched: the cached policy stays
    /// until its `max_age` runs out.
    pub fn on_refresh_txt(&mut self, txt: TxtOutcome, now: i64) -> Next {
        match txt {
            TxtOutcome::Record { id, ttl } => {
                if self
                    .backoff
                    .as_ref()
                    .is_some_and(|(failed, until)| *failed == id && now < *until)
                {
                    return Next::Decided(self.use_cached(Source::CacheBackoff));
                }
                let ttl = i64::from(ttl).clamp(TXT_TTL_RANGE.0, TXT_TTL_RANGE.1);
                self.txt_until = now.saturating_add(ttl);
                Next::Fetch(id)
            }
            TxtOutcome::NoRecord { .. } => Next::Decided(self.use_cached(Source::CacheTxtGone)),
            TxtOutcome::DnsFailed(_) => Next::Decided(self.use_cached(Source::CacheDnsFailed)),
        }
    }

    /// When to refresh the cached policy proactively (§3.3, §10.2): once
    /// [`REFRESH_AT_REMAINING`] of its lifetime is left. `None` without a cached policy.
    pub fn refresh_due(&self) -> Option<i64> {
        let cached = self.policy.as_ref()?;
        let max_age = i64::from(cached.policy.max_age().seconds());
        // Truncation is fine: a second either way does not matter.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let lead = (max_age as f64 * REFRESH_AT_REMAINING) as i64;
        Some(cached.expires_at().saturating_sub(lead))
    }

    /// Whether nothing worth keeping is left at `now` (the entry may be dropped).
    pub fn is_dead(&self, now: i64) -> bool {
        self.policy.as_ref().is_none_or(|c| !c.is_fresh(now))
            && self.no_policy_until.is_none_or(|until| now >= until)
            && self.backoff.as_ref().is_none_or(|(_, until)| now >= *until)
    }

    fn use_cached(&self, source: Source) -> Decision {
        match &self.policy {
            Some(c) => Decision::Policy { policy: c.policy.clone(), source },
            // Callers check for a cached policy first; answer safely anyway.
            None => Decision::Temporary("internal: no cached policy".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn policy(mode: &str, max_age: u32) -> Policy {
        Policy::parse(&format!(
            "version: STSv1\nmode: {mode}\nmx: mx.example.com\nmax_age: {max_age}\n"
        ))
        .unwrap()
        .value
    }

    fn id(s: &str) -> PolicyId {
        PolicyId::new(s).unwrap()
    }

    fn record(s: &str) -> TxtOutcome {
        TxtOutcome::Record { id: id(s), ttl: 300 }
    }

    /// A state with an enforce policy (one day) fetched at T0 under id "a".
    fn cached() -> DomainState {
        let mut s = DomainState::default();
        assert_eq!(s.on_lookup(T0), Next::LookUpTxt);
        assert_eq!(s.on_txt(record("a"), T0), Next::Fetch(id("a")));
        let d = s.on_fetch(id("a"), Ok(policy("enforce", 86_400)), T0);
        assert!(matches!(d, Decision::Policy { source: Source::Fetched, .. }));
        s
    }

    fn source(next: &Next) -> Option<Source> {
        match next {
            Next::Decided(Decision::Policy { source, .. }) => Some(*source),
            _ => None,
        }
    }

    #[test]
    fn cached_policy_is_used_within_txt_ttl_then_txt_is_rechecked() {
        let s = cached();
        assert_eq!(source(&s.on_lookup(T0 + 299)), Some(Source::Cache));
        assert_eq!(s.on_lookup(T0 + 300), Next::LookUpTxt);
    }

    #[test]
    fn same_id_means_no_fetch_and_a_new_id_means_fetch() {
        let mut s = cached();
        assert_eq!(source(&s.on_txt(record("a"), T0 + 400)), Some(Source::CacheSameId));
        assert_eq!(s.on_txt(record("b"), T0 + 800), Next::Fetch(id("b")));
        let d = s.on_fetch(id("b"), Ok(policy("testing", 86_400)), T0 + 800);
        assert!(
            matches!(d, Decision::Policy { source: Source::Fetched, ref policy } if policy.mode() == mtasts_proto::Mode::Testing)
        );
        assert_eq!(s.policy.as_ref().unwrap().id, id("b"));
    }

    #[test]
    fn expiry_forces_a_fetch_even_with_the_same_id() {
        let mut s = cached();
        assert_eq!(s.on_lookup(T0 + 86_400), Next::LookUpTxt);
        assert_eq!(s.on_txt(record("a"), T0 + 86_400), Next::Fetch(id("a")));
    }

    #[test]
    fn failed_refetch_keeps_the_cached_policy_and_backs_off_five_minutes() {
        let mut s = cached();
        assert_eq!(s.on_txt(record("b"), T0 + 1000), Next::Fetch(id("b")));
        let d = s.on_fetch(id("b"), Err("timeout".into()), T0 + 1000);
        assert!(matches!(d, Decision::Policy { source: Source::CacheFetchFailed, .. }));
        // Within 5 minutes, no new attempt for id b.
        assert_eq!(source(&s.on_txt(record("b"), T0 + 1299)), Some(Source::CacheBackoff));
        // After 5 minutes, try again.
        assert_eq!(s.on_txt(record("b"), T0 + 1300), Next::Fetch(id("b")));
        // A different id is not held back by b's back-off.
        let mut s2 = s.clone();
        s2.backoff = Some((id("b"), T0 + 5000));
        assert_eq!(s2.on_txt(record("c"), T0 + 1300), Next::Fetch(id("c")));
    }

    #[test]
    fn failed_fetch_without_cache_is_no_policy() {
        let mut s = DomainState::default();
        assert_eq!(s.on_txt(record("a"), T0), Next::Fetch(id("a")));
        let d = s.on_fetch(id("a"), Err("HTTP 404".into()), T0);
        assert_eq!(d, Decision::NoPolicy(NoPolicyReason::FetchFailed("HTTP 404".into())));
        assert_eq!(
            s.on_txt(record("a"), T0 + 10),
            Next::Decided(Decision::NoPolicy(NoPolicyReason::Backoff))
        );
    }

    #[test]
    fn back_off_within_the_txt_ttl_needs_no_txt_lookup() {
        let mut s = DomainState::default();
        assert_eq!(s.on_txt(record("a"), T0), Next::Fetch(id("a")));
        s.on_fetch(id("a"), Err("HTTP 404".into()), T0);
        // TXT TTL 300 s, back-off 300 s: answered without DNS inside both.
        assert_eq!(
            s.on_lookup(T0 + 10),
            Next::Decided(Decision::NoPolicy(NoPolicyReason::Backoff))
        );
        assert_eq!(
            s.on_lookup(T0 + 299),
            Next::Decided(Decision::NoPolicy(NoPolicyReason::Backoff))
        );
        // Once the TXT answer is stale, look again (the id may have changed).
        assert_eq!(s.on_lookup(T0 + 300), Next::LookUpTxt);
        // A shorter TXT TTL ends it sooner.
        let mut short = DomainState::default();
        let txt = TxtOutcome::Record { id: id("a"), ttl: 30 };
        assert_eq!(short.on_txt(txt, T0), Next::Fetch(id("a")));
        short.on_fetch(id("a"), Err("HTTP 404".into()), T0);
        assert_eq!(short.on_lookup(T0 + 30), Next::LookUpTxt);
        // After the back-off, fetch again.
        let mut later = s.clone();
        assert_eq!(later.on_txt(record("a"), T0 + 300), Next::Fetch(id("a")));
    }

    #[test]
    fn missing_txt_keeps_an_unexpired_cache_but_not_an_expired_one() {
        let mut s = cached();
        let gone = TxtOutcome::NoRecord { negative_ttl: Some(600) };
        assert_eq!(source(&s.on_txt(gone.clone(), T0 + 1000)), Some(Source::CacheTxtGone));
        assert_eq!(
            s.on_txt(gone, T0 + 86_400),
            Next::Decided(Decision::NoPolicy(NoPolicyReason::NoRecord))
        );
        assert!(s.policy.is_none());
    }

    #[test]
    fn negative_cache_honours_the_dns_ttl_within_bounds() {
        let mut s = DomainState::default();
        s.on_txt(TxtOutcome::NoRecord { negative_ttl: Some(900) }, T0);
        assert_eq!(
            s.on_lookup(T0 + 899),
            Next::Decided(Decision::NoPolicy(NoPolicyReason::NoRecord))
        );
        assert_eq!(s.on_lookup(T0 + 900), Next::LookUpTxt);
        s.on_txt(TxtOutcome::NoRecord { negative_ttl: Some(0) }, T0);
        assert_eq!(s.no_policy_until, Some(T0 + NEGATIVE_TTL_MIN_SECS));
        s.on_txt(TxtOutcome::NoRecord { negative_ttl: None }, T0);
        assert_eq!(s.no_policy_until, Some(T0 + NEGATIVE_TTL_MAX_SECS));
        // A record appearing ends the negative cache.
        assert_eq!(s.on_txt(record("a"), T0 + 1), Next::Fetch(id("a")));
        assert_eq!(s.no_policy_until, None);
    }

    #[test]
    fn dns_failure_uses_the_cache_or_is_temporary() {
        let mut s = cached();
        let fail = TxtOutcome::DnsFailed("SERVFAIL".into());
        assert_eq!(source(&s.on_txt(fail.clone(), T0 + 1000)), Some(Source::CacheDnsFailed));
        let mut empty = DomainState::default();
        assert_eq!(empty.on_txt(fail, T0), Next::Decided(Decision::Temporary("SERVFAIL".into())));
    }

    #[test]
    fn mode_none_replaces_a_cached_enforce_policy() {
        let mut s = cached();
        assert_eq!(s.on_txt(record("b"), T0 + 500), Next::Fetch(id("b")));
        s.on_fetch(id("b"), Ok(policy("none", 3600)), T0 + 500);
        assert_eq!(s.policy.as_ref().unwrap().policy.mode(), mtasts_proto::Mode::None);
    }

    #[test]
    fn refresh_is_due_before_expiry_and_dead_entries_are_known() {
        let s = cached();
        assert_eq!(s.refresh_due(), Some(T0 + 86_400 - 21_600));
        assert!(!s.is_dead(T0 + 86_399));
        assert!(s.is_dead(T0 + 86_400));
        assert_eq!(DomainState::default().refresh_due(), None);
    }

    #[test]
    fn refresh_fetches_even_with_the_same_id() {
        let mut s = cached();
        assert_eq!(s.on_refresh_txt(record("a"), T0 + 70_000), Next::Fetch(id("a")));
        s.on_fetch(id("a"), Ok(policy("enforce", 86_400)), T0 + 70_000);
        assert_eq!(s.policy.as_ref().unwrap().fetched_at, T0 + 70_000);
        // No record now: keep what is cached, fetch nothing.
        let gone = TxtOutcome::NoRecord { negative_ttl: None };
        assert!(matches!(
            s.on_refresh_txt(gone, T0 + 70_001),
            Next::Decided(Decision::Policy { .. })
        ));
    }

    #[test]
    fn txt_ttl_is_bounded() {
        let mut s = cached();
        s.on_txt(TxtOutcome::Record { id: id("a"), ttl: 0 }, T0 + 100);
        assert_eq!(s.txt_until, T0 + 100 + TXT_TTL_RANGE.0);
    }
}
