//! Hostile peers: policy hosts that send huge, binary, endless or trickled bodies or never
//! answer, a DNS server that is dead or silent, and lookups slower than Postfix can wait.
//! Each gets the right reply, within its timeout, and the daemon keeps serving.

use std::time::{Duration, Instant};

use mtasts_resolver::Zones;
use mtasts_resolver::server::ServerConfig;
use mtasts_testkit::world::DomainSpec;
use mtasts_testkit::{HttpBehaviour, Scenario, World};

use crate::support::{Client, resolver_for, resolver_with_dns, serve_on_loopback, serve_with};

/// The world's fetch timeout (`Timeouts::fast`) and the slack allowed on top of it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_policy_hosts_are_no_policy_within_the_fetch_timeout() {
    let huge = DomainSpec::good("huge-policy.test").with_policy(vec![b'a'; 4 * 1024 * 1024]);
    let mut binary = DomainSpec::good("binary-policy.test");
    binary.set_behaviour(HttpBehaviour::Respond {
        status: 200,
        content_type: Some("text/plain".into()),
        body: (0..=255u8).cycle().take(4000).collect(),
    });
    let w = World::builder()
        .scenario(Scenario::HttpsTooLarge) // endless body
        .scenario(Scenario::HttpsHang)
        .scenario(Scenario::HttpsSlow)
        .scenario(Scenario::PolicySyntaxError)
        .domain(huge)
        .domain(binary)
        .build()
        .await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, Zones::default())).await;
    let domains = [
        "https-too-large.test",
        "https-hang.test",
        "https-slow.test",
        "policy-syntax-error.test",
        "huge-policy.test",
        "binary-policy.test",
    ];
    let asks = domains.iter().map(|d| async move {
        let mut c = Client::connect(addr).await;
        let started = Instant::now();
        let reply = c.query("postfix", d).await;
        (d, reply, started.elapsed())
    });
    for (d, reply, took) in futures::future::join_all(asks).await {
        // No usable policy and none cached: RFC 8461 §5, deliver as without MTA-STS.
        assert_eq!(reply, "NOTFOUND ", "{d}");
        assert!(took < FETCH_TIMEOUT + SLACK, "{d} took {took:?}");
    }
    // The daemon still serves.
    let mut c = Client::connect(addr).await;
    let (a, b) =
        (c.query("postfix", "https-hang.test").await, c.query("postfix", "x.invalid").await);
    assert_eq!(a, "NOTFOUND ", "the failed fetch is remembered (5-minute back-off)");
    assert!(b == "NOTFOUND " || b.starts_with("TEMP "), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_dns_server_is_temp_not_no_policy() {
    let w = World::builder().scenario(Scenario::Good).build().await;
    // Silent: a socket that takes queries and never answers. Dead: nothing listens.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    for server in [silent.local_addr().unwrap(), dead] {
        let (addr, _stop, _task) =
            serve_on_loopback(resolver_with_dns(server, &w, Zones::default())).await;
        let mut c = Client::connect(addr).await;
        let started = Instant::now();
        let reply = c.query("postfix", "good.test").await;
        // RFC 8461 §5: a DNS failure is no reason to send in plain text, nor to bounce: TEMP.
        assert!(reply.starts_with("TEMP "), "{server}: {reply}");
        assert!(started.elapsed() < Duration::from_secs(10), "{server}: {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_past_the_deadline_is_temp_and_its_result_is_kept() {
    let w = World::builder().scenario(Scenario::HttpsHang).build().await;
    let config =
        ServerConfig { lookup_timeout: Duration::from_millis(500), ..ServerConfig::default() };
    let (addr, _stop, _task) = serve_with(resolver_for(&w, Zones::default()), config).await;
    let mut c = Client::connect(addr).await;
    let started = Instant::now();
    let reply = c.query("postfix", "https-hang.test").await;
    assert!(reply.starts_with("TEMP ") && reply.contains("longer than 0.5 s"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // The lookup went on: once the fetch has timed out, the failure is cached and the answer
    // comes at once.
    let deadline = Instant::now() + FETCH_TIMEOUT + SLACK;
    loop {
        let reply = c.query("postfix", "https-hang.test").await;
        if reply == "NOTFOUND " {
            break;
        }
        assert!(reply.starts_with("TEMP "), "{reply}");
        assert!(Instant::now() < deadline, "the background lookup never finished");
    }
}
