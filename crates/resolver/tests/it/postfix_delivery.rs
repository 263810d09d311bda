//! The downgrade attack, end to end: a real Postfix (Debian's, started as a private instance)
//! delivers mail to the test world's MX hosts with the resolver as its `smtp_tls_policy_maps`.
//! For an `enforce` domain mail goes only over verified TLS to a host the policy names, or
//! waits in the queue; it is never sent in plain text.
//!
//! The instance: its own configuration, queue and data directories in a temporary directory,
//! no `smtp inet` listener, no chroot, its log in a file (`maillog_file`). Postfix's SMTP
//! client finds MX hosts with libc's resolver, which asks port 53 of the server in
//! `/etc/resolv.conf`: Postfix runs in a mount namespace of its own (`unshare -m`) where a
//! `resolv.conf` naming the world's DNS server is bind-mounted over `/etc/resolv.conf`, and
//! the world serves on the standard ports ([`mtasts_testkit::WorldBuilder::standard_ports`]:
//! DNS on `127.A.B.253:53`, SMTP on port 25). The namespace lives as long as Postfix's
//! processes; mail is submitted with `sendmail -C`, which needs no DNS.

use std::time::Duration;

use mtasts_resolver::Zones;
use mtasts_testkit::postfix::{Attempt, Postfix};
use mtasts_testkit::{Scenario, SmtpSession, World};

use crate::support::{resolver_for, serve_on_loopback};

/// How long a case may take to reach its outcome (DNS, policy fetch, delivery, a retry).
const OUTCOME_DEADLINE: Duration = Duration::from_secs(60);
/// Deferred attempts to see before a deferral counts as final: the retry was refused too.
const DEFERRED_ATTEMPTS: usize = 2;

/// A private Postfix ([`mtasts_testkit::postfix`]) sending through the world's DNS, trusting
/// only the world's CA, and asking the socketmap server at `policy_server` for TLS policies.
fn start_postfix(world: &World, policy_server: std::net::SocketAddr) -> Option<Postfix> {
    let dns = world.dns_addr();
    assert_eq!(dns.port(), 53, "libc's resolver asks port 53 only");
    // The world's directory is root's alone; the smtp client reads the CA as `postfix`.
    let ca = std::fs::read(world.ca_pem_path()).unwrap();
    Postfix::builder()
        .file("world-ca.pem", &ca)
        .main_cf(&format!(
            "\
smtp_host_lookup = dns
smtp_dns_support_level = enabled
disable_dns_lookups = no
smtp_tls_security_level = may
smtp_tls_CAfile = {{dir}}/world-ca.pem
smtp_tls_loglevel = 1
smtp_tls_policy_maps = socketmap:inet:{policy_server}:postfix
smtp_connect_timeout = 5s
smtp_helo_timeout = 5s
"
        ))
        .resolver(dns.ip())
        .start()
}

/// Submits a test message to `rcpt`.
fn submit(postfix: &Postfix, rcpt: &str) {
    let message = format!(
        "From: sender@sender.mtasts.test\nTo: {rcpt}\nSubject: MTA-STS test\n\nfor {rcpt}\n"
    );
    postfix.submit("sender@sender.mtasts.test", rcpt, message.as_bytes());
}

/// The first attempt is the outcome of a message that should be delivered at once.
fn first(a: &[Attempt]) -> bool {
    !a.is_empty()
}

/// A deferral counts once the retry was deferred too; a delivery ends the wait at once.
fn deferred_again(a: &[Attempt]) -> bool {
    a.iter().filter(|a| a.status == "deferred").count() >= DEFERRED_ATTEMPTS
        || a.iter().any(|a| a.status != "deferred")
}

/// Whether the session carried a message (`DATA`) after a completed STARTTLS.
fn data_over_tls(s: &SmtpSession) -> bool {
    let index = |verb: &str| s.commands.iter().position(|c| c.eq_ignore_ascii_case(verb));
    matches!((index("STARTTLS"), index("DATA")), (Some(tls), Some(data)) if s.starttls && tls < data)
}

/// Whether the session got as far as a transaction (`MAIL FROM`) or a message (`DATA`).
fn transaction(s: &SmtpSession) -> bool {
    s.commands.iter().any(|c| {
        let c = c.to_ascii_uppercase();
        c.starts_with("MAIL") || c == "DATA"
    })
}

/// The five cases of the downgrade attack against one Postfix instance, one domain each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_delivers_only_as_the_policy_allows() {
    let w = World::builder()
        .scenario(Scenario::Good)
        .scenario(Scenario::MxNoStarttls)
        .scenario(Scenario::MxCertWrongName)
        .scenario(Scenario::MxCertUntrusted)
        .scenario(Scenario::MxCertBadTestingMode)
        .scenario(Scenario::MxWildcardTooDeep)
        .standard_ports()
        .build()
        .await;
    let (addr, _stop, _task) = serve_on_loopback(resolver_for(&w, Zones::default())).await;
    let Some(postfix) = start_postfix(&w, addr) else { return };

    let rcpt = |s: Scenario| format!("user@{}", s.domain());
    let mx1 = |s: Scenario| format!("mx1.{}", s.domain());
    let sessions = |host: &str| w.smtp(host).unwrap_or_else(|| panic!("no MX {host}")).sessions();
    let queued = |s: Scenario| postfix.queue().contains(&format!("\"address\": \"{}\"", rcpt(s)));
    let queue_and_log = || format!("queue:\n{}\nmaillog:\n{}", postfix.queue(), postfix.log());
    // Printed with the test's output (`--nocapture`, or on failure), whatever happens.
    struct PrintLog<'a>(&'a Postfix);
    impl Drop for PrintLog<'_> {
        fn drop(&mut self) {
            eprintln!("--- maillog ---\n{}", self.0.log());
        }
    }
    let _print = PrintLog(&postfix);

    // The deferred cases, with what Postfix says each time.
    let deferred = [
        // 2. STARTTLS stripped (by an attacker on the path): the MX does not offer it.
        (Scenario::MxNoStarttls, "status=deferred (TLS is required, but was not offered by host"),
        // 3. a certificate for another name, or from a CA nobody trusts.
        (Scenario::MxCertWrongName, "status=deferred (Server certificate not verified)"),
        (Scenario::MxCertUntrusted, "status=deferred (Server certificate not verified)"),
        // 5. `mx: *.<d>` and the MX `a.mx.<d>`, two labels below: the resolver answers TEMP.
        (Scenario::MxWildcardTooDeep, "status=deferred (client TLS configuration problem)"),
    ];
    for s in [Scenario::Good, Scenario::MxCertBadTestingMode] {
        submit(&postfix, &rcpt(s));
    }
    for (s, _) in deferred {
        submit(&postfix, &rcpt(s));
    }

    // 1. enforce, valid certificate: delivered over verified TLS, with the MX name as SNI.
    let good = Scenario::Good;
    let a = postfix.wait_for(&rcpt(good), "delivery", OUTCOME_DEADLINE, first).await;
    assert!(a.iter().all(|a| a.status == "sent"), "{a:#?}");
    let log = postfix.log();
    let verified = format!("Verified TLS connection established to {}[", mx1(good));
    assert!(log.contains(&verified), "{log}");
    let seen = sessions(&mx1(good));
    assert!(seen.iter().any(data_over_tls), "{seen:#?}");
    let sni = Some(mx1(good));
    assert!(seen.iter().filter(|s| s.starttls).all(|s| s.sni == sni), "{seen:#?}");

    // 4. the wrong-name certificate of 3, but the policy is `mode: testing`: the resolver
    //    answers NOTFOUND and Postfix delivers with its own level, opportunistic TLS (the chain
    //    is trusted, the name is not checked).
    let testing = Scenario::MxCertBadTestingMode;
    let a = postfix.wait_for(&rcpt(testing), "delivery", OUTCOME_DEADLINE, first).await;
    assert!(a.iter().all(|a| a.status == "sent"), "{a:#?}");
    let log = postfix.log();
    assert!(log.contains(&format!("Trusted TLS connection established to {}[", mx1(testing))));
    assert!(sessions(&mx1(testing)).iter().any(data_over_tls), "{:#?}", sessions(&mx1(testing)));

    // 2, 3, 5: deferred, retried, deferred again, still in the queue; no transaction (MAIL,
    // DATA) with the MX, ever. For 2 and 3 Postfix did connect (the attack was met, not
    // avoided); for 5 the policy lookup failed before any connection.
    for (s, reason) in deferred {
        let a = postfix
            .wait_for(&rcpt(s), "two deferred attempts", OUTCOME_DEADLINE, deferred_again)
            .await;
        assert!(a.iter().all(|a| a.status == "deferred" && a.line.contains(reason)), "{a:#?}");
        assert!(queued(s), "{s:?} is not in the queue\n{}", queue_and_log());
        let host = match s {
            Scenario::MxWildcardTooDeep => format!("a.mx.{}", s.domain()),
            _ => mx1(s),
        };
        let seen = sessions(&host);
        assert!(!seen.iter().any(transaction), "{s:?}: {seen:#?}");
        if s != Scenario::MxWildcardTooDeep {
            assert!(!seen.is_empty(), "{s:?}: Postfix never connected\n{}", queue_and_log());
        }
    }
    let log = postfix.log();
    let temp = "socketmap server temporary error: no MX host of mx-wildcard-too-deep.test";
    assert!(log.contains(temp), "{log}");

    // Whatever the case, no message was ever sent without TLS.
    for d in w.domains() {
        for host in [format!("mx1.{d}"), format!("a.mx.{d}")] {
            for s in w.smtp(&host).map(|server| server.sessions()).unwrap_or_default() {
                let data = s.commands.iter().any(|c| c.eq_ignore_ascii_case("DATA"));
                assert!(!data || data_over_tls(&s), "{host}: {s:#?}");
            }
        }
    }
}
