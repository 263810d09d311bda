//! The reports store's roll-ups (migration `reports/0003`): what the summary reads from them
//! equals what the detail tables say, for reports stored in batches with duplicates, several
//! policies for one domain, and details without the optional fields; and a store written
//! before the roll-ups existed is rolled up by the migration.

use std::borrow::Cow;

use mtasts_store::reports::{
    DayRow, FailureDay, FailureGroup, FailureKey, NewFailure, NewPolicy, NewReport, ReportStore,
};

use crate::common::{TestDb, both_backends};

both_backends!(rollups_equal_the_detail_tables, the_migration_rolls_up_older_reports);

const DAY: i64 = 86_400;
const T0: i64 = 20_000 * DAY;

fn failure(result_type: &str, mx: Option<&str>, ip: Option<&str>, n: i64) -> NewFailure {
    NewFailure {
        result_type: result_type.to_owned(),
        sending_ip: Some("192.0.2.1".to_owned()),
        receiving_mx_hostname: mx.map(str::to_owned),
        receiving_mx_helo: None,
        receiving_ip: ip.map(str::to_owned),
        failed_sessions: n,
        additional_information: None,
        failure_reason_code: (result_type == "certificate-expired")
            .then(|| "X509_V_ERR_CERT_HAS_EXPIRED".to_owned()),
        extra_json: "{}".to_owned(),
    }
}

fn policy(domain: Option<&str>, ok: i64, failures: Vec<NewFailure>) -> NewPolicy {
    NewPolicy {
        policy_type: if domain.is_some() { "sts" } else { "no-policy-found" }.to_owned(),
        policy_domain: domain.map(str::to_owned),
        policy_strings_json: "[\"version: STSv1\",\"mode: testing\"]".to_owned(),
        mx_hosts_json: "[]".to_owned(),
        successful: ok,
        failed: failures.iter().map(|f| f.failed_sessions).sum(),
        extra_json: "{}".to_owned(),
        failures,
    }
}

fn report(org: &str, id: &str, day: i64, policies: Vec<NewPolicy>) -> NewReport {
    NewReport {
        organization: org.to_owned(),
        report_id: id.to_owned(),
        start: T0 + day * DAY,
        end: T0 + (day + 1) * DAY - 1,
        contact_info: None,
        channel: "mail".to_owned(),
        submitter: None,
        report_domain: None,
        dkim: None,
        warnings_json: "[]".to_owned(),
        raw_json: "{}".to_owned(),
        received_at: T0 + (day + 1) * DAY,
        policies,
    }
}

/// Reports over three days and two domains: one with two policies for the same domain, one
/// without a policy domain, details with and without MX and IP, long keys.
fn reports() -> Vec<NewReport> {
    let long_mx = format!("{}.example", "m".repeat(600));
    vec![
        report(
            "Google Inc.",
            "g1",
            0,
            vec![policy(
                Some("a.example"),
                100,
                vec![
                    failure("certificate-expired", Some("mx1.a.example"), Some("198.51.100.1"), 3),
                    failure("starttls-not-supported", None, None, 2),
                ],
            )],
        ),
        report(
            "Microsoft",
            "m1",
            0,
            vec![
                policy(Some("a.example"), 50, vec![]),
                policy(
                    Some("a.example"),
                    7,
                    vec![failure("validation-failure", Some(&long_mx), None, 5)],
                ),
                policy(Some("b.example"), 9, vec![]),
            ],
        ),
        report(
            "Google Inc.",
            "g2",
            1,
            vec![policy(
                Some("a.example"),
                80,
                vec![failure(
                    "certificate-expired",
                    Some("mx1.a.example"),
                    Some("198.51.100.1"),
                    4,
                )],
            )],
        ),
        report(
            "Yahoo",
            "y1",
            2,
            vec![policy(None, 0, vec![failure("sts-policy-fetch-error", None, None, 1)])],
        ),
    ]
}

/// What the summary read from the detail tables before the roll-ups (the queries of
/// migration 0002's store), as the oracle.
async fn oracle(db: &TestDb) -> (Vec<DayRow>, Vec<Vec<FailureGroup>>, Vec<FailureDay>) {
    let days_sql = "SELECT COALESCE(policy_domain, '') AS domain, day, CAST(SUM(successful) AS BIGINT), \
         CAST(SUM(failed) AS BIGINT), COUNT(DISTINCT report) FROM tlsrpt_policies \
         GROUP BY COALESCE(policy_domain, ''), day ORDER BY domain, day";
    let group_sql = |col: &str| {
        format!(
            "SELECT COALESCE(p.policy_domain, '') AS domain, SUBSTR(COALESCE({col}, '(none)'), 1, 512) AS key, \
             CAST(SUM(f.failed_sessions) AS BIGINT) AS failed FROM tlsrpt_failures f \
             JOIN tlsrpt_policies p ON p.id = f.policy JOIN tlsrpt_reports r ON r.id = p.report \
             GROUP BY COALESCE(p.policy_domain, ''), SUBSTR(COALESCE({col}, '(none)'), 1, 512) \
             ORDER BY domain, failed DESC, key"
        )
    };
    let fdays_sql = "SELECT COALESCE(p.policy_domain, '') AS domain, p.day, f.result_type, \
         CAST(SUM(f.failed_sessions) AS BIGINT) FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy \
         GROUP BY COALESCE(p.policy_domain, ''), p.day, f.result_type ORDER BY domain, p.day, f.result_type";
    let cols = [
        "f.result_type",
        "r.organization",
        "f.receiving_mx_hostname",
        "f.receiving_ip",
        "f.sending_ip",
        "f.failure_reason_code",
    ];
    macro_rules! run {
        ($pool:expr) => {{
            let pool = $pool;
            let days: Vec<(String, i64, i64, i64, i64)> =
                sqlx::query_as(days_sql).fetch_all(&pool).await.unwrap();
            let mut groups = Vec::new();
            for col in cols {
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(group_sql(col)))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                groups.push(
                    rows.into_iter()
                        .map(|(domain, key, failed)| FailureGroup { domain, key, failed })
                        .collect(),
                );
            }
            let fdays: Vec<(String, i64, String, i64)> =
                sqlx::query_as(fdays_sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            (
                days.into_iter()
                    .map(|(domain, day, successful, failed, reports)| DayRow {
                        domain,
                        day,
                        successful,
                        failed,
                        reports,
                    })
                    .collect(),
                groups,
                fdays
                    .into_iter()
                    .map(|(domain, day, result_type, failed)| FailureDay {
                        domain,
                        day,
                        result_type,
                        failed,
                    })
                    .collect(),
            )
        }};
    }
    if db.admin_url().is_some() {
        run!(sqlx::PgPool::connect(&db.url).await.unwrap())
    } else {
        run!(sqlx::SqlitePool::connect(&db.url).await.unwrap())
    }
}

const KEYS: [FailureKey; 6] = [
    FailureKey::ResultType,
    FailureKey::Organization,
    FailureKey::ReceivingMx,
    FailureKey::ReceivingIp,
    FailureKey::SendingIp,
    FailureKey::ReasonCode,
];

async fn assert_rollups_match(store: &ReportStore, db: &TestDb) {
    let (days, groups, fdays) = oracle(db).await;
    assert!(!days.is_empty() && !fdays.is_empty());
    assert_eq!(store.days(None, 0).await.unwrap(), days);
    assert_eq!(store.failure_days(None, 0).await.unwrap(), fdays);
    for (key, want) in KEYS.into_iter().zip(groups) {
        assert_eq!(store.failures(key, None, 0).await.unwrap(), want, "{key:?}");
        // One domain: the same rows, filtered.
        let a: Vec<_> = want.iter().filter(|g| g.domain == "a.example").cloned().collect();
        assert_eq!(store.failures(key, Some("a.example"), 0).await.unwrap(), a, "{key:?}");
    }
    let a: Vec<_> = days.iter().filter(|d| d.domain == "a.example").cloned().collect();
    assert_eq!(store.days(Some("a.example"), 0).await.unwrap(), a);
    // From a day on.
    let later: Vec<_> = days.iter().filter(|d| d.day >= T0 + DAY).cloned().collect();
    assert_eq!(store.days(None, T0 + DAY).await.unwrap(), later);
}

async fn rollups_equal_the_detail_tables(db: &TestDb) {
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    let all = reports();
    // Two batches: the second repeats a report of the first and one of its own.
    store.insert_all(&all[..2]).await.unwrap();
    let batch = [all[1].clone(), all[2].clone(), all[3].clone(), all[2].clone()];
    let stored = store.insert_all(&batch).await.unwrap();
    assert_eq!(stored.iter().map(|s| s.duplicate).collect::<Vec<_>>(), [true, false, false, true]);
    assert!(store.insert(&all[0]).await.unwrap().duplicate);
    assert_rollups_match(&store, db).await;

    // The sums, by hand: a.example on day 0 is 157 successful, 10 failed, from 2 reports.
    let days = store.days(Some("a.example"), 0).await.unwrap();
    assert_eq!((days[0].successful, days[0].failed, days[0].reports), (157, 10, 2));
    let by_type = store.failures(FailureKey::ResultType, Some("a.example"), 0).await.unwrap();
    let got: Vec<(&str, i64)> = by_type.iter().map(|g| (g.key.as_str(), g.failed)).collect();
    assert_eq!(
        got,
        [("certificate-expired", 7), ("validation-failure", 5), ("starttls-not-supported", 2)]
    );
    let by_mx = store.failures(FailureKey::ReceivingMx, Some("a.example"), 0).await.unwrap();
    assert!(by_mx.iter().any(|g| g.key == "(none)" && g.failed == 2), "{by_mx:?}");
    assert!(by_mx.iter().all(|g| g.key.chars().count() <= 512), "long keys are cut");

    // The listing's derived columns.
    let list = store.list(None, 10).await.unwrap();
    let find = |id: &str| list.iter().find(|r| r.report_id == id).unwrap();
    assert_eq!((find("g1").receipts, find("m1").receipts, find("g2").receipts), (2, 2, 2));
    assert_eq!(find("y1").receipts, 1);
    assert_eq!(find("m1").domains, "a.example,b.example");
    assert_eq!(find("y1").domains, "");
    assert_eq!(store.list(Some("b.example"), 10).await.unwrap().len(), 1);
}

/// A store written with migrations 0001-0002 (rows as that store wrote them), then opened:
/// migration 0003 fills the roll-ups and the listing columns from the detail tables.
async fn the_migration_rolls_up_older_reports(db: &TestDb) {
    // The rows the old store wrote, by hand (ids explicit).
    let rows = [
        "INSERT INTO tlsrpt_reports (id, organization, report_id, start_at, end_at, successful, failed, channel, warnings_json, raw_json, received_at) \
         VALUES (1, 'Google Inc.', 'g1', 1728000000, 1728086399, 100, 5, 'mail', '[]', '{}', 1728090000)",
        "INSERT INTO tlsrpt_reports (id, organization, report_id, start_at, end_at, successful, failed, channel, warnings_json, raw_json, received_at) \
         VALUES (2, 'Microsoft', 'm1', 1728000000, 1728086399, 66, 5, 'https', '[]', '{}', 1728090000)",
        "INSERT INTO tlsrpt_receipts (report, channel, received_at, duplicate) VALUES (1, 'mail', 1728090000, FALSE)",
        "INSERT INTO tlsrpt_receipts (report, channel, received_at, duplicate) VALUES (1, 'https', 1728090001, TRUE)",
        "INSERT INTO tlsrpt_receipts (report, channel, received_at, duplicate) VALUES (2, 'https', 1728090000, FALSE)",
        "INSERT INTO tlsrpt_policies (id, report, position, policy_type, policy_domain, policy_strings_json, mx_hosts_json, successful, failed, day, extra_json) \
         VALUES (1, 1, 0, 'sts', 'a.example', '[]', '[]', 100, 5, 1728000000, '{}')",
        "INSERT INTO tlsrpt_policies (id, report, position, policy_type, policy_domain, policy_strings_json, mx_hosts_json, successful, failed, day, extra_json) \
         VALUES (2, 2, 0, 'sts', 'a.example', '[]', '[]', 50, 5, 1728000000, '{}')",
        "INSERT INTO tlsrpt_policies (id, report, position, policy_type, policy_domain, policy_strings_json, mx_hosts_json, successful, failed, day, extra_json) \
         VALUES (3, 2, 1, 'sts', 'a.example', '[]', '[]', 16, 0, 1728000000, '{}')",
        "INSERT INTO tlsrpt_failures (policy, result_type, receiving_mx_hostname, failed_sessions, extra_json) \
         VALUES (1, 'certificate-expired', 'mx1.a.example', 5, '{}')",
        "INSERT INTO tlsrpt_failures (policy, result_type, failed_sessions, extra_json) \
         VALUES (2, 'certificate-expired', 5, '{}')",
    ];
    macro_rules! old_store {
        ($pool:expr, $migrator:expr, $after:expr) => {{
            let pool = $pool;
            let mut migrator: sqlx::migrate::Migrator = $migrator;
            let first_two: Vec<_> = migrator.migrations.iter().take(2).cloned().collect();
            migrator.migrations = Cow::Owned(first_two);
            migrator.dangerous_set_table_name("_mtasts_reports_migrations");
            migrator.run(&pool).await.unwrap();
            for sql in rows {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            for sql in $after {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }};
    }
    if db.admin_url().is_some() {
        old_store!(
            sqlx::PgPool::connect(&db.url).await.unwrap(),
            sqlx::migrate!("./migrations/reports/postgres"),
            // The ids were given: the sequences carry on after them.
            [
                "SELECT setval(pg_get_serial_sequence('tlsrpt_reports', 'id'), 10)",
                "SELECT setval(pg_get_serial_sequence('tlsrpt_policies', 'id'), 10)",
            ]
        );
    } else {
        let url = format!("{}?mode=rwc", db.url);
        old_store!(
            sqlx::SqlitePool::connect(&url).await.unwrap(),
            sqlx::migrate!("./migrations/reports/sqlite"),
            [] as [&str; 0]
        );
    }
    let store = ReportStore::with_database(db.database().await).await.unwrap();
    assert_rollups_match(&store, db).await;
    let days = store.days(None, 0).await.unwrap();
    assert_eq!(
        days,
        [DayRow {
            domain: "a.example".into(),
            day: 1_728_000_000,
            successful: 166,
            failed: 10,
            reports: 2
        }]
    );
    let list = store.list(None, 10).await.unwrap();
    assert_eq!(list.iter().map(|r| r.receipts).sum::<i64>(), 3);
    assert!(list.iter().all(|r| r.domains == "a.example"), "{list:?}");
    // Stored after the migration, a report adds to the migrated roll-up.
    store
        .insert(&report("Yahoo", "y1", 0, vec![policy(Some("a.example"), 4, vec![])]))
        .await
        .unwrap();
    assert_rollups_match(&store, db).await;
}
