//! The domain lifecycle against the test world: MX discovery, the records to publish, every
//! change a new id, promotion guarded by coverage, the check's TLS judges and the reports,
//! retirement, MX drift.

use mtasts_check::{CheckOptions, Checker};
use mtasts_proto::{DomainName, Mode, Policy};
use mtasts_reports::{Ingestor, Limits};
use mtasts_serve::domains::{Change, DomainError, Manager};
use mtasts_serve::lifecycle::{Retirement, Service};
use mtasts_store::hosting::{HostingError, HostingStore};
use mtasts_store::reports::ReportStore;
use mtasts_testkit::World;
use mtasts_testkit::world::{DomainSpec, MxSpec, SmtpKind};
use time::OffsetDateTime;

use crate::common::{TestDb, both_backends, world_net};

both_backends!(add_set_and_retire, promotion_is_guarded);

fn checker_for(world: &World) -> Checker {
    let (config, dns) = world_net(world, world.https_port());
    Checker::with_dns(&config, dns, CheckOptions { dane: false, ..CheckOptions::default() })
        .unwrap()
}

fn service() -> Service {
    Service {
        cname_target: Some(DomainName::parse_ascii("sts.provider.test").unwrap()),
        rua: vec!["mailto:tlsrpt@provider.test".into()],
    }
}

fn domain(name: &str, mx: &[(&str, SmtpKind)]) -> DomainSpec {
    let mut d = DomainSpec::empty(name);
    d.mx = mx
        .iter()
        .enumerate()
        .map(|(i, (host, kind))| MxSpec {
            smtp: Some(*kind),
            ..MxSpec::good(10 * (i as u16 + 1), &format!("{host}.{name}"))
        })
        .collect();
    d
}

fn at(day: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(day * 86_400 + 3_600).unwrap()
}

fn policy_of(m: &mtasts_store::hosting::HostedDomain) -> Policy {
    Policy::parse(&m.policy_text).unwrap().value
}

async fn add_set_and_retire(db: &TestDb) {
    let world = World::builder()
        .domain(domain("shop.test", &[("mx1", SmtpKind::StartTls), ("mx2", SmtpKind::StartTls)]))
        .domain({
            let mut d = DomainSpec::empty("nomail.test");
            d.null_mx = true;
            d
        })
        .build()
        .await;
    let store = HostingStore::with_database(db.database().await).await.unwrap();
    let m = Manager::new(store.clone(), Some(checker_for(&world)), service());
    let t0 = at(20_000);

    // add: the live MX, testing, one day; the records in publishing order.
    let added = m.add("Shop.Test.", "tenant-a", "alice", None, t0).await.unwrap();
    let p = policy_of(&added.domain);
    assert_eq!((p.mode(), p.max_age().seconds()), (Mode::Testing, 86_400));
    let mx: Vec<String> = p.mx().iter().map(ToString::to_string).collect();
    assert_eq!(mx, ["mx1.shop.test", "mx2.shop.test"]);
    assert_eq!(
        added.records.cname.as_deref(),
        Some("mta-sts.shop.test. 3600 IN CNAME sts.provider.test.")
    );
    assert!(added.records.sts_txt.contains(&format!("id={};", added.domain.policy_id)));
    assert!(
        added.records.tlsrpt_txt.as_deref().unwrap().contains("rua=mailto:tlsrpt@provider.test")
    );

    // Bad names, a domain that takes no mail, twice.
    for bad in ["192.0.2.1", "com", "mta-sts.shop.test", &format!("{}.test", "x".repeat(64))] {
        let e = m.add(bad, "tenant-a", "alice", None, t0).await.unwrap_err();
        assert!(matches!(e, DomainError::Name(_)), "{bad}: {e}");
    }
    let e = m.add("nomail.test", "tenant-a", "alice", None, t0).await.unwrap_err();
    assert!(matches!(e, DomainError::NullMx { .. }), "{e}");
    assert!(e.to_string().contains("RFC 7505"), "{e}");
    let e = m.add("shop.test", "tenant-b", "bob", None, t0).await.unwrap_err();
    assert!(matches!(e, DomainError::Store(HostingError::AlreadyHosted { .. })), "{e}");
    // A domain without MX records and none given: the lookup's words, and --mx to get past.
    let e = m.add("unknown.test", "tenant-a", "alice", None, t0).await.unwrap_err();
    assert!(e.to_string().contains("--mx"), "{e}");

    // set: a new id each time, even twice in one second; the history says who and why.
    let change =
        Change { max_age: Some(172_800), reason: Some("longer".into()), ..Change::default() };
    let s1 = m.set("shop.test", &change, "alice", false, t0).await.unwrap();
    let change = Change { mx: Some(vec!["*.shop.test".into()]), ..Change::default() };
    let s2 = m.set("shop.test", &change, "bob", false, t0).await.unwrap();
    let ids = [&added.domain.policy_id, &s1.domain.policy_id, &s2.domain.policy_id];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    assert_eq!(policy_of(&s2.domain).max_age().seconds(), 172_800, "other fields kept");
    let e = m.set("shop.test", &change, "bob", false, t0).await.unwrap_err();
    assert!(matches!(e, DomainError::NoChange { .. }), "{e}");
    // A policy that does not parse: the parser's words; nothing stored.
    let bad =
        Change { policy_text: Some("version: STSv1\nmode: enforce\n".into()), ..Change::default() };
    let e = m.set("shop.test", &bad, "bob", false, t0).await.unwrap_err();
    assert!(matches!(e, DomainError::PolicyText { .. }), "{e}");
    // An enforce policy without a live MX: refused, naming it.
    let narrow = Change {
        mode: Some(Mode::Enforce),
        mx: Some(vec!["mx1.shop.test".into()]),
        ..Change::default()
    };
    let e = m.set("shop.test", &narrow, "bob", false, t0).await.unwrap_err();
    assert!(e.to_string().contains("mx2.shop.test is not covered"), "{e}");
    assert_eq!(store.get("shop.test").await.unwrap().unwrap().version, 3);

    let status = m.status("shop.test", true, t0).await.unwrap();
    let who: Vec<(&str, &str)> =
        status.history.iter().map(|v| (v.author.as_str(), v.reason.as_str())).collect();
    assert_eq!(who, [("alice", "added"), ("alice", "longer"), ("bob", "changed")]);
    let live = status.dns.unwrap();
    assert_eq!(live.mx, ["mx1.shop.test", "mx2.shop.test"]);
    assert!(live.uncovered_mx.is_empty());
    assert!(
        live.problems.iter().any(|p| p.code == "hosting-cname"
            && p.message.contains("is not a CNAME for sts.provider.test")),
        "{:?}",
        live.problems
    );

    // MX drift: a live MX the policy does not cover (allowed under testing) shows in the
    // status; under enforce it would be undelivered mail.
    let one = Change { mx: Some(vec!["mx1.shop.test".into()]), ..Change::default() };
    m.set("shop.test", &one, "bob", false, t0).await.unwrap();
    let live = m.status("shop.test", true, t0).await.unwrap().dns.unwrap();
    assert_eq!(live.uncovered_mx, ["mx2.shop.test"]);
    assert!(live.problems.iter().any(|p| p.code == "hosting-mx-drift"
        && p.subject == "mx2.shop.test"
        && p.message.contains("MX drift: the live MX host mx2.shop.test")));

    // retire: mode none, a new id; served until the longest max_age has passed.
    let r = m.retire("shop.test", "alice", None, t0).await.unwrap();
    assert_eq!(policy_of(&r.domain).mode(), Mode::None);
    assert_eq!(r.domain.longest_max_age, 172_800);
    let soon = m.status("shop.test", false, at(20_001)).await.unwrap();
    assert_eq!(soon.retirement, Retirement::Draining { until: t0.unix_timestamp() + 172_800 });
    let later = m.status("shop.test", false, at(20_003)).await.unwrap();
    assert!(matches!(later.retirement, Retirement::Removable { .. }));
    let e = m.retire("shop.test", "alice", None, t0).await.unwrap_err();
    assert!(matches!(e, DomainError::State { .. }), "{e}");
}

/// A report from `org` for `domain` on `day` with the policy `lines`.
fn report(org: &str, domain: &str, day: i64, lines: &[String], failed: u64) -> Vec<u8> {
    let date = OffsetDateTime::from_unix_timestamp(day * 86_400).unwrap().date();
    let details: Vec<serde_json::Value> = (failed > 0)
        .then(|| {
            serde_json::json!({"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10",
                "receiving-mx-hostname": format!("mx1.{domain}"), "failed-session-count": failed})
        })
        .into_iter()
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "organization-name": org,
        "date-range": {"start-datetime": format!("{date}T00:00:00Z"), "end-datetime": format!("{date}T23:59:59Z")},
        "contact-info": "tlsrpt@reporter.example",
        "report-id": format!("{org}-{domain}-{day}"),
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": lines, "policy-domain": domain},
            "summary": {"total-successful-session-count": 100, "total-failure-session-count": failed},
            "failure-details": details
        }]
    }))
    .unwrap()
}

async fn promotion_is_guarded(db: &TestDb) {
    let world = World::builder()
        .domain(domain("good.test", &[("mx1", SmtpKind::StartTls)]))
        .domain(domain("plain.test", &[("mx1", SmtpKind::StartTls), ("mx2", SmtpKind::NoStartTls)]))
        .build()
        .await;
    let database = db.database().await;
    let store = HostingStore::with_database(database.clone()).await.unwrap();
    let reports = ReportStore::with_database(database).await.unwrap();
    let m = Manager::new(store.clone(), Some(checker_for(&world)), service())
        .with_reports(reports.clone());
    let day = 20_000;
    let added = m.add("good.test", "t", "alice", None, at(day)).await.unwrap();
    m.add("plain.test", "t", "alice", None, at(day)).await.unwrap();

    // No report data yet: refused, saying so.
    let e = m.promote("good.test", "alice", false, at(day + 1)).await.unwrap_err();
    let DomainError::Refused { reasons, .. } = &e else { panic!("{e}") };
    assert!(reasons.iter().any(|r| r.contains("[no-reports]")), "{reasons:?}");
    assert_eq!(reasons.len(), 1, "the MX host itself is fine: {reasons:?}");

    // Fourteen clean days from one reporter: ready.
    let lines = policy_of(&added.domain).to_policy_lines();
    let ing = Ingestor::new(reports.clone(), Limits::default());
    for d in day..day + 14 {
        ing.file(&report("Google Inc.", "good.test", d, &lines, 0), "g", 1).await.unwrap();
    }
    let p = m.promote("good.test", "alice", false, at(day + 14)).await.unwrap();
    let policy = policy_of(&p.domain);
    assert_eq!((policy.mode(), policy.max_age().seconds()), (Mode::Enforce, 604_800));
    assert_ne!(p.domain.policy_id, added.domain.policy_id);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // Growing max_age at once: senders still report the testing policy.
    let e = m.promote("good.test", "alice", false, at(day + 14)).await.unwrap_err();
    assert!(e.to_string().contains("[stale-policy]"), "{e}");
    // Once they report the enforce policy for the clean period, max_age grows one step.
    let lines = policy.to_policy_lines();
    for d in day + 14..day + 28 {
        ing.file(&report("Google Inc.", "good.test", d, &lines, 0), "g", 1).await.unwrap();
    }
    let p = m.promote("good.test", "alice", false, at(day + 28)).await.unwrap();
    assert_eq!(policy_of(&p.domain).max_age().seconds(), 2_592_000);

    // An MX host without STARTTLS: the check's own judge names it, and the reports count.
    let plain_lines = policy_of(&store.get("plain.test").await.unwrap().unwrap()).to_policy_lines();
    ing.file(&report("Google Inc.", "plain.test", day + 13, &plain_lines, 7), "g", 1)
        .await
        .unwrap();
    let e = m.promote("plain.test", "alice", false, at(day + 14)).await.unwrap_err();
    let DomainError::Refused { reasons, .. } = &e else { panic!("{e}") };
    assert!(
        reasons.iter().any(|r| r.starts_with("mx2.plain.test") && r.contains("STARTTLS")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.starts_with("reports:")), "{reasons:?}");
    assert_eq!(store.get("plain.test").await.unwrap().unwrap().version, 1, "nothing published");
    // --force: published, every reason kept as a warning.
    let forced = m.promote("plain.test", "alice", true, at(day + 14)).await.unwrap();
    assert_eq!(policy_of(&forced.domain).mode(), Mode::Enforce);
    assert_eq!(forced.warnings.len(), reasons.len());
    assert!(forced.warnings.iter().all(|w| w.starts_with("--force: ")));
}
