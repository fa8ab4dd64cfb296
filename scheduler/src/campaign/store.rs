//! Campaign records in Redis: create (idempotent by id), stage recipients, lifecycle
//! transitions, reads. All writes to one campaign go through one script on its `{c:ID}` keys.

use serde::Serialize;
use sluice_shared::redis::Conn;
use sluice_shared::{
    keys,
    model::{CampaignSpec, CampaignStatus, Counts},
    redis::{StoreError, StoreResult, scripts::SCRIPTS},
};

use super::request::ValidCampaign;

/// What happened to a create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(CampaignStatus),
    /// Same id, same body: the existing campaign, untouched.
    Replay(CampaignStatus),
    /// Same id, different body.
    Conflict,
}

fn status_of(text: &str) -> StoreResult<CampaignStatus> {
    text.parse().map_err(StoreError::Reply)
}

/// Creates the campaign with its inline recipients in one script, or recognises a replay.
pub async fn create(conn: &mut Conn, c: &ValidCampaign, now_ms: i64) -> StoreResult<Created> {
    let id = &c.spec.id;
    let spec = serde_json::to_string(&c.spec).expect("spec serialises");
    let mut inv = SCRIPTS.create_campaign.prepare_invoke();
    inv.key(keys::campaign_meta(id)).key(keys::campaign_counts(id)).key(keys::campaign_staged(id));
    inv.arg(spec).arg(&c.digest).arg(if c.start { "1" } else { "0" });
    inv.arg(c.spec.send_at_ms.map(|t| t.to_string()).unwrap_or_default());
    for r in &c.recipients {
        inv.arg(r);
    }
    let (code, status): (String, String) = inv.invoke_async(conn).await?;
    // Messages are looked after through the due index, written before the create.
    if code != "conflict" && !sluice_shared::lane::is_message(id) {
        // Indexed after the campaign exists (the schedulers drop ids whose campaign is missing).
        // Also on a replay, so a retry repairs a create that stopped right here.
        redis::pipe()
            .cmd("ZADD")
            .arg(keys::campaigns())
            .arg("NX")
            .arg(now_ms)
            .arg(id)
            .ignore()
            .sadd(keys::active_campaigns(), id)
            .ignore()
            .query_async::<()>(conn)
            .await?;
    }
    Ok(match code.as_str() {
        "created" => Created::New(status_of(&status)?),
        "exists" => Created::Replay(status_of(&status)?),
        _ => Created::Conflict,
    })
}

/// Why recipients could not be staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRefused {
    Missing,
    NotDraft(CampaignStatus),
}

/// Appends recipients to a draft campaign.
pub async fn stage(conn: &mut Conn, id: &str, lines: &[String]) -> StoreResult<Result<usize, StageRefused>> {
    let mut inv = SCRIPTS.stage_recipients.prepare_invoke();
    inv.key(keys::campaign_meta(id)).key(keys::campaign_counts(id)).key(keys::campaign_staged(id));
    for l in lines {
        inv.arg(l);
    }
    let (code, detail): (String, String) = inv.invoke_async(conn).await?;
    Ok(match code.as_str() {
        "ok" => Ok(detail.parse().unwrap_or(0)),
        "missing" => Err(StageRefused::Missing),
        _ => Err(StageRefused::NotDraft(status_of(&detail)?)),
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

pub async fn transition(conn: &mut Conn, id: &str, action: Action) -> StoreResult<Transition> {
    let (code, status): (String, String) = SCRIPTS
        .transition
        .key(keys::campaign_meta(id))
        .key(keys::campaign_counts(id))
        .key(keys::campaign_staged(id))
        .key(keys::campaign_retry(id))
        .arg(action.as_str())
        .invoke_async(conn)
        .await?;
    if code == "missing" {
        return Ok(Transition::Missing);
    }
    let status = status_of(&status)?;
    Ok(match code.as_str() {
        "ok" => Transition::Done(status),
        "noop" => Transition::Unchanged(status),
        _ => Transition::Refused(status),
    })
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub id: String,
    pub name: Option<String>,
    pub status: CampaignStatus,
    pub created_at: String,
    pub send_at: Option<String>,
    pub completed_at: Option<String>,
    pub counts: Counts,
}

fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Reads a campaign's spec, status and counts; `None` if it does not exist.
pub async fn get(conn: &mut Conn, id: &str) -> StoreResult<Option<CampaignView>> {
    let (meta, counts): (Vec<Option<String>>, Vec<(String, u64)>) = redis::pipe()
        .cmd("HMGET")
        .arg(keys::campaign_meta(id))
        .arg(&["spec", "status", "created_at", "completed_at"])
        .cmd("HGETALL")
        .arg(keys::campaign_counts(id))
        .query_async(conn)
        .await?;
    let [spec, status, created, completed] =
        <[Option<String>; 4]>::try_from(meta).map_err(|_| StoreError::Reply("meta".into()))?;
    let (Some(spec), Some(status)) = (spec, status) else { return Ok(None) };
    let spec: CampaignSpec = serde_json::from_str(&spec).map_err(|e| StoreError::Reply(e.to_string()))?;
    Ok(Some(CampaignView {
        id: spec.id,
        name: spec.name,
        status: status_of(&status)?,
        created_at: rfc3339(created.and_then(|c| c.parse().ok())).unwrap_or_default(),
        send_at: rfc3339(spec.send_at_ms),
        completed_at: rfc3339(completed.and_then(|c| c.parse().ok())),
        counts: Counts::from_pairs(&counts),
    }))
}

/// Newest first, `limit` campaigns starting at `offset`; returns the next offset if more exist.
pub async fn list(conn: &mut Conn, offset: usize, limit: usize) -> StoreResult<(Vec<CampaignView>, Option<usize>)> {
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys::campaigns())
        .arg(offset)
        .arg(offset + limit)
        .arg("REV")
        .query_async(conn)
        .await?;
    let more = ids.len() > limit;
    let mut out = Vec::with_capacity(limit);
    for id in ids.iter().take(limit) {
        match get(conn, id).await? {
            Some(view) => out.push(view),
            // Expired after its retention: drop it from the index too.
            None => redis::cmd("ZREM").arg(keys::campaigns()).arg(id).query_async::<()>(conn).await?,
        }
    }
    Ok((out, more.then_some(offset + limit)))
}
