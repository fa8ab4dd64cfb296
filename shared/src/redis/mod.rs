//! Redis access: a connection pool that waits for Redis at startup, and the Lua scripts.

pub mod entry_id;
pub mod scripts;

use std::time::Duration;

use deadpool_redis::{Manager, Runtime};
use redis::AsyncConnectionConfig;

use crate::{config::RedisConfig, shutdown::Shutdown};

pub use deadpool_redis::{Connection as Pooled, Pool};

/// The connection type every store function takes (a pooled connection derefs to it).
pub type Conn = redis::aio::MultiplexedConnection;

/// Errors talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis returned an unexpected reply: {0}")]
    Reply(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Builds the pool. Connections answer within 10 s (scripts on large batches take longer than
/// redis-rs's 500 ms default) and connect within 5 s.
pub fn pool(cfg: &RedisConfig) -> anyhow::Result<Pool> {
    let conn_cfg = AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let manager = Manager::new_with_config(cfg.url.as_str(), conn_cfg)
        .map_err(|e| anyhow::anyhow!("config key `redis.url` = {:?}: {e}", redacted(&cfg.url)))?;
    Ok(Pool::builder(manager)
        .max_size(cfg.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()?)
}

/// Waits until Redis answers PING, logging each failure and backing off up to 10 s.
/// Returns `None` if shutdown came first.
pub async fn wait_until_reachable(pool: &Pool, url: &str, shutdown: &Shutdown) -> Option<()> {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            let mut conn = pool.get().await?;
            redis::cmd("PING").query_async::<String>(&mut *conn).await?;
            Ok::<_, StoreError>(())
        };
        match attempt.await {
            Ok(()) => return Some(()),
            Err(e) => {
                tracing::error!(redis = %redacted(url), error = %e, retry_in = ?delay, "Redis is unreachable; retrying");
            }
        }
        shutdown.sleep(delay).await?;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Creates a consumer group reading the stream from its start (creating the stream too);
/// an existing group is left as it is.
pub async fn ensure_group(conn: &mut Conn, stream: &str, group: &str) -> StoreResult<()> {
    let created: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(stream).arg(group).arg("0").arg("MKSTREAM").query_async(conn).await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(super::redacted("redis://:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(super::redacted("redis://h:1/0"), "redis://h:1/0");
    }
}
