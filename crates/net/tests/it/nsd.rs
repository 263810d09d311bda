//! The DNS client against a real, rate-limiting authoritative server: Debian's `nsd` with its
//! default response rate limiting (RRL, 200 answers/s per source /24 and kind; negative
//! answers counted per zone), serving a generated world of 400 domains in one zone.
//!
//! Each "scan" is what `mtasts scan --no-smtp` asks for a domain, 64 domains at a time, with a
//! fresh client (as a fresh `mtasts scan` process has), 20 scans one after the other: the
//! `_mta-sts` TXT record, the policy host's addresses, the MX set and the MX hosts'
//! addresses, the `_smtp._tls` TXT record. nsd leaves a share of the NXDOMAIN/NODATA answers
//! unsent (and truncates every second one it blocks): the client must resend soon, use TCP
//! when invited, and slow down, so that no scan pays the whole DNS timeout.
//!
//! Skips when nsd is not installed, unless `CI=true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mtasts_net::dns::{DnsClient, HickoryDns, resolve_mx};
use mtasts_testkit::World;
use mtasts_testkit::nsd::{Nsd, NsdError};

/// Domains per scan.
const DOMAINS: usize = 400;
/// Scans in a row.
const SCANS: usize = 20;
/// Domains looked up at once (`mtasts scan --concurrency`).
const CONCURRENCY: usize = 64;
/// The longest a scan may take.
const SCAN_LIMIT: Duration = Duration::from_secs(3);
/// `mtasts scan --dns-timeout` default.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcome counts of one scan (a temporary failure is a lookup that ran out of time).
#[derive(Debug, Default)]
struct ScanCount {
    lookups: usize,
    temporary: usize,
}

async fn lookup_domain(dns: &dyn DnsClient, d: &str) -> ScanCount {
    let mut c = ScanCount::default();
    let mut note = |temporary: bool| {
        c.lookups += 1;
        c.temporary += usize::from(temporary);
    };
    let (sts, policy_host, tlsrpt_name) =
        (format!("_mta-sts.{d}"), format!("mta-sts.{d}"), format!("_smtp._tls.{d}"));
    let domain = mtasts_proto::DomainName::parse_ascii(d).expect("a generated domain name");
    let (txt, policy_ip, mx, tlsrpt) = tokio::join!(
        dns.txt(&sts),
        dns.ip(&policy_host),
        resolve_mx(dns, &domain),
        dns.txt(&tlsrpt_name),
    );
    note(txt.as_ref().is_err_and(|e| e.is_temporary()));
    note(policy_ip.as_ref().is_err_and(|e| e.is_temporary()));
    note(tlsrpt.as_ref().is_err_and(|e| e.is_temporary()));
    match mx {
        Ok(set) => {
            note(false);
            for host in set.hosts {
                let r = dns.ip(&host.exchange).await;
                note(r.is_err_and(|e| e.is_temporary()));
            }
        }
        Err(e) => note(e.is_temporary()),
    }
    c
}

async fn scan(dns: Arc<dyn DnsClient>, domains: &[String]) -> (Duration, ScanCount) {
    let started = Instant::now();
    let counts: Vec<ScanCount> = futures::stream::iter(domains.iter().cloned())
        .map(|d| {
            let dns = Arc::clone(&dns);
            async move { lookup_domain(dns.as_ref(), &d).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let total = counts.iter().fold(ScanCount::default(), |mut t, c| {
        t.lookups += c.lookups;
        t.temporary += c.temporary;
        t
    });
    (started.elapsed(), total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_against_rate_limiting_nsd_never_wait_out_the_timeout() {
    let world = World::builder().generated(DOMAINS, 1).quiet().keep_zone_file().build().await;
    let zone = world.zone_file().expect("kept zone file");
    let nsd = match Nsd::start(zone).await {
        Ok(n) => n,
        Err(NsdError::NotInstalled(path)) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIP: nsd is not installed at {} (apt-get install nsd)", path.display());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    drop(world);
    let domains: Vec<String> = (0..DOMAINS).map(mtasts_testkit::generated::domain_name).collect();

    let mut times = Vec::new();
    for i in 0..SCANS {
        let client = Arc::new(HickoryDns::new(&[nsd.addr()], DNS_TIMEOUT).unwrap());
        let dns: Arc<dyn DnsClient> = client.clone();
        let (took, counts) = scan(dns, &domains).await;
        eprintln!(
            "scan {i:2}: {:.2} s, {} lookups, {} temporary failures, {:?}, rate now {:?}",
            took.as_secs_f64(),
            counts.lookups,
            counts.temporary,
            client.stats(),
            client.rates(),
        );
        times.push((took, counts.temporary));
    }
    let slowest = times.iter().map(|t| t.0).max().unwrap_or_default();
    let log = nsd.log();
    let blocks = log.matches("ratelimit block").count();
    eprintln!(
        "slowest of {SCANS} scans: {:.2} s; nsd logged {blocks} rate-limit blocks",
        slowest.as_secs_f64()
    );
    assert!(
        blocks > 0 || nsd.rrl_ratelimit() == 0,
        "nsd never rate-limited: the test does not test what it says\n{log}"
    );
    for (i, (took, temporary)) in times.iter().enumerate() {
        assert!(*took <= SCAN_LIMIT, "scan {i} took {took:?} (limit {SCAN_LIMIT:?}): {times:?}");
        assert_eq!(*temporary, 0, "scan {i}: lookups failed: {times:?}");
    }
}
