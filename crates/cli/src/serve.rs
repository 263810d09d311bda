//! `mtasts serve`: arguments and listeners only; the server is `mtasts_serve::server`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use mtasts_reports::http::ServeOptions;
use mtasts_serve::acme::{Acme, AcmeOptions, ChallengeKind};
use mtasts_serve::lifecycle::Service;
use mtasts_serve::server::{Instance, Listeners, ServerOptions};
use mtasts_store::hosting::HostingStore;
use mtasts_store::{Database, DatabaseUrl};

use crate::domain::DEFAULT_DB;
use crate::net_args::NetArgs;

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
    /// Serve the REST API (the `mtasts domain` operations, JSON, bearer tokens from
    /// `mtasts domain token create`; description at /api/v1/openapi.json) and the dashboard
    /// (/dashboard, signed in with the same tokens) on plain HTTP at ADDR: keep it on
    /// loopback or behind a TLS proxy.
    #[arg(long, env = "MTASTS_SERVE_API")]
    api_listen: Option<SocketAddr>,
    /// For the API's `add`: the service host name and report address printed in the records
    /// (as `mtasts domain --rua`).
    #[arg(long, env = "MTASTS_REPORT_URI", value_delimiter = ',')]
    rua: Vec<String>,
    /// Seconds between monitoring rounds: every hosted domain checked as `mtasts check` does
    /// (MX drift, MX and policy-host certificates, STARTTLS, the TXT, CNAME and TLS-RPT
    /// records); problems are stored (`mtasts domain show`), alerted once when they appear
    /// and when they go away, and counted in the metrics. One instance monitors at a time.
    /// 0 turns monitoring off.
    #[arg(long, env = "MTASTS_MONITOR_EVERY", default_value_t = 21_600)]
    monitor_every: u64,
    /// Domains checked at once by monitoring (each opens SMTP connections to its MX hosts; a
    /// dead host costs the SMTP timeouts).
    #[arg(long, env = "MTASTS_MONITOR_CONCURRENCY", default_value_t = 8)]
    monitor_concurrency: usize,
    /// POST monitoring alerts as JSON (`{"alerts": [{"kind": "domain-problem" |
    /// "domain-problem-resolved", "domain", "code", "subject", "severity", "message", …}]}`)
    /// to this URL.
    #[arg(long, env = "MTASTS_ALERT_WEBHOOK")]
    alert_webhook: Option<String>,
    #[command(flatten)]
    alert_mail: crate::alert_mail::AlertMailArgs,
    /// Take TLS-RPT reports (RFC 8460 §5.4) by HTTPS POST at
    /// `https://mta-sts.<domain>/v1/tlsrpt` of every hosted domain, into the hosting database
    /// (the dashboard's charts and `promote`'s guard read them). Publish it with
    /// `mtasts domain --rua 'https://mta-sts.{domain}/v1/tlsrpt'`. Bodies are capped (gzip
    /// bombs included), each report committed before the 200, 60 reports a minute per client.
    #[arg(long, env = "MTASTS_RECEIVE_REPORTS")]
    receive_reports: bool,
    #[command(flatten)]
    acme: AcmeArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// Certificates by ACME (RFC 8555, HTTP-01 on `--listen-http`, which must be port 80 of
/// the addresses customers' `mta-sts.<domain>` names resolve to).
#[derive(Debug, Args)]
pub(crate) struct AcmeArgs {
    /// Order and renew the policy hosts' certificates from this ACME directory URL
    /// (`letsencrypt` and `letsencrypt-staging` are short for Let's Encrypt's). Without it,
    /// certificates come only from `mtasts domain cert --chain --key`.
    #[arg(long, env = "MTASTS_ACME_DIRECTORY")]
    pub(crate) acme_directory: Option<String>,
    /// A PEM file with the root certificate to trust for the ACME server itself (a private or
    /// test CA such as pebble); default: the system's trust store.
    #[arg(long, env = "MTASTS_ACME_CA")]
    pub(crate) acme_ca: Option<std::path::PathBuf>,
    /// Contact for the ACME account (`mailto:hostmaster@example.net`; comma separated).
    #[arg(long, env = "MTASTS_ACME_CONTACT", value_delimiter = ',')]
    pub(crate) acme_contact: Vec<String>,
    /// Renew a certificate when fewer than this many days are left (or a third of its
    /// lifetime, whichever is sooner). Manual certificates are not renewed.
    #[arg(long, env = "MTASTS_ACME_RENEW_DAYS", default_value_t = 30)]
    pub(crate) acme_renew_days: u32,
    /// Seconds between ordering rounds (each round orders what is missing or due; one
    /// instance at a time on a shared database). A failed domain waits 5 minutes, doubling
    /// up to a day.
    #[arg(long, env = "MTASTS_ACME_EVERY", default_value_t = 3600)]
    pub(crate) acme_every: u64,
    /// The challenge the CA validates: `http-01` (port 80; answered by any instance on the
    /// shared database, so it works behind a load balancer) or `tls-alpn-01` (port 443;
    /// answered by the ordering instance only, for sites without port 80).
    #[arg(long, env = "MTASTS_ACME_CHALLENGE", default_value = "http-01", value_parser = ["http-01", "tls-alpn-01"])]
    pub(crate) acme_challenge: String,
    /// Orders under way at once (each mostly waits for the CA's validation; mind the CA's
    /// rate limits: Let's Encrypt allows 300 new orders per account every 3 hours).
    #[arg(long, env = "MTASTS_ACME_CONCURRENCY", default_value_t = 4)]
    pub(crate) acme_concurrency: usize,
    /// Seconds allowed for one order, from creation to the issued certificate.
    #[arg(long, env = "MTASTS_ACME_TIMEOUT", default_value_t = 120)]
    pub(crate) acme_timeout: u64,
    /// This service's host name: `mta-sts.<domain>` as a CNAME to it counts as delegated.
    #[arg(long, env = "MTASTS_SERVICE_HOST")]
    pub(crate) service_host: Option<String>,
    /// This service's public addresses (comma separated): `mta-sts.<domain>` resolving to
    /// one of them counts as delegated. Checked before every order, so that a customer who
    /// has not delegated yet is told the record to publish instead of failing at the CA.
    #[arg(long, env = "MTASTS_SERVICE_ADDRESS", value_delimiter = ',')]
    pub(crate) service_address: Vec<std::net::IpAddr>,
}

impl AcmeArgs {
    /// The orderer's options, if `--acme-directory` is given.
    pub(crate) fn options(&self) -> anyhow::Result<Option<AcmeOptions>> {
        let Some(directory) = &self.acme_directory else { return Ok(None) };
        let directory = match directory.as_str() {
            "letsencrypt" => "https://acme-v02.api.letsencrypt.org/directory".to_owned(),
            "letsencrypt-staging" => {
                "https://acme-staging-v02.api.letsencrypt.org/directory".to_owned()
            }
            url if url.starts_with("https://") => url.to_owned(),
            other => bail!(
                "--acme-directory {other:?} is not an https:// URL (or letsencrypt, letsencrypt-staging)"
            ),
        };
        if let Some(ca) = &self.acme_ca
            && !ca.is_file()
        {
            bail!("--acme-ca {}: no such file", ca.display());
        }
        for c in &self.acme_contact {
            if !c.starts_with("mailto:") {
                bail!("--acme-contact {c:?} must be a mailto: URI (mailto:hostmaster@example.net)");
            }
        }
        if !(1..=86_400).contains(&self.acme_every) {
            bail!("--acme-every must be 1 to 86400 seconds, got {}", self.acme_every);
        }
        if !(5..=3600).contains(&self.acme_timeout) {
            bail!("--acme-timeout must be 5 to 3600 seconds, got {}", self.acme_timeout);
        }
        let mut o = AcmeOptions::new(directory);
        o.ca_file = self.acme_ca.clone();
        o.contact = self.acme_contact.clone();
        o.renew_before = Duration::from_secs(u64::from(self.acme_renew_days) * 86_400);
        o.every = Duration::from_secs(self.acme_every);
        o.order_timeout = Duration::from_secs(self.acme_timeout);
        o.addresses = self.service_address.clone();
        if !(1..=64).contains(&self.acme_concurrency) {
            bail!("--acme-concurrency must be 1 to 64, got {}", self.acme_concurrency);
        }
        o.concurrency = self.acme_concurrency;
        o.challenge = match self.acme_challenge.as_str() {
            "tls-alpn-01" => ChallengeKind::TlsAlpn01,
            _ => ChallengeKind::Http01,
        };
        Ok(Some(o))
    }

    /// The service as far as delegation goes.
    pub(crate) fn service(&self) -> anyhow::Result<Service> {
        let cname_target = crate::domain::service_host(self.service_host.as_ref())?;
        Ok(Service { cname_target, rua: Vec::new() })
    }
}

/// This instance's name in the ACME lease: host name and process id.
pub(crate) fn holder() -> String {
    format!("{}:{}", crate::alert_mail::host_name(), std::process::id())
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
    let acme_options = args.acme.options()?;
    let options = ServerOptions {
        reload_every: secs("reload", args.reload)?,
        connections: ServeOptions {
            max_connections: args.max_connections.max(1),
            header_timeout: secs("header-timeout", args.header_timeout)?,
        },
    };
    let url: DatabaseUrl = args.db.parse()?;
    let db = Database::open(&url).await?;
    let store = HostingStore::with_database(db.clone()).await?;
    let https = bind("https", &args.listen_https, 0).await?;
    let http = match args.listen_http.as_str() {
        "off" | "none" => None,
        spec => Some(bind("http", spec, 1).await?),
    };
    if let Some(addr) = args.metrics_listen {
        crate::reporter::serve_metrics(addr).await?;
    }
    tracing::info!(
        https = %https.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        http = %http.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        database = %url,
        "mtasts serve starting"
    );
    let instance = Instance::new();
    let manager = if args.api_listen.is_some() || args.monitor_every > 0 {
        let config = args.net.config()?;
        let checker = mtasts_check::Checker::new(
            &config,
            mtasts_check::CheckOptions { dane: false, ..mtasts_check::CheckOptions::default() },
        )
        .context("cannot set up DNS and TLS")?;
        let mut service = args.acme.service()?;
        service.rua = crate::domain::report_uris(&args.rua)?;
        // Reports received for the hosted domains live in the hosting database (the
        // dashboard's charts read them).
        let reports = mtasts_store::reports::ReportStore::with_database(db.clone()).await?;
        Some(
            mtasts_serve::domains::Manager::new(store.clone(), Some(checker), service)
                .with_reports(reports),
        )
    } else {
        None
    };
    if let Some(manager) = &manager
        && args.monitor_every > 0
    {
        let webhook = match &args.alert_webhook {
            Some(url) => {
                anyhow::ensure!(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "--alert-webhook {url:?} is not an http(s) URL"
                );
                let roots = args.net.config()?.trust.load()?;
                let client = reqwest::Client::builder()
                    .tls_backend_preconfigured(mtasts_net::tls::strict_client_config(roots))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .context("cannot set up the alert webhook client")?;
                Some(mtasts_reports::alert::Webhook::new(url.clone(), client))
            }
            None => None,
        };
        let mail = args.alert_mail.mailer(&args.net.trust_roots)?;
        anyhow::ensure!(
            (1..=256).contains(&args.monitor_concurrency),
            "--monitor-concurrency must be 1 to 256, got {}",
            args.monitor_concurrency
        );
        let options = mtasts_serve::monitor::MonitorOptions {
            every: Duration::from_secs(args.monitor_every),
            concurrency: args.monitor_concurrency,
            ..Default::default()
        };
        let mut monitor =
            mtasts_serve::monitor::Monitor::new(manager.clone(), options, webhook, holder());
        if let Some(mail) = mail {
            monitor = monitor.with_mail(mail);
        }
        tracing::info!(every_s = args.monitor_every, "monitoring the hosted domains");
        tokio::spawn(Arc::new(monitor).run(std::future::pending()));
    }
    if let (Some(addr), Some(manager)) = (args.api_listen, manager) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--api-listen)"))?;
        tracing::info!(api = %addr, "REST API and dashboard listening (plain HTTP): http://{addr}/dashboard");
        tokio::spawn(mtasts_reports::http::serve(
            listener,
            None,
            mtasts_serve::api::router(manager.clone())
                .merge(mtasts_serve::dashboard::router(manager)),
            options.connections,
            std::future::pending(),
        ));
    }
    if let Some(options) = acme_options {
        let config = args.net.config()?;
        let dns: Arc<dyn mtasts_net::DnsClient> = Arc::new(
            mtasts_net::HickoryDns::new(&config.dns_servers, config.timeouts.dns)
                .context("cannot set up DNS")?,
        );
        if http.is_none() && options.challenge == ChallengeKind::Http01 {
            bail!(
                "--acme-directory with HTTP-01 needs --listen-http: the CA validates over plain HTTP on port 80 (or use --acme-challenge tls-alpn-01)"
            );
        }
        tracing::info!(directory = %options.directory, every_s = options.every.as_secs(), "ordering certificates by ACME");
        let acme = Arc::new(Acme::new(
            store.clone(),
            options,
            args.acme.service()?,
            dns,
            instance.challenges.clone(),
            holder(),
        ));
        tokio::spawn(acme.run(std::future::pending()));
    }
    let extra = if args.receive_reports {
        let reports = mtasts_store::reports::ReportStore::with_database(db.clone()).await?;
        let ingestor = mtasts_reports::Ingestor::new(reports, mtasts_reports::Limits::default());
        tracing::info!(
            path = mtasts_serve::http::REPORTS_PATH,
            "taking TLS-RPT reports on every policy host"
        );
        Some(mtasts_serve::http::reports_routes(
            instance.catalog.clone(),
            ingestor,
            mtasts_reports::http::HttpLimits::default(),
        ))
    } else {
        None
    };
    mtasts_serve::server::run(store, instance, Listeners { https, http }, extra, options, async {
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
