//! Integration tests of the network layer against the hermetic test world (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dns;
mod fetch;
mod nsd;
mod probe;

use std::sync::Arc;

use mtasts_net::{DnsClient, HickoryDns, NetConfig, Timeouts};
use mtasts_testkit::World;

pub(crate) fn config_for(world: &World) -> NetConfig {
    mtasts_net::install_crypto_provider();
    NetConfig::private_world(
        world.dns_addr(),
        world.ca_pem_path(),
        world.https_port(),
        world.smtp_port(),
        "net-tests.mtasts.test",
    )
}

pub(crate) fn dns_for(world: &World) -> Arc<dyn DnsClient> {
    Arc::new(HickoryDns::new(&[world.dns_addr()], Timeouts::fast().dns).unwrap())
}
