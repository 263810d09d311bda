//! Every RFC 8461 §3.3 / §5.1 case of the sender-side cache, against the hermetic world whose
//! DNS answers and policy host change while the resolver runs: id change, fetch failure with
//! and without a cached policy, expiry, `mode: none` replacing `enforce`, the 5-minute
//! back-off, the negative cache and the proactive refresh. Time is the resolver's clock, moved
//! by the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mtasts_net::dns::RecordType;
use mtasts_proto::{DomainName, Mode};
use mtasts_resolver::lifecycle::{Decision, NoPolicyReason, Source};
use mtasts_resolver::{Resolver, Zones};
use mtasts_testkit::dns::Override;
use mtasts_testkit::world::{DEFAULT_MAX_AGE, policy_text};
use mtasts_testkit::{HttpBehaviour, Scenario, World};

use crate::support::resolver_for;

const T0: i64 = 1_800_000_000;

struct Setup {
    world: World,
    resolver: Resolver,
    clock: Arc<AtomicI64>,
    domain: DomainName,
}

async fn setup() -> Setup {
    let world = World::builder().scenario(Scenario::Good).build().await;
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let resolver = resolver_for(&world, Zones::default())
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    let domain = DomainName::parse_ascii("good.test").unwrap();
    Setup { world, resolver, clock, domain }
}

impl Setup {
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    fn fetches(&self) -> usize {
        self.world.https().requests().iter().filter(|r| r.sni == "mta-sts.good.test").count()
    }

    fn new_id(&self, id: &str) {
        self.world.dns().set_override(
            "_mta-sts.good.test",
            RecordType::TXT,
            Override::Txt(vec![vec![format!("v=STSv1; id={id};")]]),
        );
    }

    fn serve(&self, behaviour: HttpBehaviour) {
        self.world.https().set_behaviour("mta-sts.good.test", behaviour);
    }

    async fn decide(&self) -> Decision {
        self.resolver.decide(&self.domain).await
    }
}

fn source(d: &Decision) -> Option<Source> {
    match d {
        Decision::Policy { source, .. } => Some(*source),
        _ => None,
    }
}

fn mode(d: &Decision) -> Option<Mode> {
    match d {
        Decision::Policy { policy, .. } => Some(policy.mode()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_change_is_the_only_reason_to_refetch() {
    let s = setup().await;
    assert_eq!(source(&s.decide().await), Some(Source::Fetched));
    assert_eq!(s.fetches(), 1);
    // Within the TXT TTL: no DNS, no HTTPS.
    assert_eq!(source(&s.decide().await), Some(Source::Cache));
    // TXT looked up again, same id: the policy is unchanged, no fetch.
    s.advance(301);
    assert_eq!(source(&s.decide().await), Some(Source::CacheSameId));
    assert_eq!(s.fetches(), 1);
    // A new id and a new policy: fetched.
    s.new_id("2");
    s.serve(HttpBehaviour::ok_text(policy_text("testing", DEFAULT_MAX_AGE, &["mx1.good.test"])));
    s.advance(301);
    let d = s.decide().await;
    assert_eq!((source(&d), mode(&d)), (Some(Source::Fetched), Some(Mode::Testing)));
    assert_eq!(s.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_refetch_keeps_the_cache_and_backs_off_five_minutes_per_id() {
    let s = setup().await;
    s.decide().await;
    s.new_id("2");
    s.serve(HttpBehaviour::Respond { status: 500, content_type: None, body: Vec::new() });
    s.advance(301);
    let d = s.decide().await;
    assert_eq!((source(&d), mode(&d)), (Some(Source::CacheFetchFailed), Some(Mode::Enforce)));
    assert_eq!(s.fetches(), 2);
    // Within 5 minutes no new attempt for id 2: the cached policy is applied, nothing fetched.
    s.advance(299);
    assert!(matches!(source(&s.decide().await), Some(Source::Cache | Source::CacheBackoff)));
    assert_eq!(s.fetches(), 2);
    // After 5 minutes, tried again; the host works again.
    s.clear_behaviour();
    s.advance(2);
    let d = s.decide().await;
    assert_eq!(source(&d), Some(Source::Fetched));
    assert_eq!(s.fetches(), 3);
}

impl Setup {
    fn clear_behaviour(&self) {
        self.world.https().clear_behaviour("mta-sts.good.test");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fetch_without_cache_and_after_expiry_is_no_policy() {
    let s = setup().await;
    s.serve(HttpBehaviour::Respond { status: 404, content_type: None, body: Vec::new() });
    assert!(matches!(s.decide().await, Decision::NoPolicy(NoPolicyReason::FetchFailed(_))));
    s.clear_behaviour();
    s.advance(301);
    assert_eq!(source(&s.decide().await), Some(Source::Fetched));
    // The cached policy expires after max_age; a fetch failing then leaves no policy.
    s.serve(HttpBehaviour::Hang);
    s.advance(i64::from(DEFAULT_MAX_AGE));
    assert!(matches!(s.decide().await, Decision::NoPolicy(NoPolicyReason::FetchFailed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_none_replaces_a_cached_enforce_policy() {
    let s = setup().await;
    assert_eq!(mode(&s.decide().await), Some(Mode::Enforce));
    s.new_id("3");
    s.serve(HttpBehaviour::ok_text(policy_text("none", 86_400, &[])));
    s.advance(301);
    assert_eq!(mode(&s.decide().await), Some(Mode::None));
    assert_eq!(s.resolver.answer("postfix", "good.test").await.reply(), "NOTFOUND ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txt_gone_keeps_the_cache_and_no_record_is_cached_negatively() {
    let s = setup().await;
    s.decide().await;
    s.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, Override::NxDomain);
    s.advance(301);
    assert_eq!(source(&s.decide().await), Some(Source::CacheTxtGone));
    // A fresh resolver (nothing cached) sees no record: remembered for the negative TTL.
    let fresh = setup().await;
    fresh.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, Override::NoData);
    assert_eq!(fresh.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    fresh.world.dns().clear_override("_mta-sts.good.test", RecordType::TXT);
    fresh.advance(60);
    assert_eq!(fresh.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    assert_eq!(fresh.fetches(), 0);
    fresh.advance(3600);
    assert_eq!(source(&fresh.decide().await), Some(Source::Fetched));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure_uses_the_cache_or_defers() {
    let s = setup().await;
    s.decide().await;
    s.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, Override::ServFail);
    s.advance(301);
    assert_eq!(source(&s.decide().await), Some(Source::CacheDnsFailed));
    let fresh = setup().await;
    fresh.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, Override::ServFail);
    assert!(matches!(fresh.decide().await, Decision::Temporary(_)));
    assert!(fresh.resolver.answer("postfix", "good.test").await.reply().starts_with("TEMP "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_fetches_before_expiry_regardless_of_the_id() {
    let s = setup().await;
    s.decide().await;
    assert_eq!(s.resolver.refresh_due(8).await, 0, "nothing is due yet");
    // A quarter of max_age left: due.
    s.advance(i64::from(DEFAULT_MAX_AGE) * 3 / 4);
    assert_eq!(s.resolver.refresh_due(8).await, 1);
    assert_eq!(s.fetches(), 2);
    let state = s.resolver.cache().get(&s.domain).await.unwrap().unwrap();
    assert_eq!(state.policy.unwrap().fetched_at, T0 + i64::from(DEFAULT_MAX_AGE) * 3 / 4);
}

impl Setup {
    /// TXT queries for `_mta-sts.good.test` the world has answered.
    fn txt_queries(&self) -> usize {
        self.world
            .dns()
            .queries()
            .iter()
            .filter(|q| q.name.eq_ignore_ascii_case("_mta-sts.good.test.") && q.qtype == "TXT")
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_txt_record_is_rechecked_after_its_own_dns_ttl() {
    let s = setup().await;
    let txt = |id: &str| vec![vec![format!("v=STSv1; id={id};")]];
    // The world's TXT says: cache me for an hour (RFC 8461 §3.3 bounds the recheck by it).
    let id = "20260101T000000";
    s.world.dns().set_override(
        "_mta-sts.good.test",
        RecordType::TXT,
        Override::TxtTtl(txt(id), 3600),
    );
    assert_eq!(source(&s.decide().await), Some(Source::Fetched));
    let asked = s.txt_queries();
    s.advance(1800);
    assert_eq!(source(&s.decide().await), Some(Source::Cache));
    assert_eq!(s.txt_queries(), asked, "within the record's TTL the TXT is not asked again");
    s.advance(1801);
    s.decide().await;
    assert_eq!(s.txt_queries(), asked + 1, "past the TTL it is");
    // A short TTL is honoured too, down to the 30 s floor.
    s.world.dns().set_override(
        "_mta-sts.good.test",
        RecordType::TXT,
        Override::TxtTtl(txt(id), 45),
    );
    s.advance(3601);
    s.decide().await;
    let asked = s.txt_queries();
    s.advance(46);
    s.decide().await;
    assert_eq!(s.txt_queries(), asked + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absence_is_cached_for_the_soa_negative_ttl() {
    // RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the negative answer.
    let s = setup().await;
    let negative = Override::Negative { nxdomain: true, negative_ttl: 1200 };
    s.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, negative);
    assert_eq!(s.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    s.world.dns().clear_override("_mta-sts.good.test", RecordType::TXT);
    let asked = s.txt_queries();
    s.advance(1100);
    assert_eq!(s.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    assert_eq!(s.txt_queries(), asked, "within the negative TTL: no DNS");
    s.advance(101);
    assert_eq!(source(&s.decide().await), Some(Source::Fetched), "past it the record is seen");
    // NODATA with a short negative TTL: bounded below by one minute.
    let fresh = setup().await;
    let negative = Override::Negative { nxdomain: false, negative_ttl: 5 };
    fresh.world.dns().set_override("_mta-sts.good.test", RecordType::TXT, negative);
    assert_eq!(fresh.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    fresh.world.dns().clear_override("_mta-sts.good.test", RecordType::TXT);
    fresh.advance(30);
    assert_eq!(fresh.decide().await, Decision::NoPolicy(NoPolicyReason::NoRecord));
    fresh.advance(31);
    assert_eq!(source(&fresh.decide().await), Some(Source::Fetched));
}
