//! The worker loop, one per lane: lease due domains from the lane's ready set, visit each
//! (take.lua: tokens, then reclaimed and new jobs), put each domain back in the ready set at
//! the time it is next worth a visit, and process batches concurrently under the lane's
//! in-flight bound. No worker polls thousands of streams: it only visits domains that are due,
//! oldest first. The priority lane runs the same loop with its own bound and a short idle poll,
//! so transactional jobs never wait for bulk batches to finish.

use std::{sync::Arc, time::Duration};

use redis::Value;
use sluice_shared::{
    keys,
    lane::Lane,
    metrics as m,
    model::Job,
    redis::{Conn, StoreError, StoreResult, scripts::SCRIPTS},
    shutdown::Shutdown,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};

use crate::{
    batch::{self, Entry},
    context::Ctx,
    transport::Transport,
};

/// How long a picked domain is ours before others may pick it again.
const LEASE_MS: u64 = 5_000;
const HEARTBEAT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(50);
const BUSY_PAUSE: Duration = Duration::from_millis(2);

struct Taken {
    domain: String,
    batch: batch::Batch,
    permit: OwnedSemaphorePermit,
}

pub async fn run<T: Transport>(ctx: Arc<Ctx<T>>, lane: Lane, shutdown: Shutdown) {
    let w = &ctx.config.worker;
    let (max_inflight, idle_poll) = match lane {
        Lane::Bulk => (w.max_inflight, IDLE_POLL),
        Lane::Priority => (w.priority_inflight, w.priority_poll.get()),
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
        match round(&ctx, lane, &inflight, idle_poll, &mut turn).await {
            Ok((taken, idle)) => {
                for t in taken {
                    let ctx = ctx.clone();
                    tasks.spawn(async move {
                        batch::process(ctx, t.domain, t.batch).await;
                        drop(t.permit);
                    });
                }
                if let Some(wait) = idle {
                    shutdown.sleep(wait).await;
                }
            }
            Err(e) => {
                ctx.forget_conn();
                metrics::counter!(m::REDIS_ERRORS, "op" => "round").increment(1);
                tracing::warn!(error = %e, "worker round failed; retrying");
                shutdown.sleep(Duration::from_secs(1)).await;
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

/// One scheduling round: due domains from the first ready shard that has any, starting at
/// `turn` (then the next shard gets the first look). Returns the batches taken and, when
/// nothing was due in any shard, how long to idle.
async fn round<T: Transport>(
    ctx: &Arc<Ctx<T>>,
    lane: Lane,
    inflight: &Arc<Semaphore>,
    idle_poll: Duration,
    turn: &mut usize,
) -> StoreResult<(Vec<Taken>, Option<Duration>)> {
    let mut conn = ctx.conn().await?;
    let mut wait = idle_poll;
    let mut found = None;
    let shards = keys::ready_shards(lane);
    for i in 0..shards {
        let shard = (*turn + i) % shards;
        let picked: Vec<Value> = SCRIPTS
            .pick_domains
            .key(keys::ready_for(lane, shard))
            .arg(ctx.config.worker.domains_per_round)
            .arg(LEASE_MS)
            .invoke_async(&mut conn)
            .await?;
        let (now, lease, next_due) = (int(&picked, 0)?, int(&picked, 1)?, int(&picked, 2)?);
        let domains: Vec<String> = picked
            .iter()
            .skip(3)
            .map(redis::from_redis_value_ref)
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Reply(e.to_string()))?;
        if !domains.is_empty() {
            *turn = shard + 1;
            found = Some((lease, domains));
            break;
        }
        if next_due >= 0 {
            let until = (next_due - now).clamp(1, idle_poll.as_millis().max(1) as i64) as u64;
            wait = wait.min(Duration::from_millis(until));
        }
    }
    let Some((lease, domains)) = found else {
        return Ok((Vec::new(), Some(wait)));
    };
    let visits = domains.into_iter().map(|d| visit(ctx, conn.clone(), d, lane, lease, inflight));
    let mut taken = Vec::new();
    for result in futures::future::join_all(visits).await {
        if let Some(t) = result? {
            taken.push(t);
        }
    }
    // Due domains but nothing taken (no tokens, or no room in this worker): pause briefly
    // instead of spinning on the same leases.
    let idle = taken.is_empty().then_some(BUSY_PAUSE);
    Ok((taken, idle))
}

fn int(values: &[Value], i: usize) -> StoreResult<i64> {
    values
        .get(i)
        .and_then(|v| redis::from_redis_value_ref::<i64>(v).ok())
        .ok_or_else(|| StoreError::Reply(format!("expected a number at {i}")))
}

/// Visits one domain: takes up to a batch of jobs if tokens and room allow, and reschedules it.
async fn visit<T: Transport>(
    ctx: &Ctx<T>,
    mut conn: Conn,
    domain: String,
    lane: Lane,
    lease: i64,
    inflight: &Arc<Semaphore>,
) -> StoreResult<Option<Taken>> {
    let cfg = &ctx.config;
    let ready = keys::ready_of(lane, &domain);
    let stream = keys::lane_stream(&domain, lane);
    let want = cfg.worker.batch.min(inflight.available_permits()).min(ctx.domain_room(&domain, lane) * 4);
    let permit = match (want > 0).then(|| inflight.clone().try_acquire_many_owned(want as u32).ok()).flatten() {
        Some(p) => p,
        None => {
            // No room here: hand the domain back so another worker can take it now.
            SCRIPTS.mark_ready.key(&ready).arg(&domain).invoke_async::<i64>(&mut conn).await?;
            return Ok(None);
        }
    };
    let limit = cfg.limits.for_domain(&domain);
    let reclaim_idle = cfg.worker.reclaim_idle.as_millis();
    let reply: redis::RedisResult<Vec<Value>> = SCRIPTS
        .take
        .key(keys::domain_bucket(&domain))
        .key(&stream)
        .key(keys::lane_reclaim_marker(&domain, lane))
        .key(keys::domain_shape(&domain))
        .arg(want)
        .arg(limit.per_second)
        .arg(limit.burst)
        .arg(keys::WORKER_GROUP)
        .arg(&ctx.consumer)
        .arg(reclaim_idle)
        .arg((reclaim_idle / 2).max(1000))
        .arg(lane.as_str())
        .arg(cfg.limits.transactional_share)
        .invoke_async(&mut conn)
        .await;
    let reply = match reply {
        Ok(r) => r,
        Err(e) if e.code() == Some("NOGROUP") => {
            sluice_shared::redis::ensure_group(&mut conn, &stream, keys::WORKER_GROUP).await?;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let now = int(&reply, 0)?;
    let wait = int(&reply, 1)?;
    let more = int(&reply, 2)? == 1;
    let pending = int(&reply, 3)?;
    let reclaimed = int(&reply, 4)?;
    let (entries, malformed) = parse_entries(reply.get(5), reply.get(6));
    let label = cfg.limits.label(&domain).to_string();
    metrics::gauge!(m::RATE_FACTOR, "domain" => label.clone()).set(int(&reply, 7)? as f64 / 1000.0);
    metrics::gauge!(m::SUSPENDED, "domain" => label.clone()).set(if int(&reply, 8)? > 0 { 1.0 } else { 0.0 });
    let got = entries.len() + malformed.len();
    // Entries handed out more than max_deliveries times kept killing or stalling workers.
    let (poisoned, entries): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, n)| *n > cfg.worker.max_deliveries);
    let entries = entries.into_iter().map(|(e, _)| e).collect();

    let due = if wait > 0 {
        metrics::counter!(m::TOKEN_WAITS, "domain" => label).increment(1);
        Some(now + wait)
    } else if more {
        Some(now)
    } else if pending > 0 {
        // Jobs in flight: look again once they could be a dead worker's.
        Some(now + reclaim_idle as i64)
    } else {
        None
    };
    match due {
        Some(due) => {
            let mut inv = SCRIPTS.reschedule.key(&ready);
            inv.arg(&domain).arg(lease).arg(due).invoke_async::<i64>(&mut conn).await?;
        }
        None => release_drained(&mut conn, &domain, lane, lease).await?,
    }

    if got == 0 {
        return Ok(None);
    }
    metrics::counter!(m::CLAIMS).increment(got as u64);
    if reclaimed > 0 {
        metrics::counter!(m::RECLAIMS).increment(reclaimed as u64);
        tracing::info!(%domain, reclaimed, "took over entries from a worker presumed dead");
    }
    let mut permit = permit;
    let kept = permit.split(got).expect("took no more than the permits held");
    drop(permit);
    Ok(Some(Taken { domain, batch: batch::Batch { lane, entries, malformed, poisoned }, permit: kept }))
}

/// Removes a drained domain from the ready set, then looks again: a job added between the
/// visit and the removal puts it straight back, so no work is ever stranded.
async fn release_drained(conn: &mut Conn, domain: &str, lane: Lane, lease: i64) -> StoreResult<()> {
    let ready = keys::ready_of(lane, domain);
    let removed: i64 = SCRIPTS.unready.key(&ready).arg(domain).arg(lease).invoke_async(conn).await?;
    if removed == 1 {
        let stream = keys::lane_stream(domain, lane);
        let work: i64 = SCRIPTS.has_work.key(stream).arg(keys::WORKER_GROUP).invoke_async(conn).await?;
        if work == 1 {
            SCRIPTS.mark_ready.key(&ready).arg(domain).invoke_async::<i64>(conn).await?;
        }
    }
    Ok(())
}

/// Stream entries as `[id, [field, value, ...]]`, each with its delivery count; entries that
/// do not parse as jobs are returned by id so they are acked (and logged) rather than retried
/// forever.
fn parse_entries(items: Option<&Value>, deliveries: Option<&Value>) -> (Vec<(Entry, u64)>, Vec<String>) {
    let mut entries = Vec::new();
    let mut malformed = Vec::new();
    let (Some(Value::Array(items)), Some(Value::Array(deliveries))) = (items, deliveries) else {
        return (entries, malformed);
    };
    for (item, count) in items.iter().zip(deliveries) {
        let Value::Array(parts) = item else { continue };
        let Some(id) = parts.first().and_then(|v| redis::from_redis_value_ref::<String>(v).ok()) else { continue };
        let fields: std::collections::HashMap<String, Value> = match parts.get(1) {
            Some(Value::Array(kv)) => kv
                .chunks(2)
                .filter_map(|p| Some((redis::from_redis_value_ref::<String>(p.first()?).ok()?, p.get(1)?.clone())))
                .collect(),
            _ => Default::default(),
        };
        match Job::from_fields(&fields) {
            Ok(job) => entries.push((Entry { id, job }, redis::from_redis_value_ref(count).unwrap_or(1))),
            Err(e) => {
                tracing::error!(entry = %id, error = %e, "malformed job entry; dropping it");
                malformed.push(id);
            }
        }
    }
    (entries, malformed)
}
