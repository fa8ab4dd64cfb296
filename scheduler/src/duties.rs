//! The scheduler's housekeeping loop: intake, releasing scheduled campaigns, expansion,
//! retry promotion, queue depth metrics. Every step is safe with several schedulers running.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::AsyncCommands;
use sluice_shared::redis::Pool;
use sluice_shared::{config::Config, keys, redis::StoreResult, shutdown::Shutdown};

use crate::{
    campaign::store::{self, Action},
    enqueue::Enqueuer,
    expander, hygiene, intake, retries,
};

const METRICS_EVERY: Duration = Duration::from_secs(5);

pub struct Duties {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub consumer: String,
    pub enqueuer: Enqueuer,
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
                if sweep {
                    last_metrics = Instant::now();
                    self.queue_depths(&mut conn).await?;
                }
                if last_prune.elapsed() >= prune_every {
                    last_prune = Instant::now();
                    hygiene::prune_consumers(&mut conn, &self.config).await?;
                }
                Ok::<_, sluice_shared::redis::StoreError>(busy)
            };
            match round.await {
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
            let step = expander::expand_chunk(
                conn,
                &self.enqueuer,
                &self.config.scheduler,
                self.config.campaigns.events_maxlen,
                &id,
            )
            .await?;
            busy |= step.moved > 0;
            match step.status.as_str() {
                "scheduled" => {
                    store::transition(conn, &id, Action::Release).await?;
                }
                "running" => busy |= retries::promote(conn, &self.enqueuer, &id).await? > 0,
                "paused" if sweep => {
                    hygiene::expire_waiting(conn, &id, &self.config).await?;
                }
                "completed" | "cancelled" => {
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

    /// Samples stream lengths: configured domains by name, the rest summed as "other".
    async fn queue_depths(&self, conn: &mut sluice_shared::redis::Pooled) -> StoreResult<()> {
        let domains: Vec<String> = conn.smembers(keys::domains()).await?;
        let mut other = 0u64;
        for chunk in domains.chunks(500) {
            let mut pipe = redis::pipe();
            for d in chunk {
                pipe.xlen(keys::domain_stream(d));
            }
            let lens: Vec<u64> = pipe.query_async(&mut **conn).await?;
            for (d, len) in chunk.iter().zip(lens) {
                match self.config.limits.label(d) {
                    "other" => other += len,
                    label => metrics::gauge!(sluice_shared::metrics::QUEUE_DEPTH, "domain" => label.to_string())
                        .set(len as f64),
                }
            }
        }
        metrics::gauge!(sluice_shared::metrics::QUEUE_DEPTH, "domain" => "other").set(other as f64);
        Ok(())
    }
}
