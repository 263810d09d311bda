//! One `serve` instance: the HTTPS policy listener, the plain-HTTP listener, and the reload
//! loop that keeps the [`Catalog`] in step with the database. Takes bound listeners (tests
//! bind port 0; systemd can pass sockets).
//!
//! Several instances on one PostgreSQL serve the same domains and certificates: each reloads
//! on its own when the database's generation moves. A database that goes away is logged once
//! (and once more when it is back); meanwhile the last good catalogue is served.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mtasts_reports::http::ServeOptions;
use mtasts_store::hosting::{HostingError, HostingStore};
use tokio::net::TcpListener;

use crate::catalog::{Catalog, tls_config};
use crate::http::{Challenges, http_router, policy_router};

/// How an instance behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// How often the database is asked whether anything changed (one small query).
    pub reload_every: Duration,
    /// Connection limits and timeouts.
    pub connections: ServeOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { reload_every: Duration::from_secs(2), connections: ServeOptions::default() }
    }
}

/// Why an instance could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The first load from the database failed: there is nothing to serve yet.
    #[error("cannot load the hosted domains: {0}")]
    Load(#[source] HostingError),
    /// The TLS configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A listener failed.
    #[error("the listener failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The listeners of an instance.
#[derive(Debug)]
pub struct Listeners {
    /// HTTPS: the policies (port 443 in production).
    pub https: TcpListener,
    /// Plain HTTP: ACME HTTP-01 and a page (port 80), if wanted.
    pub http: Option<TcpListener>,
}

/// A running instance's shared parts, for tests and for the routes `serve` adds.
#[derive(Clone, Debug)]
pub struct Instance {
    /// What is served.
    pub catalog: Arc<Catalog>,
    /// Pending ACME HTTP-01 challenges.
    pub challenges: Arc<Challenges>,
}

impl Instance {
    /// A new instance with an empty catalogue.
    pub fn new() -> Self {
        Self { catalog: Catalog::new(), challenges: Arc::default() }
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

/// Loads the catalogue once (an error here is fatal: nothing to serve), then serves until
/// `shutdown`, reloading every [`ServerOptions::reload_every`]. `extra` routes (the report
/// receiver, the API) are merged into the HTTPS router.
pub async fn run(
    store: HostingStore,
    instance: Instance,
    listeners: Listeners,
    extra: Option<Router>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let first = instance.catalog.reload(&store).await.map_err(ServerError::Load)?;
    tracing::info!(
        policies = first.policies,
        certificates = first.certificates,
        "loaded the hosted domains"
    );
    gauges(&instance.catalog, first.certificates);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let challenge_store = store.clone();
    let reloader = tokio::spawn(reload_loop(
        store,
        instance.catalog.clone(),
        options.reload_every,
        stopped(stop_rx.clone()),
    ));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(
        instance.catalog.clone(),
        instance.challenges.clone(),
    )?));
    let mut app = policy_router(instance.catalog.clone());
    if let Some(extra) = extra {
        app = extra.merge(app);
    }
    let https = mtasts_reports::http::serve(
        listeners.https,
        Some(acceptor),
        app,
        options.connections,
        stopped(stop_rx.clone()),
    );
    let http = async {
        match listeners.http {
            Some(listener) => {
                mtasts_reports::http::serve(
                    listener,
                    None,
                    http_router(instance.challenges.clone(), Some(challenge_store)),
                    options.connections,
                    stopped(stop_rx.clone()),
                )
                .await
            }
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(https, http);
    reloader.abort();
    a?;
    b?;
    Ok(())
}

fn gauges(catalog: &Catalog, certificates: usize) {
    metrics::gauge!("mtasts_serve_hosted_domains").set(catalog.len() as f64);
    metrics::gauge!("mtasts_serve_certificates").set(certificates as f64);
}

async fn reload_loop(
    store: HostingStore,
    catalog: Arc<Catalog>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut down = false;
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        match catalog.reload(&store).await {
            Ok(r) => {
                metrics::gauge!("mtasts_serve_database_up").set(1.0);
                if down {
                    tracing::warn!("the database answers again; reloading as before");
                    down = false;
                }
                if r.changed {
                    tracing::info!(
                        policies = r.policies,
                        certificates = r.certificates,
                        "reloaded the hosted domains"
                    );
                    gauges(&catalog, r.certificates);
                }
            }
            Err(e) => {
                metrics::gauge!("mtasts_serve_database_up").set(0.0);
                if !down {
                    tracing::error!(
                        "{e}; serving the last good policies and certificates until it answers"
                    );
                    down = true;
                }
            }
        }
    }
}
