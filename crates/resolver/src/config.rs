//! The resolver's configuration file: its own TOML, or postfix-mta-sts-resolver's
//! `mta-sts-daemon.yml` read as it is (host, port, path, cache, zones, proactive fetching), so
//! migrating is swapping the binary. Which one is decided by the file name (`.yml`/`.yaml`)
//! or, failing that, by the content.
//!
//! Settings come from the file, then the environment, then flags: a flag wins.
//!
//! ```toml
//! listen = "127.0.0.1:8461"        # or "unix:/var/spool/postfix/private/mtasts", or "systemd"
//! socket_mode = "0660"             # a unix socket's permissions
//! socket_group = "postfix"         # and group (name or number)
//! http = "127.0.0.1:8462"          # JSON endpoint and /metrics; "off" for none
//! cache = "sqlite:///var/lib/mtasts/resolver.db"   # or "memory", "postgres://…"
//! refresh_every = 300              # seconds
//! refresh_concurrency = 8
//!
//! [default_zone]
//! strict_testing = false
//! require_sni = true
//! tlsrpt = false
//! wildcard_dot = false
//! dane = true                       # DANE before MTA-STS (RFC 8461 §2)
//!
//! [zones.strict]
//! strict_testing = true
//! ```

use std::collections::HashMap;
use std::path::Path;

use mtasts_proto::postfix::ZoneOptions;
use serde::{Deserialize, Serialize};

use crate::engine::Zones;

/// The resolver's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `IP:PORT`, `unix:/path` or `systemd` (the socket systemd passes, socket activation).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Permissions of a `unix:` socket, octal (`0660`: the owner and the group may connect).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: String,
    /// Group of a `unix:` socket (name or number), e.g. `postfix`, so Postfix may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_group: Option<String>,
    /// `IP:PORT` or `off`.
    #[serde(default = "default_http")]
    pub http: String,
    /// `memory`, `sqlite://PATH` or `postgres://…`.
    #[serde(default = "default_cache")]
    pub cache: String,
    /// Seconds between refresh rounds.
    #[serde(default = "default_refresh_every")]
    pub refresh_every: f64,
    /// Policy hosts fetched at once by a refresh round.
    #[serde(default = "default_refresh_concurrency")]
    pub refresh_concurrency: usize,
    /// Options for socketmap names not listed in `zones`.
    #[serde(default)]
    pub default_zone: ZoneConfig,
    /// Options by socketmap name.
    #[serde(default)]
    pub zones: HashMap<String, ZoneConfig>,
}

/// One zone's options (see [`ZoneOptions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Enforce `mode: testing` policies.
    #[serde(default)]
    pub strict_testing: bool,
    /// Send `servername=hostname`.
    #[serde(default = "yes")]
    pub require_sni: bool,
    /// Postfix ≥ 3.10 TLSRPT attributes.
    #[serde(default)]
    pub tlsrpt: bool,
    /// `*.example.com` as `.example.com` (any depth in Postfix < 3.10).
    #[serde(default)]
    pub wildcard_dot: bool,
    /// DANE takes precedence (RFC 8461 §2).
    #[serde(default = "yes")]
    pub dane: bool,
}

fn yes() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:8461".into()
}
fn default_socket_mode() -> String {
    "0660".into()
}
fn default_http() -> String {
    "127.0.0.1:8462".into()
}
fn default_cache() -> String {
    "sqlite://mtasts-resolver.db".into()
}
fn default_refresh_every() -> f64 {
    300.0
}
fn default_refresh_concurrency() -> usize {
    8
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneOptions::default().into()
    }
}

impl From<ZoneOptions> for ZoneConfig {
    fn from(z: ZoneOptions) -> Self {
        Self {
            strict_testing: z.strict_testing,
            require_sni: z.require_sni,
            tlsrpt: z.tlsrpt,
            wildcard_dot: z.wildcard_dot,
            dane: z.dane,
        }
    }
}

impl From<ZoneConfig> for ZoneOptions {
    fn from(z: ZoneConfig) -> Self {
        Self {
            strict_testing: z.strict_testing,
            require_sni: z.require_sni,
            tlsrpt: z.tlsrpt,
            wildcard_dot: z.wildcard_dot,
            dane: z.dane,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            socket_mode: default_socket_mode(),
            socket_group: None,
            http: default_http(),
            cache: default_cache(),
            refresh_every: default_refresh_every(),
            refresh_concurrency: default_refresh_concurrency(),
            default_zone: ZoneConfig::default(),
            zones: HashMap::new(),
        }
    }
}

/// Why a configuration file was refused. The message names the file and, where the parser
/// knows it, the line and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is not valid TOML of this schema.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's words (line, column, key).
        message: String,
    },
    /// The file is not a valid mta-sts-daemon.yml.
    #[error("{path}: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// What is wrong, with the line when known.
        message: String,
    },
    /// A value is out of range or not supported.
    #[error("{path}: {key}: {message}")]
    Value {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads `path`: postfix-mta-sts-resolver's YAML if it is named `*.yml`/`*.yaml` (or does
    /// not parse as TOML but as YAML), else this resolver's TOML.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: name.clone(), error })?;
        let yaml_name = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
        let config =
            if yaml_name { from_pmsr_yaml(&name, &text)? } else { from_toml(&name, &text)? };
        config.validate(&name)?;
        Ok(config)
    }

    /// The zones these settings describe.
    pub fn zones(&self) -> Zones {
        Zones {
            default: self.default_zone.into(),
            named: self.zones.iter().map(|(k, v)| (k.clone(), (*v).into())).collect(),
        }
    }

    /// The settings as this resolver's TOML (what `--check-config` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| ConfigError::Value {
            path: path.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if !self.listen.starts_with("unix:") && self.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(bad("listen", "must be IP:PORT or unix:/path"));
        }
        if self.http != "off" && self.http.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad("http", "must be IP:PORT or off"));
        }
        if self.cache != "memory" && mtasts_store::DatabaseUrl::parse(&self.cache).is_err() {
            return Err(bad("cache", "must be memory, sqlite://PATH or postgres://…"));
        }
        if !(self.refresh_every.is_finite() && self.refresh_every >= 1.0) {
            return Err(bad("refresh_every", "must be at least 1 second"));
        }
        if self.refresh_concurrency == 0 {
            return Err(bad("refresh_concurrency", "must be at least 1"));
        }
        Ok(())
    }
}

fn from_toml(path: &str, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text)
        .map_err(|e| ConfigError::Toml { path: path.to_owned(), message: e.to_string() })
}

/// postfix-mta-sts-resolver's `mta-sts-daemon.yml` (its man page `mta-sts-daemon.yml(5)`).
#[derive(Debug, Deserialize)]
struct Pmsr {
    host: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    #[serde(default)]
    cache: Option<PmsrCache>,
    #[serde(default)]
    default_zone: Option<PmsrZone>,
    #[serde(default)]
    zones: HashMap<String, PmsrZone>,
    #[serde(default)]
    proactive_policy_fetching: Option<PmsrProactive>,
    // Accepted and not needed here: reuse_port, cache_grace, shutdown_timeout, mode.
    #[serde(flatten)]
    _rest: HashMap<String, serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct PmsrCache {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    options: HashMap<String, serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct PmsrZone {
    strict_testing: Option<bool>,
    require_sni: Option<bool>,
    tlsrpt: Option<bool>,
    // `timeout` (DNS and HTTP) is a network option here: `--dns-timeout`, `--fetch-timeout`.
    #[serde(flatten)]
    _rest: HashMap<String, serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct PmsrProactive {
    enabled: Option<bool>,
    interval: Option<f64>,
    concurrency_limit: Option<usize>,
}

fn from_pmsr_yaml(path: &str, text: &str) -> Result<Config, ConfigError> {
    let yaml_err = |message: String| ConfigError::Yaml { path: path.to_owned(), message };
    let p: Pmsr = serde_yaml::from_str(text).map_err(|e| yaml_err(e.to_string()))?;
    let listen = match (&p.path, &p.host, p.port) {
        (Some(path), _, _) => format!("unix:{path}"),
        (None, host, port) => {
            let host = host.as_deref().unwrap_or("127.0.0.1");
            let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
            format!("{host}:{}", port.unwrap_or(8461))
        }
    };
    let mut c = Config { listen, ..Config::default() };
    if let Some(cache) = &p.cache {
        let opt =
            |k: &str| cache.options.get(k).and_then(serde_yaml::Value::as_str).map(str::to_owned);
        c.cache = match cache.kind.as_str() {
            "internal" => "memory".into(),
            "sqlite" => match opt("filename") {
                Some(f) => format!("sqlite://{f}"),
                None => return Err(yaml_err("cache: type sqlite needs options.filename".into())),
            },
            "postgres" => match opt("dsn") {
                Some(dsn) => dsn,
                None => return Err(yaml_err("cache: type postgres needs options.dsn".into())),
            },
            other => {
                return Err(ConfigError::Value {
                    path: path.to_owned(),
                    key: "cache.type".into(),
                    message: format!(
                        "{other:?} is not supported; use internal, sqlite or postgres (the cache is rebuilt from the network, nothing is lost by switching)"
                    ),
                });
            }
        };
    } else {
        // pmsr's default is its in-memory cache.
        c.cache = "memory".into();
    }
    let zone = |z: &PmsrZone| ZoneConfig {
        strict_testing: z.strict_testing.unwrap_or(false),
        require_sni: z.require_sni.unwrap_or(true),
        tlsrpt: z.tlsrpt.unwrap_or(false),
        // pmsr answers wildcards as `.domain`: keep its answers unless told otherwise? No:
        // the exact answer is the safe one, and the reason to migrate.
        wildcard_dot: false,
        // pmsr has no DANE; RFC 8461 §2 wants it first wherever the resolver can validate.
        dane: true,
    };
    if let Some(z) = &p.default_zone {
        c.default_zone = zone(z);
    }
    c.zones = p.zones.iter().map(|(k, z)| (k.clone(), zone(z))).collect();
    if let Some(pf) = &p.proactive_policy_fetching
        && pf.enabled.unwrap_or(false)
    {
        if let Some(i) = pf.interval {
            c.refresh_every = i.min(3600.0);
        }
        if let Some(n) = pf.concurrency_limit {
            c.refresh_concurrency = n.max(1);
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn pmsr_yaml_as_is() {
        let (_d, p) = write(
            "mta-sts-daemon.yml",
            "host: 127.0.0.1\nport: 8461\nreuse_port: true\nshutdown_timeout: 20\ncache_grace: 60\n\
             proactive_policy_fetching:\n  enabled: true\n  interval: 86400\n  concurrency_limit: 100\n  grace_ratio: 2\n\
             cache:\n  type: sqlite\n  options:\n    filename: /var/lib/mta-sts/cache.db\n\
             default_zone:\n  strict_testing: false\n  timeout: 4\n\
             zones:\n  myzone:\n    strict_testing: true\n    timeout: 4\n    tlsrpt: true\n",
        );
        let c = Config::load(&p).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8461");
        assert_eq!(c.cache, "sqlite:///var/lib/mta-sts/cache.db");
        assert_eq!(c.refresh_concurrency, 100);
        let zones = c.zones();
        assert!(zones.get("myzone").strict_testing);
        assert!(zones.get("myzone").tlsrpt);
        assert!(!zones.get("postfix").strict_testing);
        assert!(zones.get("postfix").require_sni);
    }

    #[test]
    fn pmsr_unix_socket_internal_cache_and_unsupported_backend() {
        let (_d, p) =
            write("a.yaml", "path: /run/mta-sts.sock\nmode: 0666\ncache:\n  type: internal\n");
        let c = Config::load(&p).unwrap();
        assert_eq!(c.listen, "unix:/run/mta-sts.sock");
        assert_eq!(c.cache, "memory");
        let (_d, p) = write("b.yml", "cache:\n  type: redis_sentinel\n  options: {}\n");
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("cache.type: \"redis_sentinel\" is not supported"), "{e}");
    }

    #[test]
    fn native_toml_round_trips_and_unknown_keys_are_refused() {
        let (_d, p) = write(
            "resolver.toml",
            "listen = \"unix:/run/mtasts.sock\"\ncache = \"memory\"\n[zones.strict]\nstrict_testing = true\n",
        );
        let c = Config::load(&p).unwrap();
        assert_eq!(c.listen, "unix:/run/mtasts.sock");
        assert!(c.zones().get("strict").strict_testing);
        let again = from_toml("x", &c.to_toml()).unwrap();
        assert_eq!(again, c);
        let (_d, p) = write("r.toml", "listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("r.toml") && e.contains("listen_port"), "{e}");
        let (_d, p) = write("r.toml", "refresh_every = 0\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("refresh_every"));
    }
}
