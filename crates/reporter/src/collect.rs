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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mtasts_proto::datagram::{DATAGRAM_MAX_BYTES, Datagram};
use mtasts_store::outbound::OutboundStore;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::aggregate::Aggregate;

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
        let socket = UnixDatagram::bind(&path).map_err(socket_err(&path, "binding"))?;
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
        let (tx, mut rx) = mpsc::unbounded_channel::<Aggregate>();
        let reader = {
            let stop = stop.clone();
            let counters = counters.clone();
            let max_groups = config.max_groups;
            std::thread::Builder::new()
                .name("tlsrpt-collect".into())
                .spawn(move || read_loop(&socket, &clock, &counters, &stop, &tx, max_groups))
        };
        let reader = match reader {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!("cannot start the collector's reading thread: {e}");
                None
            }
        };
        let mut writer = Writer::new(store, counters.clone(), config.max_groups);
        let mut tick = tokio::time::interval(config.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(a) = rx.recv() => writer.hold(a),
                _ = tick.tick() => writer.write().await,
            }
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(r) = reader {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
        while let Ok(a) = rx.try_recv() {
            writer.hold(a);
        }
        writer.write().await;
        let _ = std::fs::remove_file(&config.socket);
        counters.snapshot()
    }
}

/// The reading thread: receive, parse, add; hand the sums over every 50 ms.
fn read_loop(
    socket: &UnixDatagram,
    clock: &Clock,
    counters: &Counters,
    stop: &AtomicBool,
    tx: &mpsc::UnboundedSender<Aggregate>,
    max_groups: usize,
) {
    let mut buf = vec![0_u8; DATAGRAM_MAX_BYTES + 1];
    let new = || Aggregate::new(max_groups, crate::aggregate::MAX_DETAILS);
    let mut local = new();
    let mut handed = Instant::now();
    let mut logged = Instant::now() - Duration::from_secs(60);
    let mut stopping = false;
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => {
                counters.received.fetch_add(1, Ordering::Relaxed);
                match Datagram::parse(&buf[..n]) {
                    Ok(d) => local.add(clock().date(), d),
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
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
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
        if !local.is_empty() && handed.elapsed() >= Duration::from_millis(50) {
            let full = std::mem::replace(&mut local, new());
            metrics::counter!("mtasts_collector_datagrams_total", "outcome" => "accepted")
                .increment(full.datagrams());
            let _ = tx.send(full);
            handed = Instant::now();
        }
    }
    if !local.is_empty() {
        metrics::counter!("mtasts_collector_datagrams_total", "outcome" => "accepted")
            .increment(local.datagrams());
        let _ = tx.send(local);
    }
}

/// Holds sums until the store takes them.
struct Writer {
    store: OutboundStore,
    counters: Arc<Counters>,
    held: Aggregate,
    max_groups: usize,
    failing: bool,
}

impl Writer {
    fn new(store: OutboundStore, counters: Arc<Counters>, max_groups: usize) -> Self {
        Self {
            store,
            counters,
            held: Aggregate::new(max_groups, crate::aggregate::MAX_DETAILS),
            max_groups,
            failing: false,
        }
    }

    fn hold(&mut self, a: Aggregate) {
        self.held.merge(a);
    }

    async fn write(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let (sessions, failures) = self.held.rows();
        metrics::gauge!("mtasts_collector_pending_groups").set(self.held.groups() as f64);
        match self.store.add(&sessions, &failures).await {
            Ok(()) => {
                let done = std::mem::replace(
                    &mut self.held,
                    Aggregate::new(self.max_groups, crate::aggregate::MAX_DETAILS),
                );
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
