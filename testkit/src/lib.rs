//! Test helpers (a dev-only crate): every test owns its servers.
//!
//! - [`RedisServer`]: a private redis-server on a free port, killed on drop.
//! - [`TestRedis`]: that, or a private three-master cluster when `SLUICE_TEST_REDIS=cluster`,
//!   or a master, a replica and three sentinels when `SLUICE_TEST_REDIS=sentinel`.
//! - [`smtp_sink`]: a scriptable SMTP server over real TCP (250 / 4xx n times / 5xx per recipient).
//! - [`Process`]: a spawned binary with its log captured, killed on drop.
//! - [`wait_for`]: poll a condition with a deadline instead of sleeping.
//! - [`test_ca`]: a certificate authority made at test time, for every TLS test.
//! - [`PostgresServer`]: a private PostgreSQL (initdb into a temp dir, a free port), removed on drop.
//! - [`postfix`]: a stock Postfix of a test's own (config, queue and port), stopped on drop.
//! - [`browser`]: a headless Chromium over WebDriver, for the pages recipients see.

pub mod browser;
pub mod dns_server;
mod ports;
pub mod postfix;
mod postgres_server;
mod process;
mod redis_cluster;
mod redis_sentinel;
mod redis_server;
pub mod smtp_sink;
pub mod static_https;
pub mod test_ca;

pub use ports::free_port;
pub use postgres_server::PostgresServer;
pub use process::{Process, bin_path};
pub use redis_cluster::{RedisCluster, TestConn, TestRedis};
pub use redis_sentinel::{MASTER_NAME as SENTINEL_MASTER_NAME, RedisSentinel, Sentinel};
pub use redis_server::{RedisServer, TlsEndpoint};

use std::{future::Future, time::Duration};

/// The `[[api.keys]]` entry for `token`: its SHA-256 and the scopes (TOML list items).
pub fn api_key_toml(id: &str, token: &str, scopes: &str) -> String {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    format!("[[api.keys]]\nid = \"{id}\"\nsha256 = \"{hash}\"\nscopes = [{scopes}]\n")
}

/// The config file every test process shares: Redis, the admin API with an admin key for
/// `token`, the operations listener, then `extra` TOML (relays, limits...).
pub fn config_toml(redis_url: &str, api_port: u16, ops_port: u16, token: &str, extra: &str) -> String {
    config_toml_for(&format!("url = \"{redis_url}\""), api_port, ops_port, token, extra)
}

/// [`config_toml`] with any `[redis]` section body (e.g. [`TestRedis::config_body`]).
pub fn config_toml_for(redis_body: &str, api_port: u16, ops_port: u16, token: &str, extra: &str) -> String {
    let key = api_key_toml("test-admin", token, "\"admin\"");
    format!(
        "[redis]\n{redis_body}\n\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n\n{key}\n\
         [metrics]\nlisten = \"127.0.0.1:{ops_port}\"\n\n[dkim]\nmissing_key = \"send\"\n\n{extra}\n"
    )
}

/// Polls `check` every 50 ms until it yields `Some`, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
