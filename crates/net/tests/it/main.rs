//! Integration tests of the network layer against the hermetic test world (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dns;
mod fetch;
mod nsd;
mod probe;

use std::sync::Arc;

use mtasts_net::{DnsClient, HickoryDns, NetConfig, Timeouts, TrustRoots};
use mtasts_testkit::World;

pub(crate) fn config_for(world: &World) -> NetConfig {
    mtasts_net::install_crypto_provider();
    NetConfig {
        dns_servers: vec![world.dns_addr()],
        trust: TrustRoots::PemFile(world.ca_pem_path().to_path_buf()),
        https_port: world.https_port(),
        smtp_port: world.smtp_port(),
        timeouts: Timeouts::fast(),
        ehlo_name: "net-tests.mtasts.test".into(),
    }
}

pub(crate) fn dns_for(world: &World) -> Arc<dyn DnsClient> {
    Arc::new(HickoryDns::new(&[world.dns_addr()], Timeouts::fast().dns).unwrap())
}
