//! The scheduler's housekeeping loop: intake, releasing scheduled campaigns, expansion,
//! retry promotion, queue depth metrics. Every step is safe with several schedulers running.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::AsyncCommands;
use sluice_shared::redis::Pool;
use sluice_shared::{config::Config, keys, lane::Lane, redis::StoreResult, shutdown::Shutdown};

use super::{enqueue::Enqueuer, expander, hygiene, intake, retries};
use crate::campaign::store::{self, Action, Transition};

const METRICS_EVERY: Duration = Duration::from_secs(5);

pub struct Duties {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub consumer: String,
    pub enqueuer: Arc<Enqueuer>,
}

impl Duties {
    /// Runs until shutdown; Redis errors are logged and retried after a pause.
    pub async fn run(self, shutdown: Shutdown) {
        let mut last_metrics = Instant::now() - METRICS_EVERY;
        // Pruning visits every domain stream: a quarter of the expiry is often enough.
        let prune_every = (self.config.scheduler.consumer_expiry.get() / 4).max(METRICS_EVERY);
        let mut last_prune = Instant::now();
        let mut prepared = false;
        while !shutdown.is_triggered() {
            let round = async {
                let mut conn = self.pool.get().await?;
                if !prepared {
                    intake::prepare(&mut conn).await?;
                    prepared = true;
                }
                let sweep = last_metrics.elapsed() >= METRICS_EVERY;
                let mut busy = intake::poll(&mut conn, &self.consumer, &self.config).await? > 0;
                busy |= self.campaigns(&mut conn, sweep).await?;
                busy |= crate::message::watch::visit_due(&mut conn, &self.enqueuer, &self.config).await? > 0;
                if sweep {
                    last_metrics = Instant::now();
                    self.queue_depths(&mut conn).await?;
                }
                if last_prune.elapsed() >= prune_every {
                    last_prune = Instant::now();
                    hygiene::prune_consumers(&mut conn, &self.config).await?;
                    hygiene::trim_dead_letters(&mut conn, &self.config).await?;
                }
                Ok::<_, sluice_shared::redis::StoreError>(busy)
            };
            let result = round.await;
            metrics::gauge!(sluice_shared::metrics::REDIS_UP).set(if result.is_ok() { 1.0 } else { 0.0 });
            match result {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => {
                    shutdown.sleep(self.config.scheduler.tick.get()).await;
                }
                Err(e) => {
                    metrics::counter!(sluice_shared::metrics::REDIS_ERRORS, "op" => "duties").increment(1);
                    tracing::warn!(error = %e, "scheduler round failed; retrying");
                    shutdown.sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One pass over the active campaigns; true if anything moved.
    /// `sweep`: also run the slower checks (max age of paused campaigns' waiting jobs).
    async fn campaigns(&self, conn: &mut sluice_shared::redis::Pooled, sweep: bool) -> StoreResult<bool> {
        let ids: Vec<String> = conn.smembers(keys::active_campaigns()).await?;
        let mut busy = false;
        for id in ids {
            if sweep {
                export_counts(conn, &id).await?;
            }
            let step = expander::expand_chunk(conn, &self.enqueuer, &self.config, &id).await?;
            busy |= step.moved > 0;
            match step.status.as_str() {
                "scheduled" => {
                    store::transition(conn, &id, Action::Release, self.config.campaigns.events_maxlen).await?;
                }
                "running" => busy |= retries::promote(conn, &self.enqueuer, &id).await? > 0,
                "paused" if sweep => {
                    hygiene::expire_waiting(conn, &id, &self.config).await?;
                    self.cancel_if_idle(conn, &id).await?;
                }
                "draft" if sweep => self.cancel_if_idle(conn, &id).await?,
                "cancelled" if hygiene::cancel_staged(conn, &id, &self.config).await? > 0 => busy = true,
                "completed" | "cancelled" => {
                    export_counts(conn, &id).await?;
                    hygiene::expire_campaign(conn, &id, &self.config).await?;
                    let _: i64 = conn.srem(keys::active_campaigns(), &id).await?;
                }
                "" => {
                    let _: i64 = conn.srem(keys::active_campaigns(), &id).await?;
                }
                _ => {}
            }
        }
        Ok(busy)
    }

    /// Cancels draft or paused campaign `id` if nobody touched it for `campaigns.idle_expiry`.
    async fn cancel_if_idle(&self, conn: &mut sluice_shared::redis::Pooled, id: &str) -> StoreResult<()> {
        if hygiene::idle_too_long(conn, id, &self.config).await? {
            let maxlen = self.config.campaigns.events_maxlen;
            if let Transition::Done(_) = store::transition(conn, id, Action::Cancel, maxlen).await? {
                let idle = self.config.campaigns.idle_expiry.get();
                tracing::info!(campaign = %id, ?idle, "campaign untouched for campaigns.idle_expiry: cancelled");
            }
        }
        Ok(())
    }

    /// Samples stream lengths and the age of each stream's oldest job (configured domains and
    /// providers by name, the rest as "other": summed depth, largest age), and live workers.
    async fn queue_depths(&self, conn: &mut sluice_shared::redis::Pooled) -> StoreResult<()> {
        use sluice_shared::metrics::{LIVE_WORKERS, QUEUE_DEPTH, QUEUE_OLDEST_AGE};
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut **conn).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let domains: Vec<String> = conn.smembers(keys::domains()).await?;
        let (mut other_depth, mut other_age) = (0u64, 0f64);
        for chunk in domains.chunks(500) {
            let mut pipe = redis::pipe();
            for d in chunk {
                for lane in Lane::ALL {
                    let stream = keys::lane_stream(d, lane);
                    pipe.xlen(&stream);
                    pipe.cmd("XRANGE").arg(&stream).arg("-").arg("+").arg("COUNT").arg(1);
                }
            }
            let replies: Vec<redis::Value> = pipe.query_async(&mut **conn).await?;
            // Both lanes of a destination count together: depth summed, age of the oldest.
            for (d, lanes) in chunk.iter().zip(replies.chunks(2 * Lane::ALL.len())) {
                let (mut len, mut age) = (0u64, 0f64);
                for pair in lanes.chunks(2) {
                    len += redis::from_redis_value_ref::<u64>(&pair[0]).unwrap_or(0);
                    let oldest: Vec<(String, redis::Value)> = redis::from_redis_value_ref(&pair[1]).unwrap_or_default();
                    let lane_age = oldest
                        .first()
                        .and_then(|(id, _)| sluice_shared::redis::entry_id::millis(id))
                        .map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
                    age = age.max(lane_age);
                }
                match self.config.limits.label(d) {
                    "other" => {
                        other_depth += len;
                        other_age = other_age.max(age);
                    }
                    label => {
                        metrics::gauge!(QUEUE_DEPTH, "domain" => label.to_string()).set(len as f64);
                        metrics::gauge!(QUEUE_OLDEST_AGE, "domain" => label.to_string()).set(age);
                    }
                }
            }
        }
        metrics::gauge!(QUEUE_DEPTH, "domain" => "other").set(other_depth as f64);
        metrics::gauge!(QUEUE_OLDEST_AGE, "domain" => "other").set(other_age);
        let live: u64 = redis::cmd("ZCOUNT")
            .arg(keys::workers())
            .arg(now_ms - LIVE_WINDOW_MS)
            .arg("+inf")
            .query_async(&mut **conn)
            .await?;
        metrics::gauge!(LIVE_WORKERS).set(live as f64);
        Ok(())
    }
}

/// Sets the campaign's per-state recipient gauges from its counters.
async fn export_counts(conn: &mut sluice_shared::redis::Pooled, id: &str) -> StoreResult<()> {
    let counts: Vec<(String, i64)> = conn.hgetall(keys::campaign_counts(id)).await?;
    for (state, n) in counts {
        metrics::gauge!(sluice_shared::metrics::CAMPAIGN_RECIPIENTS, "campaign" => id.to_string(), "state" => state)
            .set(n as f64);
    }
    Ok(())
}

/// A worker whose last heartbeat is older than this is not counted as live.
const LIVE_WINDOW_MS: i64 = 30_000;
