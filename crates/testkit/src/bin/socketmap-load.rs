//! `socketmap-load`: a closed-loop load generator for Postfix socketmap daemons
//! (`mtasts resolver`, postfix-mta-sts-resolver), for benchmarks.
//!
//! ```text
//! socketmap-load --addr 127.0.0.1:8461 --map postfix --keys domains.txt \
//!     --connections 8 --duration 10 --warmup 2          # one JSON line of figures
//! socketmap-load --addr … --keys domains.txt --once     # every key once, then the figures
//! socketmap-load --addr … --keys domains.txt --print    # every key once: key<TAB>reply
//! ```
//!
//! Closed loop: each of the `--connections` connections sends one request, waits for its
//! reply, then sends the next; so the rate is what the daemon sustains at that concurrency,
//! and the latency is each request's round trip. Keys are taken in turn from the key file
//! (one shared cursor, wrapping around). Output (one line): `requests`, `seconds`, `rps`,
//! `p50_us`, `p90_us`, `p99_us`, `max_us`, `errors`, and `replies` counted by first word
//! (`OK`, `NOTFOUND`, `TEMP`, `PERM`, `other`). With `--once` every key is asked exactly once
//! (for cold-cache timing); `--print` does the same and prints `key<TAB>reply` lines in key
//! file order instead of the figures (to compare two daemons' answers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use mtasts_proto::socketmap::{decode, encode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Largest reply accepted (Postfix's socketmap limit is 100 000 bytes).
const REPLY_MAX_BYTES: usize = 100_000;

/// Drives a socketmap server with a closed-loop load and reports rate and latency.
#[derive(Debug, Parser)]
#[command(name = "socketmap-load")]
struct Args {
    /// The server, TCP IP:PORT.
    #[arg(long)]
    addr: SocketAddr,
    /// The socketmap name sent before each key.
    #[arg(long, default_value = "postfix")]
    map: String,
    /// Keys, one per line (blank lines ignored).
    #[arg(long)]
    keys: PathBuf,
    /// Parallel connections, each with one request outstanding at a time.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds to measure (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many measured requests instead of after --duration.
    #[arg(long)]
    requests: Option<usize>,
    /// Ask every key exactly once (no warm-up), then report; for cold-cache timing.
    #[arg(long)]
    once: bool,
    /// Ask every key exactly once and print `key<TAB>reply` per key, in key file order.
    #[arg(long)]
    print: bool,
    /// Seconds to wait for one reply before counting an error and reconnecting.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

/// Shared between the connections.
struct Shared {
    keys: Vec<String>,
    map: String,
    addr: SocketAddr,
    timeout: Duration,
    cursor: AtomicUsize,
    /// Set once the warm-up is over: from then on latencies are recorded.
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Each key once: the cursor does not wrap, and replies are kept.
    once: bool,
    /// Measured requests to stop after.
    limit: Option<usize>,
    done: AtomicUsize,
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    by_word: [u64; 5],
    replies: Vec<(usize, String)>,
}

const WORDS: [&str; 5] = ["OK", "NOTFOUND", "TEMP", "PERM", "other"];

fn word_index(reply: &str) -> usize {
    let word = reply.split(' ').next().unwrap_or("");
    WORDS[..4].iter().position(|w| *w == word).unwrap_or(4)
}

/// One request on `stream`: the reply payload.
async fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(frame) = decode(buf, REPLY_MAX_BYTES).map_err(|e| format!("reply: {e}"))? {
            if frame.consumed != buf.len() {
                return Err("reply: bytes after the netstring".into());
            }
            return String::from_utf8(buf[frame.payload].to_vec())
                .map_err(|_| "reply: not UTF-8".to_owned());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

async fn connection(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(1024);
    let mut request = Vec::with_capacity(256);
    while !shared.stop.load(Ordering::Relaxed) {
        let i = shared.cursor.fetch_add(1, Ordering::Relaxed);
        if shared.once && i >= shared.keys.len() {
            break;
        }
        let key = &shared.keys[i % shared.keys.len()];
        request.clear();
        request.extend_from_slice(&encode(&format!("{} {key}", shared.map)));
        let s = match stream.take() {
            Some(s) => s,
            None => match connect(shared.addr).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("socketmap-load: {e}");
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let mut s = s;
        let started = Instant::now();
        let result =
            tokio::time::timeout(shared.timeout, round_trip(&mut s, &request, &mut buf)).await;
        let elapsed = started.elapsed();
        let measuring = shared.measuring.load(Ordering::Relaxed);
        match result {
            Ok(Ok(reply)) => {
                stream = Some(s);
                if measuring {
                    tally.latencies_us.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                    tally.by_word[word_index(&reply)] += 1;
                    if shared.once {
                        tally.replies.push((i, reply));
                    }
                    let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
                    if shared.limit.is_some_and(|l| done >= l) {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            Ok(Err(e)) => {
                eprintln!("socketmap-load: {key}: {e}");
                if measuring {
                    tally.errors += 1;
                }
                if shared.once {
                    tally.replies.push((i, format!("ERROR {e}")));
                }
            }
            Err(_) => {
                eprintln!("socketmap-load: {key}: no reply within {:?}", shared.timeout);
                if measuring {
                    tally.errors += 1;
                }
                if shared.once {
                    tally.replies.push((i, "ERROR timeout".into()));
                }
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(args: Args) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&args.keys).map_err(|e| format!("{}: {e}", args.keys.display()))?;
    let keys: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if keys.is_empty() {
        return Err(format!("{}: no keys", args.keys.display()));
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.warmup >= 0.0) {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    let once = args.once || args.print;
    let shared = Arc::new(Shared {
        keys,
        map: args.map.clone(),
        addr: args.addr,
        timeout: Duration::from_secs_f64(args.timeout),
        cursor: AtomicUsize::new(0),
        measuring: AtomicBool::new(once || args.warmup == 0.0),
        stop: AtomicBool::new(false),
        once,
        limit: args.requests,
        done: AtomicUsize::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let connections = args.connections.max(1);
    let mut started = Instant::now();
    for _ in 0..connections {
        tasks.spawn(connection(shared.clone()));
    }
    if !once {
        if args.warmup > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
            shared.measuring.store(true, Ordering::Relaxed);
        }
        started = Instant::now();
        if args.requests.is_none() {
            let shared = shared.clone();
            let duration = Duration::from_secs_f64(args.duration);
            tokio::spawn(async move {
                tokio::time::sleep(duration).await;
                shared.stop.store(true, Ordering::Relaxed);
            });
        }
    }
    let mut all = Tally::default();
    while let Some(t) = tasks.join_next().await {
        let t = t.map_err(|e| e.to_string())?;
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        for (a, b) in all.by_word.iter_mut().zip(t.by_word) {
            *a += b;
        }
        all.replies.extend(t.replies);
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.print {
        use std::io::Write;
        all.replies.sort_by_key(|(i, _)| *i);
        let mut out = std::io::stdout().lock();
        for (i, reply) in &all.replies {
            writeln!(out, "{}\t{reply}", shared.keys[*i]).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    all.latencies_us.sort_unstable();
    let l = &all.latencies_us;
    let n = l.len();
    #[allow(clippy::cast_precision_loss)]
    let rps = if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let replies: Vec<String> =
        WORDS.iter().zip(all.by_word).map(|(w, c)| format!("\"{w}\":{c}")).collect();
    println!(
        "{{\"connections\":{connections},\"requests\":{n},\"seconds\":{seconds:.3},\"rps\":{rps:.1},\
         \"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"errors\":{},\"replies\":{{{}}}}}",
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        l.last().copied().unwrap_or(0),
        all.errors,
        replies.join(","),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One thread: the generator takes one core at most, leaving the rest to the daemon.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("socketmap-load: cannot start tokio: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socketmap-load: {e}");
            ExitCode::from(2)
        }
    }
}
