//! Copies events from every campaign's and message's own stream into the feed
//! (`sluice:events`), in order, at least once, one feed entry per chunk (see [`super::feed`]). One scheduler holds the pump's lease at a time.
//! Sources come from `sluice:events:pending` (see `sluice_shared::feed`); a source leaves it
//! only when its stream is copied to the end and its version did not change meanwhile.

use std::time::Duration;

use sluice_shared::{
    config::Config,
    keys,
    redis::{Conn, Pool, StoreResult, scripts::SCRIPTS},
    shutdown::Shutdown,
};

use super::read_source;

/// Events copied from one source per step.
const CHUNK: usize = 1000;
/// Sources looked at per round.
const SOURCES_PER_ROUND: isize = 200;
const LEASE_MS: u64 = 10_000;
const IDLE: Duration = Duration::from_millis(20);

pub async fn run(pool: Pool, config: std::sync::Arc<Config>, owner: String, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        let round = async {
            let mut conn = (*pool.get().await?).clone();
            if !crate::lease::hold(&mut conn, &keys::feed_lease(), &owner, LEASE_MS).await? {
                return Ok::<_, sluice_shared::redis::StoreError>(None);
            }
            round(&mut conn, &config).await.map(Some)
        };
        match round.await {
            Ok(Some(copied)) if copied > 0 => tokio::task::yield_now().await,
            Ok(Some(_)) => {
                shutdown.sleep(IDLE).await;
            }
            // Another scheduler pumps; look again before its lease could lapse.
            Ok(None) => {
                shutdown.sleep(Duration::from_millis(LEASE_MS / 3)).await;
            }
            Err(e) => {
                metrics::counter!(sluice_shared::metrics::REDIS_ERRORS, "op" => "feed").increment(1);
                tracing::warn!(error = %e, "copying events into the feed failed; retrying");
                shutdown.sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One pass over the pending sources; returns how many events were copied.
async fn round(conn: &mut Conn, config: &Config) -> StoreResult<usize> {
    let pending: Vec<(String, String)> = redis::cmd("ZRANGE")
        .arg(keys::feed_pending())
        .arg(0)
        .arg(SOURCES_PER_ROUND - 1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let mut copied = 0;
    for (source, version) in pending {
        copied += copy(conn, config, &source, &version).await?;
    }
    if copied > 0 {
        metrics::counter!(sluice_shared::metrics::FEED_EVENTS).increment(copied as u64);
    }
    Ok(copied)
}

/// Copies the next chunk of `source`'s events; drops the source from pending once it is
/// copied to the end at the `version` read before.
async fn copy(conn: &mut Conn, config: &Config, source: &str, version: &str) -> StoreResult<usize> {
    let meta = keys::campaign_meta(source);
    let fed: Option<String> = redis::cmd("HGET").arg(&meta).arg("fed").query_async(conn).await?;
    let entries = read_source(conn, source, fed.as_deref(), CHUNK).await?;
    if let Some((last, _)) = entries.last() {
        let end: i64 = redis::cmd("INCRBY").arg(keys::feed_seq()).arg(entries.len()).query_async(conn).await?;
        let first = end - entries.len() as i64 + 1;
        redis::cmd("XADD")
            .arg(keys::feed())
            .arg("MAXLEN")
            .arg("~")
            .arg(config.events.feed_max_entries)
            .arg("*")
            .arg(super::feed::pack(source, first, &entries))
            .query_async::<()>(conn)
            .await?;
        SCRIPTS.feed_cursor.key(&meta).arg(last).invoke_async::<i64>(conn).await?;
    }
    if entries.len() < CHUNK {
        SCRIPTS.unready.key(keys::feed_pending()).arg(source).arg(version).invoke_async::<i64>(conn).await?;
    }
    Ok(entries.len())
}
