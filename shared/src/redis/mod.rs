//! Redis access: a connection pool that waits for Redis at startup, and the Lua scripts.

pub mod entry_id;
mod pool;
pub mod replicas;
pub mod scan;
pub mod scripts;

use std::time::Duration;

use crate::shutdown::Shutdown;

pub use pool::{Conn, Pool, Pooled, pool};

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

/// The URL without its password, for logs (the one rule the config errors use too).
pub fn redacted(url: &str) -> String {
    crate::config::redacted_url(url)
}

/// Waits until Redis answers PING, logging each failure and backing off up to 10 s.
/// Returns `None` if shutdown came first.
pub async fn wait_until_reachable(pool: &Pool, where_: &str, shutdown: &Shutdown) -> Option<()> {
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
                tracing::error!(redis = %where_, error = %e, retry_in = ?delay, "Redis is unreachable; retrying");
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
