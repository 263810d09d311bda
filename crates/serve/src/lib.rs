//! `mtasts serve` and `mtasts domain`: MTA-STS policy hosting (RFC 8461) for one domain or
//! thousands.
//!
//! - [`lifecycle`]: the pure rules (hostable names, ids, `max_age` steps, records,
//!   retirement);
//! - [`domains`]: the operations on hosted domains (`add`, `set`, `promote`, `retire`,
//!   `status`), shared by the CLI and the API;
//! - [`catalog`]: what an instance serves, reloaded from the database, certificates by SNI;
//! - [`http`]: the routes (the policy over HTTPS, ACME challenges and a page on port 80);
//! - [`server`]: one `serve` instance: listeners, reloads, shutdown;
//! - [`acme`]: certificates by ACME (RFC 8555), one instance ordering at a time;
//! - [`monitor`]: every hosted domain re-checked periodically, problems stored and alerted;
//! - [`dashboard`]: the web pages (server-rendered, read-only);
//! - [`api`]: the REST API, each request acting for its token's tenant ([`tenants`]).
#![warn(missing_docs)]

pub mod acme;
pub mod api;
pub mod catalog;
pub mod dashboard;
pub mod domains;
pub mod http;
pub mod lifecycle;
pub mod monitor;
pub mod server;
pub mod tenants;
