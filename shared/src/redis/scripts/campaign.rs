//! Scripts on one campaign's (or message's) keys: creation, staging, the lifecycle, expansion
//! into the destination streams, retries, expiry of waiting jobs, and what happens after the
//! send. Those that write events run through [`feed::write_events`].

use super::lua;
use crate::{
    feed,
    model::CampaignStatus,
    redis::{Conn, StoreError, StoreResult},
};

lua!(CREATE, "create_campaign", campaign);
lua!(STAGE, "stage_recipients", campaign);
lua!(TRANSITION, "transition", campaign);
lua!(EXPAND_PEEK, "expand_peek", campaign);
lua!(EXPAND_COMMIT, "expand_commit", campaign);
lua!(REQUEUE, "requeue", campaign);
lua!(RETRY_DUE, "retry_due", campaign);
lua!(RETRY_DONE, "retry_done", campaign);
lua!(EXPIRE_WAITING, "expire_waiting", campaign);
lua!(CANCEL_STAGED, "cancel_staged", campaign);
lua!(LATE_EVENT, "late_event", campaign);
lua!(RECONCILE, "reconcile", campaign);

fn status(text: &str) -> StoreResult<CampaignStatus> {
    text.parse().map_err(StoreError::Reply)
}

/// A campaign as the create script stores it.
pub struct NewCampaign<'a> {
    pub spec_json: &'a str,
    pub digest: &'a str,
    /// Start at once (or at `send_at_ms`) instead of staying a draft.
    pub start: bool,
    pub send_at_ms: Option<i64>,
    /// How expansion treats the recipients (JSON, `""` for the defaults); see [`crate::model::Expansion`].
    pub expansion: &'a str,
    /// Recipient JSON lines.
    pub recipients: &'a [String],
}

/// What happened to a create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(CampaignStatus),
    /// Same id, same body: the existing campaign, untouched.
    Replay(CampaignStatus),
    /// Same id, different body.
    Conflict,
}

/// Creates campaign `id` with its first recipients, or recognises a replay of the same request.
pub async fn create(conn: &mut Conn, id: &str, new: &NewCampaign<'_>) -> StoreResult<Created> {
    let mut invocation = CREATE.for_campaign(id);
    invocation.arg(new.spec_json).arg(new.digest).arg(if new.start { "1" } else { "0" });
    invocation.arg(new.send_at_ms.map(|t| t.to_string()).unwrap_or_default()).arg(new.expansion);
    for r in new.recipients {
        invocation.arg(r);
    }
    let (code, text): (String, String) = invocation.invoke_async(conn).await?;
    Ok(match code.as_str() {
        "created" => Created::New(status(&text)?),
        "exists" => Created::Replay(status(&text)?),
        _ => Created::Conflict,
    })
}

/// Why recipients could not be staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRefused {
    Missing,
    NotDraft(CampaignStatus),
}

/// Appends recipient JSON lines to draft campaign `id`; how many were staged.
pub async fn stage(conn: &mut Conn, id: &str, lines: &[String]) -> StoreResult<Result<usize, StageRefused>> {
    let mut invocation = STAGE.for_campaign(id);
    for l in lines {
        invocation.arg(l);
    }
    let (code, detail): (String, String) = invocation.invoke_async(conn).await?;
    Ok(match code.as_str() {
        "ok" => Ok(detail.parse().map_err(|_| StoreError::Reply(format!("stage_recipients: count {detail:?}")))?),
        "missing" => Err(StageRefused::Missing),
        _ => Err(StageRefused::NotDraft(status(&detail)?)),
    })
}

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Cancel,
    /// Scheduled -> running once `send_at` has passed (scheduler duty).
    Release,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::Release => "release",
        }
    }

    /// The actions an API caller may ask for (release is the schedulers' own).
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "start" => Action::Start,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "cancel" => Action::Cancel,
            _ => return None,
        })
    }
}

/// Result of a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Done(CampaignStatus),
    /// Already in the wanted state.
    Unchanged(CampaignStatus),
    /// Not allowed from the current status.
    Refused(CampaignStatus),
    Missing,
}

/// Moves campaign `id` through its lifecycle (a cancel writes events for the jobs it drops).
pub async fn transition(conn: &mut Conn, id: &str, action: Action, events_maxlen: u64) -> StoreResult<Transition> {
    run_transition(conn, id, action.as_str(), events_maxlen, None).await
}

/// Pauses a running or scheduled campaign for the reputation guard: `paused_reason` kept, a
/// `campaign_paused` event with `data_json` (`{"reason": ...}`).
pub async fn guard_pause(conn: &mut Conn, id: &str, data_json: &str, events_maxlen: u64) -> StoreResult<Transition> {
    run_transition(conn, id, "guard-pause", events_maxlen, Some(data_json)).await
}

async fn run_transition(
    conn: &mut Conn,
    id: &str,
    action: &str,
    events_maxlen: u64,
    data_json: Option<&str>,
) -> StoreResult<Transition> {
    let mut invocation = TRANSITION.for_campaign(id);
    invocation.arg(action).arg(events_maxlen);
    if let Some(data) = data_json {
        invocation.arg(data);
    }
    let (code, text): (String, String) = feed::write_events(conn, id, &invocation).await?;
    if code == "missing" {
        return Ok(Transition::Missing);
    }
    let status = status(&text)?;
    Ok(match code.as_str() {
        "ok" => Transition::Done(status),
        "noop" => Transition::Unchanged(status),
        _ => Transition::Refused(status),
    })
}

/// The next chunk of a campaign's staged recipients, read for expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The campaign's status ("" when it is gone).
    pub status: String,
    /// How many staged recipients were expanded before; the commit must still see this.
    pub cursor: u64,
    pub now_ms: u64,
    /// The campaign's [`crate::model::Expansion`] as JSON (`""` for the defaults).
    pub expansion: String,
    /// Recipient JSON lines; none unless running with fewer than `window` jobs queued.
    pub staged: Vec<String>,
}

/// Reads up to `chunk` staged recipients of campaign `id`.
pub async fn expand_peek(conn: &mut Conn, id: &str, chunk: usize, window: u64) -> StoreResult<Peek> {
    let reply: Vec<String> = EXPAND_PEEK.for_campaign(id).arg(chunk).arg(window).invoke_async(conn).await?;
    let [status, cursor, now, expansion, staged @ ..] = reply.as_slice() else {
        return Err(StoreError::Reply("expand_peek: status, cursor, time and options expected".into()));
    };
    let number =
        |what: &str, text: &str| text.parse().map_err(|_| StoreError::Reply(format!("expand_peek: {what} {text:?}")));
    let (cursor, now_ms) = (number("cursor", cursor)?, number("time", now)?);
    Ok(Peek { status: status.clone(), cursor, now_ms, expansion: expansion.clone(), staged: staged.to_vec() })
}

/// What one expansion pushed into the destination streams.
pub struct Expanded<'a> {
    /// The cursor [`expand_peek`] read.
    pub cursor: u64,
    /// How many staged recipients this chunk moved (queued, suppressed or refused).
    pub moved: usize,
    pub events_maxlen: u64,
    /// (index, address) of each recipient dropped as suppressed.
    pub suppressed: &'a [(u64, String)],
    /// (index, address) of each recipient skipped as dormant.
    pub dormant: &'a [(u64, String)],
    /// (index, address) of each recipient queued (each gets a `queued` event).
    pub queued: &'a [(u64, &'a str)],
}

/// Records an expansion; false when another scheduler committed the same chunk first.
pub async fn expand_commit(conn: &mut Conn, id: &str, chunk: &Expanded<'_>) -> StoreResult<bool> {
    let mut invocation = EXPAND_COMMIT.for_campaign(id);
    invocation.arg(chunk.cursor).arg(chunk.moved).arg(chunk.queued.len()).arg(chunk.events_maxlen);
    invocation.arg(chunk.suppressed.len()).arg(chunk.dormant.len());
    for (index, address) in chunk.suppressed.iter().chain(chunk.dormant) {
        invocation.arg(index).arg(address);
    }
    for (index, address) in chunk.queued {
        invocation.arg(index).arg(address);
    }
    let committed: i64 = feed::write_events(conn, id, &invocation).await?;
    Ok(committed == 1)
}

/// What a requeue of a dead-lettered job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Waiting in the retry set again; the campaign's status after.
    Requeued(String),
    /// The job was already requeued or otherwise handled.
    NotPoisoned,
    Cancelled,
    Missing,
}

/// Gives dead-lettered job (`index`, `attempt`) of campaign `id` another chance, due now as
/// `member` (its retry-set JSON).
pub async fn requeue(conn: &mut Conn, id: &str, index: u64, attempt: u32, member: &str) -> StoreResult<Requeue> {
    let (code, text): (String, String) =
        REQUEUE.for_campaign(id).arg(index).arg(attempt).arg(member).invoke_async(conn).await?;
    Ok(match code.as_str() {
        "ok" => Requeue::Requeued(text),
        "not_poisoned" => Requeue::NotPoisoned,
        "cancelled" => Requeue::Cancelled,
        _ => Requeue::Missing,
    })
}

/// Up to `limit` retry-set members of running campaign `id` whose time has come.
pub async fn retry_due(conn: &mut Conn, id: &str, limit: usize) -> StoreResult<Vec<String>> {
    let mut reply: Vec<String> = RETRY_DUE.for_campaign(id).arg(limit).invoke_async(conn).await?;
    if reply.is_empty() {
        return Err(StoreError::Reply("retry_due: the time expected".into()));
    }
    reply.remove(0);
    Ok(reply)
}

/// Removes retry-set `members` pushed back into destination streams; how many this call moved
/// from deferred back to queued.
pub async fn retry_done(conn: &mut Conn, id: &str, members: &[String]) -> StoreResult<i64> {
    Ok(RETRY_DONE.for_campaign(id).arg(members).invoke_async(conn).await?)
}

/// A job of a running campaign that the reconcile duty found nowhere.
pub struct Lost<'a> {
    pub index: u64,
    /// The recipient's state as the duty saw it (`""`: none).
    pub seen: &'a str,
    /// The job to put back, as a retry-set member (see reconcile.lua for attempt and parked).
    pub member: String,
    pub address: &'a str,
}

/// Puts `lost` jobs of campaign `id` back (due now in its retry set, each with a `requeued`
/// event) where the recipient's state is still the one seen and the campaign's `updated_at`
/// still `updated_at`; the indexes put back.
pub async fn reconcile(
    conn: &mut Conn,
    id: &str,
    (events_maxlen, updated_at): (u64, &str),
    lost: &[Lost<'_>],
) -> StoreResult<Vec<u64>> {
    let mut invocation = RECONCILE.for_campaign(id);
    invocation.arg(events_maxlen).arg(updated_at);
    for job in lost {
        invocation.arg(job.index).arg(job.seen).arg(&job.member).arg(job.address);
    }
    feed::write_events(conn, id, &invocation).await
}

/// Fails up to `limit` jobs that waited in campaign `id`'s retry set past `max_age_ms`; how many.
pub async fn expire_waiting(
    conn: &mut Conn,
    id: &str,
    max_age_ms: u64,
    events_maxlen: u64,
    limit: usize,
) -> StoreResult<i64> {
    let mut invocation = EXPIRE_WAITING.for_campaign(id);
    invocation.arg(max_age_ms).arg(events_maxlen).arg(limit);
    feed::write_events(conn, id, &invocation).await
}

/// Gives up to `chunk` of the staged recipients a cancel of campaign `id` dropped their
/// `cancelled` event; how many still wait for theirs (0 once done, or if not cancelled).
pub async fn cancel_staged(conn: &mut Conn, id: &str, events_maxlen: u64, chunk: usize) -> StoreResult<i64> {
    let mut invocation = CANCEL_STAGED.for_campaign(id);
    invocation.arg(events_maxlen).arg(chunk);
    feed::write_events(conn, id, &invocation).await
}

/// Something that happened to a recipient after the send.
pub struct LateEvent<'a> {
    /// Remembered once per recipient and kind (kind letter ':' index).
    pub member: &'a str,
    pub unique_counter: &'a str,
    pub event: &'a str,
    pub index: u64,
    pub address: &'a str,
    pub detail_json: &'a str,
    /// "" for kinds recorded once only.
    pub total_counter: &'a str,
}

/// Whether a late event was new, a repeat, or its campaign is gone (retention passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Repeat,
    CampaignGone,
}

/// Records `late` against campaign `id`.
pub async fn late_event(conn: &mut Conn, id: &str, events_maxlen: u64, late: &LateEvent<'_>) -> StoreResult<Recorded> {
    let mut invocation = LATE_EVENT.for_campaign(id);
    invocation.arg(events_maxlen).arg(late.member).arg(late.unique_counter).arg(late.event).arg(late.index);
    invocation.arg(late.address).arg(late.detail_json).arg(late.total_counter);
    let n: i64 = feed::write_events(conn, id, &invocation).await?;
    Ok(match n {
        1 => Recorded::New,
        0 => Recorded::Repeat,
        _ => Recorded::CampaignGone,
    })
}
