//! One `mtasts scan` from start to end, for any front end: open the input and the store,
//! pick or create the run, take back this host's dead workers' claims, build the network
//! stack, work the run to its end, then summarise the whole run from the store.
//!
//! ```text
//! let job = ScanJob::prepare(options).await?;      // the run exists; say which
//! let outcome = job.run(sink, true).await?;         // rows to `sink`, then the summary
//! outcome.summary.render_text(); outcome.html_report();
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_net::{NetConfig, ProbeCache};
use mtasts_store::{Database, DatabaseUrl, ResultRow, RunId, RunInfo, ScanStore, StoreError};

use crate::html::{self, ReportMeta};
use crate::input::InputReader;
use crate::run::{LoadStats, RowSink, Scan, ScanConfig, ScanError, ScanProgress};
use crate::stack::{self, CheckSettings, StackError};
use crate::summary::{self, Summary};
use crate::worker::{self, Released};

/// Where the domain list comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputSource {
    /// The name recorded with the run: `-` for standard input, else the path.
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "-".to_owned(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// Which run to work on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunChoice {
    /// A new run of the input.
    New,
    /// The newest unfinished run.
    Latest,
    /// This run (joining other workers, or resuming it).
    Id(RunId),
}

/// Everything a scan needs to know.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Where runs and results are stored.
    pub db: DatabaseUrl,
    /// Which run.
    pub run: RunChoice,
    /// The domain list: required for a new run; for a resumed run, loads what a crashed
    /// loader did not (ignored when the run is loaded).
    pub input: Option<InputSource>,
    /// Take domains from this CSV column.
    pub column: Option<String>,
    /// DNS servers, trust roots, ports and timeouts.
    pub net: NetConfig,
    /// What the checks do, and how politely.
    pub check: CheckSettings,
    /// Domains checked at once.
    pub concurrency: usize,
    /// Domains claimed from the queue at a time.
    pub batch: usize,
    /// How long a claim is held without renewal.
    pub lease: Duration,
    /// Deadline for one domain.
    pub deadline: Duration,
    /// This worker's name ([`worker::default_name`] when `None`).
    pub worker: Option<String>,
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The domain list could not be opened.
    #[error("opening {}: {error}", path.display())]
    OpenInput {
        /// The file.
        path: PathBuf,
        /// Why (in the message, so not also a `source()`).
        error: std::io::Error,
    },
    /// A new run needs a domain list.
    #[error("give a domain list (a file, or - for stdin), or resume a run")]
    NoInput,
    /// The domain list cannot be used (a `--column` its header lacks, a read error).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// Resuming the latest run, but every run has finished.
    #[error("no unfinished run in {0} to resume")]
    NoUnfinishedRun(DatabaseUrl),
    /// No DNS server answers: the operator's resolver, not the domains (said once; no run).
    #[error(transparent)]
    Dns(#[from] mtasts_net::DnsError),
    /// The store failed (opening it names the database).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network stack could not be built.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The scan stopped.
    #[error(transparent)]
    Scan(#[from] ScanError),
}

type Input = InputReader<Box<dyn BufRead + Send>>;

/// A scan ready to run: its run exists in the store.
pub struct ScanJob {
    db: DatabaseUrl,
    store: ScanStore,
    info: RunInfo,
    released: Vec<Released>,
    input: Option<Input>,
    scan: Scan,
    cache: Arc<ProbeCache>,
    started: Instant,
}

impl std::fmt::Debug for ScanJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanJob").field("db", &self.db).field("run", &self.info.id).finish()
    }
}

impl ScanJob {
    /// Opens the input and the store, picks (or creates) the run, releases claims of dead
    /// workers of this host when resuming, and builds the checker.
    pub async fn prepare(options: JobOptions) -> Result<Self, JobError> {
        let started = Instant::now();
        let input = match &options.input {
            Some(source) => Some(open_input(source, options.column.as_deref())?),
            None => None,
        };
        // The network stack first: a dead DNS server stops the scan before a run exists (it
        // would otherwise record every domain as broken).
        let (checker, cache) = stack::checker(&options.net, &options.check)?;
        checker.dns_reachable().await?;
        let store =
            ScanStore::with_database(Database::open(&options.db).await.map_err(StoreError::from)?)
                .await?;
        let run = match options.run {
            RunChoice::Latest => store
                .latest_unfinished_run()
                .await?
                .ok_or_else(|| JobError::NoUnfinishedRun(options.db.clone()))?,
            RunChoice::Id(id) => id,
            RunChoice::New => {
                let Some(source) = &options.input else { return Err(JobError::NoInput) };
                let recorded = serde_json::json!({
                    "concurrency": options.concurrency,
                    "dns_rate": options.check.dns_rate,
                    "deadline": options.deadline.as_secs_f64(),
                    "no_smtp": !options.check.probe_smtp,
                    "dane": options.check.dane,
                    "column": options.column,
                });
                store.create_run(&source.name(), &recorded.to_string()).await?
            }
        };
        let info = store.run_info(run).await?;
        let released = match options.run {
            RunChoice::New => Vec::new(),
            RunChoice::Latest | RunChoice::Id(_) => {
                worker::release_dead_local_workers(&store, run).await?
            }
        };
        let config = ScanConfig {
            concurrency: options.concurrency.max(1),
            batch: options.batch.max(1),
            lease: options.lease,
            deadline: options.deadline,
            worker: options.worker.clone().unwrap_or_else(worker::default_name),
        };
        let scan = Scan::new(store.clone(), checker, run, config);
        Ok(Self { db: options.db, store, info, released, input, scan, cache, started })
    }

    /// The run being worked on.
    pub fn run_id(&self) -> RunId {
        self.info.id
    }

    /// The run as it was when the job was prepared.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The database (`Display` redacts it).
    pub fn database(&self) -> &DatabaseUrl {
        &self.db
    }

    /// Claims taken back from dead workers of this host.
    pub fn released(&self) -> &[Released] {
        &self.released
    }

    /// Live counters, for a progress display.
    pub fn progress(&self) -> Arc<ScanProgress> {
        self.scan.progress()
    }

    /// Loads the input (if any), works the run to its end sending this worker's rows to
    /// `sink`, and summarises the whole run from the store. With `problems`, also keeps the
    /// domains with problems for the HTML report ([`ScanOutcome::html_report`]).
    pub async fn run(
        self,
        sink: Box<dyn RowSink>,
        problems: bool,
    ) -> Result<ScanOutcome, JobError> {
        let load = self.scan.run(self.input, sink).await?;
        let keep = if problems { html::MAX_TABLE_ROWS + 1 } else { 0 };
        let (summary, problems) = summary::summarize(&self.store, self.info.id, keep).await?;
        Ok(ScanOutcome {
            run: self.info.id,
            input: self.info.input,
            load,
            probes_run: self.cache.probes_run(),
            summary,
            problems,
            elapsed: self.started.elapsed(),
        })
    }
}

/// Opens the domain list as a stream of lines or of one CSV column.
pub fn open_input(source: &InputSource, column: Option<&str>) -> Result<Input, JobError> {
    let reader: Box<dyn BufRead + Send> = match source {
        InputSource::Stdin => Box::new(BufReader::new(std::io::stdin())),
        InputSource::File(path) => Box::new(BufReader::new(
            File::open(path).map_err(|error| JobError::OpenInput { path: path.clone(), error })?,
        )),
    };
    let mut input = match column {
        Some(col) => InputReader::csv(reader, col),
        None => InputReader::lines(reader),
    };
    input.read_header()?;
    Ok(input)
}

/// What a finished scan did and found.
#[derive(Clone, Debug)]
pub struct ScanOutcome {
    /// The run.
    pub run: RunId,
    /// Its input's name.
    pub input: String,
    /// What this process loaded.
    pub load: LoadStats,
    /// MX probes this process ran (the rest came from the cache).
    pub probes_run: u64,
    /// The whole run's summary (every worker's results).
    pub summary: Summary,
    /// Domains with problems, worst first (empty unless asked for).
    pub problems: Vec<ResultRow>,
    /// Time since the job was prepared.
    pub elapsed: Duration,
}

impl ScanOutcome {
    /// The self-contained HTML report of the run, generated now.
    pub fn html_report(&self) -> String {
        let meta = ReportMeta {
            title: format!("MTA-STS scan of {}", self.input),
            generated_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            input: self.input.clone(),
            run_id: Some(self.run.0),
            duration_secs: self.elapsed.as_secs_f64(),
        };
        html::render(&self.summary, &self.problems, &meta)
    }
}
