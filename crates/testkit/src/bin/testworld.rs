//! `testworld`: runs a test world (generated domains and/or the named scenarios) in its own
//! process, for benchmarks and manual testing.
//!
//! ```text
//! testworld --generated 1000 --seed 1 --standard-ports \
//!     --domains-out domains.txt --env-out world.env [--manifest-out manifest.tsv] [--scenarios]
//! ```
//!
//! Writes the files, prints `ready` on stdout, then serves until SIGTERM or SIGINT, or until
//! its standard input is closed when that is a pipe or socket (so a script that holds the
//! write end cannot leave a world behind, even if it is killed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fmt::Write as _,
    io::{Read, Write},
    os::unix::fs::FileTypeExt,
    path::PathBuf,
    process::ExitCode,
    time::Instant,
};

use clap::Parser;
use mtasts_testkit::{
    Scenario, World,
    generated::{self, GeneratedDomain},
    world::{DEFAULT_CERT_GROUP, DEFAULT_MX_CERT_GROUP},
};

/// Runs a hermetic MTA-STS test world on loopback until stopped.
#[derive(Debug, Parser)]
#[command(name = "testworld")]
struct Args {
    /// Number of generated domains (d000000.bench.test, …).
    #[arg(long, default_value_t = 0)]
    generated: usize,
    /// Seed of the generated mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also install every named scenario (`mtasts demo --list`).
    #[arg(long)]
    scenarios: bool,
    /// DNS on 127.A.B.253:53, HTTPS on 443, SMTP on 25 (needs root).
    #[arg(long)]
    standard_ports: bool,
    /// Virtual hosting of MX names on a pool of SMTP servers (always on with --generated).
    #[arg(long)]
    shared_hosts: bool,
    /// Policy host names per certificate with shared hosts.
    #[arg(long, default_value_t = DEFAULT_CERT_GROUP)]
    cert_group: usize,
    /// MX host names per certificate with shared hosts.
    #[arg(long, default_value_t = DEFAULT_MX_CERT_GROUP)]
    mx_cert_group: usize,
    /// Keep logs of every DNS query, HTTPS request and SMTP session (memory grows).
    #[arg(long)]
    record: bool,
    /// Write the domain list here, one per line.
    #[arg(long)]
    domains_out: Option<PathBuf>,
    /// Write a shell environment file here (MTASTS_DNS_SERVER, MTASTS_TRUST_ROOTS, …).
    #[arg(long)]
    env_out: Option<PathBuf>,
    /// Write `domain<TAB>profile<TAB>mx-pool` per domain here.
    #[arg(long)]
    manifest_out: Option<PathBuf>,
    /// Do not stop when standard input closes.
    #[arg(long)]
    ignore_stdin: bool,
    /// Also serve the world's DNS data from a real `nsd` process with its default response
    /// rate limiting (`mtasts_testkit::nsd`), and name that server in the env file.
    #[arg(long)]
    nsd: bool,
}

fn vm_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn stdin_is_pipe() -> bool {
    std::fs::metadata("/proc/self/fd/0")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let mut builder = World::builder();
    let mut manifest = String::new();
    if args.generated > 0 {
        builder = builder.generated(args.generated, args.seed);
        if args.manifest_out.is_some() {
            for i in 0..args.generated {
                let GeneratedDomain { spec, profile, mx_pool } =
                    generated::generate_one(i, args.seed);
                let _ = writeln!(manifest, "{}\t{}\t{mx_pool:?}", spec.name, profile.name());
            }
        }
    }
    if args.scenarios {
        builder = builder.all_scenarios();
        for s in Scenario::ALL {
            let _ = writeln!(manifest, "{}\tscenario:{}\t-", s.domain(), s.name());
        }
    }
    if args.standard_ports {
        builder = builder.standard_ports();
    }
    if args.shared_hosts {
        builder = builder.shared_hosts();
    }
    if !args.record {
        builder = builder.quiet();
    }
    if args.nsd {
        builder = builder.keep_zone_file();
    }
    let world = builder
        .cert_group(args.cert_group)
        .mx_cert_group(args.mx_cert_group)
        .try_build()
        .await
        .map_err(|e| format!("cannot build the world: {e}"))?;
    let built = started.elapsed();

    if let Some(path) = &args.domains_out {
        let mut list = world.domains().join("\n");
        list.push('\n');
        std::fs::write(path, list).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.manifest_out {
        std::fs::write(path, &manifest).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let nsd = match (args.nsd, world.zone_file()) {
        (true, Some(zone)) => {
            Some(mtasts_testkit::nsd::Nsd::start(zone).await.map_err(|e| format!("nsd: {e}"))?)
        }
        _ => None,
    };
    let dns = nsd.as_ref().map_or_else(|| world.dns_addr(), |n| n.addr());
    let ca = world.ca_pem_path().display().to_string();
    let (a, b) = world.block();
    if let Some(path) = &args.env_out {
        let mut env = String::new();
        let vars = [
            ("MTASTS_DNS_SERVER", dns.to_string()),
            ("MTASTS_TRUST_ROOTS", ca.clone()),
            ("MTASTS_HTTPS_PORT", world.https_port().to_string()),
            ("MTASTS_SMTP_PORT", world.smtp_port().to_string()),
            ("TESTWORLD_DNS_IP", dns.ip().to_string()),
            ("TESTWORLD_DNS_PORT", dns.port().to_string()),
            ("TESTWORLD_BLOCK", format!("127.{a}.{b}")),
            ("TESTWORLD_HTTPS_ADDR", world.https_addr().to_string()),
            ("TESTWORLD_DOMAINS", world.domains().len().to_string()),
            ("TESTWORLD_PID", std::process::id().to_string()),
            ("REQUESTS_CA_BUNDLE", ca.clone()),
            ("SSL_CERT_FILE", ca.clone()),
        ];
        for (k, v) in vars {
            let _ = writeln!(env, "export {k}={}", quote(&v));
        }
        std::fs::write(path, env).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "testworld: {} domains in 127.{a}.{b}.0/24, DNS {dns}, HTTPS port {}, SMTP port {}, \
         CA {ca}; built in {:.1} s, RSS {} MiB (peak {} MiB)",
        world.domains().len(),
        world.https_port(),
        world.smtp_port(),
        built.as_secs_f64(),
        vm_kib("VmRSS:").unwrap_or(0) / 1024,
        vm_kib("VmHWM:").unwrap_or(0) / 1024,
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }

    let stdin_closed = async {
        if args.ignore_stdin || !stdin_is_pipe() {
            return std::future::pending::<()>().await;
        }
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        })
        .await;
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let why = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = stdin_closed => "standard input closed",
    };
    eprintln!("testworld: stopping ({why}); peak RSS {} MiB", vm_kib("VmHWM:").unwrap_or(0) / 1024);
    drop(world);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("testworld: cannot start tokio: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(run(args));
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testworld: {e}");
            ExitCode::from(2)
        }
    }
}
