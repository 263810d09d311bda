//! Intake, then storage: what `mtasts report ingest` and the HTTPS receiver do with what they
//! receive. A report is acknowledged only once it is committed (or found already stored).

use futures::StreamExt;
use mtasts_store::reports::{NewReport, ReportStore, ReportStoreError, Stored};

use crate::alert::{AlertRules, Webhook};
use crate::dkim::{DkimPolicy, DkimVerdict, DkimVerifier};
use crate::intake::{self, Extracted, IntakeError, Limits};
use crate::record::{Channel, new_report};
use crate::source::{Item, Pending, SourceError};

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
    /// The input could not be read (a file gone or not readable).
    #[error("{0}")]
    Unreadable(String),
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
    alerts: Option<AlertRules>,
    webhook: Option<Webhook>,
    mail: Option<mtasts_net::submit::Mailer>,
}

impl Ingestor {
    /// An ingestor writing to `store`.
    pub fn new(store: ReportStore, limits: Limits) -> Self {
        Self { store, limits, dkim: None, alerts: None, webhook: None, mail: None }
    }

    /// Sends the alerts new reports raise ([`crate::alert`]) to `webhook`.
    pub fn with_alerts(mut self, rules: AlertRules, webhook: Webhook) -> Self {
        self.alerts = Some(rules);
        self.webhook = Some(webhook);
        self
    }

    /// Also mails the alerts new reports raise (`rules` replaces any given before).
    pub fn with_alert_mail(
        mut self,
        rules: AlertRules,
        mailer: mtasts_net::submit::Mailer,
    ) -> Self {
        self.alerts = Some(rules);
        self.mail = Some(mailer);
        self
    }

    /// Evaluates and sends the alerts of a newly stored report (errors are logged: an alert
    /// channel never fails an ingestion).
    async fn alert(&self, row: &NewReport, id: i64) {
        let Some(rules) = &self.alerts else { return };
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
        if alerts.is_empty() {
            return;
        }
        if let Some(webhook) = &self.webhook
            && let Err(e) = webhook.send(&alerts).await
        {
            tracing::warn!(error = %e, alerts = alerts.len(), "alerts not delivered");
        }
        if let Some(mail) = &self.mail {
            let message = crate::alert::alert_mail(mail, &alerts, time::OffsetDateTime::now_utc());
            if let Err(e) = mail.send(&message).await {
                tracing::warn!(error = %e, alerts = alerts.len(), "alert mail not sent");
            }
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
        let ready = found
            .into_iter()
            .map(|e| {
                let mut r = Ready::new(e, Channel::Mail, now);
                r.row.dkim.clone_from(&verdict);
                r
            })
            .collect();
        self.commit(ready).await
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
        let prepared = self.prepare(inputs, now, default_workers());
        self.store_prepared(inputs, prepared).await
    }

    /// The CPU-bound half of [`Ingestor::batch`]: MIME, gzip and JSON, and the rows built, on
    /// `threads` threads (scoped; the order is kept). No I/O.
    pub fn prepare(&self, inputs: &[Incoming<'_>], now: i64, threads: usize) -> Prepared {
        let one = |input: &Incoming<'_>| {
            let (found, channel) = match input {
                Incoming::Mail(bytes) => (intake::from_mail(bytes, &self.limits), Channel::Mail),
                Incoming::File(bytes, name) => {
                    (intake::from_file(bytes, &self.limits, name).map(|e| vec![e]), Channel::File)
                }
                Incoming::Unreadable(e) => {
                    return Err(IngestError::Unreadable(e.to_string()));
                }
            };
            Ok(found?.into_iter().map(|e| Ready::new(e, channel, now)).collect())
        };
        let taken = if threads < 2 || inputs.len() < 16 {
            inputs.iter().map(one).collect()
        } else {
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
        };
        Prepared { taken, now }
    }

    /// The I/O half of [`Ingestor::batch`]: DKIM (the batch's key lookups concurrently: one
    /// DNS round trip for the batch rather than one per message), then one transaction.
    /// `inputs` are those given to [`Ingestor::prepare`].
    pub async fn store_prepared(
        &self,
        inputs: &[Incoming<'_>],
        prepared: Prepared,
    ) -> Vec<Result<Vec<Ingested>, IngestError>> {
        let Prepared { taken, now } = prepared;
        let verdicts: Vec<Result<Option<String>, IngestError>> =
            futures::stream::iter(inputs.iter().zip(&taken))
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
        let mut pending: Vec<(usize, Ready)> = Vec::new();
        for (i, (taken, verdict)) in taken.into_iter().zip(verdicts).enumerate() {
            match taken.and_then(|found| verdict.map(|v| (found, v))) {
                Ok((found, verdict)) => {
                    results.push(None);
                    pending.extend(found.into_iter().map(|mut ready| {
                        ready.row.dkim.clone_from(&verdict);
                        (i, ready)
                    }));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let (owners, readies): (Vec<usize>, Vec<Ready>) = pending.into_iter().unzip();
        let (rows, warnings): (Vec<NewReport>, Vec<Vec<String>>) =
            readies.into_iter().map(|r| (r.row, r.tolerated)).unzip();
        match self.store.insert_all(&rows).await {
            Ok(stored) => {
                let mut by_input: Vec<Vec<Ingested>> = vec![Vec::new(); inputs.len()];
                for (((i, row), tolerated), st) in
                    owners.into_iter().zip(&rows).zip(warnings).zip(stored)
                {
                    by_input[i].push(self.committed(row, tolerated, st).await);
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
                            Incoming::Unreadable(e) => Err(IngestError::Unreadable(e.to_string())),
                        },
                    });
                }
                out
            }
        }
    }

    /// Ingests `pending` (a maildir, a directory, an mbox) `batch` inputs a transaction, with
    /// reading and parsing on `workers` threads while earlier batches are stored: the disk,
    /// the cores and the database busy at once. `done` is called for every input in order,
    /// with its outcome (an input that could not be read is an [`IngestError::Unreadable`]);
    /// its error stops the run. At most two batches a worker wait in memory.
    pub async fn pipeline<E>(
        &self,
        pending: Vec<Pending>,
        (batch, workers): (usize, usize),
        clock: fn() -> i64,
        mut done: impl FnMut(&Item, Result<Vec<Ingested>, IngestError>) -> Result<(), E>,
    ) -> Result<(), E> {
        let batch = batch.max(1);
        let workers = workers.max(1);
        let mut chunks: Vec<Vec<Vec<Pending>>> = (0..workers).map(|_| Vec::new()).collect();
        let mut pending = pending.into_iter().peekable();
        let mut n = 0;
        while pending.peek().is_some() {
            chunks[n % workers].push(pending.by_ref().take(batch).collect());
            n += 1;
        }
        let mut channels = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for mine in chunks {
            let (tx, rx) = tokio::sync::mpsc::channel::<(Vec<Loaded>, Prepared)>(1);
            let me = self.clone();
            let worker =
                std::thread::Builder::new().name("mtasts-ingest".into()).spawn(move || {
                    for chunk in mine {
                        let loaded: Vec<Loaded> =
                            chunk.into_iter().map(|p| p.load(me.limits.max_message)).collect();
                        let inputs: Vec<Incoming<'_>> = loaded.iter().map(incoming).collect();
                        let prepared = me.prepare(&inputs, clock(), 1);
                        if tx.blocking_send((loaded, prepared)).is_err() {
                            return; // the consumer stopped
                        }
                    }
                });
            // As std::thread::spawn does: no thread to be had is a panic.
            handles.push(worker.unwrap_or_else(|e| panic!("cannot start a thread: {e}")));
            channels.push(rx);
        }
        for k in 0..n {
            let Some((loaded, prepared)) = channels[k % workers].recv().await else {
                // The worker ended before its chunks: it panicked.
                let handle = handles.swap_remove(k % workers);
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
                unreachable!("a pipeline worker stopped without panicking");
            };
            let inputs: Vec<Incoming<'_>> = loaded.iter().map(incoming).collect();
            let results = self.store_prepared(&inputs, prepared).await;
            for (l, result) in loaded.iter().zip(results) {
                done(loaded_item(l), result)?;
            }
        }
        Ok(())
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
        self.commit_one(Ready::new(e, Channel::File, now)).await
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
        self.commit_one(Ready::new(e, Channel::Https, now)).await
    }

    async fn commit_one(&self, ready: Ready) -> Result<Ingested, IngestError> {
        let stored = self.store.insert(&ready.row).await?;
        Ok(self.committed(&ready.row, ready.tolerated, stored).await)
    }

    /// Stores `ready` in one transaction (all or none).
    async fn commit(&self, ready: Vec<Ready>) -> Result<Vec<Ingested>, IngestError> {
        let (rows, warnings): (Vec<NewReport>, Vec<Vec<String>>) =
            ready.into_iter().map(|r| (r.row, r.tolerated)).unzip();
        let stored = self.store.insert_all(&rows).await?;
        let mut out = Vec::with_capacity(rows.len());
        for ((row, tolerated), st) in rows.iter().zip(warnings).zip(stored) {
            out.push(self.committed(row, tolerated, st).await);
        }
        Ok(out)
    }

    /// After a commit: counts the report, alerts on a new one, and says what was done.
    async fn committed(&self, row: &NewReport, tolerated: Vec<String>, st: Stored) -> Ingested {
        count(row, st.duplicate);
        if !st.duplicate {
            self.alert(row, st.id).await;
        }
        Ingested {
            id: st.id,
            duplicate: st.duplicate,
            organization: row.organization.clone(),
            report_id: row.report_id.clone(),
            domains: row.policies.iter().filter_map(|p| p.policy_domain.clone()).collect(),
            tolerated,
            dkim: row.dkim.clone(),
        }
    }
}

/// Worker threads for parsing: the cores, at most 8 (a batch of reports is not worth more).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).min(8)
}

/// A report taken in and its rows built, not stored yet.
#[derive(Debug)]
struct Ready {
    row: NewReport,
    /// What was tolerated, in words.
    tolerated: Vec<String>,
}

impl Ready {
    fn new(e: Extracted, channel: Channel, now: i64) -> Self {
        let tolerated = e.tolerated.iter().map(ToString::to_string).collect();
        Self { row: new_report(e, channel, now, None), tolerated }
    }
}

/// A batch through the intake ([`Ingestor::prepare`]), for [`Ingestor::store_prepared`].
#[derive(Debug)]
pub struct Prepared {
    taken: Vec<Result<Vec<Ready>, IngestError>>,
    now: i64,
}

/// A pipeline input as loaded: the item, or the item (no bytes) and why it could not be read.
type Loaded = Result<Item, Box<(Item, SourceError)>>;

fn loaded_item(l: &Loaded) -> &Item {
    match l {
        Ok(item) => item,
        Err(failed) => &failed.0,
    }
}

fn incoming(l: &Loaded) -> Incoming<'_> {
    match l {
        Ok(item) if item.report_file => Incoming::File(&item.bytes, &item.origin),
        Ok(item) => Incoming::Mail(&item.bytes),
        Err(failed) => Incoming::Unreadable(&failed.1),
    }
}

/// One message or file for [`Ingestor::batch`].
#[derive(Clone, Copy, Debug)]
pub enum Incoming<'a> {
    /// A report e-mail.
    Mail(&'a [u8]),
    /// A report file (JSON or gzip) and its name.
    File(&'a [u8], &'a str),
    /// An input that could not be read, and why.
    Unreadable(&'a SourceError),
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
