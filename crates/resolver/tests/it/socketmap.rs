//! The daemon as Postfix meets it: replies per scenario, keys as Postfix sends them,
//! pipelining, and garbage.

use mtasts_proto::postfix::ZoneOptions;
use mtasts_resolver::Zones;
use mtasts_testkit::{Scenario, World};

use crate::support::{Client, resolver_for, serve_on_loopback};

async fn world() -> World {
    let mut b = World::builder();
    for s in [
        Scenario::Good,
        Scenario::GoodWildcard,
        Scenario::MxWildcardTooDeep,
        Scenario::PolicyModeTesting,
        Scenario::PolicyModeNone,
        Scenario::NoMtaSts,
        Scenario::Https404,
        Scenario::DnsServfail,
        Scenario::MxNotCovered,
    ] {
        b = b.scenario(s);
    }
    b.build().await
}

fn zones() -> Zones {
    let mut zones = Zones::default();
    zones.named.insert(
        "strict".into(),
        ZoneOptions { strict_testing: true, tlsrpt: true, ..ZoneOptions::default() },
    );
    zones
        .named
        .insert("compat".into(), ZoneOptions { wildcard_dot: true, ..ZoneOptions::default() });
    zones
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_per_scenario() {
    let w = world().await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, zones())).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.query("postfix", "good.test").await,
        "OK secure match=mx1.good.test servername=hostname"
    );
    // Policy lists mx1 only: the answer is the policy, whatever the DNS says.
    assert_eq!(
        c.query("postfix", "mx-not-covered.test").await,
        "OK secure match=mx1.mx-not-covered.test servername=hostname"
    );
    // `*.d` answered as the live MX names exactly one label deep.
    let wildcard = c.query("postfix", "good-wildcard.test").await;
    assert!(wildcard.starts_with("OK secure match="), "{wildcard}");
    assert!(!wildcard.contains("match=."), "{wildcard}");
    assert_eq!(
        c.query("compat", "good-wildcard.test").await,
        "OK secure match=.good-wildcard.test servername=hostname"
    );
    // `*.d` with MX a.mx.d: no MX host matches → mail waits, never an empty match list.
    let deep = c.query("postfix", "mx-wildcard-too-deep.test").await;
    assert!(deep.starts_with("TEMP no MX host of mx-wildcard-too-deep.test"), "{deep}");
    // With the TLSRPT attributes (Postfix ≥ 3.10) the same case is `policy_failure`: mail
    // waits and Postfix reports it; `match=` is a name no certificate has, never the live MX.
    let failure = c.query("strict", "mx-wildcard-too-deep.test").await;
    assert!(
        failure.starts_with("OK secure match=policy-failure.invalid servername=hostname policy_type=sts policy_domain=mx-wildcard-too-deep.test mx_host_pattern=*.mx-wildcard-too-deep.test"),
        "{failure}"
    );
    assert!(failure.ends_with(" policy_failure=validation-failure"), "{failure}");
    assert!(!failure.contains("a.mx."), "{failure}");
    assert_eq!(c.query("postfix", "policy-mode-testing.test").await, "NOTFOUND ");
    let strict = c.query("strict", "policy-mode-testing.test").await;
    assert!(
        strict.starts_with("OK secure match=mx1.policy-mode-testing.test servername=hostname policy_type=sts policy_domain=policy-mode-testing.test"),
        "{strict}"
    );
    assert!(strict.contains("{ policy_string = mode: testing }"), "{strict}");
    assert_eq!(c.query("postfix", "policy-mode-none.test").await, "NOTFOUND ");
    assert_eq!(c.query("postfix", "no-mta-sts.test").await, "NOTFOUND ");
    // TXT present, policy fetch fails, nothing cached: deliver as without MTA-STS (§5.1).
    assert_eq!(c.query("postfix", "https-404.test").await, "NOTFOUND ");
    // The DNS cannot answer for the TXT record and nothing is cached: defer.
    let servfail = c.query("postfix", "dns-servfail.test").await;
    assert!(servfail.starts_with("TEMP "), "{servfail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_as_postfix_sends_them() {
    let w = world().await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, zones())).await;
    let mut c = Client::connect(addr).await;
    let good = "OK secure match=mx1.good.test servername=hostname";
    assert_eq!(c.query("postfix", "good.test.").await, good);
    assert_eq!(c.query("postfix", "GOOD.test").await, good);
    assert_eq!(c.query("postfix", "[good.test]:587").await, good);
    assert_eq!(c.query("postfix", ".good.test").await, "NOTFOUND ");
    assert_eq!(c.query("postfix", "[127.0.0.1]:25").await, "NOTFOUND ");
    assert_eq!(c.query("postfix", "127.0.0.1").await, "NOTFOUND ");
    // An unknown map name gets the default zone.
    assert_eq!(c.query("no-such-zone", "good.test").await, good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let w = world().await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, zones())).await;
    let mut c = Client::connect(addr).await;
    let mut batch = Vec::new();
    for key in ["good.test", "no-mta-sts.test", ".good.test", "good.test"] {
        batch.extend(mtasts_proto::socketmap::encode(&format!("postfix {key}")));
    }
    // Sent byte by byte: framing must not depend on read boundaries.
    for b in &batch {
        c.send_raw(std::slice::from_ref(b)).await;
    }
    let good = "OK secure match=mx1.good.test servername=hostname";
    for want in [good, "NOTFOUND ", "NOTFOUND ", good] {
        assert_eq!(c.reply().await.as_deref(), Some(want));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_that_connection() {
    let w = world().await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, zones())).await;
    let mut bad = Client::connect(addr).await;
    let mut good = Client::connect(addr).await;
    // A request that frames but is not "<name> <key>": PERM, the connection stays.
    bad.send_raw(b"7:nospace,").await;
    assert!(bad.reply().await.unwrap().starts_with("PERM "));
    // Broken framing: the connection is closed, nothing more is answered on it.
    bad.send_raw(b"5:abcdef,17:postfix good.test,").await;
    assert_eq!(bad.reply().await, None);
    // Oversize: Postfix never sends more than 10 000 bytes.
    let mut big = Client::connect(addr).await;
    big.send_raw(b"10001:").await;
    assert_eq!(big.reply().await, None);
    // Other connections are unaffected.
    assert_eq!(
        good.query("postfix", "good.test").await,
        "OK secure match=mx1.good.test servername=hostname"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_share_one_fetch() {
    let w = world().await;
    let resolver = std::sync::Arc::new(resolver_for(&w, zones()));
    let domain = mtasts_proto::DomainName::parse_ascii("good.test").unwrap();
    let lookups = (0..32).map(|_| {
        let r = resolver.clone();
        let d = domain.clone();
        async move { r.decide(&d).await }
    });
    let decisions = futures::future::join_all(lookups).await;
    use mtasts_resolver::lifecycle::{Decision, Source};
    let fetched = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Policy { source: Source::Fetched, .. }))
        .count();
    assert_eq!(fetched, 1, "{decisions:?}");
    assert!(decisions.iter().all(|d| matches!(d, Decision::Policy { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let w = world().await;
    let (addr, stop, task) = serve_on_loopback(resolver_for(&w, zones())).await;
    let mut c = Client::connect(addr).await;
    assert!(c.query("postfix", "good.test").await.starts_with("OK"));
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_failure_is_explained_as_a_deferral() {
    let w = world().await;
    let resolver = resolver_for(&w, zones());
    let json = serde_json::to_value(resolver.explain("strict", "mx-wildcard-too-deep.test").await)
        .unwrap();
    // An MTA reading the JSON (Exim) gets no host list to deliver to.
    assert_eq!(json["answer"]["action"], "defer", "{json}");
    assert_eq!(json["answer"]["policy_failure"], "validation-failure", "{json}");
    assert!(json["answer"].get("match_list").is_none(), "{json}");
    let why = json["why"].as_str().unwrap();
    assert!(why.starts_with("no MX host of mx-wildcard-too-deep.test"), "{why}");
    assert!(why.contains("policy_failure=validation-failure"), "{why}");
    assert!(
        json["answer"]["postfix"].as_str().unwrap().ends_with("policy_failure=validation-failure"),
        "{json}"
    );
}
