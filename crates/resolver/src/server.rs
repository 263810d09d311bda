//! The socketmap server: netstring requests in, one reply each, in order, on TCP or a unix
//! socket. It takes an already-bound listener and a shutdown signal (the shape every mtasts
//! server has), and a [`MapHandler`] that answers one request.
//!
//! Per connection: requests may be pipelined (several netstrings in one read) and are answered
//! in order. A broken netstring closes that connection only, with a log line naming the peer
//! and the rule broken; a well-framed request that is not `<name> <key>` gets `PERM`. An idle
//! connection is closed after [`ServerConfig::idle_timeout`] (Postfix closes its side after
//! 10 s idle anyway). On shutdown the listener stops accepting; each connection finishes the
//! request it is answering, then closes.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mtasts_proto::socketmap::{self, QUERY_MAX_BYTES};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

/// Answers one socketmap request.
#[async_trait]
pub trait MapHandler: Send + Sync + 'static {
    /// The reply payload for `key` in map `name` (`OK …`, `NOTFOUND `, `TEMP …`, `PERM …`).
    async fn lookup(&self, name: &str, key: &str) -> String;
}

/// Limits of the server.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Close a connection with no request for this long.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Longest a lookup may keep Postfix waiting: past it the reply is `TEMP` (Postfix defers
    /// the mail and asks again), while the lookup goes on and fills the cache for the next
    /// ask. Postfix's socketmap client gives up after 100 seconds; a lookup that needs DNS
    /// and a policy fetch normally ends within the DNS and fetch timeouts.
    pub lookup_timeout: Duration,
}

/// [`ServerConfig::lookup_timeout`] by default.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
        }
    }
}

/// A bound listener: TCP (`127.0.0.1:8461`, the postfix-mta-sts-resolver default) or a unix
/// socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A unix stream socket listener.
    Unix(UnixListener),
}

/// A shutdown signal: `trigger` once, every clone of the receiver sees it.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the function that fires it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// A signal that fires when `fut` completes (e.g. Ctrl-C or SIGTERM).
    pub fn on(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, this) = Self::new();
        tokio::spawn(async move {
            fut.await;
            let _closed = tx.send(true);
        });
        this
    }

    /// Resolves once the signal has fired (or its sender is gone).
    pub async fn fired(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Serves `listener` until `shutdown` fires, then waits for open connections to finish their
/// current request.
pub async fn serve(
    listener: Listener,
    handler: Arc<dyn MapHandler>,
    config: ServerConfig,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.fired() => break,
            permit = slots.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let accepted = tokio::select! {
            () = shutdown.fired() => break,
            accepted = accept(&listener) => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: log, pause, keep serving.
                tracing::warn!("socketmap: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(stream, &peer, handler, config, shutdown).await {
                tracing::debug!("socketmap: {peer}: {e}");
            }
        });
        // Reap finished connections so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One lookup, answered within `deadline`. The lookup runs on this connection's task (no
/// hand-over for the usual cached answer); if the deadline passes first, it is moved to a task
/// of its own, so a slow lookup (a policy host that trickles, a DNS server that drops queries)
/// keeps going after the `TEMP` reply and leaves its result in the cache.
async fn lookup(
    handler: &Arc<dyn MapHandler>,
    name: &str,
    key: &str,
    deadline: Duration,
) -> String {
    let (h, n, k) = (handler.clone(), name.to_owned(), key.to_owned());
    let mut work = Box::pin(async move { h.lookup(&n, &k).await });
    tokio::select! {
        reply = &mut work => reply,
        () = tokio::time::sleep(deadline) => {
            tokio::spawn(work);
            tracing::warn!(
                map = name,
                key,
                seconds = deadline.as_secs_f64(),
                "no answer within the lookup timeout; TEMP now, the lookup goes on"
            );
            format!(
                "TEMP the MTA-STS lookup for {key} is taking longer than {} s; try again later",
                deadline.as_secs_f64()
            )
        }
    }
}

type BoxedStream = Box<dyn Stream>;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(listener: &Listener) -> io::Result<(BoxedStream, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Box::new(s), addr.to_string()))
        }
        Listener::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Box::new(s), "unix socket".to_owned()))
        }
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("closed: {0}")]
    Netstring(#[from] socketmap::NetstringError),
}

async fn connection(
    mut stream: BoxedStream,
    peer: &str,
    handler: Arc<dyn MapHandler>,
    config: ServerConfig,
    mut shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        // Answer every whole request in the buffer, in order.
        let mut used = 0;
        loop {
            let frame = match socketmap::decode(&buf[used..], QUERY_MAX_BYTES) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("socketmap: {peer}: {e}; closing the connection");
                    stream.write_all(&out).await?;
                    return Err(e.into());
                }
            };
            let payload = &buf[used..][frame.payload.clone()];
            let reply = match socketmap::parse_request(payload) {
                Ok(req) => lookup(&handler, req.name, req.key, config.lookup_timeout).await,
                Err(e) => {
                    tracing::warn!("socketmap: {peer}: {e}");
                    format!("PERM {e}")
                }
            };
            out.extend_from_slice(&socketmap::encode(&reply));
            used += frame.consumed;
        }
        buf.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
            out.clear();
        }
        let read = tokio::select! {
            () = shutdown.fired() => return Ok(()),
            read = tokio::time::timeout(config.idle_timeout, stream.read(&mut chunk)) => read,
        };
        match read {
            Err(_) => return Ok(()), // idle
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}
