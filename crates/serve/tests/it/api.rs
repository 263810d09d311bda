//! The REST API over real HTTP on both backends: tokens (hashed, revocable), a tenant that
//! sees and changes only its own domains on every endpoint, an operator token, bad bodies,
//! the OpenAPI description naming every route.

use std::net::SocketAddr;

use mtasts_proto::DomainName;
use mtasts_serve::domains::Manager;
use mtasts_serve::lifecycle::Service;
use mtasts_serve::tenants::issue;
use mtasts_store::hosting::HostingStore;
use serde_json::{Value, json};

use crate::common::{TestDb, both_backends, now, serve_plain};

both_backends!(tenants_tokens_and_limits);

struct Api {
    addr: SocketAddr,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        let mut r = self.client.request(method.parse().unwrap(), &url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

async fn tenants_tokens_and_limits(db: &TestDb) {
    let database = db.database().await;
    let store = HostingStore::with_database(database.clone()).await.unwrap();
    let service = Service {
        cname_target: Some(DomainName::parse_ascii("sts.provider.test").unwrap()),
        rua: vec!["mailto:tlsrpt@provider.test".into()],
    };
    let router = mtasts_serve::api::router(Manager::new(store.clone(), None, service));
    let addr = serve_plain(router).await;
    let tls = mtasts_testkit::ca::client_config(rustls::RootCertStore::empty());
    let api = Api {
        addr,
        client: reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap(),
    };

    let (row_a, a) = issue(&store, Some("tenant-a"), "a's deploy bot", now()).await.unwrap();
    let (_, b) = issue(&store, Some("tenant-b"), "b's portal", now()).await.unwrap();
    let (_, op) = issue(&store, None, "operator", now()).await.unwrap();
    let (gone_row, gone) = issue(&store, Some("tenant-a"), "old", now()).await.unwrap();
    assert!(store.revoke_token(&gone_row.id, now()).await.unwrap());
    // Only the hash is stored.
    let stored = store.token(&row_a.id).await.unwrap().unwrap();
    assert!(!a.contains(&stored.secret_sha256) && stored.secret_sha256.len() == 64);

    // Without a valid token nothing but the description answers.
    for (m, p) in [
        ("GET", "/api/v1/domains"),
        ("POST", "/api/v1/domains"),
        ("GET", "/api/v1/domains/a.test"),
        ("PATCH", "/api/v1/domains/a.test"),
        ("POST", "/api/v1/domains/a.test/promote"),
        ("POST", "/api/v1/domains/a.test/retire"),
    ] {
        for t in
            [None, Some("Bearer-less"), Some("mtasts_0000000000000000_00"), Some(gone.as_str())]
        {
            let (status, body) = api.call(m, p, t, Some(json!({}))).await;
            assert_eq!(status, 401, "{m} {p} with {t:?}: {body}");
        }
    }
    let (_, body) = api.call("GET", "/api/v1/domains", Some(&gone), None).await;
    assert_eq!(body["error"], "the token was revoked");

    // Tenant A hosts a.test.
    let (status, added) = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(&a),
            Some(json!({"domain": "A.test.", "mx": ["mx1.a.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["domain"]["tenant"], "tenant-a");
    assert_eq!(added["domain"]["mode"], "testing");
    assert!(added["records"]["sts_txt"].as_str().unwrap().starts_with("_mta-sts.a.test."));

    // Tenant B: a.test does not exist for it, on every endpoint, exactly like a name never hosted.
    let (status, list) = api.call("GET", "/api/v1/domains", Some(&b), None).await;
    assert_eq!((status, list["domains"].as_array().unwrap().len()), (200, 0));
    for (m, p, body) in [
        ("GET", "/api/v1/domains/a.test", None),
        ("PATCH", "/api/v1/domains/a.test", Some(json!({"max_age": 172_800}))),
        ("POST", "/api/v1/domains/a.test/promote", Some(json!({"force": true}))),
        ("POST", "/api/v1/domains/a.test/retire", Some(json!({}))),
    ] {
        let (status, theirs) = api.call(m, p, Some(&b), body.clone()).await;
        let (_, absent) = api.call(m, &p.replace("a.test", "absent.test"), Some(&b), body).await;
        assert_eq!(status, 404, "{m} {p}: {theirs}");
        assert_eq!(theirs["error"], "a.test is not hosted here");
        assert_eq!(absent["error"], "absent.test is not hosted here");
    }
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(&b),
            Some(json!({"domain": "a.test", "mx": ["mx.b.test"]})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "a.test is hosted already", "no tenant name leaks");
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(&b),
            Some(json!({"domain": "b.test", "mx": ["mx.b.test"], "tenant": "tenant-a"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // Nothing of A's changed.
    assert_eq!(store.get("a.test").await.unwrap().unwrap().version, 1);

    // A changes its own domain: a new version, with the token in the history.
    let (status, changed) = api
        .call(
            "PATCH",
            "/api/v1/domains/a.test",
            Some(&a),
            Some(json!({"max_age": 172_800, "reason": "longer"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["domain"]["version"], 2);
    assert_ne!(changed["domain"]["policy_id"], added["domain"]["policy_id"]);
    let (_, shown) = api.call("GET", "/api/v1/domains/a.test", Some(&a), None).await;
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["author"], format!("api:{} (a's deploy bot)", row_a.id));
    assert_eq!(history[1]["reason"], "longer");

    // "wait": without a network to fetch through, the answer says it is not served yet.
    let (status, waited) = api
        .call(
            "PATCH",
            "/api/v1/domains/a.test",
            Some(&a),
            Some(json!({"max_age": 259_200, "wait": 0})),
        )
        .await;
    assert_eq!(status, 200, "{waited}");
    assert_eq!(waited["served"], false);
    assert!(
        waited["not_served"].as_str().unwrap().contains("publish the TXT record once it is"),
        "{waited}"
    );
    let (status, _) = api
        .call(
            "PATCH",
            "/api/v1/domains/a.test",
            Some(&a),
            Some(json!({"max_age": 172_800, "wait": 121})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, back) = api
        .call("PATCH", "/api/v1/domains/a.test", Some(&a), Some(json!({"max_age": 172_800})))
        .await;
    assert_eq!((status, back["domain"]["version"].as_i64()), (200, Some(4)), "{back}");

    // Bad bodies: named, nothing stored.
    let cases = [
        (json!({"max_age": 1, "mode_": "enforce"}), 422, "unknown field `mode_`"),
        (json!({"mode": "strict"}), 422, "\"mode\": \"strict\" is not testing, enforce or none"),
        (
            json!({"mx": (0..101).map(|i| format!("mx{i}.a.test")).collect::<Vec<_>>()}),
            422,
            "at most 100 hosts",
        ),
        (
            json!({"policy_text": "version: STSv1\nmode: enforce\n"}),
            422,
            "the policy does not parse",
        ),
        (json!({"max_age": 172_800}), 409, "would not change"),
    ];
    for (body, want, says) in cases {
        let (status, answer) =
            api.call("PATCH", "/api/v1/domains/a.test", Some(&a), Some(body.clone())).await;
        let text = answer["error"].as_str().unwrap_or_default().to_owned();
        assert!(status == want || (want == 422 && status == 400), "{body}: {status} {answer}");
        assert!(text.contains(says), "{body}: {text}");
    }
    let huge = json!({"reason": "x".repeat(100_000)});
    let (status, _) = api.call("PATCH", "/api/v1/domains/a.test", Some(&a), Some(huge)).await;
    assert_eq!(status, 413);
    let not_json = api
        .client
        .patch(format!("http://{addr}/api/v1/domains/a.test"))
        .bearer_auth(&a)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    assert_eq!(store.get("a.test").await.unwrap().unwrap().version, 4);

    // The operator sees every tenant and must say whose a new domain is.
    api.call(
        "POST",
        "/api/v1/domains",
        Some(&b),
        Some(json!({"domain": "b.test", "mx": ["mx.b.test"]})),
    )
    .await;
    let (_, list) = api.call("GET", "/api/v1/domains", Some(&op), None).await;
    let names: Vec<&str> =
        list["domains"].as_array().unwrap().iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.test", "b.test"]);
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(&op),
            Some(json!({"domain": "c.test", "mx": ["mx.c.test"]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(&op),
            Some(json!({"domain": "c.test", "mx": ["mx.c.test"], "tenant": "tenant-b"})),
        )
        .await;
    assert_eq!((status, body["domain"]["tenant"].as_str()), (201, Some("tenant-b")));
    let (_, list) = api.call("GET", "/api/v1/domains", Some(&b), None).await;
    assert_eq!(list["domains"].as_array().unwrap().len(), 2);

    // Retire, by its owner.
    let (status, retired) = api.call("POST", "/api/v1/domains/a.test/retire", Some(&a), None).await;
    assert_eq!((status, retired["domain"]["mode"].as_str()), (200, Some("none")), "{retired}");

    // The description: no token needed, and it names every route used above.
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for (p, methods) in [
        ("/api/v1/domains", &["get", "post"][..]),
        ("/api/v1/domains/{domain}", &["get", "patch"][..]),
        ("/api/v1/domains/{domain}/promote", &["post"][..]),
        ("/api/v1/domains/{domain}/retire", &["post"][..]),
    ] {
        for m in methods {
            assert!(paths[p].get(*m).is_some(), "{m} {p} is not described");
        }
    }
    let (status, _) = api.call("GET", "/api/v2/nothing", Some(&a), None).await;
    assert_eq!(status, 404);

    // Per-token limits: a burst of 5 a minute, then 429 with Retry-After; other tokens are
    // not held back.
    let limited = mtasts_serve::api::router_with(
        Manager::new(store.clone(), None, Service::default()),
        mtasts_serve::api::ApiLimits { per_token_per_minute: 5 },
    );
    let limited_api = Api { addr: serve_plain(limited).await, client: api.client.clone() };
    for _ in 0..5 {
        assert_eq!(limited_api.call("GET", "/api/v1/domains", Some(&a), None).await.0, 200);
    }
    let (status, body) = limited_api.call("GET", "/api/v1/domains", Some(&a), None).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("more than 5 requests a minute"));
    assert_eq!(limited_api.call("GET", "/api/v1/domains", Some(&b), None).await.0, 200);

    // The database goes away: 503 in words, not a driver's text.
    database.close().await;
    let (status, body) = api.call("GET", "/api/v1/domains", Some(&b), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "the hosting database is unavailable");
}
