//! Puts due retries (and jobs parked during a pause, once resumed) back into domain streams.

use sluice_shared::redis::Conn;
use sluice_shared::{
    model::Job,
    redis::{StoreError, StoreResult, scripts::campaign},
};

use super::enqueue::Enqueuer;

const LIMIT: usize = 1000;

/// Promotes up to 1,000 due jobs of campaign `id`; returns how many went back into streams.
pub async fn promote(conn: &mut Conn, enqueuer: &Enqueuer, id: &str) -> StoreResult<usize> {
    let members = &campaign::retry_due(conn, id, LIMIT).await?;
    if members.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<Job> = members
        .iter()
        .map(|m| serde_json::from_str::<Job>(m).map(|j| Job { parked: false, ..j }))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Reply(format!("retry member: {e}")))?;
    enqueuer.push(conn, &jobs, "retry").await?;
    campaign::retry_done(conn, id, members).await?;
    metrics::counter!(sluice_shared::metrics::RETRIES_PROMOTED).increment(jobs.len() as u64);
    Ok(jobs.len())
}
