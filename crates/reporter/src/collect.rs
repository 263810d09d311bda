//! The collector: a drop-in for sys4's tlsrpt-collectd. It binds the unix datagram socket the
//! MTA's libtlsrpt writes to (Postfix `smtp_tlsrpt_socket_name`), reads one delivery result per
//! datagram ([`mtasts_proto::datagram`]), sums them per UTC day and group
//! ([`crate::aggregate`]) and adds the sums to the store every `flush_every`.
//!
//! The MTA must never wait for us, and nothing may be lost silently:
//! - one thread does nothing but receive, parse and add in memory; it never touches the disk
//!   or the database, so it drains the socket as fast as datagrams arrive (libtlsrpt sends
//!   non-blocking: a full socket queue drops the MTA's datagram);
//! - a writer task adds the sums to the store in one transaction per interval; when the store
//!   is slow or gone, the sums wait in memory (bounded by [`crate::aggregate::MAX_GROUPS`])
//!   and are written when it is back: the failure is logged once, counted and exported;
//! - malformed datagrams are counted, logged (rate-limited) and never fatal;
//! - on shutdown the socket is drained, then everything held is written before exit; a
//!   `kill -9` loses at most the last interval's datagrams.
//!
//! The day of a result is the UTC day it was received on (datagrams carry no time; RFC 8460
//! §4.1 reports cover UTC days).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mtasts_proto::datagram::DATAGRAM_MAX_BYTES;
use mtasts_store::outbound::OutboundStore;
use time::OffsetDateTime;

use crate::aggregate::{Aggregate, MAX_DETAILS, Memo};

/// The clock the collector dates results by (tests move it across midnight).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// The socket path (Postfix `smtp_tlsrpt_socket_name`; tlsrpt-collectd's `socketname`).
    pub socket: PathBuf,
    /// The socket file's mode (default 0660: the MTA's group must be the socket's group).
    pub socket_mode: u32,
    /// The socket receive buffer asked for, bytes (the kernel caps it at
    /// `net.core.rmem_max`).
    pub recv_buffer: usize,
    /// How often the sums are added to the store.
    pub flush_every: Duration,
    /// Groups held in memory before further ones are dropped (and counted).
    pub max_groups: usize,
}

impl CollectorConfig {
    /// The defaults, on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            socket_mode: 0o660,
            recv_buffer: 16 * 1024 * 1024,
            flush_every: Duration::from_secs(1),
            max_groups: crate::aggregate::MAX_GROUPS,
        }
    }
}

/// Why the collector could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// Another collector is listening on the socket.
    #[error("{path}: another collector is already reading this socket")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists and is not a socket.
    #[error("{path} exists and is not a socket; not removing it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket could not be set up.
    #[error("{path}: {what}: {error}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// The step.
        what: &'static str,
        /// Why.
        error: io::Error,
    },
}

/// Counters, live while the collector runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Datagrams refused (not a libtlsrpt datagram).
    pub malformed: AtomicU64,
    /// Datagrams whose sums are committed to the store.
    pub stored: AtomicU64,
    /// Results not kept because memory bounds were reached.
    pub dropped: AtomicU64,
    /// Store writes that failed (the sums were kept for the next).
    pub write_failures: AtomicU64,
}

/// What a collector run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CollectStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams refused.
    pub malformed: u64,
    /// Datagrams whose sums were committed.
    pub stored: u64,
    /// Results dropped at the memory bounds.
    pub dropped: u64,
    /// Store writes that failed.
    pub write_failures: u64,
}

impl Counters {
    /// A snapshot.
    pub fn snapshot(&self) -> CollectStats {
        CollectStats {
            received: self.received.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }
}

/// A bound collector.
pub struct Collector {
    socket: UnixDatagram,
    config: CollectorConfig,
    clock: Clock,
    counters: Arc<Counters>,
}

fn socket_err(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> CollectError {
    let path = path.to_owned();
    move |error| CollectError::Socket { path, what, error }
}

impl Collector {
    /// Binds the socket: a stale socket file (no one reading it) is replaced; a live one, or a
    /// file that is not a socket, is an error.
    pub fn bind(config: CollectorConfig) -> Result<Self, CollectError> {
        let path = config.socket.clone();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(CollectError::NotASocket { path });
            }
            let probe = UnixDatagram::unbound().map_err(socket_err(&path, "creating a socket"))?;
            if probe.connect(&path).is_ok() {
                return Err(CollectError::InUse { path });
            }
            std::fs::remove_file(&path).map_err(socket_err(&path, "removing the stale socket"))?;
        }
        let what = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                "binding (its directory does not exist)"
            }
            _ => "binding",
        };
        let socket = UnixDatagram::bind(&path).map_err(socket_err(&path, what))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.socket_mode))
            .map_err(socket_err(&path, "setting the socket's mode"))?;
        let sock = socket2::SockRef::from(&socket);
        if let Err(e) = sock.set_recv_buffer_size(config.recv_buffer) {
            tracing::warn!("{}: could not set the receive buffer: {e}", path.display());
        }
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(socket_err(&path, "setting a read timeout"))?;
        Ok(Self { socket, config, clock: system_clock(), counters: Arc::default() })
    }

    /// Dates results by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The live counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// The receive buffer the kernel granted, bytes.
    pub fn recv_buffer(&self) -> usize {
        socket2::SockRef::from(&self.socket).recv_buffer_size().unwrap_or(0)
    }

    /// Reads until `shutdown` completes, then drains the socket, writes everything held and
    /// removes the socket file.
    pub async fn run(
        self,
        store: OutboundStore,
        shutdown: impl Future<Output = ()>,
    ) -> CollectStats {
        let Self { socket, config, clock, counters } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let sums = Arc::new(Mutex::new(Aggregate::new(config.max_groups, MAX_DETAILS)));
        let pending = Arc::new(AtomicUsize::new(0));
        let (batch_tx, batch_rx) = std::sync::mpsc::channel::<Batch>();
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = {
            let (stop, counters, pending) = (stop.clone(), counters.clone(), pending.clone());
            std::thread::Builder::new().name("tlsrpt-recv".into()).spawn(move || {
                read_loop(&socket, &clock, &counters, &stop, &pending, &batch_tx, &free_rx);
            })
        };
        let parser = {
            let (counters, pending, sums) = (counters.clone(), pending.clone(), sums.clone());
            std::thread::Builder::new().name("tlsrpt-parse".into()).spawn(move || {
                parse_loop(&batch_rx, &free_tx, &pending, &counters, &sums);
            })
        };
        let threads: Vec<std::thread::JoinHandle<()>> = match (reader, parser) {
            (Ok(r), Ok(p)) => vec![r, p],
            (r, p) => {
                tracing::error!("cannot start the collector's threads");
                stop.store(true, Ordering::Relaxed);
                r.into_iter().chain(p).collect()
            }
        };
        let mut writer = Writer::new(store, counters.clone(), sums, config.max_groups);
        let mut tick = tokio::time::interval(config.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => writer.write().await,
            }
        }
        stop.store(true, Ordering::Relaxed);
        // The reader drains the socket and stops; the parser finishes what it was handed.
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        writer.write().await;
        let _ = std::fs::remove_file(&config.socket);
        counters.snapshot()
    }
}

/// Raw datagrams received on one UTC day, back to back in one buffer.
struct Batch {
    day: time::Date,
    bytes: Vec<u8>,
    lens: Vec<u32>,
}

/// A batch is handed to the parser at this many datagrams, or bytes, or when the socket is
/// idle or the day changes.
const BATCH_DATAGRAMS: usize = 1024;
const BATCH_BYTES: usize = 1 << 20;
/// Raw bytes waiting for the parser before new datagrams are dropped (and counted): a burst
/// of hundreds of thousands of datagrams fits.
const MAX_PENDING_BYTES: usize = 512 << 20;

/// The reading thread: only moves datagrams from the kernel's queue (a few, by default:
/// `net.unix.max_dgram_qlen`) into memory, so a burst is not lost while they are parsed.
fn read_loop(
    socket: &UnixDatagram,
    clock: &Clock,
    counters: &Counters,
    stop: &AtomicBool,
    pending: &AtomicUsize,
    batches: &std::sync::mpsc::Sender<Batch>,
    free: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut scratch = vec![0_u8; DATAGRAM_MAX_BYTES + 1];
    let mut bytes: Vec<u8> = Vec::with_capacity(BATCH_BYTES);
    let mut lens: Vec<u32> = Vec::with_capacity(BATCH_DATAGRAMS);
    let mut day = clock().date();
    let mut stopping = false;
    let hand = |bytes: &mut Vec<u8>, lens: &mut Vec<u32>, day: time::Date| {
        if lens.is_empty() {
            return;
        }
        let next = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES));
        let full = std::mem::replace(bytes, next);
        pending.fetch_add(full.len(), Ordering::Relaxed);
        let _ = batches.send(Batch { day, bytes: full, lens: std::mem::take(lens) });
    };
    loop {
        match socket.recv(&mut scratch) {
            Ok(n) => {
                counters.received.fetch_add(1, Ordering::Relaxed);
                let today = clock().date();
                if today != day {
                    // The day's batch ends at midnight: results go to the day they came on.
                    hand(&mut bytes, &mut lens, day);
                    day = today;
                }
                if pending.load(Ordering::Relaxed) > MAX_PENDING_BYTES {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("mtasts_collector_dropped_total").increment(1);
                    continue;
                }
                bytes.extend_from_slice(&scratch[..n]);
                lens.push(u32::try_from(n).unwrap_or(u32::MAX));
                if lens.len() >= BATCH_DATAGRAMS || bytes.len() >= BATCH_BYTES {
                    hand(&mut bytes, &mut lens, day);
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                hand(&mut bytes, &mut lens, day);
                if stopping {
                    break;
                }
                if stop.load(Ordering::Relaxed) {
                    // Drain what is queued, then stop at the next empty read.
                    stopping = true;
                    let _ = socket.set_nonblocking(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!("reading the collector socket: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    hand(&mut bytes, &mut lens, day);
}

/// The parsing thread: parse each batch and add it to the sums the writer takes.
fn parse_loop(
    batches: &std::sync::mpsc::Receiver<Batch>,
    free: &std::sync::mpsc::Sender<Vec<u8>>,
    pending: &AtomicUsize,
    counters: &Counters,
    sums: &Mutex<Aggregate>,
) {
    let mut logged = Instant::now() - Duration::from_secs(60);
    let mut memo = Memo::default();
    while let Ok(batch) = batches.recv() {
        let mut at = 0;
        let mut n = 0_u64;
        {
            let mut sums = sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for len in &batch.lens {
                let len = *len as usize;
                let bytes = &batch.bytes[at..at + len];
                at += len;
                match memo.add_to(&mut sums, batch.day, bytes) {
                    Ok(()) => n += 1,
                    Err(e) => {
                        counters.malformed.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("mtasts_collector_datagrams_total", "outcome" => "malformed")
                            .increment(1);
                        if logged.elapsed() >= Duration::from_secs(10) {
                            logged = Instant::now();
                            let total = counters.malformed.load(Ordering::Relaxed);
                            tracing::warn!(
                                "datagram refused: {e} ({total} refused so far; logged at most every 10 s)"
                            );
                        }
                    }
                }
            }
        }
        pending.fetch_sub(batch.bytes.len(), Ordering::Relaxed);
        metrics::counter!("mtasts_collector_datagrams_total", "outcome" => "accepted").increment(n);
        let mut bytes = batch.bytes;
        bytes.clear();
        let _ = free.send(bytes);
    }
}

/// Takes the sums every interval and adds them to the store; what the store did not take is
/// held for the next interval.
struct Writer {
    store: OutboundStore,
    counters: Arc<Counters>,
    sums: Arc<Mutex<Aggregate>>,
    held: Aggregate,
    max_groups: usize,
    failing: bool,
}

impl Writer {
    fn new(
        store: OutboundStore,
        counters: Arc<Counters>,
        sums: Arc<Mutex<Aggregate>>,
        max_groups: usize,
    ) -> Self {
        Self {
            store,
            counters,
            sums,
            held: Aggregate::new(max_groups, MAX_DETAILS),
            max_groups,
            failing: false,
        }
    }

    async fn write(&mut self) {
        let taken = {
            let mut sums = self.sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *sums, Aggregate::new(self.max_groups, MAX_DETAILS))
        };
        if self.held.is_empty() {
            self.held = taken;
        } else {
            self.held.merge(taken);
        }
        if self.held.is_empty() {
            return;
        }
        let (sessions, failures) = self.held.rows();
        metrics::gauge!("mtasts_collector_pending_groups").set(self.held.groups() as f64);
        match self.store.add(&sessions, &failures).await {
            Ok(()) => {
                let done =
                    std::mem::replace(&mut self.held, Aggregate::new(self.max_groups, MAX_DETAILS));
                self.counters.stored.fetch_add(done.datagrams(), Ordering::Relaxed);
                if done.dropped() > 0 {
                    self.counters.dropped.fetch_add(done.dropped(), Ordering::Relaxed);
                    metrics::counter!("mtasts_collector_dropped_total").increment(done.dropped());
                    tracing::warn!(
                        "{} results dropped: more than {} groups were waiting for the store",
                        done.dropped(),
                        self.max_groups
                    );
                }
                if self.failing {
                    self.failing = false;
                    tracing::info!("the store takes results again; everything held is written");
                }
                metrics::gauge!("mtasts_collector_pending_groups").set(0.0);
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("mtasts_collector_write_failures_total").increment(1);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(
                        "cannot write results: {e}; holding them in memory and retrying every interval"
                    );
                }
            }
        }
    }
}
