//! Campaign records in Redis: create (idempotent by id), stage recipients, lifecycle
//! transitions, reads. All writes to one campaign go through one script on its `{c:ID}` keys.

use serde::Serialize;
use sluice_shared::redis::Conn;
use sluice_shared::{
    keys,
    model::{CampaignSpec, CampaignStatus, Counts},
    redis::{StoreError, StoreResult, scripts::campaign},
};

use super::request::ValidCampaign;

/// Staging and transitions are the campaign scripts' own.
pub use sluice_shared::redis::scripts::campaign::{Action, Created, StageRefused, Transition, stage, transition};

fn status_of(text: &str) -> StoreResult<CampaignStatus> {
    text.parse().map_err(StoreError::Reply)
}

/// Creates the campaign with its inline recipients in one script, or recognises a replay.
pub async fn create(conn: &mut Conn, c: &ValidCampaign, now_ms: i64) -> StoreResult<Created> {
    let id = &c.spec.id;
    let spec_json = serde_json::to_string(&c.spec).expect("spec serialises");
    let expansion = sluice_shared::model::Expansion::of(&c.spec).to_stored();
    let new = campaign::NewCampaign {
        spec_json: &spec_json,
        digest: &c.digest,
        start: c.start,
        send_at_ms: c.spec.send_at_ms,
        expansion: &expansion,
        recipients: &c.recipients,
    };
    let created = campaign::create(conn, id, &new).await?;
    // Messages are looked after through the due index, written before the create.
    if created != Created::Conflict && !sluice_shared::lane::is_message(id) {
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
    Ok(created)
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
    /// Why the reputation guard paused it (null when it did not, or after a resume).
    pub paused_reason: Option<String>,
    /// The mailing list it belongs to.
    pub list: Option<String>,
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
        .arg(&["spec", "status", "created_at", "completed_at", "paused_reason"])
        .cmd("HGETALL")
        .arg(keys::campaign_counts(id))
        .query_async(conn)
        .await?;
    let [spec, status, created, completed, paused_reason] =
        <[Option<String>; 5]>::try_from(meta).map_err(|_| StoreError::Reply("meta".into()))?;
    let (Some(spec), Some(status)) = (spec, status) else { return Ok(None) };
    let spec: CampaignSpec = serde_json::from_str(&spec).map_err(|e| StoreError::Reply(e.to_string()))?;
    Ok(Some(CampaignView {
        id: spec.id,
        name: spec.name,
        status: status_of(&status)?,
        created_at: rfc3339(created.and_then(|c| c.parse().ok())).unwrap_or_default(),
        send_at: rfc3339(spec.send_at_ms),
        completed_at: rfc3339(completed.and_then(|c| c.parse().ok())),
        paused_reason,
        list: spec.list,
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
