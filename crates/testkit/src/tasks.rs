//! Task plumbing shared by the servers: an accept loop whose connections die with it.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// Most connections a server handles at once; more are closed right after accept.
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// Aborts the task (and so every connection task it owns) when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts connections on `listener` forever, running `per_conn` for each in its own task.
pub(crate) fn spawn_accept_loop<F, Fut>(listener: TcpListener, per_conn: F) -> AbortOnDrop
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    while conns.try_join_next().is_some() {}
                    if conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many connections, closing");
                        continue;
                    }
                    conns.spawn(per_conn(stream, peer));
                }
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }))
}
