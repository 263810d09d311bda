//! The dashboard over real HTTP and in headless Chromium: sign-in by token (cookie), a
//! tenant sees only its domains, the domain page shows the monitoring problems, the records,
//! the policy, the report charts and the history. Screenshots are kept at
//! `$CARGO_TARGET_TMPDIR/dashboard-domains.png` and `dashboard-domain.png`.

use std::path::PathBuf;

use mtasts_proto::DomainName;
use mtasts_reports::{Ingestor, Limits};
use mtasts_serve::domains::Manager;
use mtasts_serve::lifecycle::Service;
use mtasts_serve::tenants::issue;
use mtasts_store::hosting::{DomainProblem, HostingStore};
use mtasts_store::reports::ReportStore;
use mtasts_testkit::browser::Browser;
use time::OffsetDateTime;

use crate::common::{TestDb, both_backends, now, serve_plain};

both_backends!(dashboard_pages);

fn report(day: i64, failed: u64) -> Vec<u8> {
    let date = OffsetDateTime::from_unix_timestamp(day * 86_400).unwrap().date();
    serde_json::to_vec(&serde_json::json!({
        "organization-name": "Google Inc.",
        "date-range": {"start-datetime": format!("{date}T00:00:00Z"), "end-datetime": format!("{date}T23:59:59Z")},
        "contact-info": "tlsrpt@reporter.example",
        "report-id": format!("g-{day}"),
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing", "mx: mx1.a.test", "max_age: 86400"], "policy-domain": "a.test"},
            "summary": {"total-successful-session-count": 120, "total-failure-session-count": failed},
            "failure-details": if failed > 0 { serde_json::json!([{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10", "receiving-mx-hostname": "mx1.a.test", "failed-session-count": failed}]) } else { serde_json::json!([]) }
        }]
    }))
    .unwrap()
}

async fn dashboard_pages(db: &TestDb) {
    let database = db.database().await;
    let store = HostingStore::with_database(database.clone()).await.unwrap();
    let reports = ReportStore::with_database(database).await.unwrap();
    let service = Service {
        cname_target: Some(DomainName::parse_ascii("sts.provider.test").unwrap()),
        rua: vec!["mailto:tlsrpt@provider.test".into()],
    };
    let manager = Manager::new(store.clone(), None, service).with_reports(reports.clone());
    let t = OffsetDateTime::now_utc();
    manager.add("a.test", "tenant-a", "alice", Some(vec!["mx1.a.test".into()]), t).await.unwrap();
    manager.add("b.test", "tenant-b", "bob", Some(vec!["mx1.b.test".into()]), t).await.unwrap();
    let ing = Ingestor::new(reports, Limits::default());
    let today = now().div_euclid(86_400);
    for d in today - 10..today {
        ing.file(&report(d, if d % 3 == 0 { 7 } else { 0 }), "g", 1).await.unwrap();
    }
    let problem = DomainProblem {
        domain: "a.test".into(),
        code: "mx-cert-expiring".into(),
        subject: "mx1.a.test".into(),
        severity: "warning".into(),
        message: "the certificate of mx1.a.test expires in 9 days <soon>".into(),
        first_seen: now(),
        last_seen: now(),
    };
    store.replace_problems("a.test", &[problem], now()).await.unwrap();
    let (_, a) = issue(&store, Some("tenant-a"), "a", now()).await.unwrap();

    let router =
        mtasts_serve::api::router(manager.clone()).merge(mtasts_serve::dashboard::router(manager));
    let addr = serve_plain(router).await;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            mtasts_testkit::ca::client_config(rustls::RootCertStore::empty()),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{addr}");

    // Not signed in: to the sign-in form; a bad token is refused with the reason.
    let r = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().unwrap()),
        (303, "/dashboard/login")
    );
    let r = http.get(format!("{base}/dashboard/login")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("name=\"token\""));
    let r = http
        .post(format!("{base}/dashboard/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=mtasts_0123456789abcdef_00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("the token is not valid"));
    // Signed in: an HttpOnly cookie for /dashboard; a redirect never leaves the dashboard.
    let r = http
        .get(format!("{base}/dashboard/login?token={a}&next=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"].to_str().unwrap(), "/dashboard");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/dashboard")
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let get = |path: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        async move {
            let r = http.get(path).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, list) = get(format!("{base}/dashboard")).await;
    assert_eq!(status, 200);
    assert!(list.contains(">a.test</a>") && !list.contains("b.test"), "{list}");
    assert!(list.contains("1 warning(s)"), "{list}");
    let (status, _) = get(format!("{base}/dashboard/domains/b.test")).await;
    assert_eq!(status, 404, "another tenant's domain");
    let (status, page) = get(format!("{base}/dashboard/domains/a.test")).await;
    assert_eq!(status, 200);
    for want in [
        "mta-sts.a.test. 3600 IN CNAME sts.provider.test.",
        "_smtp._tls.a.test.",
        "mode: testing",
        "mx1.a.test</b>: the certificate of mx1.a.test expires in 9 days &#60;soon&#62;",
        "a.test: sessions per UTC day",
        "certificate-expired",
        "<td>alice</td>",
    ] {
        assert!(page.contains(want), "{want:?} missing from the domain page:\n{page}");
    }
    assert!(!page.contains("<soon>"), "text is escaped");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "nothing loaded from elsewhere"
    );
    assert!(page.contains("default-src 'none'"), "a Content-Security-Policy forbids loading");

    // In a real browser: sign in from a link straight onto the domain page.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let work = tmp.join(format!("dashboard-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let Some(mut browser) = Browser::find(&work) else { return };
    let link = format!("{base}/dashboard/login?token={a}&next=/dashboard/domains/a.test");
    let dom = browser.dump_dom(&link);
    assert!(dom.contains("<h1>a.test</h1>"), "{dom}");
    assert!(dom.contains("<svg class=\"chart\""), "the report charts are drawn");
    for (url, name, height) in [
        (format!("{base}/dashboard/login?token={a}"), "dashboard-domains.png", 700),
        (link, "dashboard-domain.png", 1900),
    ] {
        let png = work.join(name);
        browser.screenshot(&url, &png, 1200, height);
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 15_000,
            "{name}: {} bytes",
            bytes.len()
        );
        std::fs::copy(&png, tmp.join(name)).unwrap();
    }
}
