//! Copies events from every campaign's and message's own stream into its shard of the feed
//! (`sluice:{e:K}:feed`), in order, at least once: each round gathers the new events of the
//! shard's pending sources into feed entries of about a thousand events (see [`super::feed`]).
//! Every scheduler runs a pump per shard; one holds each shard's lease at a time, so the
//! shards' copying can spread over schedulers. Sources come from the shard's pending set (see
//! `sluice_shared::feed`); a source leaves it only when its stream is copied to the end and
//! its version did not change meanwhile.

use std::time::Duration;

use sluice_shared::{
    config::Config,
    keys,
    redis::{
        Conn, Pool, StoreResult,
        scripts::{due, records},
    },
    shutdown::Shutdown,
};

use super::{Entry, read_source};

/// Events copied from one source per step.
const CHUNK: usize = 1000;
/// Sources looked at per round.
const SOURCES_PER_ROUND: isize = 200;
const LEASE_MS: u64 = 10_000;
/// The lease is renewed when a third of it has passed, not every round.
const RENEW: Duration = Duration::from_millis(LEASE_MS / 3);
/// Pause after a round that found nothing: eight shards polled every 50 ms by an idle
/// scheduler is 160 small reads a second.
const IDLE: Duration = Duration::from_millis(50);

/// Runs one pump per feed shard until shutdown.
pub async fn run(pool: Pool, config: std::sync::Arc<Config>, owner: String, shutdown: Shutdown) {
    let mut shards = tokio::task::JoinSet::new();
    for shard in 0..keys::FEED_SHARDS {
        shards.spawn(run_shard(shard, pool.clone(), config.clone(), owner.clone(), shutdown.clone()));
    }
    // A shard that panicked takes the pump down with it (and the scheduler, for a restart)
    // rather than leaving its events uncopied while the rest runs on.
    while let Some(ended) = shards.join_next().await {
        if let Err(e) = ended
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn run_shard(shard: usize, pool: Pool, config: std::sync::Arc<Config>, owner: String, shutdown: Shutdown) {
    // When this scheduler last took or renewed the shard's lease.
    let mut renewed: Option<tokio::time::Instant> = None;
    while !shutdown.is_triggered() {
        sluice_shared::crash::point("scheduler::pump_round");
        let round = async {
            let mut conn = (*pool.get().await?).clone();
            if renewed.is_none_or(|at| at.elapsed() >= RENEW) {
                let at = tokio::time::Instant::now();
                renewed = None;
                if !crate::pipeline::lease::hold(&mut conn, &keys::feed_lease(shard), &owner, LEASE_MS).await? {
                    return Ok::<_, sluice_shared::redis::StoreError>(None);
                }
                renewed = Some(at);
            }
            round(&mut conn, shard, &config).await.map(Some)
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
                renewed = None;
                metrics::counter!(sluice_shared::metrics::REDIS_ERRORS, "op" => "feed").increment(1);
                tracing::warn!(error = %e, "copying events into the feed failed; retrying");
                shutdown.sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One pass over the shard's pending sources; returns how many events were copied.
async fn round(conn: &mut Conn, shard: usize, config: &Config) -> StoreResult<usize> {
    let pending: Vec<(String, String)> = redis::cmd("ZRANGE")
        .arg(keys::feed_pending(shard))
        .arg(0)
        .arg(SOURCES_PER_ROUND - 1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let mut run = Run { shard, events: Vec::new(), sources: Vec::new() };
    let mut copied = 0;
    for (source, version) in pending {
        let meta = keys::campaign_meta(&source);
        let fed: Option<String> = redis::cmd("HGET").arg(&meta).arg("fed").query_async(conn).await?;
        let entries = read_source(conn, &source, fed.as_deref(), CHUNK).await?;
        let drained = entries.len() < CHUNK;
        let last = entries.last().map(|e| e.id.clone());
        run.events.extend(entries.into_iter().map(|e| (source.clone(), e)));
        run.sources.push(Copied { source, version, last, drained });
        if run.events.len() >= CHUNK {
            copied += run.flush(conn, config).await?;
        }
    }
    copied += run.flush(conn, config).await?;
    if copied > 0 {
        metrics::counter!(sluice_shared::metrics::FEED_EVENTS).increment(copied as u64);
    }
    Ok(copied)
}

/// What one source gave to the current run.
struct Copied {
    source: String,
    version: String,
    /// The last entry copied, if any.
    last: Option<String>,
    /// Copied to the end of its stream.
    drained: bool,
}

/// Events gathered from several sources of one shard, written to it as one entry.
struct Run {
    shard: usize,
    events: Vec<(String, Entry)>,
    sources: Vec<Copied>,
}

impl Run {
    /// Appends the run to the feed (trimmed by age and by entries), then moves each source's
    /// cursor and drops drained sources from pending: a crash in between copies again, never
    /// loses.
    async fn flush(&mut self, conn: &mut Conn, config: &Config) -> StoreResult<usize> {
        let n = self.events.len();
        if n > 0 {
            let end: i64 = redis::cmd("INCRBY").arg(keys::feed_seq(self.shard)).arg(n).query_async(conn).await?;
            let now: i64 = chrono::Utc::now().timestamp_millis();
            let oldest = now - config.events.feed_retention.as_millis() as i64;
            redis::pipe()
                .cmd("XADD")
                .arg(keys::feed(self.shard))
                .arg("MINID")
                .arg("~")
                .arg(oldest)
                .arg("*")
                .arg(super::feed::pack(end - n as i64 + 1, &self.events))
                .ignore()
                // Exact: entries are large, and a cap must hold in tests and small setups too.
                .cmd("XTRIM")
                .arg(keys::feed(self.shard))
                .arg("MAXLEN")
                .arg(config.events.feed_max_entries.div_ceil(keys::FEED_SHARDS as u64).max(1))
                .ignore()
                .query_async::<()>(conn)
                .await?;
        }
        for c in self.sources.drain(..) {
            if let Some(last) = &c.last {
                records::feed_cursor(conn, &c.source, last).await?;
            }
            if c.drained {
                due::remove_if(conn, &keys::feed_pending(self.shard), &c.source, &c.version).await?;
            }
        }
        self.events.clear();
        Ok(n)
    }
}
