//! The reporter: after each UTC day closes, plan one report per policy domain and TLSRPT
//! record and a delivery to each of the record's `rua` destinations, spread over the next
//! hours (RFC 8460 §4.1 suggests a random delay; the example uses up to four hours); then send
//! what is due, retrying failures with exponential back-off and giving up a day after the
//! first attempt (§5.5).
//!
//! Planning is done once per day, by whichever reporter gets there first (the day's row is
//! the guard); deliveries are claimed with a lease, so reporters on one PostgreSQL database
//! never send a report twice at once, and a reporter killed mid-send retries after the lease.
//! A report is rebuilt from the stored sums on each attempt: its id and content are the same
//! every time.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use mtasts_proto::tlsrpt_record::ReportUri;
use mtasts_store::outbound::{Delivery as Stored, NewDelivery, OutboundError, OutboundStore};
use time::{Date, OffsetDateTime};

use crate::aggregate::{day_text, hex_sha256};
use crate::compose::{self, DayReport};
use crate::deliver::Delivery;

/// When reports are sent.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Wait after the day's end before planning it (collectors' last writes).
    pub grace: Duration,
    /// Deliveries are spread over this long after planning (0: all at once).
    pub spread: Duration,
    /// First retry after a failure; doubles each time.
    pub retry_first: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Give up this long after the first attempt was due (§5.5: a day).
    pub give_up_after: Duration,
    /// A claimed delivery is another reporter's again after this long.
    pub lease: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(600),
            spread: Duration::from_secs(4 * 3600),
            retry_first: Duration::from_secs(300),
            retry_max: Duration::from_secs(7200),
            give_up_after: Duration::from_secs(86_400),
            lease: Duration::from_secs(600),
            concurrency: 4,
        }
    }
}

/// What a planning round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    /// Days planned.
    pub days: Vec<String>,
    /// Reports made.
    pub reports: usize,
    /// Deliveries scheduled.
    pub deliveries: usize,
    /// Reports with nowhere to go, and why.
    pub undeliverable: Vec<(String, String)>,
}

/// What a sending round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub retrying: usize,
    /// Failed and given up.
    pub given_up: usize,
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] OutboundError),
    /// A stored day is not a date.
    #[error("stored day {0:?} is not a date")]
    Day(String),
}

fn parse_day(day: &str) -> Result<Date, ReporterError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(day, fmt).map_err(|_| ReporterError::Day(day.to_owned()))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Sends the reports.
pub struct Reporter {
    store: OutboundStore,
    delivery: Delivery,
    schedule: Schedule,
}

impl Reporter {
    /// A reporter over `store`.
    pub fn new(store: OutboundStore, delivery: Delivery, schedule: Schedule) -> Self {
        Self { store, delivery, schedule }
    }

    /// The reports of `day`, as they would be sent.
    pub async fn reports(&self, day: Date) -> Result<Vec<DayReport>, ReporterError> {
        let text = day_text(day);
        let sessions = self.store.day_sessions(&text).await?;
        let failures = self.store.day_failures(&text).await?;
        Ok(compose::day_reports(day, &sessions, &failures, &self.delivery.identity))
    }

    /// Plans every closed day not planned yet: a day is closed at its end plus the grace.
    pub async fn plan(&self, now: OffsetDateTime) -> Result<Planned, ReporterError> {
        let mut out = Planned::default();
        for totals in self.store.days().await? {
            if totals.planned {
                continue;
            }
            let day = parse_day(&totals.day)?;
            let (_, end) = compose::day_range(day);
            let closes = end + time::Duration::seconds(1) + self.schedule.grace;
            if now < closes {
                continue;
            }
            self.plan_day(day, now, &mut out).await?;
        }
        Ok(out)
    }

    /// Plans `day` now, whatever the time (for `--day`): false when it was planned already.
    pub async fn plan_day(
        &self,
        day: Date,
        now: OffsetDateTime,
        out: &mut Planned,
    ) -> Result<bool, ReporterError> {
        let reports = self.reports(day).await?;
        let text = day_text(day);
        let spread = secs(self.schedule.spread);
        let mut deliveries = Vec::new();
        for r in &reports {
            if let Some(why) = &r.no_destination {
                out.undeliverable.push((r.domain.clone(), why.clone()));
                continue;
            }
            // A stable offset per domain: the same domain is reported at the same time of day.
            let offset = if spread > 0 {
                let h = hex_sha256(&[r.domain.as_bytes()]);
                i64::from_str_radix(&h[..8], 16).unwrap_or(0) % spread
            } else {
                0
            };
            let due = now.unix_timestamp() + offset;
            for d in &r.destinations {
                deliveries.push(NewDelivery {
                    day: text.clone(),
                    domain: r.domain.clone(),
                    record_key: r.record_key.clone(),
                    destination: d.as_str().to_owned(),
                    report_id: r.report.report_id.clone(),
                    due_at: due,
                    give_up_at: due + secs(self.schedule.give_up_after),
                });
            }
        }
        let n = i64::try_from(reports.len()).unwrap_or(i64::MAX);
        let fresh = self.store.plan(&text, &deliveries, n, now.unix_timestamp()).await?;
        if fresh {
            out.days.push(text);
            out.reports += reports.len();
            out.deliveries += deliveries.len();
        }
        Ok(fresh)
    }

    /// Sends every delivery due at `now` (up to `limit`), each recording its own outcome.
    pub async fn send_due(&self, now: OffsetDateTime, limit: i64) -> Result<Sent, ReporterError> {
        let claimed =
            self.store.claim_due(now.unix_timestamp(), secs(self.schedule.lease), limit).await?;
        let mut days: HashMap<String, HashMap<(String, String), DayReport>> = HashMap::new();
        for d in &claimed {
            if days.contains_key(&d.day) {
                continue;
            }
            let reports = self.reports(parse_day(&d.day)?).await?;
            let map = reports
                .into_iter()
                .map(|r| ((r.domain.clone(), r.record_key.clone()), r))
                .collect();
            days.insert(d.day.clone(), map);
        }
        let jobs = claimed.into_iter().map(|d| {
            let report =
                days.get(&d.day).and_then(|m| m.get(&(d.domain.clone(), d.record_key.clone())));
            let report = report.cloned();
            async move { self.attempt(d, report, now).await }
        });
        let outcomes: Vec<Result<Outcome, ReporterError>> = futures::stream::iter(jobs)
            .buffer_unordered(self.schedule.concurrency.max(1))
            .collect()
            .await;
        let mut sent = Sent::default();
        for o in outcomes {
            match o? {
                Outcome::Delivered => sent.delivered += 1,
                Outcome::Retrying => sent.retrying += 1,
                Outcome::GivenUp => sent.given_up += 1,
            }
        }
        Ok(sent)
    }

    async fn attempt(
        &self,
        d: Stored,
        report: Option<DayReport>,
        now: OffsetDateTime,
    ) -> Result<Outcome, ReporterError> {
        let result = match &report {
            None => Err("the day's results no longer hold this report".to_owned()),
            Some(r) => match ReportUri::parse(&d.destination) {
                Err(e) => Err(format!("{}: {e}", d.destination)),
                Ok(uri) => {
                    let gz = compose::gzip(&compose::report_json(&r.report));
                    self.delivery.deliver(r, &uri, &gz, now).await
                }
            },
        };
        let shift = u32::try_from(d.attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let wait = self.schedule.retry_first.saturating_mul(2_u32.saturating_pow(shift));
        let retry_at = now.unix_timestamp() + secs(wait.min(self.schedule.retry_max));
        self.store
            .finish(
                &d,
                result.as_ref().map(|_| ()).map_err(String::as_str),
                now.unix_timestamp(),
                retry_at,
            )
            .await?;
        Ok(match result {
            Ok(()) => {
                tracing::info!(
                    "report {} for {} delivered to {}",
                    d.report_id,
                    d.domain,
                    d.destination
                );
                metrics::counter!("mtasts_reporter_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                Outcome::Delivered
            }
            Err(why) if retry_at > d.give_up_at => {
                tracing::warn!(
                    "report {} for {}: giving up on {} after {} attempts: {why}",
                    d.report_id,
                    d.domain,
                    d.destination,
                    d.attempts
                );
                metrics::counter!("mtasts_reporter_deliveries_total", "outcome" => "given-up")
                    .increment(1);
                Outcome::GivenUp
            }
            Err(why) => {
                tracing::warn!(
                    "report {} for {} to {}: {why}; retrying in {} s",
                    d.report_id,
                    d.domain,
                    d.destination,
                    secs(wait.min(self.schedule.retry_max))
                );
                metrics::counter!("mtasts_reporter_deliveries_total", "outcome" => "retrying")
                    .increment(1);
                Outcome::Retrying
            }
        })
    }

    /// Plans and sends every `every` until `shutdown` completes.
    pub async fn run(&self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            let now = OffsetDateTime::now_utc();
            let round = async {
                let planned = self.plan(now).await?;
                if !planned.days.is_empty() {
                    tracing::info!(
                        "planned {} reports ({} deliveries) for {}",
                        planned.reports,
                        planned.deliveries,
                        planned.days.join(", ")
                    );
                }
                for (domain, why) in &planned.undeliverable {
                    tracing::info!("no report sent for {domain}: {why}");
                }
                loop {
                    let sent = self.send_due(now, 100).await?;
                    if sent.delivered + sent.retrying + sent.given_up < 100 {
                        break;
                    }
                }
                Ok::<(), ReporterError>(())
            };
            match round.await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the reporter's store works again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(
                        "reporter round failed: {e}; retrying every {} s",
                        every.as_secs()
                    );
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

enum Outcome {
    Delivered,
    Retrying,
    GivenUp,
}
