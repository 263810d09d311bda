//! Shared helpers.

pub use mtasts_store::testing::TestDb;

/// Defines `sqlite` and `postgres` tests running `$f(&TestDb)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$name(&db).await;
                    db.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Serves `router` on plain HTTP on a free loopback port until the test ends; its address.
pub async fn serve_plain(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mtasts_reports::http::serve(
        listener,
        None,
        router,
        mtasts_reports::http::ServeOptions::default(),
        std::future::pending(),
    ));
    addr
}

/// The network configuration of a client of `world` that fetches policies from `https_port`,
/// and a DNS client on it.
pub fn world_net(
    world: &mtasts_testkit::World,
    https_port: u16,
) -> (mtasts_net::NetConfig, std::sync::Arc<mtasts_net::HickoryDns>) {
    let config = mtasts_net::NetConfig::private_world(
        world.dns_addr(),
        world.ca_pem_path(),
        https_port,
        world.smtp_port(),
        "tests.mtasts.test",
    );
    let dns = std::sync::Arc::new(
        mtasts_net::HickoryDns::new(&config.dns_servers, config.timeouts.dns).unwrap(),
    );
    (config, dns)
}
