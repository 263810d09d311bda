//! `mtasts generate DOMAIN --mx HOST...`: the policy file and DNS records to publish, offline.

use anyhow::Context;
use clap::{Args, ValueEnum};
use mtasts_check::render::{END_CAPTION, POLICY_CAPTION, RECORDS_CAPTION};
use mtasts_proto::generate::{
    ENFORCE_MAX_AGE, STARTER_MAX_AGE, default_rua, deployment, policy_id,
};
use mtasts_proto::{DomainName, Mode, PolicyId};

/// The policy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ModeArg {
    /// Senders deliver even when TLS fails and report failures by TLS-RPT: start here.
    Testing,
    /// Senders deliver only over verified TLS to the listed MX hosts.
    Enforce,
    /// Withdraws a policy (RFC 8461 §8.3); needs no --mx.
    None,
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Only {
    /// Just the policy file (e.g. `> mta-sts.txt`).
    Policy,
    /// Just the DNS records, as zone-file lines (`mtasts lint` reads them back).
    Records,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GenerateFormat {
    /// The steps to publish, with the policy and records to paste.
    Text,
    /// One JSON object: policy, id, policy_url, sts_txt, tlsrpt_txt.
    Json,
}

/// Arguments of `mtasts generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The mail domain (IDNs are accepted and converted to A-labels).
    #[arg(value_name = "DOMAIN")]
    pub(crate) domain: String,
    /// An MX host the policy lists (repeatable; `*.example.com` covers exactly one label below
    /// example.com, RFC 8461 §4.1). Required unless --mode none.
    #[arg(long, value_name = "HOST")]
    pub(crate) mx: Vec<String>,
    /// The policy mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Testing)]
    pub(crate) mode: ModeArg,
    /// How long senders cache the policy: seconds, or a number with s, m, h, d or w (at most
    /// 31557600 s, about a year). Default: 1d for testing (mistakes expire quickly), 1w for
    /// enforce and none.
    #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
    pub(crate) max_age: Option<u32>,
    /// Where senders send TLS-RPT reports (repeatable): `mailto:` or `https:` (RFC 8460 §3).
    /// Default: mailto:tlsrpt@DOMAIN.
    #[arg(long, value_name = "URI")]
    pub(crate) rua: Vec<String>,
    /// Print no TLS-RPT record.
    #[arg(long, conflicts_with = "rua")]
    pub(crate) no_tlsrpt: bool,
    /// The policy id (1 to 32 letters and digits); default: the current UTC time,
    /// YYYYMMDDHHMMSS. It must change whenever the policy changes (RFC 8461 §3.1).
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
    /// Print only the policy file or only the records.
    #[arg(long, value_enum, conflicts_with = "format")]
    pub(crate) only: Option<Only>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GenerateFormat::Text)]
    pub(crate) format: GenerateFormat,
}

/// `--max-age`: seconds, or a number with a unit.
fn parse_max_age(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let n: u64 =
        digits.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 86400, 1d, 1w)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use s, m, h, d or w")),
    };
    let secs = n.saturating_mul(scale);
    u32::try_from(secs)
        .ok()
        .filter(|&v| v <= mtasts_proto::policy::MAX_AGE_MAX)
        .ok_or_else(|| format!("{s} is {secs} s; max_age is at most 31557600 s (RFC 8461 §3.2)"))
}

/// Exit status: 0 printed, 2 invalid arguments.
pub(crate) fn run(args: GenerateArgs) -> anyhow::Result<u8> {
    let domain = DomainName::from_user_input(args.domain.trim())
        .map_err(|e| anyhow::anyhow!("{:?} is not a domain name: {e}", args.domain))?;
    let mode = match args.mode {
        ModeArg::Testing => Mode::Testing,
        ModeArg::Enforce => Mode::Enforce,
        ModeArg::None => Mode::None,
    };
    if args.mx.is_empty() && mode != Mode::None {
        anyhow::bail!(
            "--mx is required: the policy lists the hosts senders may deliver to (e.g. --mx mx1.{0} --mx mx2.{0}); see `dig +short MX {0}`",
            domain.as_str()
        );
    }
    let max_age = args.max_age.unwrap_or(if mode == Mode::Testing {
        STARTER_MAX_AGE
    } else {
        ENFORCE_MAX_AGE
    });
    let id = match &args.id {
        Some(id) => PolicyId::new(id).map_err(|e| anyhow::anyhow!("--id {id:?}: {e}"))?,
        None => policy_id(time::OffsetDateTime::now_utc()),
    };
    let rua = if args.no_tlsrpt {
        Vec::new()
    } else if args.rua.is_empty() {
        vec![default_rua(&domain)]
    } else {
        args.rua.clone()
    };
    let hosts: Vec<String> = args.mx.iter().map(|h| crate::lint::mx_host(h)).collect();
    let d =
        deployment(&domain, mode, max_age, &hosts, &rua, id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = d.policy.to_string();
    let mut records = vec![d.sts_txt.clone()];
    records.extend(d.tlsrpt_txt.clone());
    let out = match (args.only, args.format) {
        (Some(Only::Policy), _) => policy,
        (Some(Only::Records), _) => records.iter().map(|r| format!("{r}\n")).collect(),
        (None, GenerateFormat::Json) => {
            let doc = serde_json::json!({
                "domain": domain.as_str(),
                "mode": mode.to_string(),
                "max_age": max_age,
                "policy_host": domain.policy_host(),
                "policy_url": domain.policy_url(),
                "policy": policy,
                "id": d.id.as_str(),
                "sts_txt": d.sts_txt,
                "tlsrpt_txt": d.tlsrpt_txt,
            });
            serde_json::to_string_pretty(&doc).context("encoding JSON")? + "\n"
        }
        (None, GenerateFormat::Text) => {
            let mut s = format!(
                "MTA-STS for {}: mode: {mode}, max_age: {max_age}\n\
                 Publish in this order (RFC 8461 §8.1: the policy before the TXT record that announces it):\n\
                 1. an HTTPS host {} (A/AAAA records, or a CNAME to your policy host) with a certificate valid for that name\n\
                 2. this file at {}, served with Content-Type: text/plain\n\
                 {POLICY_CAPTION}\n{policy}{END_CAPTION}\n\
                 3. these DNS records\n{RECORDS_CAPTION}\n",
                domain.as_str(),
                domain.policy_host(),
                domain.policy_url(),
            );
            for r in &records {
                s.push_str(r);
                s.push('\n');
            }
            s.push_str(END_CAPTION);
            s.push('\n');
            s.push_str(&format!(
                "Then check it: mtasts check {}. Change the id whenever the policy changes.\n",
                domain.as_str()
            ));
            s
        }
    };
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e).context("writing the output"),
    }
}
