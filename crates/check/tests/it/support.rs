//! Building a world and a checker pointed at it.

use std::sync::Arc;

use mtasts_check::{CheckOptions, Checker, Code, DomainReport, Severity};
use mtasts_net::{HickoryDns, NetConfig};
use mtasts_testkit::{Scenario, World};

pub(crate) fn config_for(world: &World) -> NetConfig {
    NetConfig::private_world(
        world.dns_addr(),
        world.ca_pem_path(),
        world.https_port(),
        world.smtp_port(),
        "tests.mtasts.test",
    )
}

pub(crate) fn checker_for(world: &World) -> Checker {
    let config = config_for(world);
    let dns = Arc::new(HickoryDns::new(&config.dns_servers, config.timeouts.dns).unwrap());
    Checker::with_dns(&config, dns, CheckOptions::default()).unwrap()
}

/// Builds a world with `scenario` and checks its domain.
pub(crate) async fn run(scenario: Scenario) -> (World, DomainReport) {
    let world = World::builder().scenario(scenario).build().await;
    let report = checker_for(&world).check(&scenario.domain()).await;
    (world, report)
}

/// A readable dump of the findings, for assertion messages.
pub(crate) fn dump(r: &DomainReport) -> String {
    r.findings
        .iter()
        .map(|f| format!("  {:<8} {:<26} {}", f.severity.to_string(), f.code.as_str(), f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts `code` was reported with `severity`.
pub(crate) fn expect(r: &DomainReport, code: Code, severity: Severity) {
    assert!(
        r.findings.iter().any(|f| f.code == code && f.severity == severity),
        "{}: expected {code} with severity {severity}; got:\n{}",
        r.input,
        dump(r)
    );
}

/// Asserts `code` was not reported.
pub(crate) fn absent(r: &DomainReport, code: Code) {
    assert!(!r.has(code), "{}: did not expect {code}; got:\n{}", r.input, dump(r));
}

/// Asserts there is no finding of `severity` or worse other than `allowed`.
pub(crate) fn nothing_worse_than(r: &DomainReport, severity: Severity, allowed: &[Code]) {
    let bad: Vec<_> =
        r.findings.iter().filter(|f| f.severity > severity && !allowed.contains(&f.code)).collect();
    assert!(bad.is_empty(), "{}: unexpected findings worse than {severity}:\n{}", r.input, dump(r));
}
