//! Puts due retries (and jobs parked during a pause, once resumed) back into domain streams.

use sluice_shared::redis::Conn;
use sluice_shared::{
    keys,
    model::Job,
    redis::{StoreError, StoreResult, scripts::SCRIPTS},
};

use crate::enqueue::Enqueuer;

const LIMIT: usize = 1000;

/// Promotes up to 1,000 due jobs of campaign `id`; returns how many went back into streams.
pub async fn promote(conn: &mut Conn, enqueuer: &Enqueuer, id: &str) -> StoreResult<usize> {
    let due: Vec<String> = SCRIPTS
        .retry_due
        .key(keys::campaign_meta(id))
        .key(keys::campaign_retry(id))
        .arg(LIMIT)
        .invoke_async(conn)
        .await?;
    let members = &due[1..];
    if members.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<Job> = members
        .iter()
        .map(|m| serde_json::from_str::<Job>(m).map(|j| Job { p: false, ..j }))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Reply(format!("retry member: {e}")))?;
    enqueuer.push(conn, &jobs).await?;
    let mut done = SCRIPTS.retry_done.prepare_invoke();
    done.key(keys::campaign_counts(id)).key(keys::campaign_retry(id));
    for m in members {
        done.arg(m);
    }
    done.invoke_async::<i64>(conn).await?;
    metrics::counter!(sluice_shared::metrics::RETRIES_PROMOTED).increment(jobs.len() as u64);
    Ok(jobs.len())
}
