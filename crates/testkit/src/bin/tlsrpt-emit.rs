//! `tlsrpt-emit`: sends libtlsrpt delivery-result datagrams to a TLSRPT collector's unix
//! datagram socket (`mtasts reporter collect`, sys4's tlsrpt-collectd), for benchmarks.
//!
//! ```text
//! tlsrpt-emit SOCKET N [--domains D] [--fail-percent P] [--nonblocking] [--seed S]
//! ```
//!
//! Generates `N` deterministic datagrams (the same `--seed` gives the same bytes) over `D`
//! policy domains (default 2000, `d00000.example` …), each with one `sts` policy; `P` % of
//! them (default 10) end in failure and carry one failure detail (a code, the sending and
//! receiving IPs, MX name, HELO, additional information and reason, drawn from small sets so
//! that a collector aggregates them). The JSON is written exactly as libtlsrpt writes it
//! (`{"dpv": "1","d": "…","pr": "…","policies":[{…}]}`: `": "` after string values, no
//! space after numbers). All datagrams are built in memory first; then the clock starts and
//! they are sent with `send_to`: blocking (a full receive queue makes the sender wait, so
//! nothing is lost), or with `--nonblocking` like libtlsrpt, where a full queue (`EAGAIN`)
//! drops the datagram and counts it as lost, with no retry.
//!
//! Prints one JSON line: `{"attempted":N,"sent":…,"lost":…,"failures":…,"bytes":…,
//! "seconds":…,"per_second":…,"started_at":…}`; `sent` is what the kernel accepted,
//! `failures` how many of the accepted datagrams end in failure, `bytes` their total size,
//! `per_second` accepted datagrams per second of sending, `started_at` the wall clock (unix
//! seconds) of the first send, for timing how long a collector takes to store them all.

use std::error::Error;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mtasts_testkit::generated::Rng;

const USAGE: &str =
    "usage: tlsrpt-emit SOCKET N [--domains D] [--fail-percent P] [--nonblocking] [--seed S]";

/// libtlsrpt failure codes (`tlsrpt_failure_t`) a generated failure is drawn from.
const CODES: [u32; 6] = [202, 203, 204, 205, 301, 303];

struct Args {
    socket: PathBuf,
    count: u64,
    domains: u64,
    fail_percent: u64,
    nonblocking: bool,
    seed: u64,
}

fn number(name: &str, value: Option<String>) -> Result<u64, Box<dyn Error>> {
    let value = value.ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
    value.parse().map_err(|e| format!("{name} {value:?}: {e}\n{USAGE}").into())
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut positional = Vec::new();
    let mut args = Args {
        socket: PathBuf::new(),
        count: 0,
        domains: 2000,
        fail_percent: 10,
        nonblocking: false,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--domains" => args.domains = number("--domains", it.next())?,
            "--fail-percent" => args.fail_percent = number("--fail-percent", it.next())?,
            "--seed" => args.seed = number("--seed", it.next())?,
            "--nonblocking" => args.nonblocking = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}").into()),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    args.socket = positional.next().ok_or(USAGE)?.into();
    args.count = number("N", positional.next())?;
    if positional.next().is_some() {
        return Err(USAGE.into());
    }
    if args.domains == 0 {
        return Err("--domains must be at least 1".into());
    }
    if args.fail_percent > 100 {
        return Err("--fail-percent must be 0 to 100".into());
    }
    Ok(args)
}

/// Appends `s` as a JSON string (the generated strings are ASCII; escapes what JSON needs).
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_str_array(out: &mut String, items: &[&str]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

/// One datagram, in libtlsrpt's byte layout; returns it and whether it ends in failure.
fn datagram(rng: &mut Rng, domains: u64, fail_percent: u64) -> (Vec<u8>, bool) {
    let n = rng.below(domains);
    let domain = format!("d{n:05}.example");
    let mx = format!("mx{}.{domain}", n % 3);
    let failed = rng.below(100) < fail_percent;
    let mut out = String::with_capacity(if failed { 640 } else { 384 });
    out.push_str("{\"dpv\": \"1\",\"d\": ");
    push_str(&mut out, &domain);
    out.push_str(",\"pr\": ");
    push_str(&mut out, &format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"));
    out.push_str(",\"policies\":[{\"policy-type\":2,\"policy-domain\": ");
    push_str(&mut out, &domain);
    out.push_str(",\"policy-string\":");
    let mx_line = format!("mx: *.{domain}");
    push_str_array(&mut out, &["version: STSv1", "mode: enforce", &mx_line, "max_age: 604800"]);
    out.push_str(",\"mx-host\":");
    push_str_array(&mut out, &[&format!("*.{domain}")]);
    if failed {
        let code = CODES[(rng.below(CODES.len() as u64)) as usize];
        let sending = format!("192.0.2.{}", 1 + rng.below(4));
        let receiving = format!("198.51.100.{}", 1 + n % 200);
        let (additional, reason) = match code {
            202 => ("certificate name does not match", "X509_V_ERR_HOSTNAME_MISMATCH"),
            203 => (
                "unable to get local issuer certificate",
                "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            ),
            204 => ("certificate has expired", "X509_V_ERR_CERT_HAS_EXPIRED"),
            205 => ("handshake failure", "SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE"),
            301 => ("policy fetch failed", "HTTP 404"),
            _ => ("certificate not valid for the policy host", "X509_V_ERR_CERT_UNTRUSTED"),
        };
        let _ = write!(out, ",\"failure-details\":[{{\"c\":{code},\"s\": ");
        push_str(&mut out, &sending);
        out.push_str(",\"n\": ");
        push_str(&mut out, &mx);
        out.push_str(",\"h\": ");
        push_str(&mut out, &mx);
        out.push_str(",\"r\": ");
        push_str(&mut out, &receiving);
        out.push_str(",\"a\": ");
        push_str(&mut out, additional);
        out.push_str(",\"f\": ");
        push_str(&mut out, reason);
        out.push_str("}],\"t\":1,\"f\":1}]}");
    } else {
        out.push_str(",\"t\":0,\"f\":0}]}");
    }
    (out.into_bytes(), failed)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let mut rng = Rng::new(args.seed);
    let datagrams: Vec<(Vec<u8>, bool)> =
        (0..args.count).map(|_| datagram(&mut rng, args.domains, args.fail_percent)).collect();

    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(args.nonblocking)?;
    let (mut sent, mut lost, mut failures, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let start = Instant::now();
    for (bytes_of, failed) in &datagrams {
        match socket.send_to(bytes_of, &args.socket) {
            Ok(_) => {
                sent += 1;
                failures += u64::from(*failed);
                bytes += bytes_of.len() as u64;
            }
            Err(e) if args.nonblocking && e.kind() == ErrorKind::WouldBlock => lost += 1,
            Err(e) => {
                return Err(
                    format!("send to {} (after {sent} sent): {e}", args.socket.display()).into()
                );
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let per_second = if seconds > 0.0 { sent as f64 / seconds } else { 0.0 };
    println!(
        "{{\"attempted\":{},\"sent\":{sent},\"lost\":{lost},\"failures\":{failures},\"bytes\":{bytes},\"seconds\":{seconds:.3},\"per_second\":{per_second:.0},\"started_at\":{started_at:.6}}}",
        args.count
    );
    Ok(())
}
