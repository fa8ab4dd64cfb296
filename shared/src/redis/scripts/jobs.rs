//! Scripts for the jobs a worker holds in flight, all on one campaign's keys: what to do with
//! each job just taken from a stream (decide.lua), the outcome of each send (record.lua),
//! jobs put back to wait unsent (hold.lua), and jobs that kept killing workers (poison.lua).
//! An outcome counts only while the job is still current, so a replay never counts twice.

use super::lua;
use crate::{
    feed,
    model::{Entry, Job, OutcomeKind},
    redis::{
        Conn, StoreError, StoreResult,
        replicas::{ReplicaAcks, Replicated},
    },
};

lua!(DECIDE, "decide", campaign);
lua!(RECORD, "record", campaign);
lua!(HOLD, "hold", campaign);
lua!(POISON, "poison", campaign);

/// What a worker does with a job it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A stale duplicate (already handled, or another copy is in flight).
    Skip,
    /// Current: send it (now marked in flight under its entry id).
    Send,
    /// The campaign is not running: the job waits in its retry set.
    Parked,
    /// The campaign was cancelled.
    Dropped,
    /// Older than the max age: failed.
    Expired,
    /// Swept from a running campaign: left in the stream for a worker to take.
    Leave,
}

/// Where the jobs handed to [`decide`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Taken from a stream by this worker (with a token each): current ones are sent.
    Taken,
    /// Still in the stream, handed to no worker (a sweep of a campaign that is not running):
    /// never sent, and left alone while the campaign runs.
    Swept,
}

impl Decision {
    fn from_code(code: i64) -> Decision {
        match code {
            1 => Decision::Send,
            2 => Decision::Parked,
            3 => Decision::Dropped,
            4 => Decision::Expired,
            5 => Decision::Leave,
            _ => Decision::Skip,
        }
    }
}

/// Decides, for `entries` of campaign `id` (in order), what the worker does with each.
pub async fn decide(
    conn: &mut Conn,
    id: &str,
    events_maxlen: u64,
    max_age_ms: u64,
    source: Source,
    entries: &[Entry],
) -> StoreResult<Vec<Decision>> {
    let invocation = decide_invocation(id, (events_maxlen, max_age_ms), source, entries);
    let reply: Vec<redis::Value> = feed::write_events(conn, id, &invocation).await?;
    decisions(&reply, entries.len())
}

/// [`decide`], waiting for a replica to have what it wrote (its parks and drops are handed off
/// when the entries are deleted next, as a sweep does).
pub async fn decide_replicated(
    conn: &mut Conn,
    (replicas, step): (&ReplicaAcks, &'static str),
    id: &str,
    (events_maxlen, max_age_ms): (u64, u64),
    source: Source,
    entries: &[Entry],
) -> StoreResult<(Vec<Decision>, Replicated)> {
    let invocation = decide_invocation(id, (events_maxlen, max_age_ms), source, entries);
    let (reply, replicated): (Vec<redis::Value>, _) =
        feed::write_events_replicated(conn, id, &invocation, (replicas, step)).await?;
    Ok((decisions(&reply, entries.len())?, replicated))
}

fn decide_invocation(
    id: &str,
    (events_maxlen, max_age_ms): (u64, u64),
    source: Source,
    entries: &[Entry],
) -> redis::ScriptInvocation<'static> {
    let mut invocation = DECIDE.for_campaign(id);
    let mode = match source {
        Source::Taken => "take",
        Source::Swept => "sweep",
    };
    invocation.arg(events_maxlen).arg(max_age_ms).arg(mode);
    for e in entries {
        let parked = Job { parked: true, ..e.job.clone() }.member();
        invocation
            .arg(e.job.index)
            .arg(e.job.attempt)
            .arg(&e.id)
            .arg(parked)
            .arg(&e.job.recipient)
            .arg(e.job.queued_at_ms);
    }
    invocation
}

/// decide.lua's reply (`{status, code...}`) as one decision per job.
fn decisions(reply: &[redis::Value], jobs: usize) -> StoreResult<Vec<Decision>> {
    let codes: Vec<Decision> =
        reply.iter().skip(1).map(|v| Decision::from_code(redis::from_redis_value_ref(v).unwrap_or(0))).collect();
    if codes.len() != jobs {
        return Err(StoreError::Reply(format!("decide returned {} codes for {jobs} jobs", codes.len())));
    }
    Ok(codes)
}

/// The outcome of one send of a job this worker holds.
pub struct Outcome<'a> {
    pub entry: &'a Entry,
    pub kind: OutcomeKind,
    /// When deferred: how long until the next attempt.
    pub retry_delay_ms: u64,
    pub detail_json: String,
}

/// Whether an outcome was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The job was no longer current: nothing was recorded.
    Stale,
    /// Recorded as it was.
    Recorded,
    /// A deferral whose next attempt would come after the max age: failed instead.
    FailedPastMaxAge,
}

/// Records `outcomes` of campaign `id`'s jobs, in order, and waits for a replica to have them
/// (their jobs are acked next, on another node of a cluster).
pub async fn record(
    conn: &mut Conn,
    replicas: &ReplicaAcks,
    id: &str,
    (events_maxlen, max_age_ms): (u64, u64),
    outcomes: &[Outcome<'_>],
) -> StoreResult<(Vec<Counted>, Replicated)> {
    let mut invocation = RECORD.for_campaign(id);
    invocation.arg(events_maxlen).arg(max_age_ms);
    for o in outcomes {
        let job = &o.entry.job;
        let next = Job { attempt: job.attempt + 1, parked: false, ..job.clone() };
        invocation.arg(job.index).arg(job.attempt).arg(&o.entry.id).arg(o.kind.as_str()).arg(o.retry_delay_ms);
        invocation.arg(next.member()).arg(job.queued_at_ms).arg(&job.recipient).arg(&o.detail_json);
    }
    let (flags, replicated): (Vec<i64>, _) =
        feed::write_events_replicated(conn, id, &invocation, (replicas, "record")).await?;
    let counted = flags
        .into_iter()
        .map(|f| match f {
            1 => Counted::Recorded,
            2 => Counted::FailedPastMaxAge,
            _ => Counted::Stale,
        })
        .collect();
    Ok((counted, replicated))
}

/// Puts `held` jobs of campaign `id` back to wait until `until_ms`, unsent and without using
/// an attempt; how many were still current and held, and whether a replica has it.
pub async fn hold(
    conn: &mut Conn,
    replicas: &ReplicaAcks,
    id: &str,
    events_maxlen: u64,
    until_ms: i64,
    detail_json: &str,
    held: &[&Entry],
) -> StoreResult<(u64, Replicated)> {
    let mut invocation = HOLD.for_campaign(id);
    invocation.arg(events_maxlen).arg(until_ms).arg(detail_json);
    for e in held {
        let waiting = Job { parked: false, ..e.job.clone() };
        invocation.arg(e.job.index).arg(e.job.attempt).arg(&e.id).arg(waiting.member()).arg(&e.job.recipient);
    }
    feed::write_events_replicated(conn, id, &invocation, (replicas, "record")).await
}

/// A job that kept killing or stalling its workers, already copied to the dead letters.
pub struct Poisoned<'a> {
    pub entry: &'a Entry,
    /// How often it was handed out.
    pub deliveries: u64,
    /// Its record in the dead-letter stream.
    pub dead_letter_id: &'a str,
}

/// Fails `poisoned` jobs of campaign `id`; per job, whether it was still current and failed.
pub async fn poison(
    conn: &mut Conn,
    id: &str,
    events_maxlen: u64,
    poisoned: &[Poisoned<'_>],
) -> StoreResult<Vec<bool>> {
    let mut invocation = POISON.for_campaign(id);
    invocation.arg(events_maxlen);
    for p in poisoned {
        let job = &p.entry.job;
        invocation
            .arg(job.index)
            .arg(job.attempt)
            .arg(&p.entry.id)
            .arg(&job.recipient)
            .arg(p.deliveries)
            .arg(p.dead_letter_id);
    }
    let marked: Vec<i64> = feed::write_events(conn, id, &invocation).await?;
    Ok(marked.into_iter().map(|m| m == 1).collect())
}
