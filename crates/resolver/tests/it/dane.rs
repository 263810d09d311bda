//! DANE takes precedence over MTA-STS (RFC 8461 §2), against the world's DNS answering as a
//! validating resolver does for signed zones (the AD bit): `dane-only` when every MX host has
//! usable validated TLSA records, TEMP when a TLSA lookup fails (never a downgrade), the STS
//! answer when DANE does not apply.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mtasts_net::dns::RecordType;
use mtasts_proto::postfix::ZoneOptions;
use mtasts_resolver::{Resolver, Zones};
use mtasts_testkit::dns::Override;
use mtasts_testkit::{Scenario, World};

use crate::support::resolver_for;

const T0: i64 = 1_800_000_000;

async fn setup(scenario: Scenario) -> (World, Resolver, Arc<AtomicI64>) {
    let world = World::builder().scenario(scenario).build().await;
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let mut zones = Zones::default();
    zones.named.insert("nodane".into(), ZoneOptions { dane: false, ..ZoneOptions::default() });
    let resolver =
        resolver_for(&world, zones).with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    (world, resolver, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validated_tlsa_on_every_mx_host_answers_dane_only() {
    let (world, resolver, clock) = setup(Scenario::DaneTlsa).await;
    let d = "dane-tlsa.test";
    // TLSA records, but the resolver does not vouch for them (no AD bit): MTA-STS decides.
    let before = resolver.answer("postfix", d).await.reply();
    assert!(before.starts_with("OK secure match="), "{before}");

    world.dns().set_signed(d);
    clock.fetch_add(61, Ordering::SeqCst); // past the MX view's reuse
    assert_eq!(resolver.answer("postfix", d).await.reply(), "OK dane-only");
    let e = resolver.explain("postfix", d).await;
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["answer"]["action"], "dane-only", "{json}");
    assert_eq!(json["dane"]["applies"], true, "{json}");
    assert!(
        json["dane"]["hosts"].as_array().unwrap().iter().all(|h| h["tlsa"] == "usable"),
        "{json}"
    );
    assert!(e.why.contains("RFC 8461 §2"), "{}", e.why);
    // Configurable per zone.
    let off = resolver.answer("nodane", d).await.reply();
    assert!(off.starts_with("OK secure match="), "{off}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tlsa_lookup_defers_rather_than_downgrading() {
    let (world, resolver, _clock) = setup(Scenario::DaneTlsa).await;
    let d = "dane-tlsa.test";
    world.dns().set_signed(d);
    world.dns().set_override("_25._tcp.mx1.dane-tlsa.test", RecordType::TLSA, Override::ServFail);
    let reply = resolver.answer("postfix", d).await.reply();
    assert!(reply.starts_with("TEMP "), "{reply}");
    assert!(reply.contains("_25._tcp.mx1.dane-tlsa.test"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_applies_only_with_a_validated_mx_answer_and_usable_records() {
    let (world, resolver, clock) = setup(Scenario::DaneTlsa).await;
    let d = "dane-tlsa.test";
    // Only the TLSA names are signed, not the domain's MX answer: RFC 7672 §2.2.1, no DANE.
    world.dns().set_signed(&format!("_25._tcp.mx1.{d}"));
    let r = resolver.answer("postfix", d).await.reply();
    assert!(r.starts_with("OK secure match="), "{r}");
    // Signed throughout, but the host has no TLSA records (an authenticated denial): the
    // MTA-STS answer stands. (Mixed hosts are the unit tests' in `mtasts_proto::dane`.)
    world.dns().set_signed(d);
    world.dns().set_override("_25._tcp.mx1.dane-tlsa.test", RecordType::TLSA, Override::NxDomain);
    clock.fetch_add(61, Ordering::SeqCst);
    let r = resolver.answer("postfix", d).await.reply();
    assert!(r.starts_with("OK secure match="), "{r}");
    let json = serde_json::to_value(resolver.explain("postfix", d).await).unwrap();
    let hosts = json["dane"]["hosts"].as_array().unwrap().clone();
    assert!(hosts.iter().any(|h| h["tlsa"] == "absent"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_domain_without_mta_sts_or_tlsa_is_unchanged() {
    let (world, resolver, _clock) = setup(Scenario::NoMtaSts).await;
    world.dns().set_signed("no-mta-sts.test");
    assert_eq!(resolver.answer("postfix", "no-mta-sts.test").await.reply(), "NOTFOUND ");
}
