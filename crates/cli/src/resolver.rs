//! `mtasts resolver`: the Postfix MTA-STS policy daemon (socketmap), and `mtasts resolver
//! query` to see what it would answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mtasts_proto::postfix::ZoneOptions;
use mtasts_resolver::config::Config;
use mtasts_resolver::server::{Listener, ServerConfig, Shutdown, serve};
use mtasts_resolver::{Resolver, Zones};

use crate::net_args::NetArgs;

/// Arguments of `mtasts resolver`. Settings come from `--config`, then the environment, then
/// flags (a flag wins); the defaults are shown in each flag's help.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ResolverArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ResolverCommand>,
    /// Configuration file: this resolver's TOML, or postfix-mta-sts-resolver's
    /// mta-sts-daemon.yml as it is (host, port, path, cache, zones, proactive fetching).
    #[arg(long, env = "MTASTS_RESOLVER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// Check the configuration (file, environment, flags), print it as TOML and exit.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Where to listen: IP:PORT, unix:/path/to/socket, or `systemd` (the first socket systemd
    /// passes: socket activation, see contrib/systemd/mtasts-resolver.socket). Postfix:
    /// `smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix`. [default: 127.0.0.1:8461]
    #[arg(long, env = "MTASTS_RESOLVER_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Permissions of a unix socket, octal. [default: 0660]
    #[arg(long, env = "MTASTS_RESOLVER_SOCKET_MODE", value_name = "OCTAL")]
    pub(crate) socket_mode: Option<String>,
    /// Group of a unix socket (name or number), e.g. `postfix`: with mode 0660 only the owner
    /// and that group may connect.
    #[arg(long, env = "MTASTS_RESOLVER_SOCKET_GROUP", value_name = "GROUP")]
    pub(crate) socket_group: Option<String>,
    /// Seconds an idle Postfix connection is kept open (Postfix closes its side after 10 s).
    #[arg(long, default_value_t = 60.0)]
    pub(crate) idle_timeout: f64,
    /// Connections served at once (the rest wait in the listen queue).
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Seconds a lookup may keep Postfix waiting. Past it Postfix gets TEMP (the mail waits
    /// and is retried) while the lookup goes on and fills the cache. Postfix itself gives up
    /// on a socketmap after 100 s; keep this above --dns-timeout plus --fetch-timeout.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) lookup_timeout: f64,
    /// Seconds between looks for cached policies due for a refresh (RFC 8461 §3.3: refresh
    /// before max_age runs out; a policy is due when a quarter of its max_age is left).
    /// [default: 300]
    #[arg(long)]
    pub(crate) refresh_every: Option<f64>,
    /// Policy hosts fetched at once by the refresh (protects the policy hosts and your link).
    /// [default: 8]
    #[arg(long)]
    pub(crate) refresh_concurrency: Option<usize>,
    /// HTTP listener for `GET /v1/policy/DOMAIN` (the same decisions as JSON, for Exim,
    /// Haraka and scripts) and Prometheus `GET /metrics`; `off` for none. Keep it on loopback.
    /// [default: 127.0.0.1:8462]
    #[arg(long, env = "MTASTS_RESOLVER_HTTP")]
    pub(crate) http: Option<String>,
    /// The policy cache: `memory` (lost on restart), `sqlite://PATH` (embedded, survives
    /// restarts and kill -9) or `postgres://…` (shared by several resolvers).
    /// [default: sqlite://mtasts-resolver.db]
    #[arg(long, env = "MTASTS_RESOLVER_CACHE")]
    pub(crate) cache: Option<String>,
    /// Report the resolver's own policy failures (policy host unreachable, invalid policy,
    /// bad certificate: RFC 8460 §4.3.2.2) as TLS-RPT datagrams to this collector socket
    /// (`mtasts reporter collect --socket`). For Postfix before 3.10, which emits no TLS-RPT
    /// data; with Postfix ≥ 3.10 point both at the same collector. One datagram per failed
    /// fetch; a missing or full socket drops it (counted), lookups never wait.
    #[arg(long, env = "MTASTS_RESOLVER_TLSRPT_SOCKET", value_name = "PATH")]
    pub(crate) tlsrpt_socket: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) zone: ZoneArgs,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// Default cache of `dump` and `purge`: the daemon's default.
const DEFAULT_CACHE: &str = "sqlite://mtasts-resolver.db";

/// Options of the default zone (every socketmap name not configured otherwise). Each flag
/// turns its option on over the configuration file.
#[derive(Debug, Clone, Args)]
pub(crate) struct ZoneArgs {
    /// Enforce `mode: testing` policies too (postfix-mta-sts-resolver's `strict_testing`).
    #[arg(long)]
    pub(crate) strict_testing: bool,
    /// Leave out `servername=hostname` (Postfix < 3.4 rejects it).
    #[arg(long)]
    pub(crate) no_sni: bool,
    /// Add the Postfix >= 3.10 TLSRPT attributes (Postfix <= 3.9 rejects them).
    #[arg(long)]
    pub(crate) tlsrpt: bool,
    /// Answer `mx: *.example.com` as `match=.example.com`, as postfix-mta-sts-resolver does.
    /// Postfix < 3.10 matches that at ANY depth, wider than RFC 8461 §4.1; by default the
    /// answer lists the live MX names the pattern matches, exactly one label deep.
    #[arg(long)]
    pub(crate) wildcard_dot: bool,
    /// Do not let DANE take precedence. By default (RFC 8461 §2) a domain whose MX hosts all
    /// have usable TLSA records in DNSSEC-validated answers gets `dane-only`, and a failed
    /// TLSA lookup for a host of a validated MX answer gets TEMP (never a downgrade). This
    /// needs a validating resolver (--dns-server one that sets the AD bit); with another it
    /// changes nothing. Postfix needs `smtp_dns_support_level = dnssec` for `dane-only`.
    #[arg(long)]
    pub(crate) no_dane: bool,
}

impl ZoneArgs {
    /// `base` with the options these flags turn on.
    fn apply(&self, mut base: ZoneOptions) -> ZoneOptions {
        base.strict_testing |= self.strict_testing;
        base.require_sni &= !self.no_sni;
        base.tlsrpt |= self.tlsrpt;
        base.wildcard_dot |= self.wildcard_dot;
        base.dane &= !self.no_dane;
        base
    }
}

/// Output of `mtasts resolver query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum QueryFormat {
    /// The Postfix reply, then why.
    Text,
    /// The whole decision (the HTTP endpoint's JSON).
    Json,
}

/// Subcommands of `mtasts resolver`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResolverCommand {
    /// Print what the daemon would answer Postfix for KEY, without a daemon.
    Query {
        /// The lookup key as Postfix sends it: a domain, `[relay]:port`, ...
        key: String,
        /// The socketmap name (zone).
        #[arg(long, default_value = "postfix")]
        map: String,
        /// The policy cache to consult and update (see `mtasts resolver --help`).
        #[arg(long, env = "MTASTS_RESOLVER_CACHE", default_value = "memory")]
        cache: String,
        /// `text`: the Postfix reply, then why; `json`: the whole decision.
        #[arg(long, default_value = "text")]
        format: QueryFormat,
        #[command(flatten)]
        zone: ZoneArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List the cached domains as JSON lines: policy, id, when fetched and when it expires,
    /// negative entries and back-offs.
    Dump {
        /// The cache (see `mtasts resolver --help`).
        #[arg(long, env = "MTASTS_RESOLVER_CACHE", default_value = DEFAULT_CACHE)]
        cache: String,
    },
    /// Forget cached domains, so the next lookup fetches their policy afresh.
    Purge {
        /// The domains to forget.
        #[arg(required = true, value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The cache (see `mtasts resolver --help`).
        #[arg(long, env = "MTASTS_RESOLVER_CACHE", default_value = DEFAULT_CACHE)]
        cache: String,
    },
}

fn zones(args: &ZoneArgs) -> Zones {
    Zones { default: args.apply(ZoneOptions::default()), named: Default::default() }
}

/// The configuration: the file (if any), then flags and environment over it.
fn settings(args: &ResolverArgs) -> anyhow::Result<Config> {
    let mut c = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(v) = &args.listen {
        c.listen.clone_from(v);
    }
    if let Some(v) = &args.http {
        c.http.clone_from(v);
    }
    if let Some(v) = &args.socket_mode {
        c.socket_mode.clone_from(v);
    }
    if let Some(v) = &args.socket_group {
        c.socket_group = Some(v.clone());
    }
    socket_mode(&c.socket_mode)?;
    if let Some(g) = &c.socket_group {
        group_id(g)?;
    }
    if let Some(v) = &args.cache {
        c.cache.clone_from(v);
    }
    if let Some(v) = args.refresh_every {
        c.refresh_every = v;
    }
    if let Some(v) = args.refresh_concurrency {
        c.refresh_concurrency = v;
    }
    if !(c.refresh_every.is_finite() && c.refresh_every >= 1.0) {
        bail!("--refresh-every must be at least 1 second");
    }
    Ok(c)
}

pub(crate) async fn run(args: ResolverArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(ResolverCommand::Dump { cache }) => return dump(&cache).await,
        Some(ResolverCommand::Purge { domains, cache }) => return purge(&cache, &domains).await,
        _ => {}
    }
    if let Some(ResolverCommand::Query { key, map, cache, format, zone, net }) = args.command {
        let cache =
            mtasts_resolver::cache::open(&cache).await.context("opening the policy cache")?;
        let resolver = Resolver::from_config(&net.config()?, zones(&zone))
            .context("cannot set up the resolver")?
            .with_cache(cache);
        let e = resolver.explain(&map, &key).await;
        match format {
            QueryFormat::Text => println!("{}\nwhy: {}", e.answer.reply(), e.why),
            QueryFormat::Json => println!("{}", serde_json::to_string_pretty(&e)?),
        }
        return Ok(0);
    }
    let config = args.net.config()?;
    if !(args.idle_timeout.is_finite() && args.idle_timeout > 0.0) {
        bail!("--idle-timeout must be a positive number of seconds");
    }
    if !(args.lookup_timeout.is_finite()
        && args.lookup_timeout > 0.0
        && args.lookup_timeout < 100.0)
    {
        bail!(
            "--lookup-timeout must be a positive number of seconds below 100 (Postfix gives up on a socketmap lookup after 100 s)"
        );
    }
    let settings = settings(&args)?;
    let mut zones = settings.zones();
    zones.default = args.zone.apply(zones.default);
    if args.check_config {
        if !settings.listen.starts_with("unix:")
            && settings.listen != "systemd"
            && settings.listen.parse::<std::net::SocketAddr>().is_err()
        {
            bail!("--listen {:?} is neither IP:PORT, unix:/path nor systemd", settings.listen);
        }
        mtasts_resolver::cache::check(&settings.cache).context("--cache")?;
        let mut shown = settings.clone();
        shown.default_zone = zones.default.into();
        print!("{}", shown.to_toml());
        eprintln!("mtasts resolver: the configuration is valid");
        return Ok(0);
    }
    let cache =
        mtasts_resolver::cache::open(&settings.cache).await.context("opening the policy cache")?;
    let mut resolver = Resolver::from_config(&config, zones)
        .context("cannot set up the resolver")?
        .with_cache(cache);
    if let Some(path) = &args.tlsrpt_socket {
        resolver = resolver
            .with_tlsrpt_socket(path)
            .with_context(|| format!("--tlsrpt-socket {}", path.display()))?;
    }
    let listener = bind(&settings).await?;
    let http = match settings.http.as_str() {
        "off" | "" => None,
        addr => {
            let addr: std::net::SocketAddr = addr
                .parse()
                .with_context(|| format!("--http {addr:?} is neither IP:PORT nor off"))?;
            Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--http)"))?,
            )
        }
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    eprintln!("mtasts resolver: listening on {}", settings.listen);
    let server = ServerConfig {
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        max_connections: args.max_connections,
        lookup_timeout: Duration::from_secs_f64(args.lookup_timeout),
    };
    let shutdown = Shutdown::on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let shutdown = with_sigterm(shutdown);
    let resolver = Arc::new(resolver);
    let refresher = tokio::spawn(resolver.clone().refresh_loop(
        Duration::from_secs_f64(settings.refresh_every),
        settings.refresh_concurrency,
        shutdown.clone(),
    ));
    let http_task = http.map(|l| {
        if let Ok(addr) = l.local_addr() {
            eprintln!("mtasts resolver: HTTP (/v1/policy/DOMAIN, /metrics) on {addr}");
        }
        let render: mtasts_resolver::http::MetricsRender = Arc::new(move || metrics.render());
        let router = mtasts_resolver::http::router(resolver.clone(), Some(render));
        tokio::spawn(mtasts_resolver::http::serve(l, router, shutdown.clone()))
    });
    serve(listener, resolver, server, shutdown).await.context("serving")?;
    if let Some(t) = http_task {
        let _ = t.await;
    }
    refresher.abort();
    eprintln!("mtasts resolver: stopped");
    Ok(0)
}

fn with_sigterm(ctrl_c: Shutdown) -> Shutdown {
    Shutdown::on(async move {
        let mut ctrl_c = ctrl_c;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c.fired() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.fired().await,
        }
    })
}

/// `--socket-mode`: octal permission bits.
fn socket_mode(text: &str) -> anyhow::Result<u32> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => bail!("--socket-mode {text:?} is not an octal permission such as 0660"),
    }
}

/// `--socket-group`: a number, or a name from /etc/group.
fn group_id(group: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    groups
        .lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .with_context(|| format!("--socket-group {group:?}: no such group in /etc/group"))
}

/// The socket systemd passed (socket activation, `LISTEN_FDS`): TCP or unix.
fn inherited() -> anyhow::Result<Listener> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        bail!(
            "--listen systemd, but no socket was passed (LISTEN_FDS is not set for this process): start it from mtasts-resolver.socket, or give --listen IP:PORT"
        );
    }
    if let Ok(Some(l)) = fds.take_tcp_listener(0) {
        l.set_nonblocking(true)?;
        return Ok(Listener::Tcp(tokio::net::TcpListener::from_std(l)?));
    }
    match fds.take_unix_listener(0) {
        Ok(Some(l)) => {
            l.set_nonblocking(true)?;
            Ok(Listener::Unix(tokio::net::UnixListener::from_std(l)?))
        }
        _ => bail!(
            "--listen systemd: the first passed socket is neither a TCP nor a unix stream listener"
        ),
    }
}

async fn bind(settings: &Config) -> anyhow::Result<Listener> {
    let listen = settings.listen.as_str();
    if listen == "systemd" {
        return inherited();
    }
    if let Some(path) = listen.strip_prefix("unix:") {
        // A stale socket file from a previous run would make bind fail.
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {path}"))?;
        }
        let l = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot listen on unix socket {path}"))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = socket_mode(&settings.socket_mode)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {path} to {mode:o}"))?;
        if let Some(group) = &settings.socket_group {
            let gid = group_id(group)?;
            std::os::unix::fs::chown(path, None, Some(gid))
                .with_context(|| format!("cannot give {path} to group {group} ({gid})"))?;
        }
        return Ok(Listener::Unix(l));
    }
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is neither IP:PORT nor unix:/path"))?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(Listener::Tcp(l))
}

async fn dump(cache: &str) -> anyhow::Result<u8> {
    use std::io::Write;
    let cache = mtasts_resolver::cache::open(cache).await.context("opening the policy cache")?;
    let entries = cache.entries().await.context("reading the policy cache")?;
    let mut out = std::io::stdout().lock();
    for (domain, state) in entries {
        let line = serde_json::json!({
            "domain": domain.as_str(),
            "policy": state.policy.as_ref().map(|c| c.policy.to_string()),
            "mode": state.policy.as_ref().map(|c| c.policy.mode().to_string()),
            "id": state.policy.as_ref().map(|c| c.id.as_str().to_owned()),
            "fetched_at": state.policy.as_ref().map(|c| c.fetched_at),
            "expires_at": state.policy.as_ref().map(mtasts_resolver::lifecycle::CachedPolicy::expires_at),
            "txt_until": state.txt_until,
            "no_policy_until": state.no_policy_until,
            "backoff": state.backoff.as_ref().map(|(id, until)| serde_json::json!({"id": id.as_str(), "until": until})),
        });
        match writeln!(out, "{line}") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            Err(e) => return Err(e).context("writing the dump"),
        }
    }
    Ok(0)
}

async fn purge(cache: &str, domains: &[String]) -> anyhow::Result<u8> {
    let cache = mtasts_resolver::cache::open(cache).await.context("opening the policy cache")?;
    for d in domains {
        let domain = mtasts_proto::DomainName::from_user_input(d)
            .with_context(|| format!("{d:?} is not a domain name"))?;
        cache.remove(&domain).await.context("purging")?;
        eprintln!("purged {}", domain.as_str());
    }
    Ok(0)
}
