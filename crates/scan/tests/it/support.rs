//! A world, a checker pointed at it, and a scan store for one test.

use mtasts_check::Checker;
use mtasts_net::NetConfig;
use mtasts_scan::{CheckSettings, ScanConfig};
use mtasts_store::ScanStore;
use mtasts_testkit::World;

pub(crate) fn config_for(world: &World) -> NetConfig {
    NetConfig::private_world(
        world.dns_addr(),
        world.ca_pem_path(),
        world.https_port(),
        world.smtp_port(),
        "tests.mtasts.test",
    )
}

pub(crate) fn settings() -> CheckSettings {
    CheckSettings { probe_smtp: true, dane: false, smtp_per_ip: 4, dns_rate: None }
}

/// The scan's checker (rate-capped DNS, shared probe cache) for `world`.
pub(crate) fn checker_for(world: &World) -> Checker {
    mtasts_scan::stack::checker(&config_for(world), &settings()).unwrap().0
}

pub(crate) fn scan_config(worker: &str) -> ScanConfig {
    ScanConfig {
        concurrency: 8,
        batch: 4,
        lease: std::time::Duration::from_secs(30),
        deadline: std::time::Duration::from_secs(20),
        worker: worker.to_owned(),
    }
}

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
pub(crate) async fn sqlite_store() -> (tempfile::TempDir, String, ScanStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scan.db").display());
    let store = ScanStore::open(&url).await.unwrap();
    (dir, url, store)
}
