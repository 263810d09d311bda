//! Where alert mail goes (`serve`'s monitoring, `report ingest|receive` alerts): the same four
//! options on both commands.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use mtasts_net::submit::{Mailer, Relay, RelayTls, Submitter};

/// Alert mail options.
#[derive(Debug, Clone, Args)]
pub(crate) struct AlertMailArgs {
    /// Also mail alerts to these addresses (comma separated), through --alert-smtp.
    #[arg(long, env = "MTASTS_ALERT_MAIL_TO", value_delimiter = ',')]
    alert_mail_to: Vec<String>,
    /// The sender of alert mail (default: mtasts@ this host's name).
    #[arg(long, env = "MTASTS_ALERT_MAIL_FROM")]
    alert_mail_from: Option<String>,
    /// The relay alert mail goes through: HOST or HOST:PORT (default port 25).
    #[arg(long, env = "MTASTS_ALERT_SMTP", default_value = "localhost:25")]
    alert_smtp: String,
    /// TLS to the relay: `required` (STARTTLS, its certificate verified against the trust
    /// roots), `opportunistic` (STARTTLS when offered) or `none` (a relay on loopback).
    #[arg(long, env = "MTASTS_ALERT_SMTP_TLS", default_value = "opportunistic", value_parser = ["required", "opportunistic", "none"])]
    alert_smtp_tls: String,
}

/// A relay from `HOST`, `HOST:PORT` or `[IPv6]:PORT` (port 25 by default) and a TLS setting
/// (`required`, `opportunistic`, `none`); `flag` names the option in errors.
pub(crate) fn relay(spec: &str, tls: &str, flag: &str) -> anyhow::Result<Relay> {
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("{flag} {spec:?}: the port must be a number"))?,
        ),
        _ => (spec.to_owned(), 25),
    };
    let tls = match tls {
        "required" => RelayTls::Required,
        "none" => RelayTls::None,
        _ => RelayTls::Opportunistic,
    };
    Ok(Relay { host, port, tls })
}

/// This machine's host name.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl AlertMailArgs {
    /// The mailer these options describe, verifying the relay against `trust_roots`
    /// (`webpki`, `system` or a PEM file); `None` without --alert-mail-to.
    pub(crate) fn mailer(&self, trust_roots: &str) -> anyhow::Result<Option<Mailer>> {
        if self.alert_mail_to.is_empty() {
            return Ok(None);
        }
        for a in &self.alert_mail_to {
            if !a.contains('@') || a.contains(['<', '>', ',', ' ', '\r', '\n']) {
                bail!("--alert-mail-to {a:?} is not a mail address");
            }
        }
        let relay = relay(&self.alert_smtp, &self.alert_smtp_tls, "--alert-smtp")?;
        let roots = mtasts_net::TrustRoots::from_arg(trust_roots)
            .load()
            .context("cannot load the trust roots for the mail relay")?;
        let me = host_name();
        let submitter = Submitter::new(relay, roots, me.clone(), Duration::from_secs(30));
        Ok(Some(Mailer {
            submitter,
            from: self.alert_mail_from.clone().unwrap_or_else(|| format!("mtasts@{me}")),
            to: self.alert_mail_to.clone(),
        }))
    }
}
