//! How fast the DNS client asks each server: an adaptive rate (AIMD) with an optional fixed
//! ceiling, and the retransmission timeout.
//!
//! # The rule
//!
//! Servers protect themselves by not answering: authoritative servers rate-limit their
//! responses (NSD and BIND "RRL": past a rate per client netblock they drop answers and send
//! every second one truncated), public resolvers drop or answer REFUSED past a per-client
//! rate, a busy resolver answers SERVFAIL or nothing. A scan that keeps asking at full speed
//! then pays retransmissions and timeouts, and keeps the server's limiter engaged. So each
//! server gets its own [`AdaptiveRate`], fed with what happened to every query sent to it:
//!
//! * **Signals.** Good: an answer (NOERROR or NXDOMAIN). Bad: a datagram not answered within
//!   the retransmission timeout ([`Signal::Lost`]), a truncated answer ([`Signal::Truncated`];
//!   RRL's "slip"), REFUSED, SERVFAIL.
//! * **Windows.** Signals are counted over windows of at least [`WINDOW`] holding at least
//!   [`MIN_SIGNALS`] signals (a quiet server's window stretches until it has enough). A window
//!   is *congested* when more than [`BAD_SHARE`] of its signals are bad; a few SERVFAILs of
//!   broken domains or a stray lost datagram do not slow a scan.
//! * **Multiplicative decrease.** After a congested window the rate becomes [`DECREASE`] times
//!   the current limit (without a limit yet: times the rate actually sent in that window),
//!   never below [`MIN_RATE`]. At most one decrease per [`DECREASE_EPOCH`]: losses are seen a
//!   retransmission timeout after the fact, so one burst of them is one congestion event
//!   (TCP's "once per round trip", RFC 5681 §3.1, for the same reason).
//! * **Additive increase.** After a clean window in which the limit was in use (at least half
//!   of it sent), the limit grows by [`INCREASE_SHARE`] of the rate at the last decrease. Once
//!   it is [`RECOVERED`] times that rate again, the server is back to no limit (unless a
//!   ceiling is set).
//! * **Ceiling.** An explicit cap (`mtasts scan --dns-rate`) bounds the rate at all times;
//!   without one there is no limit until the server signals congestion.
//!
//! Retransmission: the timeout before a query is resent follows RFC 6298 §2 (smoothed round
//! trip time plus four deviations; every datagram has its own id, so each answer times the
//! datagram it answers),
//! bounded by [`MIN_RTO`] and [`MAX_RTO`], [`INITIAL_RTO`] before the first answer, and doubles
//! for each resend of one query (RFC 6298 §5.5). RFC 1035 §4.2.1: "The retransmission interval
//! should be based on prior statistics if possible."
//!
//! Everything here is pure (time is passed in), so the rules are tested by feeding events.

use std::time::{Duration, Instant};

/// Shortest window over which signals are weighed.
pub const WINDOW: Duration = Duration::from_millis(250);
/// Fewest signals that make a window.
pub const MIN_SIGNALS: u32 = 10;
/// Share of bad signals above which a window is congested.
pub const BAD_SHARE: f64 = 0.05;
/// Factor of a multiplicative decrease.
pub const DECREASE: f64 = 0.5;
/// At most one decrease per this long.
pub const DECREASE_EPOCH: Duration = Duration::from_secs(1);
/// The rate never goes below this (queries per second).
pub const MIN_RATE: f64 = 10.0;
/// Additive increase per clean window, as a share of the rate at the last decrease.
pub const INCREASE_SHARE: f64 = 0.1;
/// The limit is lifted once it is this many times the rate at the last decrease.
pub const RECOVERED: f64 = 2.0;
/// Retransmission timeout before any answer was timed.
pub const INITIAL_RTO: Duration = Duration::from_millis(400);
/// Shortest retransmission timeout (unbound's `infra-cache-min-rtt` is 50 ms; this is more
/// patient with a resolver whose cached answers are fast and uncached ones are not).
pub const MIN_RTO: Duration = Duration::from_millis(150);
/// Longest retransmission timeout (also after doubling).
pub const MAX_RTO: Duration = Duration::from_secs(2);

/// What happened to one query sent to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An answer that is not an error (NOERROR, NXDOMAIN).
    Answered,
    /// No answer within the retransmission timeout.
    Lost,
    /// An answer with TC set: the server wants TCP (too big, or rate limited).
    Truncated,
    /// REFUSED.
    Refused,
    /// SERVFAIL.
    ServFail,
}

impl Signal {
    /// True for the signals of an overloaded or rate-limiting server.
    pub fn is_bad(self) -> bool {
        !matches!(self, Self::Answered)
    }
}

/// The per-server rate controller (see the module docs for the rule).
#[derive(Clone, Debug)]
pub struct AdaptiveRate {
    ceiling: Option<f64>,
    /// The adaptive limit; `None` = none (until congestion).
    limit: Option<f64>,
    /// The rate when the limit was last decreased.
    decreased_from: f64,
    last_decrease: Option<Instant>,
    window_start: Instant,
    sent: u32,
    good: u32,
    bad: u32,
    decreases: u64,
}

impl AdaptiveRate {
    /// A controller starting at `now` without limit, or capped at `ceiling` queries/s.
    pub fn new(ceiling: Option<u32>, now: Instant) -> Self {
        Self {
            ceiling: ceiling.map(|c| f64::from(c.max(1))),
            limit: None,
            decreased_from: 0.0,
            last_decrease: None,
            window_start: now,
            sent: 0,
            good: 0,
            bad: 0,
            decreases: 0,
        }
    }

    /// The rate in force (queries per second), `None` for no limit.
    pub fn rate(&self) -> Option<f64> {
        match (self.limit, self.ceiling) {
            (Some(l), Some(c)) => Some(l.min(c)),
            (l, c) => l.or(c),
        }
    }

    /// The spacing between queries in force, `None` for none.
    pub fn interval(&self) -> Option<Duration> {
        self.rate().map(|r| Duration::from_secs_f64(1.0 / r.max(1.0)))
    }

    /// True while the server is in back-off: congestion lowered the rate and it has not
    /// recovered yet (a ceiling alone is not back-off).
    pub fn backing_off(&self) -> bool {
        self.limit.is_some()
    }

    /// How many multiplicative decreases happened so far.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }

    /// A query is being sent at `now`.
    pub fn on_send(&mut self, now: Instant) {
        self.sent = self.sent.saturating_add(1);
        self.roll(now);
    }

    /// What happened to a query, learnt at `now`.
    pub fn on_signal(&mut self, signal: Signal, now: Instant) {
        if signal.is_bad() {
            self.bad = self.bad.saturating_add(1);
        } else {
            self.good = self.good.saturating_add(1);
        }
        self.roll(now);
    }

    /// Closes the window if it is long and full enough, and adjusts the limit.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        let signals = self.good + self.bad;
        if elapsed < WINDOW || signals < MIN_SIGNALS {
            return;
        }
        let sent_rate = f64::from(self.sent) / elapsed.as_secs_f64();
        let congested = f64::from(self.bad) > BAD_SHARE * f64::from(signals);
        if congested {
            let may_decrease = self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_EPOCH);
            if may_decrease {
                // From no limit: half of what was sent. From a limit: half of the limit (what
                // was sent may be less for want of work, which says nothing of the server).
                let current = self.rate().unwrap_or(sent_rate);
                let next = (current * DECREASE).max(MIN_RATE);
                self.decreased_from = current.max(MIN_RATE);
                self.limit = Some(next);
                self.last_decrease = Some(now);
                self.decreases += 1;
            }
        } else if let Some(limit) = self.limit
            && sent_rate >= 0.5 * limit
        {
            let grown = limit + INCREASE_SHARE * self.decreased_from;
            self.limit = if self.ceiling.is_none() && grown >= RECOVERED * self.decreased_from {
                None
            } else {
                Some(self.ceiling.map_or(grown, |c| grown.min(c)))
            };
        }
        self.window_start = now;
        self.sent = 0;
        self.good = 0;
        self.bad = 0;
    }
}

/// Retransmission timeout from round-trip samples (RFC 6298 §2).
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    /// (SRTT, RTTVAR) once a sample was taken.
    state: Option<(Duration, Duration)>,
}

impl RttEstimator {
    /// Takes the round-trip time of one datagram and its answer.
    pub fn sample(&mut self, rtt: Duration) {
        self.state = Some(match self.state {
            // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
            None => (rtt, rtt / 2),
            // §2.3, alpha = 1/8, beta = 1/4.
            Some((srtt, rttvar)) => {
                let diff = srtt.abs_diff(rtt);
                let rttvar = rttvar * 3 / 4 + diff / 4;
                let srtt = srtt * 7 / 8 + rtt / 8;
                (srtt, rttvar)
            }
        });
    }

    /// RTO = SRTT + 4 RTTVAR, within [`MIN_RTO`]..=[`MAX_RTO`]; [`INITIAL_RTO`] before any
    /// sample.
    pub fn rto(&self) -> Duration {
        match self.state {
            None => INITIAL_RTO,
            Some((srtt, rttvar)) => (srtt + rttvar * 4).clamp(MIN_RTO, MAX_RTO),
        }
    }

    /// The timeout before resend number `resends + 1` of one query: doubled per resend (RFC 6298
    /// §5.5), at most [`MAX_RTO`].
    pub fn backed_off(&self, resends: u32) -> Duration {
        self.rto().saturating_mul(1u32 << resends.min(8)).min(MAX_RTO)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `n` signals (and as many sends) spread evenly over `over`, starting at `t`.
    fn feed(c: &mut AdaptiveRate, t: &mut Instant, n: u32, bad_every: u32, over: Duration) {
        for i in 0..n {
            *t += over / n;
            c.on_send(*t);
            let bad = bad_every > 0 && i % bad_every == 0;
            c.on_signal(if bad { Signal::Lost } else { Signal::Answered }, *t);
        }
    }

    #[test]
    fn no_limit_until_congestion() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(None, t);
        feed(&mut c, &mut t, 10_000, 0, Duration::from_secs(2));
        assert_eq!(c.rate(), None);
        assert_eq!(c.interval(), None);
        // 1 bad in 100 is under the 5 % threshold: still no limit.
        feed(&mut c, &mut t, 10_000, 100, Duration::from_secs(2));
        assert_eq!(c.rate(), None);
    }

    #[test]
    fn congestion_halves_the_rate_actually_sent_once_per_epoch() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(None, t);
        // 4000 queries/s, one in four lost.
        feed(&mut c, &mut t, 1000, 4, ms(250));
        let first = c.rate().unwrap();
        assert!((1900.0..=2100.0).contains(&first), "{first}");
        assert_eq!(c.decreases(), 1);
        // Still congested within the epoch: no second decrease.
        feed(&mut c, &mut t, 500, 4, ms(500));
        assert_eq!(c.decreases(), 1);
        // After the epoch, another halving of the limit.
        feed(&mut c, &mut t, 500, 4, ms(600));
        assert_eq!(c.decreases(), 2);
        let second = c.rate().unwrap();
        assert!(second <= first * 0.5 + 1.0, "{first} -> {second}");
    }

    #[test]
    fn refused_servfail_and_truncated_count_as_congestion() {
        for signal in [Signal::Refused, Signal::ServFail, Signal::Truncated] {
            let mut t = Instant::now();
            let mut c = AdaptiveRate::new(None, t);
            for _ in 0..20 {
                t += ms(20);
                c.on_send(t);
                c.on_signal(signal, t);
            }
            assert!(c.rate().is_some(), "{signal:?}");
        }
    }

    #[test]
    fn never_below_the_floor() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(None, t);
        for _ in 0..40 {
            feed(&mut c, &mut t, 20, 1, Duration::from_secs(1));
        }
        assert_eq!(c.rate(), Some(MIN_RATE));
    }

    #[test]
    fn recovers_additively_then_lifts_the_limit() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(None, t);
        feed(&mut c, &mut t, 250, 2, ms(250)); // 1000/s, congested
        let low = c.rate().unwrap();
        assert!((450.0..=550.0).contains(&low), "{low}");
        // Clean windows sending at the limit: +10 % of 1000 per window.
        let mut rates = vec![low];
        for _ in 0..20 {
            let r = c.rate().unwrap_or(f64::INFINITY);
            let n = (r.min(5000.0) * 0.25) as u32;
            feed(&mut c, &mut t, n.max(MIN_SIGNALS), 0, ms(250));
            rates.push(c.rate().unwrap_or(f64::INFINITY));
        }
        assert!((rates[1] - rates[0] - 100.0).abs() < 1.0, "{rates:?}");
        assert!(rates.windows(2).all(|w| w[1] >= w[0]), "{rates:?}");
        assert_eq!(c.rate(), None, "{rates:?}");
    }

    #[test]
    fn an_idle_limit_does_not_grow() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(None, t);
        feed(&mut c, &mut t, 250, 2, ms(250));
        let low = c.rate().unwrap();
        // 40 queries/s, far under the limit: no reason to raise it.
        feed(&mut c, &mut t, 40, 0, Duration::from_secs(1));
        assert_eq!(c.rate(), Some(low));
    }

    #[test]
    fn the_ceiling_always_holds() {
        let mut t = Instant::now();
        let mut c = AdaptiveRate::new(Some(500), t);
        assert_eq!(c.rate(), Some(500.0));
        assert_eq!(c.interval(), Some(ms(2)));
        feed(&mut c, &mut t, 125, 2, ms(250)); // 500/s, congested
        assert_eq!(c.rate(), Some(250.0));
        for _ in 0..40 {
            let n = (c.rate().unwrap() * 0.25) as u32;
            feed(&mut c, &mut t, n, 0, ms(250));
        }
        assert_eq!(c.rate(), Some(500.0));
    }

    #[test]
    fn rto_follows_rfc_6298() {
        let mut e = RttEstimator::default();
        assert_eq!(e.rto(), INITIAL_RTO);
        e.sample(ms(1));
        assert_eq!(e.rto(), MIN_RTO);
        for _ in 0..50 {
            e.sample(ms(200));
        }
        // SRTT ~200 ms, RTTVAR small: RTO a little over 200 ms, raised to the floor... or not.
        assert!(e.rto() >= MIN_RTO && e.rto() < ms(400), "{:?}", e.rto());
        e.sample(ms(1500));
        assert!(e.rto() > ms(400), "{:?}", e.rto());
        assert_eq!(e.backed_off(0), e.rto());
        assert_eq!(e.backed_off(10), MAX_RTO);
        let mut fresh = RttEstimator::default();
        fresh.sample(ms(1));
        assert_eq!(fresh.backed_off(1), MIN_RTO * 2);
    }
}
