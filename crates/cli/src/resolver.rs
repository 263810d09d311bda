//! `mtasts resolver`: the Postfix MTA-STS policy daemon (socketmap), and `mtasts resolver
//! query` to see what it would answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mtasts_proto::postfix::ZoneOptions;
use mtasts_resolver::server::{Listener, ServerConfig, Shutdown, serve};
use mtasts_resolver::{Resolver, Zones};

use crate::net_args::NetArgs;

/// Arguments of `mtasts resolver`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ResolverArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ResolverCommand>,
    /// Where to listen: IP:PORT, or unix:/path/to/socket. Postfix:
    /// `smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix`.
    #[arg(long, env = "MTASTS_RESOLVER_LISTEN", default_value = "127.0.0.1:8461")]
    pub(crate) listen: String,
    /// Seconds an idle Postfix connection is kept open (Postfix closes its side after 10 s).
    #[arg(long, default_value_t = 60.0)]
    pub(crate) idle_timeout: f64,
    /// Connections served at once (the rest wait in the listen queue).
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_connections: usize,
    #[command(flatten)]
    pub(crate) zone: ZoneArgs,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// Options of the default zone (every socketmap name).
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
}

impl ZoneArgs {
    fn options(&self) -> ZoneOptions {
        ZoneOptions {
            strict_testing: self.strict_testing,
            require_sni: !self.no_sni,
            tlsrpt: self.tlsrpt,
            wildcard_dot: self.wildcard_dot,
        }
    }
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
        #[command(flatten)]
        zone: ZoneArgs,
        #[command(flatten)]
        net: NetArgs,
    },
}

fn zones(args: &ZoneArgs) -> Zones {
    Zones { default: args.options(), named: Default::default() }
}

pub(crate) async fn run(args: ResolverArgs) -> anyhow::Result<u8> {
    if let Some(ResolverCommand::Query { key, map, zone, net }) = args.command {
        let resolver = Resolver::from_config(&net.config()?, zones(&zone))
            .context("cannot set up the resolver")?;
        println!("{}", resolver.answer(&map, &key).await.reply());
        return Ok(0);
    }
    let config = args.net.config()?;
    if !(args.idle_timeout.is_finite() && args.idle_timeout > 0.0) {
        bail!("--idle-timeout must be a positive number of seconds");
    }
    let resolver =
        Resolver::from_config(&config, zones(&args.zone)).context("cannot set up the resolver")?;
    let listener = bind(&args.listen).await?;
    eprintln!("mtasts resolver: listening on {}", args.listen);
    let server = ServerConfig {
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        max_connections: args.max_connections,
    };
    let shutdown = Shutdown::on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let shutdown = with_sigterm(shutdown);
    serve(listener, Arc::new(resolver), server, shutdown).await.context("serving")?;
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

async fn bind(listen: &str) -> anyhow::Result<Listener> {
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
