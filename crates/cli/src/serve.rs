//! `mtasts serve`: arguments and listeners only; the server is `mtasts_serve::server`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use mtasts_reports::http::ServeOptions;
use mtasts_serve::server::{Instance, Listeners, ServerOptions};
use mtasts_store::hosting::HostingStore;
use mtasts_store::{Database, DatabaseUrl};

use crate::domain::DEFAULT_DB;

/// Arguments of `mtasts serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The hosting database (`mtasts domain` writes it): `sqlite://PATH` (created if missing;
    /// one machine) or `postgres://…` (several instances behind a load balancer).
    #[arg(long, env = "MTASTS_SERVE_DB", default_value = DEFAULT_DB)]
    db: String,
    /// Where to serve the policies over HTTPS: IP:PORT, or `systemd` for the first socket
    /// passed by systemd (socket activation). Customers' `mta-sts.<domain>` names point here.
    #[arg(long, env = "MTASTS_SERVE_HTTPS", default_value = "0.0.0.0:443")]
    listen_https: String,
    /// Plain HTTP, for ACME HTTP-01 challenges and a short page (the policy is never served
    /// or redirected there): IP:PORT, `systemd` for the second passed socket, or `off`.
    #[arg(long, env = "MTASTS_SERVE_HTTP", default_value = "0.0.0.0:80")]
    listen_http: String,
    /// Seconds between checks whether a domain, policy or certificate changed in the
    /// database (one small query; a change is served after at most this long).
    #[arg(long, env = "MTASTS_SERVE_RELOAD", default_value_t = 2.0)]
    reload: f64,
    /// Connections served at once per listener; more are refused until one ends.
    #[arg(long, env = "MTASTS_SERVE_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a client has to send its request headers (slow clients are cut off).
    #[arg(long, env = "MTASTS_SERVE_HEADER_TIMEOUT", default_value_t = 10.0)]
    header_timeout: f64,
    /// Serve Prometheus metrics at http://ADDR/metrics (requests by result, hosted domains,
    /// certificates, database up).
    #[arg(long, env = "MTASTS_SERVE_METRICS")]
    metrics_listen: Option<SocketAddr>,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
        bail!("--{name} must be more than 0 and at most 3600 seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

async fn bind(
    what: &str,
    spec: &str,
    systemd_index: usize,
) -> anyhow::Result<tokio::net::TcpListener> {
    if spec == "systemd" {
        let mut fds = listenfd::ListenFd::from_env();
        let Ok(Some(l)) = fds.take_tcp_listener(systemd_index) else {
            bail!(
                "--listen-{what} systemd: no TCP socket number {} was passed (LISTEN_FDS); start it from mtasts-serve.socket or give IP:PORT",
                systemd_index + 1
            );
        };
        l.set_nonblocking(true)?;
        return Ok(tokio::net::TcpListener::from_std(l)?);
    }
    let addr: SocketAddr = spec.parse().with_context(|| {
        format!("--listen-{what} {spec:?} is not IP:PORT (e.g. 0.0.0.0:443, [::]:443)")
    })?;
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (--listen-{what}; ports below 1024 need root or CAP_NET_BIND_SERVICE)")
    })
}

/// Runs `mtasts serve` until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let options = ServerOptions {
        reload_every: secs("reload", args.reload)?,
        connections: ServeOptions {
            max_connections: args.max_connections.max(1),
            header_timeout: secs("header-timeout", args.header_timeout)?,
        },
    };
    let url: DatabaseUrl = args.db.parse()?;
    let db = Database::open(&url).await?;
    let store = HostingStore::with_database(db).await?;
    let https = bind("https", &args.listen_https, 0).await?;
    let http = match args.listen_http.as_str() {
        "off" | "none" => None,
        spec => Some(bind("http", spec, 1).await?),
    };
    if let Some(addr) = args.metrics_listen {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        let render: mtasts_reports::http::MetricsRender = Arc::new(move || handle.render());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
        tokio::spawn(mtasts_reports::http::serve(
            listener,
            None,
            mtasts_reports::http::metrics_router(render),
            ServeOptions::default(),
            std::future::pending(),
        ));
    }
    tracing::info!(
        https = %https.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        http = %http.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        database = %url,
        "mtasts serve starting"
    );
    let instance = Instance::new();
    mtasts_serve::server::run(store, instance, Listeners { https, http }, None, options, async {
        shutdown().await;
        tracing::info!("stopping");
    })
    .await?;
    Ok(0)
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
