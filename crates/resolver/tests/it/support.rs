//! A resolver pointed at a test world, served on a loopback port, and a socketmap client.

use std::net::SocketAddr;
use std::sync::Arc;

use mtasts_net::{HickoryDns, NetConfig, PolicyFetcher};
use mtasts_proto::socketmap;
use mtasts_resolver::server::{Listener, ServerConfig, Shutdown, serve};
use mtasts_resolver::{Resolver, Zones};
use mtasts_testkit::World;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) fn resolver_for(world: &World, zones: Zones) -> Resolver {
    resolver_with_dns(world.dns_addr(), world, zones)
}

/// A resolver for `world`'s HTTPS and CA that asks the DNS server at `dns` (a dead one, say).
pub(crate) fn resolver_with_dns(dns: SocketAddr, world: &World, zones: Zones) -> Resolver {
    mtasts_net::install_crypto_provider();
    let config = NetConfig::private_world(
        dns,
        world.ca_pem_path(),
        world.https_port(),
        world.smtp_port(),
        "tests.mtasts.test",
    );
    let dns = Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns).unwrap());
    let roots = config.trust.load().unwrap();
    let fetcher = PolicyFetcher::new(&config, roots, dns.clone()).unwrap();
    Resolver::new(dns, fetcher, zones)
}

/// A served resolver: its address, the shutdown trigger (dropping it stops the server) and
/// the server task.
pub(crate) type Served =
    (SocketAddr, tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<std::io::Result<()>>);

/// Serves `resolver` on a free loopback port; the server stops when the sender is dropped.
pub(crate) async fn serve_on_loopback(resolver: Resolver) -> Served {
    serve_with(resolver, ServerConfig::default()).await
}

/// [`serve_on_loopback`] with `config`.
pub(crate) async fn serve_with(resolver: Resolver, config: ServerConfig) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, shutdown) = Shutdown::new();
    let task = tokio::spawn(serve(Listener::Tcp(listener), Arc::new(resolver), config, shutdown));
    (addr, tx, task)
}

/// A socketmap client on one connection.
pub(crate) struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self { stream: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() }
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next reply, or `None` when the server closed the connection.
    pub(crate) async fn reply(&mut self) -> Option<String> {
        loop {
            if let Some(frame) = socketmap::decode(&self.buf, socketmap::REPLY_MAX_BYTES).unwrap() {
                let text = String::from_utf8(self.buf[frame.payload.clone()].to_vec()).unwrap();
                self.buf.drain(..frame.consumed);
                return Some(text);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                self.stream.read(&mut chunk),
            )
            .await
            .expect("a reply within 20 s")
            .unwrap();
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub(crate) async fn query(&mut self, name: &str, key: &str) -> String {
        self.send_raw(&socketmap::encode(&format!("{name} {key}"))).await;
        self.reply().await.expect("a reply")
    }
}
