//! The `[redis]` section: where Redis is (one node, a master found through Sentinel, or a
//! cluster), over TLS or not.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid, redacted_url};
use crate::units::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS. In cluster mode, one seed node.
    #[serde(default)]
    pub url: String,
    /// `single` (one Redis, or a primary behind a failover address), `sentinel` or `cluster`.
    #[serde(default)]
    pub mode: RedisMode,
    /// Cluster seed nodes; setting them implies `mode = "cluster"`.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Sentinel addresses (`redis://[user:password@]host:port`, the sentinels' own login);
    /// setting them implies `mode = "sentinel"`. The master's login and database then go in
    /// `url` as `redis://user:password@MASTER_NAME/db` (as redis-rb and ioredis write it).
    #[serde(default)]
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master under (`sentinel monitor NAME ...`).
    pub master_name: Option<String>,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    /// How long a hand-off (an outcome before its ack, jobs before the cursor that passes
    /// them, a retry before it leaves the retry set) waits for a replica to have the write,
    /// on nodes that have one (`WAIT 1`). "0ms": never wait. At most 5 s.
    #[serde(default = "defaults::replica_ack_timeout")]
    pub replica_ack_timeout: Span,
    /// `rediss://`: PEM of the CA that signed the server's certificate, trusted instead of the
    /// system's roots (a private CA); without it, the system's roots.
    pub ca_file: Option<String>,
    /// `rediss://`: PEM client certificate (chain) and key, for servers that require one
    /// (`tls-auth-clients yes`).
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Single,
    Sentinel,
    Cluster,
}

impl RedisConfig {
    /// Whether Sluice talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.mode == RedisMode::Cluster || !self.seeds.is_empty()
    }

    /// Whether Sluice finds its master through Redis Sentinel.
    pub fn is_sentinel(&self) -> bool {
        self.mode == RedisMode::Sentinel || !self.sentinels.is_empty()
    }

    /// The URLs to connect to: the seeds, the sentinels, or the one `url`.
    pub fn nodes(&self) -> Vec<&str> {
        let listed = if self.seeds.is_empty() { &self.sentinels } else { &self.seeds };
        if listed.is_empty() { vec![self.url.as_str()] } else { listed.iter().map(String::as_str).collect() }
    }

    /// Whether the connections use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.nodes().iter().any(|u| u.starts_with("rediss://"))
    }

    /// One line naming where Redis is, without passwords, for logs.
    pub fn describe(&self) -> String {
        let nodes: Vec<String> = self.nodes().into_iter().map(crate::redis::redacted).collect();
        if self.is_cluster() {
            format!("cluster {}", nodes.join(","))
        } else if self.is_sentinel() {
            format!("master {:?} via sentinels {}", self.master_name.as_deref().unwrap_or(""), nodes.join(","))
        } else {
            nodes.join(",")
        }
    }
}

impl RedisConfig {
    /// URLs with a known scheme, one kind of node, TLS files that go with `rediss://`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url.is_empty() && self.seeds.is_empty() && self.sentinels.is_empty() {
            return Err(invalid(
                "redis.url",
                "",
                "is required (or `redis.seeds` for a cluster, `redis.sentinels` for Sentinel)",
            ));
        }
        self.validate_sentinel()?;
        let urls = std::iter::once(("redis.url", &self.url)).filter(|(_, u)| !u.is_empty());
        let listed =
            self.seeds.iter().map(|u| ("redis.seeds", u)).chain(self.sentinels.iter().map(|u| ("redis.sentinels", u)));
        for (key, url) in urls.chain(listed) {
            if !["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme)) {
                return Err(invalid(key, redacted_url(url), "must start with redis://, rediss:// or redis+unix://"));
            }
        }
        if self.is_tls() && !self.nodes().iter().all(|u| u.starts_with("rediss://")) {
            return Err(invalid("redis.seeds", self.describe(), "mix rediss:// and redis:// nodes"));
        }
        self.validate_tls()?;
        if self.is_cluster() && self.nodes().iter().any(|u| u.starts_with("redis+unix://")) {
            return Err(invalid("redis.mode", "cluster", "cluster nodes are reached over TCP, not unix sockets"));
        }
        at_least_one("redis.pool_size", self.pool_size)?;
        if self.replica_ack_timeout.get() > std::time::Duration::from_secs(5) {
            let value = format!("{}ms", self.replica_ack_timeout.as_millis());
            return Err(invalid(
                "redis.replica_ack_timeout",
                value,
                "must be at most 5s (a Redis request gives up after 10 s)",
            ));
        }
        Ok(())
    }

    /// Sentinel mode names its sentinels and the master, and nothing of the other modes.
    fn validate_sentinel(&self) -> Result<(), ConfigError> {
        if !self.is_sentinel() {
            return match &self.master_name {
                Some(name) => Err(invalid("redis.master_name", name, "is used only with `redis.sentinels`")),
                None => Ok(()),
            };
        }
        if self.mode == RedisMode::Cluster || !self.seeds.is_empty() {
            return Err(invalid("redis.sentinels", self.describe(), "a cluster has no sentinels; set one of the two"));
        }
        if self.sentinels.is_empty() {
            return Err(invalid("redis.sentinels", "", "mode = \"sentinel\" needs the sentinels' addresses"));
        }
        let name = self.master_name.as_deref().unwrap_or_default();
        let login_fits = self.url.starts_with("redis://") && url_host_is(&self.url, name);
        if !self.url.is_empty() && !login_fits {
            return Err(invalid(
                "redis.url",
                redacted_url(&self.url),
                format!("with Sentinel, the master's login is written redis://user:password@{name}/db"),
            ));
        }
        match self.master_name.as_deref() {
            None | Some("") => Err(invalid("redis.master_name", "", "is required with `redis.sentinels`")),
            Some(_) if self.is_tls() => {
                Err(invalid("redis.sentinels", self.describe(), "TLS (rediss://) with Sentinel is not supported yet"))
            }
            Some(_) if self.sentinels.iter().any(|u| u.starts_with("redis+unix://")) => {
                Err(invalid("redis.sentinels", self.describe(), "sentinels are reached over TCP, not unix sockets"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The TLS files exist, come in pairs, and go with `rediss://` only.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let files = [
            ("redis.ca_file", &self.ca_file),
            ("redis.client_cert", &self.client_cert),
            ("redis.client_key", &self.client_key),
        ];
        for (key, file) in files {
            let Some(path) = file else { continue };
            if !self.is_tls() {
                return Err(invalid(key, path, "is used only with rediss:// URLs"));
            }
            if let Err(e) = std::fs::read(path) {
                return Err(invalid(key, path, format!("cannot be read: {e}")));
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(invalid(
                "redis.client_cert",
                self.client_cert.as_deref().unwrap_or(""),
                "client_cert and client_key go together",
            ));
        }
        Ok(())
    }
}

/// Whether `url`'s host is `host` (`redis://user:password@host:port/db`).
fn url_host_is(url: &str, host: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let address = authority.rsplit_once('@').map_or(authority, |(_, address)| address);
    address.split(':').next() == Some(host)
}

mod defaults {

    pub fn pool_size() -> usize {
        32
    }

    pub fn replica_ack_timeout() -> crate::units::Span {
        crate::units::Span::try_from("500ms").unwrap()
    }
}
