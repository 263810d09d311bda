//! Running a scan: load the list into the run's queue, then claim batches, check them with
//! bounded concurrency, and store each result as it completes.
//!
//! Durability: a result is committed (with its queue row marked done) within
//! [`WRITE_INTERVAL`] of its check finishing, so `kill -9` loses at most the domains in flight;
//! `--resume` then claims what is left. Several workers (processes, machines) can run the same
//! run against one PostgreSQL: claims are leased, renewed while held, and taken over by another
//! worker when a lease expires.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use mtasts_store::{ResultRow, RunId, ScanStore, StoreError};
use tokio::sync::mpsc;

use crate::input::{InputError, InputLine};
use crate::row::result_row;
use mtasts_check::Checker;

/// Results are written at least this often.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(200);

/// Domains enqueued per database round trip while loading.
pub const LOAD_BATCH: usize = 1000;

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Writing output failed.
    #[error("writing results: {0}")]
    Output(#[from] std::io::Error),
    /// The thread reading the domain list panicked or was cancelled: the list is only partly
    /// in the queue, so the run is not marked loaded (resuming with the same list loads the
    /// rest).
    #[error(
        "reading the domain list failed ({0}); the run is incomplete, resume it with the same list"
    )]
    InputReaderFailed(String),
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Domains checked at once.
    pub concurrency: usize,
    /// Domains claimed per round trip.
    pub batch: usize,
    /// How long a claim is held without renewal.
    pub lease: Duration,
    /// Deadline for one domain.
    pub deadline: Duration,
    /// This worker's name (host:pid by default).
    pub worker: String,
}

/// Live counters for progress display.
#[derive(Debug)]
pub struct ScanProgress {
    /// Results written by this process.
    pub done: AtomicU64,
    /// Of those, with error findings.
    pub with_errors: AtomicU64,
    /// Domains in the queue (all workers).
    pub queued: AtomicU64,
    /// Done by all workers (refreshed now and then).
    pub done_all: AtomicU64,
    /// The whole input is in the queue.
    pub loaded: AtomicBool,
    /// When this process started.
    pub started: Instant,
}

impl Default for ScanProgress {
    fn default() -> Self {
        Self {
            done: AtomicU64::new(0),
            with_errors: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            done_all: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            started: Instant::now(),
        }
    }
}

/// Where finished rows go (JSON lines, CSV, nothing).
pub trait RowSink: Send {
    /// One domain finished.
    fn row(&mut self, row: &ResultRow) -> std::io::Result<()>;
    /// The scan is over.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Discards rows.
#[derive(Debug, Default)]
pub struct NoRows;

impl RowSink for NoRows {
    fn row(&mut self, _row: &ResultRow) -> std::io::Result<()> {
        Ok(())
    }
}

/// What loading did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Valid domains read (duplicates included).
    pub read: u64,
    /// Newly queued (duplicates and already-queued ones excluded).
    pub queued: u64,
    /// Invalid lines recorded.
    pub invalid: u64,
}

enum Msg {
    Done(i64, ResultRow),
    Invalid(ResultRow),
}

/// A scan of one run by this process.
pub struct Scan {
    store: ScanStore,
    checker: Checker,
    run: RunId,
    config: ScanConfig,
    progress: Arc<ScanProgress>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan").field("run", &self.run).field("config", &self.config).finish()
    }
}

impl Scan {
    /// A scan of `run`.
    pub fn new(store: ScanStore, checker: Checker, run: RunId, config: ScanConfig) -> Self {
        Self { store, checker, run, config, progress: Arc::new(ScanProgress::default()) }
    }

    /// The live counters.
    pub fn progress(&self) -> Arc<ScanProgress> {
        self.progress.clone()
    }

    /// Loads (if `input` is given) and works the run to the end, sending rows to `sink`.
    /// Returns when no domain is left pending or held by a live worker.
    pub async fn run<I>(
        &self,
        input: Option<I>,
        sink: Box<dyn RowSink>,
    ) -> Result<LoadStats, ScanError>
    where
        I: Iterator<Item = Result<InputLine, InputError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Msg>(self.config.concurrency.max(16) * 2);
        let writer = tokio::spawn(write_loop(
            self.store.clone(),
            self.run,
            self.config.worker.clone(),
            rx,
            sink,
            self.progress.clone(),
        ));
        let info = self.store.run_info(self.run).await?;
        let load = async {
            match input {
                Some(input) if !info.loaded => self.load(input, tx.clone()).await,
                _ => {
                    self.progress.loaded.store(true, Ordering::Relaxed);
                    Ok(LoadStats::default())
                }
            }
        };
        let work = self.work(tx.clone());
        let (load, work) = {
            tokio::pin!(load, work);
            tokio::select! {
                load_done = &mut load => match load_done {
                    Ok(stats) => (Ok(stats), work.await),
                    // The list will never be complete, so the workers would wait for it for
                    // ever: stop them (their claims go back to the queue when the leases
                    // expire, or at once when this host resumes the run).
                    Err(e) => (Err(e), Ok(())),
                },
                work_done = &mut work => (load.await, work_done),
            }
        };
        drop(tx);
        let written = writer.await.map_err(|e| std::io::Error::other(e.to_string()))?;
        let stats = load?;
        work?;
        written?;
        let p = self.store.progress(self.run).await?;
        if p.pending == 0 && p.claimed == 0 && self.store.run_info(self.run).await?.loaded {
            self.store.finish_run(self.run).await?;
        }
        Ok(stats)
    }

    async fn load<I>(&self, input: I, tx: mpsc::Sender<Msg>) -> Result<LoadStats, ScanError>
    where
        I: Iterator<Item = Result<InputLine, InputError>> + Send + 'static,
    {
        // Reading is blocking I/O: a thread reads, batches travel over a small channel, so at
        // most a few batches of the list are in memory at once.
        let (btx, mut brx) = mpsc::channel::<Result<Vec<InputLine>, InputError>>(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(LOAD_BATCH);
            for item in input {
                match item {
                    Ok(line) => {
                        batch.push(line);
                        if batch.len() >= LOAD_BATCH
                            && btx.blocking_send(Ok(std::mem::take(&mut batch))).is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = btx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = btx.blocking_send(Ok(batch));
            }
        });
        let mut stats = LoadStats::default();
        while let Some(batch) = brx.recv().await {
            let batch = batch?;
            let mut domains = Vec::with_capacity(batch.len());
            for line in batch {
                match line {
                    InputLine::Domain(d, typed) => domains.push((d, typed)),
                    InputLine::Invalid { raw, .. } => {
                        // No network: the name is rejected before any lookup.
                        let report = self.checker.check(&raw).await;
                        let row = result_row(&report);
                        self.store.record_result(self.run, &row).await?;
                        stats.invalid += 1;
                        let _ = tx.send(Msg::Invalid(row)).await;
                    }
                }
            }
            stats.read += domains.len() as u64;
            stats.queued += self.store.enqueue_inputs(self.run, &domains).await?;
            self.progress.queued.store(stats.queued, Ordering::Relaxed);
        }
        // The channel also closes when the reader panics: only a reader that ran to the end
        // (or stopped at an input error, already returned above) means the list is all in.
        reader.await.map_err(|e| ScanError::InputReaderFailed(join_error_text(e)))?;
        self.store.mark_loaded(self.run).await?;
        self.progress.loaded.store(true, Ordering::Relaxed);
        Ok(stats)
    }

    async fn work(&self, tx: mpsc::Sender<Msg>) -> Result<(), ScanError> {
        let held: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let _renewer = {
            let (store, run, worker, lease, held) = (
                self.store.clone(),
                self.run,
                self.config.worker.clone(),
                self.config.lease,
                held.clone(),
            );
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let seqs: Vec<i64> = held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                        .copied()
                        .collect();
                    if !seqs.is_empty()
                        && let Err(e) = store.renew(run, &worker, &seqs, lease).await
                    {
                        tracing::warn!("renewing leases: {e}");
                    }
                }
            }))
        };
        // The renewer stops when this returns or is dropped (a failed load cancels the work).
        self.work_inner(tx, &held).await
    }

    async fn work_inner(
        &self,
        tx: mpsc::Sender<Msg>,
        held: &Mutex<HashSet<i64>>,
    ) -> Result<(), ScanError> {
        let mut buffer: std::collections::VecDeque<(i64, String, Option<String>)> =
            std::collections::VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        let mut last_progress = Instant::now() - Duration::from_secs(60);
        let mut sent: u64 = 0;
        loop {
            while in_flight.len() < self.config.concurrency {
                if buffer.is_empty() {
                    let claims = self
                        .store
                        .claim(self.run, &self.config.worker, self.config.batch, self.config.lease)
                        .await?;
                    let mut h = held.lock().unwrap_or_else(PoisonError::into_inner);
                    for c in claims {
                        h.insert(c.seq);
                        buffer.push_back((c.seq, c.domain, c.input));
                    }
                }
                let Some((seq, domain, typed)) = buffer.pop_front() else { break };
                let checker = self.checker.clone();
                let deadline = self.config.deadline;
                // A task per check, so the TLS handshakes and parsing of many domains run on
                // every runtime thread, not only on the one polling this loop.
                let mut task = AbortOnDrop(tokio::spawn(async move {
                    let mut report = checker.check_with_deadline(&domain, deadline).await;
                    // The report says what the user wrote; `domain` is the A-label checked.
                    if let Some(typed) = typed {
                        report.input = typed;
                    }
                    result_row(&report)
                }));
                in_flight.push(async move {
                    match (&mut task.0).await {
                        Ok(row) => (seq, Some(row)),
                        // A panicking check fails the scan, as it did when polled here.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        // Cancelled: the runtime is shutting down; the claim is left to expire.
                        Err(_) => (seq, None),
                    }
                });
            }
            if last_progress.elapsed() > Duration::from_secs(2) {
                last_progress = Instant::now();
                let p = self.store.progress(self.run).await?;
                self.progress.queued.store(p.queued, Ordering::Relaxed);
                self.progress.done_all.store(p.done, Ordering::Relaxed);
            }
            if in_flight.is_empty() {
                // Nothing to do here: finished, or waiting for the loader or for other
                // workers' leases (a dead worker's claims come back when they expire).
                let p = self.store.progress(self.run).await?;
                let loaded = self.progress.loaded.load(Ordering::Relaxed);
                if loaded && p.pending == 0 && p.claimed == 0 {
                    return Ok(());
                }
                // Our own last results may still be with the writer (they count as claimed until
                // committed): poll quickly for those; slowly for other workers' claims.
                let own_unwritten = sent > self.progress.done.load(Ordering::Relaxed);
                let wait = if own_unwritten || p.claimed == 0 { 20 } else { 500 };
                tokio::time::sleep(Duration::from_millis(wait)).await;
                continue;
            }
            if let Some((seq, row)) = in_flight.next().await {
                held.lock().unwrap_or_else(PoisonError::into_inner).remove(&seq);
                let Some(row) = row else { continue };
                if tx.send(Msg::Done(seq, row)).await.is_err() {
                    return Ok(());
                }
                sent += 1;
            }
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a failed task said: its panic message, or that it was cancelled.
fn join_error_text(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "the reader was cancelled".to_owned();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the reader panicked: {message}")
}

async fn write_loop(
    store: ScanStore,
    run: RunId,
    worker: String,
    mut rx: mpsc::Receiver<Msg>,
    mut sink: Box<dyn RowSink>,
    progress: Arc<ScanProgress>,
) -> Result<(), ScanError> {
    let mut batch: Vec<(i64, ResultRow)> = Vec::new();
    loop {
        let msg = tokio::time::timeout(WRITE_INTERVAL, rx.recv()).await;
        let closed = matches!(msg, Ok(None));
        match msg {
            Ok(Some(Msg::Done(seq, row))) => batch.push((seq, row)),
            Ok(Some(Msg::Invalid(row))) => sink.row(&row)?,
            Ok(None) | Err(_) => {}
        }
        // Drain whatever else is ready, then commit it in one transaction.
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(Msg::Done(seq, row)) => batch.push((seq, row)),
                Ok(Msg::Invalid(row)) => sink.row(&row)?,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            store.complete(run, &worker, &batch).await?;
            for (_, row) in &batch {
                sink.row(row)?;
                progress.done.fetch_add(1, Ordering::Relaxed);
                if !row.error_codes.is_empty() {
                    progress.with_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            batch.clear();
        }
        if closed {
            sink.finish()?;
            return Ok(());
        }
    }
}
