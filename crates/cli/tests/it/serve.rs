//! `mtasts domain` and `mtasts serve` end to end, as an administrator runs them: a domain added
//! from its live MX, its certificate stored, the policy served by a `serve` process and judged
//! valid by the project's own `check`, a change served before its TXT record is printed
//! (`--wait`), a `serve` killed and started again.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_net::dns::RecordType;
use mtasts_testkit::World;
use mtasts_testkit::ca::CertSpec;
use mtasts_testkit::dns::Override;
use mtasts_testkit::world::{DomainSpec, MxSpec};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

struct Site {
    world: World,
    db: String,
    https: u16,
    http: u16,
    dir: tempfile::TempDir,
}

impl Site {
    /// A world with `shop.test` (MX 10 `mx1.shop.test`, STARTTLS) and a fresh hosting database.
    async fn shop() -> Self {
        let mut spec = DomainSpec::empty("shop.test");
        spec.mx = vec![MxSpec::good(10, "mx1.shop.test")];
        let world = World::builder().domain(spec).build().await;
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: format!("sqlite://{}", dir.path().join("serve.db").display()),
            world,
            https: free_port(),
            http: free_port(),
            dir,
        }
    }

    /// `mtasts <args>` pointed at the world's DNS and trust roots, and at this site's serve
    /// for HTTPS.
    fn mtasts(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
        cmd.args(args)
            .env("MTASTS_SERVE_DB", &self.db)
            .env("MTASTS_DNS_SERVER", self.world.dns_addr().to_string())
            .env("MTASTS_TRUST_ROOTS", self.world.ca_pem_path())
            .env("MTASTS_HTTPS_PORT", self.https.to_string())
            .env("MTASTS_SMTP_PORT", self.world.smtp_port().to_string())
            .env("MTASTS_DNS_TIMEOUT", "1")
            .env("MTASTS_SERVICE_HOST", "sts.provider.test")
            .env("MTASTS_REPORT_URI", "mailto:tlsrpt@provider.test")
            .env("NO_COLOR", "1");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.mtasts(args).output().unwrap()
    }

    fn serve(&self) -> Child {
        self.serve_with(&[])
    }

    fn serve_with(&self, extra: &[&str]) -> Child {
        let (https, http) =
            (format!("127.0.0.1:{}", self.https), format!("127.0.0.1:{}", self.http));
        let mut args = vec!["serve", "--listen-https", &https, "--listen-http", &http];
        args.extend(["--reload", "0.2"]);
        args.extend(extra);
        let child =
            self.mtasts(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.https)).is_err() {
            assert!(Instant::now() < deadline, "mtasts serve did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_domain_end_to_end() {
    let site = Site::shop().await;

    // add: the live MX, testing, and the records in publishing order.
    let out = site.run(&["domain", "add", "shop.test", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["domain"]["mode"], "testing");
    assert_eq!(added["records"]["cname"], "mta-sts.shop.test. 3600 IN CNAME sts.provider.test.");
    let id = added["domain"]["policy_id"].as_str().unwrap().to_owned();

    // A certificate from files: a wrong one is refused, the right one stored.
    let ca = site.world.ca();
    let other = ca.issue(&CertSpec::valid_for(&["mta-sts.other.test"]));
    let good = ca.issue(&CertSpec::valid_for(&["mta-sts.shop.test"]));
    let (oc, ok) = (
        write(site.dir.path(), "o.pem", &other.chain_pem),
        write(site.dir.path(), "ok.pem", &other.key_pem),
    );
    let out = site.run(&["domain", "cert", "shop.test", "--chain", &oc, "--key", &ok]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not mta-sts.shop.test"), "{}", text(&out));
    let (gc, gk) = (
        write(site.dir.path(), "c.pem", &good.chain_pem),
        write(site.dir.path(), "k.pem", &good.key_pem),
    );
    let out = site.run(&["domain", "cert", "shop.test", "--chain", &gc, "--key", &gk]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The owner publishes the records: the policy host now points at this serve, and the TXT
    // record announces the id.
    let dns = site.world.dns();
    dns.set_override("mta-sts.shop.test", RecordType::A, Override::A(vec![Ipv4Addr::LOCALHOST]));
    dns.set_override(
        "_mta-sts.shop.test",
        RecordType::TXT,
        Override::Txt(vec![vec![format!("v=STSv1; id={id};")]]),
    );
    let mut serve = site.serve();

    // The project's own checker, as a sender sees the domain: the policy is valid, served by
    // `serve` with the stored certificate, and covers the MX host.
    let out = site.run(&["check", "shop.test", "--format", "json", "--fetch-timeout", "3"]);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let report = report["domains"][0].clone();
    assert_eq!(report["policy"]["mode"], "testing", "{report:#}");
    let codes: Vec<&str> =
        report["findings"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert!(!codes.iter().any(|c| c.starts_with("policy-fetch")), "{codes:?}");
    assert_eq!(report["mx"][0]["matched_by"], "mx1.shop.test", "{report:#}");

    // set --wait: the new policy is served before the TXT record to publish is printed.
    let out = site.run(&["domain", "set", "shop.test", "--max-age", "172800", "--wait", "15"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("serves the new policy"), "{}", text(&out));
    assert!(text(&out).contains("max_age: 172800"), "{}", text(&out));

    // Killed and started again: serves the same.
    serve.kill().unwrap();
    serve.wait().unwrap();
    let api_port = free_port();
    let api_addr = format!("127.0.0.1:{api_port}");
    let mut serve = site.serve_with(&["--api-listen", &api_addr]);
    let out = site.run(&["domain", "show", "shop.test", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(show["history"].as_array().unwrap().len(), 2);
    let problems = show["dns"]["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["code"] == "hosting-txt-id-stale"
            && p["message"].as_str().unwrap().contains("announces id")),
        "the TXT record still has the first id: {problems:?}"
    );
    let out = site.run(&["check", "shop.test", "--format", "json", "--fetch-timeout", "3"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = report["domains"][0].clone();
    assert_eq!(report["policy"]["max_age"], 172_800, "{report:#}");

    // Monitoring (on by default) checked the domain when serve started: the stale TXT id is a
    // stored problem, shown by `domain show`.
    let deadline = Instant::now() + Duration::from_secs(30);
    let show = loop {
        let out = site.run(&["domain", "show", "shop.test", "--no-dns", "--json"]);
        let show: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if !show["checked_at"].is_null() {
            break show;
        }
        assert!(Instant::now() < deadline, "monitoring never checked shop.test: {show:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let codes: Vec<&str> =
        show["problems"].as_array().unwrap().iter().filter_map(|p| p["code"].as_str()).collect();
    assert!(codes.contains(&"hosting-txt-id-stale"), "{show:#}");
    let out = site.run(&["domain", "show", "shop.test", "--no-dns"]);
    assert!(text(&out).contains("Monitoring: "), "{}", text(&out));
    assert!(text(&out).contains("[hosting-txt-id-stale]"), "{}", text(&out));

    // API tokens from the CLI: printed once, listed without the secret, revocable; the token
    // works against `serve --api-listen` until revoked.
    let out =
        site.run(&["domain", "token", "create", "--tenant", "default", "--label", "ci", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["row"]["id"].as_str().unwrap().to_owned();
    let out = site.run(&["domain", "token", "list", "--json"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains(&id) && !listed.contains(&token[24..]), "{listed}");
    let api = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(site.world.ca().root_store()))
        .build()
        .unwrap();
    let url = format!("http://{api_addr}/api/v1/domains/shop.test");
    let r = api.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let shown: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(shown["domain"]["max_age"], 172_800);
    // The dashboard on the same listener, signed in with the same token.
    let login = format!("http://{api_addr}/dashboard/login?token={token}");
    let browser = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(site.world.ca().root_store()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(&login).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let r = browser
        .get(format!("http://{api_addr}/dashboard"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains(">shop.test</a>"));
    let out = site.run(&["domain", "token", "revoke", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = site.run(&["domain", "token", "revoke", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = api.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // `domain list | head`: a closed pipe ends the listing quietly.
    let mut child = site
        .mtasts(&["domain", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("Broken pipe"), "{}", text(&out));

    // Bad input: an IP literal, a domain not hosted.
    let out = site.run(&["domain", "add", "192.0.2.1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is an IP address"), "{}", text(&out));
    let out = site.run(&["domain", "promote", "nothere.test"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not hosted"), "{}", text(&out));
    serve.kill().unwrap();
    let _ = serve.wait();
}

/// `mtasts serve --acme-directory` against Debian's pebble: a domain added with `mtasts domain
/// add` gets its certificate without anyone touching a file, and a sender trusting only
/// pebble's root fetches the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_by_acme() {
    let site = Site::shop().await;
    let Some(pebble) =
        mtasts_testkit::pebble::Pebble::start(site.world.dns_addr(), site.http, site.https)
    else {
        return;
    };
    let dns = site.world.dns();
    dns.set_override("mta-sts.shop.test", RecordType::A, Override::A(vec![Ipv4Addr::LOCALHOST]));
    dns.set_override("mta-sts.shop.test", RecordType::AAAA, Override::NoData);
    let out = site.run(&["domain", "add", "shop.test", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = added["domain"]["policy_id"].as_str().unwrap();
    dns.set_override(
        "_mta-sts.shop.test",
        RecordType::TXT,
        Override::Txt(vec![vec![format!("v=STSv1; id={id};")]]),
    );
    let out = site.run(&["domain", "show", "shop.test", "--no-dns"]);
    assert!(text(&out).contains("certificate: none yet"), "{}", text(&out));

    let ca_file = pebble.listener_ca_file().display().to_string();
    let directory = pebble.directory_url();
    let mut serve = site.serve_with(&[
        "--acme-directory",
        &directory,
        "--acme-ca",
        &ca_file,
        "--acme-contact",
        "mailto:hostmaster@provider.test",
        "--acme-every",
        "1",
        "--service-address",
        "127.0.0.1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let show = loop {
        let out = site.run(&["domain", "show", "shop.test", "--no-dns", "--json"]);
        let show: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if show["certificate"]["source"] == "acme" {
            break show;
        }
        if Instant::now() > deadline {
            serve.kill().unwrap();
            let log = serve.wait_with_output().unwrap();
            panic!(
                "no certificate from pebble: {show:#}\nserve: {}\npebble: {}",
                text(&log),
                pebble.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        show["certificate"]["not_after"].as_i64().unwrap()
            > show["certificate"]["not_before"].as_i64().unwrap()
    );
    assert_eq!(show["acme"]["failures"], 0, "{show:#}");

    // A sender that trusts only pebble's root fetches the policy and finds it valid.
    let management = reqwest::Client::builder()
        .tls_backend_preconfigured(mtasts_testkit::ca::client_config(
            pebble.listener_ca().root_store(),
        ))
        .build()
        .unwrap();
    let root = management.get(pebble.roots_url()).send().await.unwrap().text().await.unwrap();
    let root_file = write(site.dir.path(), "pebble-root.pem", &root);
    std::thread::sleep(Duration::from_millis(500)); // one reload interval
    let out = site
        .mtasts(&["check", "shop.test", "--format", "json", "--fetch-timeout", "3"])
        .env("MTASTS_TRUST_ROOTS", &root_file)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let report = report["domains"][0].clone();
    assert_eq!(report["policy"]["mode"], "testing", "{report:#}");
    let codes: Vec<&str> =
        report["findings"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert!(!codes.iter().any(|c| c.starts_with("policy-fetch")), "{codes:?}");
    let out = site.run(&["domain", "show", "shop.test", "--no-dns"]);
    assert!(
        text(&out).contains("certificate: acme (mta-sts.shop.test), valid until"),
        "{}",
        text(&out)
    );

    // Bad ACME settings are said before anything starts.
    let out = site.run(&[
        "serve",
        "--acme-directory",
        "http://plain.example",
        "--listen-https",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not an https:// URL"), "{}", text(&out));
    serve.kill().unwrap();
    serve.wait().unwrap();
}
