//! Hosted domains: versions, history, tenants, and a change made on a stale view.

use mtasts_store::hosting::{HostingError, HostingStore, NewVersion, StoredCertificate};

use crate::common::{TestDb, both_backends};

both_backends!(versions_history_and_tenants, racing_changes_one_wins, certificates_and_generation);

fn version(id: &str, mode: &str, max_age: i64, at: i64, why: &str) -> NewVersion {
    NewVersion {
        policy_id: id.to_owned(),
        policy_text: format!(
            "version: STSv1\r\nmode: {mode}\r\nmx: mx.a.example\r\nmax_age: {max_age}\r\n"
        ),
        mode: mode.to_owned(),
        max_age,
        author: "admin@tenant-a".to_owned(),
        reason: why.to_owned(),
        at,
    }
}

async fn versions_history_and_tenants(db: &TestDb) {
    let store = HostingStore::with_database(db.database().await).await.unwrap();
    let d = store
        .add("a.example", "tenant-a", &version("1", "testing", 86_400, 100, "added"))
        .await
        .unwrap();
    assert_eq!((d.version, d.mode.as_str(), d.longest_max_age), (1, "testing", 86_400));
    store
        .add("b.example", "tenant-b", &version("1", "testing", 86_400, 100, "added"))
        .await
        .unwrap();

    // Added twice: refused, naming the owner; nothing changed.
    let again = store.add("a.example", "tenant-b", &version("9", "enforce", 1, 101, "x")).await;
    assert!(
        matches!(&again, Err(HostingError::AlreadyHosted { tenant, .. }) if tenant == "tenant-a"),
        "{again:?}"
    );
    assert_eq!(store.get("a.example").await.unwrap().unwrap().policy_id, "1");

    // Each change is the next version; the longest max_age is remembered.
    let d = store
        .publish("a.example", 1, &version("2", "enforce", 604_800, 200, "promote"))
        .await
        .unwrap();
    assert_eq!((d.version, d.policy_id.as_str(), d.longest_max_age), (2, "2", 604_800));
    let d =
        store.publish("a.example", 2, &version("3", "none", 86_400, 300, "retire")).await.unwrap();
    assert_eq!((d.version, d.longest_max_age, d.retired_at), (3, 604_800, Some(300)));
    let d =
        store.publish("a.example", 3, &version("4", "none", 86_400, 400, "again")).await.unwrap();
    assert_eq!(d.retired_at, Some(300), "retired since the first mode: none");
    let d =
        store.publish("a.example", 4, &version("5", "testing", 86_400, 500, "back")).await.unwrap();
    assert_eq!(d.retired_at, None);

    let history = store.history("a.example").await.unwrap();
    let got: Vec<(i64, &str, &str, i64)> = history
        .iter()
        .map(|v| (v.version, v.policy_id.as_str(), v.reason.as_str(), v.created_at))
        .collect();
    assert_eq!(
        got,
        [
            (1, "1", "added", 100),
            (2, "2", "promote", 200),
            (3, "3", "retire", 300),
            (4, "4", "again", 400),
            (5, "5", "back", 500)
        ]
    );
    assert!(history[1].policy_text.contains("mode: enforce"));

    // A change against an old version is refused and changes nothing.
    let stale = store.publish("a.example", 2, &version("6", "enforce", 1, 600, "old view")).await;
    assert!(matches!(stale, Err(HostingError::Stale { expected: 2, current: 5, .. })), "{stale:?}");
    assert_eq!(store.get("a.example").await.unwrap().unwrap().version, 5);
    assert_eq!(store.history("a.example").await.unwrap().len(), 5);
    let missing = store.publish("c.example", 1, &version("1", "testing", 1, 1, "x")).await;
    assert!(matches!(missing, Err(HostingError::NotHosted { .. })), "{missing:?}");

    // Listings per tenant.
    let names = |v: Vec<mtasts_store::hosting::HostedDomain>| {
        v.into_iter().map(|d| d.domain).collect::<Vec<_>>()
    };
    assert_eq!(names(store.list(Some("tenant-a")).await.unwrap()), ["a.example"]);
    assert_eq!(names(store.list(Some("tenant-b")).await.unwrap()), ["b.example"]);
    assert_eq!(names(store.list(None).await.unwrap()), ["a.example", "b.example"]);
}

/// Two stores on one database (two `serve` instances) change the same version at once:
/// exactly one change is published, the other is told the domain changed.
async fn racing_changes_one_wins(db: &TestDb) {
    let one = HostingStore::with_database(db.database().await).await.unwrap();
    let two = HostingStore::with_database(db.database().await).await.unwrap();
    one.add("a.example", "t", &version("1", "testing", 86_400, 1, "added")).await.unwrap();
    for round in 1..=10_i64 {
        let a = version(&format!("a{round}"), "testing", 86_400, round, "one");
        let b = version(&format!("b{round}"), "testing", 86_400, round, "two");
        let (ra, rb) =
            tokio::join!(one.publish("a.example", round, &a), two.publish("a.example", round, &b));
        let won = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
        assert_eq!(won, 1, "round {round}: {ra:?} {rb:?}");
        let lost = if ra.is_ok() { rb } else { ra };
        assert!(matches!(lost, Err(HostingError::Stale { .. })), "round {round}: {lost:?}");
    }
    let history = one.history("a.example").await.unwrap();
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
    assert_eq!(one.get("a.example").await.unwrap().unwrap().version, 11);
}

fn cert(domain: &str, not_after: i64, at: i64) -> StoredCertificate {
    StoredCertificate {
        domain: domain.to_owned(),
        chain_pem: format!("chain of {domain} {not_after}"),
        key_pem: "key".to_owned(),
        not_before: 0,
        not_after,
        source: "manual".to_owned(),
        updated_at: at,
    }
}

/// Certificates are kept per hosted domain and replaced on renewal; the generation changes
/// with every write `serve` must reload for, and only then.
async fn certificates_and_generation(db: &TestDb) {
    let store = HostingStore::with_database(db.database().await).await.unwrap();
    let g0 = store.generation().await.unwrap();
    assert_eq!(store.generation().await.unwrap(), g0, "no change, same generation");
    store.add("a.example", "t", &version("1", "testing", 86_400, 100, "added")).await.unwrap();
    let g1 = store.generation().await.unwrap();
    assert_ne!(g1, g0);
    store.publish("a.example", 1, &version("2", "enforce", 604_800, 200, "p")).await.unwrap();
    let g2 = store.generation().await.unwrap();
    assert_ne!(g2, g1);

    // Not hosted: refused.
    let err = store.put_certificate(&cert("b.example", 1000, 1)).await;
    assert!(matches!(err, Err(HostingError::NotHosted { .. })), "{err:?}");
    store.put_certificate(&cert("a.example", 1000, 300)).await.unwrap();
    let g3 = store.generation().await.unwrap();
    assert_ne!(g3, g2);
    // Renewed: replaced, one row.
    store.put_certificate(&cert("a.example", 2000, 300)).await.unwrap();
    assert_ne!(store.generation().await.unwrap(), g3);
    let all = store.certificates().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].not_after, all[0].chain_pem.as_str()), (2000, "chain of a.example 2000"));
}
