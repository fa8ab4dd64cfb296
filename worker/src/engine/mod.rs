//! The worker loop, one per lane: lease due domains from the lane's ready set, visit each
//! (take.lua: tokens, then reclaimed and new jobs), put each domain back in the ready set at
//! the time it is next worth a visit, and process batches concurrently under the lane's
//! in-flight bound. No worker polls thousands of streams: it only visits domains that are due,
//! oldest first. The priority lane runs the same loop with its own bound and a short idle poll,
//! so transactional jobs never wait for bulk batches to finish.

use std::{sync::Arc, time::Duration};

use sluice_shared::{
    keys,
    lane::Lane,
    metrics as m,
    redis::{
        Conn, StoreError, StoreResult,
        scripts::{destination, due},
    },
    shutdown::Shutdown,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};

use crate::{batch, context::Ctx, orphans::Running, transport::Transport};

/// How long a picked domain is ours before others may pick it again.
const LEASE_MS: u64 = 5_000;
const HEARTBEAT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(50);
const BUSY_PAUSE: Duration = Duration::from_millis(2);

struct Taken {
    domain: String,
    batch: batch::Batch,
    permit: OwnedSemaphorePermit,
    running: Running,
}

/// What one scheduling round got: the batches taken, how long to idle when nothing was due,
/// and the error that cut the round short (batches taken before it still go ahead).
struct Round {
    taken: Vec<Taken>,
    idle: Option<Duration>,
    failed: Option<StoreError>,
}

pub async fn run<T: Transport>(ctx: Arc<Ctx<T>>, lane: Lane, shutdown: Shutdown) {
    let w = &ctx.config.worker;
    let (max_inflight, idle_poll, round_point) = match lane {
        Lane::Bulk => (w.max_inflight, IDLE_POLL, "worker::bulk_round"),
        Lane::Priority => (w.priority_inflight, w.priority_poll.get(), "worker::priority_round"),
    };
    let inflight = Arc::new(Semaphore::new(max_inflight));
    let low_water = w.batch.min(max_inflight / 2).max(1);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut last_beat = tokio::time::Instant::now() - HEARTBEAT;
    // The ready shard this worker looks at first next round (rounds go round the shards).
    let mut turn = 0;
    while !shutdown.is_triggered() {
        while tasks.try_join_next().is_some() {}
        metrics::gauge!(m::INFLIGHT, "lane" => lane.as_str()).set((max_inflight - inflight.available_permits()) as f64);
        if lane == Lane::Bulk && last_beat.elapsed() >= HEARTBEAT {
            last_beat = tokio::time::Instant::now();
            heartbeat(&ctx).await;
        }
        // Take the permit before taking work: wait until a useful batch fits, rather than
        // taking jobs one at a time as single slots free up.
        if inflight.available_permits() < low_water {
            tokio::select! {
                p = inflight.clone().acquire_many_owned(low_water as u32) => drop(p),
                _ = shutdown.wait() => break,
            }
        }
        sluice_shared::crash::point(round_point);
        let Round { taken, idle, failed } = round(&ctx, lane, &inflight, idle_poll, &mut turn).await;
        for t in taken {
            let ctx = ctx.clone();
            tasks.spawn(async move {
                batch::process(ctx, t.domain, t.batch).await;
                drop((t.permit, t.running));
            });
        }
        if let Some(e) = failed {
            ctx.forget_conn();
            metrics::counter!(m::REDIS_ERRORS, "op" => "round").increment(1);
            tracing::warn!(error = %e, "worker round failed; retrying");
            shutdown.sleep(Duration::from_secs(1)).await;
        } else if let Some(wait) = idle {
            tokio::select! {
                _ = shutdown.sleep(wait) => {}
                _ = ctx.woken(lane) => {}
            }
        }
    }
    drain(&ctx, tasks).await;
}

/// Waits for in-flight batches up to the drain timeout; what is left stays pending for reclaim.
async fn drain<T: Transport>(ctx: &Ctx<T>, mut tasks: JoinSet<()>) {
    let left = tasks.len();
    tracing::info!(batches = left, "draining in-flight batches");
    let waited = tokio::time::timeout(ctx.config.worker.drain_timeout.get(), async {
        while tasks.join_next().await.is_some() {
            tracing::info!(batches = tasks.len(), "still draining");
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(batches = tasks.len(), "drain timeout; unfinished batches stay pending and will be reclaimed");
        tasks.abort_all();
    }
}

async fn heartbeat<T: Transport>(ctx: &Ctx<T>) {
    let beat = async {
        let mut conn = ctx.conn().await?;
        let now = chrono::Utc::now().timestamp_millis();
        redis::cmd("ZADD").arg(keys::workers()).arg(now).arg(&ctx.consumer).query_async::<()>(&mut conn).await?;
        Ok::<_, StoreError>(())
    };
    if let Err(e) = beat.await {
        ctx.forget_conn();
        tracing::warn!(error = %e, "heartbeat failed");
    }
}

/// One scheduling round: visits the domains due in the first ready shard that has any.
async fn round<T: Transport>(
    ctx: &Arc<Ctx<T>>,
    lane: Lane,
    inflight: &Arc<Semaphore>,
    idle_poll: Duration,
    turn: &mut usize,
) -> Round {
    let (conn, picked) = match due_domains(ctx, lane, idle_poll, turn).await {
        Ok(Ok(found)) => found,
        Ok(Err(wait)) => return Round { taken: Vec::new(), idle: Some(wait), failed: None },
        Err(e) => return Round { taken: Vec::new(), idle: None, failed: Some(e) },
    };
    let lease = picked.lease_until_ms;
    let visits = picked.domains.into_iter().map(|d| visit(ctx, conn.clone(), d, lane, lease, inflight));
    let mut round = Round { taken: Vec::new(), idle: None, failed: None };
    for result in futures::future::join_all(visits).await {
        match result {
            Ok(Some(t)) => round.taken.push(t),
            Ok(None) => {}
            Err(e) => round.failed = Some(e),
        }
    }
    // Due domains but nothing taken (no tokens, or no room in this worker): pause briefly
    // instead of spinning on the same leases.
    round.idle = round.taken.is_empty().then_some(BUSY_PAUSE);
    round
}

/// Leases the due domains of the first ready shard that has any, starting at `turn` (then the
/// next shard gets the first look); when none is due anywhere, how long to idle.
async fn due_domains<T: Transport>(
    ctx: &Ctx<T>,
    lane: Lane,
    idle_poll: Duration,
    turn: &mut usize,
) -> StoreResult<Result<(Conn, destination::Picked), Duration>> {
    let mut conn = ctx.conn().await?;
    let mut wait = idle_poll;
    let shards = keys::ready_shards(lane);
    for i in 0..shards {
        let shard = (*turn + i) % shards;
        let picked = destination::pick(&mut conn, lane, shard, ctx.config.worker.domains_per_round, LEASE_MS).await?;
        if !picked.domains.is_empty() {
            *turn = shard + 1;
            return Ok(Ok((conn, picked)));
        }
        if let Some(next_due) = picked.next_due_ms {
            let until = (next_due - picked.now_ms).clamp(1, idle_poll.as_millis().max(1) as i64) as u64;
            wait = wait.min(Duration::from_millis(until));
        }
    }
    Ok(Err(wait))
}

/// Visits one domain: takes up to a batch of jobs if tokens and room allow, and puts the
/// domain back in its ready set for when it is next worth a visit.
async fn visit<T: Transport>(
    ctx: &Ctx<T>,
    mut conn: Conn,
    domain: String,
    lane: Lane,
    lease: i64,
    inflight: &Arc<Semaphore>,
) -> StoreResult<Option<Taken>> {
    let cfg = &ctx.config;
    let want = cfg.worker.batch.min(inflight.available_permits()).min(ctx.domain_room(&domain, lane) * 4);
    let Some(mut permit) = (want > 0).then(|| inflight.clone().try_acquire_many_owned(want as u32).ok()).flatten()
    else {
        // No room here: hand the domain back so another worker can take it now.
        due::mark(&mut conn, &keys::ready_of(lane, &domain), &[&domain]).await?;
        return Ok(None);
    };
    let limit = cfg.limits.for_domain(&domain);
    let reclaim_idle_ms = cfg.worker.reclaim_idle.as_millis();
    let asked = destination::Visit {
        domain: &domain,
        lane,
        want,
        per_second: limit.per_second,
        burst: limit.burst,
        group: keys::WORKER_GROUP,
        consumer: &ctx.consumer,
        reclaim_idle_ms,
        reclaim_every_ms: (reclaim_idle_ms / 2).max(1000),
        share: cfg.limits.transactional_share,
        retake_own: ctx.orphans.retake(&domain, lane),
    };
    let took = match destination::take(&mut conn, &asked).await {
        Ok(took) => took,
        Err(StoreError::Redis(e)) if e.code() == Some("NOGROUP") => {
            sluice_shared::redis::ensure_group(&mut conn, &keys::lane_stream(&domain, lane), keys::WORKER_GROUP)
                .await?;
            return Ok(None);
        }
        Err(e) => {
            // The claim may have been made without its reply reaching us.
            ctx.orphans.suspect(&domain, lane);
            return Err(e);
        }
    };
    if asked.retake_own && !took.own_rest {
        ctx.orphans.cleared(&domain, lane);
    }
    let label = cfg.limits.label(&domain).to_string();
    metrics::gauge!(m::RATE_FACTOR, "domain" => label.clone()).set(took.factor_x1000 as f64 / 1000.0);
    metrics::gauge!(m::SUSPENDED, "domain" => label.clone()).set(if took.suspended_ms > 0 { 1.0 } else { 0.0 });
    if took.wait_ms > 0 {
        metrics::counter!(m::TOKEN_WAITS, "domain" => label).increment(1);
    }
    let rescheduled = match next_visit(&took, reclaim_idle_ms) {
        Some(at) => due::reschedule_if(&mut conn, &keys::ready_of(lane, &domain), &domain, lease, at).await.map(drop),
        None => release_drained(&mut conn, &domain, lane, lease).await,
    };
    if let Err(e) = rescheduled {
        // The jobs taken go ahead; the lease runs out by itself and the domain comes back then.
        ctx.forget_conn();
        tracing::warn!(%domain, error = %e, "rescheduling a visited domain failed; its lease will expire");
    }

    let got = took.entries.len() + took.malformed.len();
    if got == 0 {
        return Ok(None);
    }
    metrics::counter!(m::CLAIMS).increment(got as u64);
    if took.reclaimed > 0 {
        metrics::counter!(m::RECLAIMS).increment(took.reclaimed as u64);
        tracing::info!(%domain, reclaimed = took.reclaimed, "took over entries from a worker presumed dead");
    }
    if took.retaken > 0 {
        metrics::counter!(m::RECLAIMS).increment(took.retaken as u64);
        tracing::info!(%domain, retaken = took.retaken, "retook entries left pending under this worker's name");
    }
    // Entries handed out more than max_deliveries times kept killing or stalling workers.
    let (poisoned, entries): (Vec<_>, Vec<_>) =
        took.entries.into_iter().partition(|(_, n)| *n > cfg.worker.max_deliveries);
    let entries = entries.into_iter().map(|(e, _)| e).collect();
    let kept = permit.split(got).expect("took no more than the permits held");
    drop(permit);
    let batch = batch::Batch { lane, entries, malformed: took.malformed, poisoned };
    let running = ctx.orphans.start(&domain, lane);
    Ok(Some(Taken { domain, batch, permit: kept, running }))
}

/// When a visited domain is next worth a visit: when a token comes, at once if it holds more,
/// once its jobs in flight could be a dead worker's; `None` when it is drained.
fn next_visit(took: &destination::Took, reclaim_idle_ms: u64) -> Option<i64> {
    if took.wait_ms > 0 {
        Some(took.now_ms + took.wait_ms)
    } else if took.more {
        Some(took.now_ms)
    } else if took.pending > 0 {
        Some(took.now_ms + reclaim_idle_ms as i64)
    } else {
        None
    }
}

/// Removes a drained domain from the ready set, then looks again: a job added between the
/// visit and the removal puts it straight back, so no work is ever stranded.
async fn release_drained(conn: &mut Conn, domain: &str, lane: Lane, lease: i64) -> StoreResult<()> {
    let ready = keys::ready_of(lane, domain);
    if due::remove_if(conn, &ready, domain, lease).await?
        && destination::has_work(conn, domain, lane, keys::WORKER_GROUP).await?
    {
        due::mark(conn, &ready, &[domain]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
