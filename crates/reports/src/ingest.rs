//! Intake, then storage: what `mtasts report ingest` and the HTTPS receiver do with what they
//! receive. A report is acknowledged only once it is committed (or found already stored).

use futures::StreamExt;
use mtasts_store::reports::{NewReport, ReportStore, ReportStoreError};

use crate::alert::{AlertRules, Webhook};
use crate::dkim::{DkimPolicy, DkimVerdict, DkimVerifier};
use crate::intake::{self, Extracted, IntakeError, Limits};
use crate::record::{Channel, new_report};

/// DKIM verifications of one batch in flight at once.
const DKIM_CONCURRENCY: usize = 32;

/// One report taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Its row id.
    pub id: i64,
    /// It was stored before (another delivery of the same report); nothing new was stored.
    pub duplicate: bool,
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// The policy domains it reports on.
    pub domains: Vec<String>,
    /// Deviations from RFC 8460 tolerated, in words.
    pub tolerated: Vec<String>,
    /// The DKIM result stored (`pass:DOMAIN`, `fail`, `none`), when verified.
    pub dkim: Option<String>,
}

/// Why something received was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// What was received is not an acceptable report: permanent, bounce it.
    #[error("rejected: {0}")]
    Rejected(#[from] IntakeError),
    /// The database failed: temporary, deliver again later.
    #[error("not stored (try again later): {0}")]
    Store(#[from] ReportStoreError),
    /// DKIM is required and its key could not be looked up: temporary.
    #[error("not stored (try again later): {0}")]
    DkimLookup(String),
}

impl IngestError {
    /// True when a later delivery of the same bytes may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Store(_) | Self::DkimLookup(_))
    }
}

/// Takes reports into a store.
#[derive(Clone, Debug)]
pub struct Ingestor {
    store: ReportStore,
    limits: Limits,
    dkim: Option<(DkimVerifier, DkimPolicy)>,
    alerts: Option<(AlertRules, Webhook)>,
}

impl Ingestor {
    /// An ingestor writing to `store`.
    pub fn new(store: ReportStore, limits: Limits) -> Self {
        Self { store, limits, dkim: None, alerts: None }
    }

    /// Sends the alerts new reports raise ([`crate::alert`]) to `webhook`.
    pub fn with_alerts(mut self, rules: AlertRules, webhook: Webhook) -> Self {
        self.alerts = Some((rules, webhook));
        self
    }

    /// Evaluates and sends the alerts of a newly stored report (errors are logged: an alert
    /// channel never fails an ingestion).
    async fn alert(&self, row: &NewReport, id: i64) {
        let Some((rules, webhook)) = &self.alerts else { return };
        let mut domains: Vec<&str> =
            row.policies.iter().filter_map(|p| p.policy_domain.as_deref()).collect();
        domains.sort_unstable();
        domains.dedup();
        let mut alerts = Vec::new();
        for d in domains {
            let known = match self.store.known_result_types(d, id).await {
                Ok(k) => k.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: the known failure kinds could not be read");
                    continue;
                }
            };
            alerts.extend(crate::alert::evaluate(row, d, &known, rules));
        }
        if let Err(e) = webhook.send(&alerts).await {
            tracing::warn!(error = %e, alerts = alerts.len(), "alerts not delivered");
        }
    }

    /// Verifies the DKIM signature of report mail, and keeps, flags or refuses by `policy`.
    pub fn with_dkim(mut self, verifier: DkimVerifier, policy: DkimPolicy) -> Self {
        self.dkim = (policy != DkimPolicy::Off).then_some((verifier, policy));
        self
    }

    /// The store.
    pub fn store(&self) -> &ReportStore {
        &self.store
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Every report in a mail message. Nothing is stored unless every report in it is valid.
    pub async fn mail(&self, message: &[u8], now: i64) -> Result<Vec<Ingested>, IngestError> {
        let found = intake::from_mail(message, &self.limits)?;
        let verdict = self.dkim_verdict(message).await?;
        let mut out = Vec::with_capacity(found.len());
        for e in &found {
            out.push(self.commit(e, Channel::Mail, now, verdict.as_deref()).await?);
        }
        Ok(out)
    }

    /// Many messages (mail or report files) at once, their reports stored in one
    /// transaction: the fast path for maildirs, mboxes and directories. One result per input,
    /// in order, as [`Ingestor::mail`] and [`Ingestor::file`] would give; if the batch cannot
    /// be committed, each input is tried alone, so every result is its own.
    pub async fn batch(
        &self,
        inputs: &[Incoming<'_>],
        now: i64,
    ) -> Vec<Result<Vec<Ingested>, IngestError>> {
        // The MIME, gzip and JSON work is CPU-bound: spread it over the cores.
        let parsed = self.parse_all(inputs);
        // DKIM key lookups of the batch's mail run concurrently (one DNS round trip for the
        // batch rather than one per message).
        let verdicts: Vec<Result<Option<String>, IngestError>> =
            futures::stream::iter(inputs.iter().zip(&parsed))
                .map(|(input, taken)| async move {
                    match (input, taken) {
                        (Incoming::Mail(bytes), Ok(_)) => self.dkim_verdict(bytes).await,
                        _ => Ok(None),
                    }
                })
                .buffered(DKIM_CONCURRENCY)
                .collect()
                .await;
        let mut results: Vec<Option<Result<Vec<Ingested>, IngestError>>> =
            Vec::with_capacity(inputs.len());
        let mut pending: Vec<(usize, Extracted, Channel, Option<String>)> = Vec::new();
        for (i, ((input, taken), verdict)) in inputs.iter().zip(parsed).zip(verdicts).enumerate() {
            let taken = match (input, taken) {
                (Incoming::Mail(_), Ok(found)) => match verdict {
                    Ok(verdict) => Ok(found
                        .into_iter()
                        .map(|e| (e, Channel::Mail, verdict.clone()))
                        .collect::<Vec<_>>()),
                    Err(e) => Err(e),
                },
                (Incoming::File(..), Ok(found)) => {
                    Ok(found.into_iter().map(|e| (e, Channel::File, None)).collect())
                }
                (_, Err(e)) => Err(e.into()),
            };
            match taken {
                Ok(found) => {
                    results.push(None);
                    pending.extend(found.into_iter().map(|(e, c, v)| (i, e, c, v)));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let rows: Vec<NewReport> =
            pending.iter().map(|(_, e, c, v)| new_report(e, *c, now, v.as_deref())).collect();
        match self.store.insert_all(&rows).await {
            Ok(stored) => {
                let mut by_input: Vec<Vec<Ingested>> = vec![Vec::new(); inputs.len()];
                for (((i, e, _, v), row), st) in pending.iter().zip(&rows).zip(stored) {
                    count(row, st.duplicate);
                    if !st.duplicate {
                        self.alert(row, st.id).await;
                    }
                    by_input[*i].push(ingested(e, row, st.id, st.duplicate, v.as_deref()));
                }
                results.into_iter().zip(by_input).map(|(r, got)| r.unwrap_or(Ok(got))).collect()
            }
            Err(_) => {
                // One at a time, for each input's own outcome.
                let mut out = Vec::with_capacity(inputs.len());
                for (r, input) in results.into_iter().zip(inputs) {
                    out.push(match r {
                        Some(done) => done,
                        None => match input {
                            Incoming::Mail(bytes) => self.mail(bytes, now).await,
                            Incoming::File(bytes, name) => {
                                self.file(bytes, name, now).await.map(|r| vec![r])
                            }
                        },
                    });
                }
                out
            }
        }
    }

    /// Every input through the intake, on all cores (scoped threads; the order is kept).
    fn parse_all(&self, inputs: &[Incoming<'_>]) -> Vec<Result<Vec<Extracted>, IntakeError>> {
        let one = |input: &Incoming<'_>| match input {
            Incoming::Mail(bytes) => intake::from_mail(bytes, &self.limits),
            Incoming::File(bytes, name) => {
                intake::from_file(bytes, &self.limits, name).map(|e| vec![e])
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(8);
        if threads < 2 || inputs.len() < 16 {
            return inputs.iter().map(one).collect();
        }
        let per = inputs.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(per)
                .map(|chunk| scope.spawn(move || chunk.iter().map(one).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    }

    /// The DKIM verdict to store, or the refusal under [`DkimPolicy::Require`].
    async fn dkim_verdict(&self, message: &[u8]) -> Result<Option<String>, IngestError> {
        let Some((verifier, policy)) = &self.dkim else { return Ok(None) };
        let verdict = verifier.verify(message).await;
        if *policy == DkimPolicy::Require {
            match &verdict {
                DkimVerdict::Pass { .. } => {}
                DkimVerdict::TempError { .. } => {
                    return Err(IngestError::DkimLookup(verdict.words()));
                }
                _ => return Err(IntakeError::Dkim { reason: verdict.words() }.into()),
            }
        }
        Ok(Some(verdict.stored()))
    }

    /// A report file (JSON or gzip).
    pub async fn file(&self, bytes: &[u8], name: &str, now: i64) -> Result<Ingested, IngestError> {
        let e = intake::from_file(bytes, &self.limits, name)?;
        self.commit(&e, Channel::File, now, None).await
    }

    /// An HTTPS POST body (RFC 8460 §5.4).
    pub async fn https(
        &self,
        content_type: &str,
        body: &[u8],
        client: Option<&str>,
        now: i64,
    ) -> Result<Ingested, IngestError> {
        let mut e = intake::from_https(content_type, body, &self.limits)?;
        e.headers.submitter = client.map(str::to_owned);
        self.commit(&e, Channel::Https, now, None).await
    }

    async fn commit(
        &self,
        e: &Extracted,
        channel: Channel,
        now: i64,
        dkim: Option<&str>,
    ) -> Result<Ingested, IngestError> {
        let row = new_report(e, channel, now, dkim);
        let stored = self.store.insert(&row).await?;
        count(&row, stored.duplicate);
        if !stored.duplicate {
            self.alert(&row, stored.id).await;
        }
        Ok(ingested(e, &row, stored.id, stored.duplicate, dkim))
    }
}

/// One message or file for [`Ingestor::batch`].
#[derive(Clone, Copy, Debug)]
pub enum Incoming<'a> {
    /// A report e-mail.
    Mail(&'a [u8]),
    /// A report file (JSON or gzip) and its name.
    File(&'a [u8], &'a str),
}

/// Prometheus counters of what was taken in (exported by `mtasts report receive --metrics`):
/// `mtasts_reports_received_total{channel, outcome}` (stored, duplicate), and for each new
/// report `mtasts_reports_sessions_total{domain, result}` (successful, failed) and
/// `mtasts_reports_failed_sessions_total{domain, result_type}`.
fn count(row: &NewReport, duplicate: bool) {
    let outcome = if duplicate { "duplicate" } else { "stored" };
    metrics::counter!("mtasts_reports_received_total", "channel" => row.channel.clone(), "outcome" => outcome)
        .increment(1);
    if duplicate {
        return;
    }
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for p in &row.policies {
        let domain = p.policy_domain.clone().unwrap_or_default();
        metrics::counter!("mtasts_reports_sessions_total", "domain" => domain.clone(), "result" => "successful")
            .increment(n(p.successful));
        metrics::counter!("mtasts_reports_sessions_total", "domain" => domain.clone(), "result" => "failed")
            .increment(n(p.failed));
        for f in &p.failures {
            metrics::counter!("mtasts_reports_failed_sessions_total", "domain" => domain.clone(), "result_type" => f.result_type.clone())
                .increment(n(f.failed_sessions));
        }
    }
}

/// Counts a refusal (`outcome` = `rejected`, or `error` for a temporary failure).
pub fn count_refusal(channel: &'static str, e: &IngestError) {
    let outcome = if e.is_temporary() { "error" } else { "rejected" };
    metrics::counter!("mtasts_reports_received_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
}

fn ingested(
    e: &Extracted,
    row: &NewReport,
    id: i64,
    duplicate: bool,
    dkim: Option<&str>,
) -> Ingested {
    Ingested {
        id,
        duplicate,
        organization: row.organization.clone(),
        report_id: row.report_id.clone(),
        domains: row.policies.iter().filter_map(|p| p.policy_domain.clone()).collect(),
        tolerated: e.tolerated.iter().map(ToString::to_string).collect(),
        dkim: dkim.map(str::to_owned),
    }
}
