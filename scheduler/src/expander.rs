//! Moves staged recipients of running campaigns into per-domain streams, skipping suppressed
//! addresses. Safe with several schedulers: the commit is a compare-and-set on the cursor.

use sluice_shared::redis::Conn;
use sluice_shared::{
    config::SchedulerConfig,
    keys,
    model::Job,
    redis::{StoreError, StoreResult, scripts::SCRIPTS},
};

use crate::{campaign::request::Staged, enqueue::Enqueuer};

/// What one expansion step saw.
pub struct Peeked {
    pub status: String,
    pub moved: usize,
}

/// Expands at most one chunk of campaign `id`.
pub async fn expand_chunk(
    conn: &mut Conn,
    enqueuer: &Enqueuer,
    cfg: &SchedulerConfig,
    events_maxlen: u64,
    id: &str,
) -> StoreResult<Peeked> {
    let peek: Vec<String> = SCRIPTS
        .expand_peek
        .key(keys::campaign_meta(id))
        .key(keys::campaign_counts(id))
        .key(keys::campaign_staged(id))
        .arg(cfg.expand_chunk)
        .arg(cfg.expand_window)
        .invoke_async(conn)
        .await?;
    let [status, cursor, now, staged @ ..] = peek.as_slice() else {
        return Err(StoreError::Reply("expand_peek".into()));
    };
    if staged.is_empty() {
        return Ok(Peeked { status: status.clone(), moved: 0 });
    }
    let first: u64 = cursor.parse().map_err(|_| StoreError::Reply("cursor".into()))?;
    let now: u64 = now.parse().map_err(|_| StoreError::Reply("time".into()))?;
    let recipients: Vec<Staged> = staged
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Reply(format!("staged recipient: {e}")))?;
    let lowered: Vec<String> = recipients.iter().map(|r| r.r.to_ascii_lowercase()).collect();
    let hits: Vec<Option<String>> = redis::cmd("HMGET").arg(keys::suppressed()).arg(&lowered).query_async(conn).await?;
    let mut jobs = Vec::with_capacity(recipients.len());
    let mut suppressed = Vec::new();
    for (k, (r, hit)) in recipients.into_iter().zip(hits).enumerate() {
        let index = first + k as u64;
        if hit.is_some() {
            suppressed.push((index, r.r));
            continue;
        }
        let vars = r.v.map(|v| serde_json::Value::Object(v).to_string()).unwrap_or_default();
        jobs.push(Job { c: id.to_string(), i: index, r: r.r, v: vars, a: 0, t: now, p: false });
    }
    enqueuer.push(conn, &jobs).await?;
    let mut commit = SCRIPTS.expand_commit.prepare_invoke();
    commit
        .key(keys::campaign_meta(id))
        .key(keys::campaign_counts(id))
        .key(keys::campaign_staged(id))
        .key(keys::campaign_state(id))
        .key(keys::campaign_events(id));
    commit.arg(first).arg(staged.len()).arg(jobs.len()).arg(events_maxlen).arg(suppressed.len());
    for (index, address) in &suppressed {
        commit.arg(index).arg(address);
    }
    for job in &jobs {
        commit.arg(job.i).arg(&job.r);
    }
    let committed: i64 = sluice_shared::feed::write_events(conn, id, &commit).await?;
    if committed == 0 {
        tracing::debug!(campaign = %id, "chunk expanded concurrently by another scheduler");
    }
    Ok(Peeked { status: status.clone(), moved: staged.len() })
}
