//! The `[redis]` section: where Redis is (one node or a cluster), over TLS or not.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS. In cluster mode, one seed node.
    #[serde(default)]
    pub url: String,
    /// `single` (one Redis, or a primary behind a failover address) or `cluster`.
    #[serde(default)]
    pub mode: RedisMode,
    /// Cluster seed nodes; setting them implies `mode = "cluster"`.
    #[serde(default)]
    pub seeds: Vec<String>,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
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
    Cluster,
}

impl RedisConfig {
    /// Whether Sluice talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.mode == RedisMode::Cluster || !self.seeds.is_empty()
    }

    /// The URLs to connect to: the seeds, or the one `url`.
    pub fn nodes(&self) -> Vec<&str> {
        if self.seeds.is_empty() { vec![self.url.as_str()] } else { self.seeds.iter().map(String::as_str).collect() }
    }

    /// Whether the connections use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.nodes().iter().any(|u| u.starts_with("rediss://"))
    }

    /// One line naming where Redis is, without passwords, for logs.
    pub fn describe(&self) -> String {
        let nodes: Vec<String> = self.nodes().into_iter().map(crate::redis::redacted).collect();
        if self.is_cluster() { format!("cluster {}", nodes.join(",")) } else { nodes.join(",") }
    }
}

impl RedisConfig {
    /// URLs with a known scheme, one kind of node, TLS files that go with `rediss://`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url.is_empty() && self.seeds.is_empty() {
            return Err(invalid("redis.url", "", "is required (or `redis.seeds` for a cluster)"));
        }
        let urls = std::iter::once(("redis.url", &self.url)).filter(|(_, u)| !u.is_empty());
        for (key, url) in urls.chain(self.seeds.iter().map(|u| ("redis.seeds", u))) {
            if !["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme)) {
                return Err(invalid(
                    key,
                    super::redacted_url(url),
                    "must start with redis://, rediss:// or redis+unix://",
                ));
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
        Ok(())
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

mod defaults {

    pub fn pool_size() -> usize {
        32
    }
}
