//! Handles one batch of jobs taken from one domain stream: decide per job (decide.lua), render
//! and send the ones that are current, record every outcome (record.lua), then ack.
//! Outcomes are recorded before the ack, so a crash in between replays the ack, never the count.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sluice_shared::{
    classify::Category,
    config::DomainLimit,
    crash, keys,
    lane::{self, Lane},
    metrics as m,
    model::{Charset, Job, OutcomeKind},
    redis::{
        Conn, StoreResult,
        replicas::Replicated,
        scripts::{
            destination, due,
            jobs::{self, Counted, Decision, Source},
            stream,
        },
    },
};

use crate::{
    classify::{Verdict, classify, oversize, render_failure, reset_as_throttling},
    context::Ctx,
    dead_letter,
    links::RecipientLinks,
    message,
    render::Campaign,
    sweep,
    transport::{Envelope, Transport},
};

pub use sluice_shared::model::Entry;

/// What one visit to a domain took.
#[derive(Debug, Default)]
pub struct Batch {
    /// The lane (stream) the entries came from.
    pub lane: Lane,
    pub entries: Vec<Entry>,
    /// Entries that are not jobs: acked and dropped (logged when read).
    pub malformed: Vec<String>,
    /// Entries handed out more than `worker.max_deliveries` times, with that count.
    pub poisoned: Vec<(Entry, u64)>,
}

/// Processes a batch and acks every entry whose fate is recorded. Entries whose campaign step
/// failed on Redis stay pending: this worker retakes them once it holds no batch of the lane.
pub async fn process<T: Transport>(ctx: Arc<Ctx<T>>, domain: String, batch: Batch) {
    let lane = batch.lane;
    if !settle(&ctx, &domain, batch).await {
        ctx.orphans.suspect(&domain, lane);
        // Best effort: otherwise the lane comes back at its next visit.
        if let Ok(mut conn) = ctx.conn().await {
            let _ = due::mark(&mut conn, &keys::ready_of(lane, &domain), &[&domain]).await;
        }
    }
}

/// Processes a batch; whether every entry was acked.
async fn settle<T: Transport>(ctx: &Arc<Ctx<T>>, domain: &str, batch: Batch) -> bool {
    let Batch { lane, entries, malformed: mut done, poisoned } = batch;
    let mut whole = true;
    if !poisoned.is_empty() {
        let maxlen = ctx.config.campaigns.events_maxlen;
        let step = async { dead_letter::dead_letter(&mut ctx.conn().await?, domain, maxlen, &poisoned).await };
        match step.await {
            Ok(ids) => done.extend(ids),
            Err(e) => {
                whole = false;
                ctx.forget_conn();
                tracing::warn!(%domain, error = %e, "dead-lettering failed; entries stay pending");
            }
        }
    }
    let mut by_campaign: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_campaign.entry(e.job.campaign.clone()).or_default().push(e);
    }
    // Campaigns of one batch go concurrently: one message never waits for another's sends.
    let steps = by_campaign.into_iter().map(|(campaign, entries)| async move {
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        match handle_campaign(ctx, domain, lane, &campaign, entries).await {
            Ok(replicated) if !replicated.confirmed() => {
                // Acked now, these jobs would be gone while what was written for them could
                // still die with the master: retaken, they find it (and are skipped) or not.
                tracing::warn!(%domain, %campaign, "no replica confirmed the outcomes; their entries stay pending");
                None
            }
            Ok(_) => Some(ids),
            Err(e) => {
                ctx.forget_conn();
                m_redis_error("batch");
                tracing::warn!(%domain, %campaign, error = %e, "batch step failed; its entries stay pending");
                None
            }
        }
    });
    for ids in futures::future::join_all(steps).await {
        match ids {
            Some(ids) => done.extend(ids),
            None => whole = false,
        }
    }
    // The ack reaches a replica too: an ack lost in a failover leaves entries pending under
    // this worker's name, which nobody takes over before `worker.reclaim_idle`; retried on
    // the new master instead, it removes them at once.
    let stream_key = keys::lane_stream(domain, lane);
    let ack = || async {
        let mut conn = ctx.conn().await?;
        stream::ack(&mut conn, &stream_key, keys::WORKER_GROUP, &done).await?;
        ctx.replicas.wait(&mut conn, &stream_key, "ack").await
    };
    crash::point("worker::before_ack");
    if !done.is_empty() && retrying(ctx, "ack", ack).await.is_err() {
        tracing::warn!(%domain, "ack failed; entries stay pending and will be skipped as duplicates when retaken");
        return false;
    }
    whole
}

/// Entries of this batch that were not sent (cancelled, parked, stale) cost their lane
/// nothing: a paused or cancelled campaign's other entries are swept out of the lane, the
/// tokens taken for the unsent ones go back, and the lane is looked at again at once, unless
/// another worker is sweeping it (then reading on would only meet the entries it is about to
/// remove: the lane comes back at its next visit). Best effort: jobs to send are already
/// marked in flight and must not wait on a failure here.
async fn free_lane<T: Transport>(
    ctx: &Arc<Ctx<T>>,
    conn: &mut Conn,
    (domain, lane): (&str, Lane),
    campaign: &str,
    decisions: &[Decision],
) {
    let dead = decisions.iter().any(|d| matches!(d, Decision::Parked | Decision::Dropped));
    let mut swept_elsewhere = false;
    if dead {
        match sweep::sweep(ctx, domain, lane, campaign).await {
            Ok(swept) => swept_elsewhere = swept.is_none(),
            Err(e) => {
                m_redis_error("sweep");
                tracing::warn!(%domain, %campaign, error = %e, "sweeping a campaign that is not running failed; its entries drain as read");
            }
        }
    }
    let unsent = decisions.iter().filter(|d| **d != Decision::Send).count();
    if unsent == 0 {
        return;
    }
    let give_back = async {
        destination::give_back(conn, domain, lane, unsent).await?;
        if !swept_elsewhere {
            due::mark(conn, &keys::ready_of(lane, domain), &[domain]).await?;
        }
        Ok::<_, sluice_shared::redis::StoreError>(())
    };
    match give_back.await {
        Ok(()) if !swept_elsewhere => ctx.wake(lane),
        Ok(()) => {}
        Err(e) => {
            m_redis_error("give_back");
            tracing::warn!(%domain, error = %e, "giving back unused tokens failed; they refill at the rate");
        }
    }
}

fn m_redis_error(op: &'static str) {
    metrics::counter!(m::REDIS_ERRORS, "op" => op).increment(1);
}

/// Retries a Redis step with backoff while the worker is not past its drain deadline:
/// losing Redis for a while must not lose an outcome that was already obtained.
async fn retrying<T: Transport, R, F, Fut>(ctx: &Ctx<T>, what: &'static str, mut step: F) -> StoreResult<R>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<R>>,
{
    let mut delay = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + ctx.config.worker.reclaim_idle.get();
    loop {
        match step().await {
            Ok(r) => return Ok(r),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                ctx.forget_conn();
                m_redis_error(what);
                tracing::warn!(step = what, error = %e, retry_in = ?delay, "Redis step failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                ctx.forget_conn();
                return Err(e);
            }
        }
    }
}

/// Decides, sends and records one campaign's entries of a batch; whether a replica has what
/// was written for them (if not [`Replicated::confirmed`], their entries must not be acked).
async fn handle_campaign<T: Transport>(
    ctx: &Arc<Ctx<T>>,
    domain: &str,
    lane: Lane,
    campaign_id: &str,
    entries: Vec<Entry>,
) -> StoreResult<Replicated> {
    let (maxlen, max_age) = (ctx.config.campaigns.events_maxlen, ctx.config.retry.max_age.as_millis());
    // Retried through a failover rather than left pending for `worker.reclaim_idle`: deciding
    // again is safe (a job marked in flight under its own entry is still current).
    let decide =
        || async { jobs::decide(&mut ctx.conn().await?, campaign_id, maxlen, max_age, Source::Taken, &entries).await };
    let decisions = retrying(ctx, "decide", decide).await?;
    let mut conn = retrying(ctx, "connect", || ctx.conn()).await?;
    let to_send: Vec<&Entry> =
        entries.iter().zip(&decisions).filter(|(_, d)| **d == Decision::Send).map(|(e, _)| e).collect();
    let skipped = decisions.iter().filter(|d| **d == Decision::Skip).count();
    if skipped > 0 {
        metrics::counter!(m::SKIPPED).increment(skipped as u64);
    }
    free_lane(ctx, &mut conn, (domain, lane), campaign_id, &decisions).await;
    if to_send.is_empty() {
        return settled(ctx, &mut conn, campaign_id, &decisions).await;
    }
    let campaign =
        retrying(ctx, "campaign", || async { ctx.campaigns.get(&mut ctx.conn().await?, campaign_id).await }).await?;
    let mut conn = retrying(ctx, "connect", || ctx.conn()).await?;
    let (to_send, capped) = match &campaign {
        Some(Ok(c)) => warmup::within_cap(ctx, &mut conn, c, to_send).await?,
        _ => (to_send, Replicated::NoReplica),
    };
    if to_send.is_empty() {
        return Ok(capped.and(settled(ctx, &mut conn, campaign_id, &decisions).await?));
    }
    let permits = ctx.domain_permits(domain, lane);
    let limit = ctx.config.limits.for_domain(domain);
    let answered = AtomicUsize::new(0);
    let half = to_send.len().div_ceil(2);
    let verdicts: Vec<Verdict> = match &campaign {
        Some(Ok(c)) => {
            // Boxed: a run's future holds SMTP, TLS and DNS states inline (~11 KB), and
            // join_all would otherwise copy each one several times as it gathers them.
            let shortest = if lane == Lane::Bulk && ctx.transport.pipelines_runs() { BULK_RUN } else { 1 };
            let connections = ctx.config.limits.lane_connections(limit.connections, lane);
            let sends = runs(&to_send, connections, shortest).map(|run| {
                Box::pin(async {
                    let verdicts = deliver_run(ctx, c, &permits, (domain, &limit), lane, run).await;
                    let before = answered.fetch_add(run.len(), Ordering::SeqCst);
                    if before < half && before + run.len() >= half {
                        crash::point("worker::mid_batch");
                    }
                    verdicts
                })
            });
            futures::future::join_all(sends).await.into_iter().flatten().collect()
        }
        Some(Err(reason)) => to_send.iter().map(|_| render_failure(reason)).collect(),
        None => to_send.iter().map(|_| render_failure("campaign no longer exists")).collect(),
    };
    // Jobs the transport held (every source address at its warm-up cap) wait, unattempted;
    // they are put back after the others are recorded, so a failure there loses no outcome.
    let (held, sent): (Vec<_>, Vec<_>) = to_send.into_iter().zip(verdicts).partition(|(_, v)| v.hold_until.is_some());
    let (to_send, mut verdicts): (Vec<&Entry>, Vec<Verdict>) = sent.into_iter().unzip();
    let addresses: Vec<&str> = to_send.iter().map(|e| e.job.recipient.as_str()).collect();
    // Best effort: the messages are sent, so nothing may stop their outcomes being recorded.
    if let Err(e) = effects::count_soft_bounces(ctx, &mut conn, &addresses, &mut verdicts).await {
        m_redis_error("soft_bounces");
        tracing::warn!(%domain, error = %e, "counting soft bounces failed; recording outcomes as they are");
    }
    crash::point("worker::before_record");
    let (recorded, replicated) = retrying(ctx, "record", || record(ctx, campaign_id, &to_send, &verdicts)).await?;
    let label = ctx.config.limits.label(domain).to_string();
    let mut counted = Vec::new();
    for ((entry, verdict), flag) in to_send.iter().zip(&verdicts).zip(recorded) {
        let kind = if flag == Counted::FailedPastMaxAge { OutcomeKind::Failed } else { verdict.kind };
        if flag != Counted::Stale {
            metrics::counter!(m::MESSAGES, "outcome" => kind.as_str(), "domain" => label.clone()).increment(1);
            if verdict.category == Some(Category::AuthFailure) {
                metrics::counter!(m::SENDER_AUTH_REJECTIONS, "domain" => label.clone()).increment(1);
            }
            counted.push((entry.job.recipient.as_str(), verdict));
        }
    }
    effects::apply(ctx, &mut conn, domain, campaign_id, &counted).await?;
    if let Some(Ok(c)) = &campaign
        && let Err(e) =
            effects::observe_reputation(ctx, &mut conn, domain, campaign_id, &c.spec.from.email, &counted).await
    {
        m_redis_error("reputation");
        tracing::warn!(%domain, campaign = %campaign_id, error = %e, "counting for the reputation guard failed");
    }
    if lane::is_message(campaign_id) {
        sluice_shared::attention::nudge_message(&mut conn, campaign_id).await?;
    }
    if let Some((_, first)) = held.first() {
        let entries: Vec<&Entry> = held.iter().map(|(e, _)| *e).collect();
        let until = first.hold_until.expect("partitioned on hold_until");
        let hold = || async {
            let (_, held) =
                warmup::hold(ctx, &mut ctx.conn().await?, campaign_id, &entries, until, &first.detail).await?;
            Ok(held)
        };
        let held = retrying(ctx, "hold", hold).await?;
        return Ok(capped.and(replicated).and(held));
    }
    Ok(capped.and(replicated))
}

/// A pipelined bulk run is at least this long: each message after the first saves a round trip.
const BULK_RUN: usize = 8;

/// The batch's jobs cut into runs, each sent in order under one of the destination's
/// connections: as many runs as it allows connections, each at least `shortest` jobs long
/// ([`BULK_RUN`] for bulk jobs on a transport that pipelines runs, else 1, so a transactional
/// job never waits behind another while a connection is free).
fn runs<J>(jobs: &[J], connections: usize, shortest: usize) -> std::slice::Chunks<'_, J> {
    let count = jobs.len().div_ceil(shortest).min(connections).max(1);
    jobs.chunks(jobs.len().div_ceil(count).max(1))
}

/// Builds a run's messages, then sends them one after another under one of the
/// destination's connections ([`Transport::send_all`]); one verdict per job, in order.
async fn deliver_run<T: Transport>(
    ctx: &Ctx<T>,
    campaign: &Campaign,
    permits: &tokio::sync::Semaphore,
    (domain, limit): (&str, &DomainLimit),
    lane: Lane,
    run: &[&Entry],
) -> Vec<Verdict> {
    let mut verdicts: Vec<Option<Verdict>> = vec![None; run.len()];
    let (mut messages, mut built) = (Vec::with_capacity(run.len()), Vec::with_capacity(run.len()));
    for (k, entry) in run.iter().enumerate() {
        let job = &entry.job;
        let links = ctx.links(&campaign.spec, job.index, &job.recipient);
        let message::Built { bytes, charset_fallback } = match message_for(ctx, campaign, job, &links, limit) {
            Ok(b) => b,
            Err(reason) => {
                verdicts[k] = Some(render_failure(&reason));
                continue;
            }
        };
        if let Some(max) = limit.max_message_bytes.filter(|max| bytes.len() > *max) {
            metrics::counter!(m::OVERSIZE, "domain" => ctx.config.limits.label(domain).to_string()).increment(1);
            verdicts[k] = Some(oversize(bytes.len(), max));
            continue;
        }
        messages.push((Envelope { from: links.return_path(), to: job.recipient.clone(), lane }, bytes));
        built.push((k, charset_fallback));
    }
    if !messages.is_empty() {
        let _permit = permits.acquire().await.expect("domain semaphores are never closed");
        for (k, _) in &built {
            crash::point_for("worker::before_send", &run[*k].job.recipient);
        }
        let started = std::time::Instant::now();
        let answers = ctx.transport.send_all(&messages).await;
        // Pipelined, messages share their round trips: each is counted its share of the run.
        let each = started.elapsed().as_secs_f64() / messages.len() as f64;
        let label = ctx.config.limits.label(domain).to_string();
        for ((k, charset_fallback), result) in built.into_iter().zip(answers) {
            metrics::histogram!(m::SMTP_LATENCY, "domain" => label.clone()).record(each);
            let mut verdict = classify(&ctx.rules, &result);
            if limit.reset_is_throttling {
                verdict = reset_as_throttling(verdict, &result);
            }
            if let Some(fallback) = charset_fallback {
                metrics::counter!(m::CHARSET_FALLBACKS).increment(1);
                verdict.detail["charset"] = fallback.into();
            }
            verdicts[k] = Some(verdict);
        }
    }
    verdicts.into_iter().map(|v| v.expect("a verdict for every job of the run")).collect()
}

/// The signed message for one job: rendered, tracked as the campaign asks, built in the
/// campaign's charset (else the destination's), signed.
fn message_for<T: Transport>(
    ctx: &Ctx<T>,
    campaign: &Campaign,
    job: &Job,
    links: &RecipientLinks,
    limit: &DomainLimit,
) -> Result<message::Built, String> {
    let reference = links.reference();
    if let Some(mime) = &campaign.spec.mime {
        let message_id = message::message_id(ctx.tokens.as_ref(), campaign, job.index, &job.recipient);
        let stamped = message::stamp(mime, &message_id, reference.as_deref());
        let bytes = message::sign(&ctx.dkim, ctx.config.dkim.missing_key, &campaign.spec.from.email, stamped)?;
        return Ok(message::Built { bytes, charset_fallback: None });
    }
    let max_bytes = ctx.config.campaigns.max_rendered_bytes;
    let mut content = campaign.render(&job.recipient, &job.vars, links.unsubscribe_url(), max_bytes)?;
    if !campaign.spec.tracking.is_off()
        && let Some(html) = content.html.take()
    {
        content.html = Some(links.track(&html)?);
    }
    let charset = campaign.spec.charset.or(limit.charset).unwrap_or(Charset::Utf8);
    let for_message = links.for_message(reference.as_deref());
    let mut built = message::build(campaign, job.index, &job.recipient, content, for_message, charset)?;
    built.bytes = message::sign(&ctx.dkim, ctx.config.dkim.missing_key, &campaign.spec.from.email, built.bytes)?;
    Ok(built)
}

/// Jobs parked, dropped or failed without a send are acked next: what decide.lua wrote for
/// them reaches a replica first (stale duplicates wrote nothing).
async fn settled<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    campaign_id: &str,
    decisions: &[Decision],
) -> StoreResult<Replicated> {
    if decisions.iter().any(|d| *d != Decision::Skip) {
        return ctx.replicas.wait(conn, &keys::campaign_state(campaign_id), "record").await;
    }
    Ok(Replicated::NoReplica)
}

async fn record<T: Transport>(
    ctx: &Ctx<T>,
    campaign_id: &str,
    sent: &[&Entry],
    verdicts: &[Verdict],
) -> StoreResult<(Vec<jobs::Counted>, Replicated)> {
    let mut conn = ctx.conn().await?;
    let retry = &ctx.config.retry;
    let outcomes: Vec<jobs::Outcome> = sent
        .iter()
        .zip(verdicts)
        .map(|(entry, verdict)| jobs::Outcome {
            entry,
            kind: verdict.kind,
            retry_delay_ms: retry.delay_before(entry.job.attempt + 1).as_millis(),
            detail_json: verdict.detail.to_string(),
        })
        .collect();
    let maxlen = ctx.config.campaigns.events_maxlen;
    // The ack that follows removes the jobs from another node (on a cluster): the outcomes
    // must survive a failover of this one first.
    jobs::record(&mut conn, &ctx.replicas, campaign_id, (maxlen, retry.max_age.as_millis()), &outcomes).await
}

mod effects;
mod warmup;

#[cfg(test)]
pub(crate) mod tests;
