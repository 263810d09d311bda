//! `mtasts demo`: the checker against the built-in test world, no network needed.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mtasts_check::{CheckOptions, Checker};
use mtasts_net::{HickoryDns, NetConfig};
use mtasts_testkit::{Scenario, World};

use crate::check::{Color, Format};

/// Arguments of `mtasts demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Only these scenarios (names as listed by --list).
    pub(crate) scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
    /// Show only warnings and errors (no ok or info lines, no empty sections).
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    if args.list {
        for s in Scenario::ALL {
            println!("{:<28} {}", s.name(), s.domain());
        }
        return Ok(0);
    }
    let chosen: Vec<Scenario> = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|n| {
                Scenario::ALL
                    .iter()
                    .copied()
                    .find(|s| s.name() == n)
                    .with_context(|| format!("no scenario {n:?} (see mtasts demo --list)"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut builder = World::builder();
    for s in &chosen {
        builder = builder.scenario(*s);
    }
    let world = builder.build().await;
    eprintln!(
        "test world: DNS {}, HTTPS port {}, SMTP port {}, CA {}",
        world.dns_addr(),
        world.https_port(),
        world.smtp_port(),
        world.ca_pem_path().display()
    );
    let config = NetConfig::private_world(
        world.dns_addr(),
        world.ca_pem_path(),
        world.https_port(),
        world.smtp_port(),
        "demo.mtasts.test",
    );
    let dns = Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns)?);
    let checker = Checker::with_dns(&config, dns, CheckOptions::default())?;
    let domains = chosen.iter().map(Scenario::domain).collect();
    let mut tally = crate::check::Tally::default();
    crate::check::run_tallied(
        &checker,
        domains,
        args.format,
        args.color,
        args.quiet,
        16,
        &mut tally,
    )
    .await?;
    // The scenarios are meant to fail: the demo ran, so it succeeded (exit 0); `check` is the
    // command whose exit status reports the findings.
    eprintln!(
        "demo: {} checked: {} without errors, {} with errors (as designed), {} could not be checked (the DNS-failure scenarios)",
        if chosen.len() == 1 {
            "1 scenario".to_owned()
        } else {
            format!("{} scenarios", chosen.len())
        },
        tally.clean,
        tally.problems,
        tally.could_not_check
    );
    Ok(0)
}
