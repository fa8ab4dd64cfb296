//! The schedulers' care of messages, through the due index `sluice:messages:due` (message id
//! -> when to look next). A visit queues what is still staged (an acceptance that stopped
//! half-way), puts due retries back on the priority lane, and once the message is finished
//! sets its keys to expire and drops it from the index. A worker that records an outcome
//! pulls the visit forward; otherwise a message is looked at every [`RECHECK_MS`].

use sluice_shared::{
    config::Config,
    keys,
    redis::{Conn, StoreResult, scripts::due},
};

use crate::pipeline::{enqueue::Enqueuer, expander, retries};

/// Longest gap between two looks at an unfinished message.
const RECHECK_MS: i64 = 30_000;
/// Messages visited per round at most.
const PER_ROUND: usize = 500;

/// Visits the due messages; returns how many were visited.
pub async fn visit_due(conn: &mut Conn, enqueuer: &Enqueuer, config: &Config) -> StoreResult<usize> {
    let now = chrono::Utc::now().timestamp_millis();
    let due: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(keys::messages_due())
        .arg("-inf")
        .arg(now)
        .arg("BYSCORE")
        .arg("LIMIT")
        .arg(0)
        .arg(PER_ROUND)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    for (id, seen) in &due {
        visit(conn, enqueuer, config, id, *seen, now).await?;
    }
    Ok(due.len())
}

async fn visit(
    conn: &mut Conn,
    enqueuer: &Enqueuer,
    config: &Config,
    id: &str,
    seen: i64,
    now: i64,
) -> StoreResult<()> {
    let step = expander::expand_chunk(conn, enqueuer, config, id).await?;
    let next = match step.status.as_str() {
        "running" => {
            retries::promote(conn, enqueuer, id).await?;
            let first: Vec<(String, i64)> = redis::cmd("ZRANGE")
                .arg(keys::campaign_retry(id))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .query_async(conn)
                .await?;
            Some(first.first().map_or(now + RECHECK_MS, |(_, at)| (*at).clamp(now + 1, now + RECHECK_MS)))
        }
        "completed" | "cancelled" => {
            crate::pipeline::hygiene::expire_keys(conn, id, config.messages.retention.as_millis()).await?;
            None
        }
        // Gone (expired, or never created because acceptance stopped first).
        "" => None,
        _ => Some(now + RECHECK_MS),
    };
    // Compare-and-set on the score: a worker's nudge during the visit keeps its earlier time.
    match next {
        Some(at) => due::reschedule_if(conn, &keys::messages_due(), id, seen, at).await?,
        None => due::remove_if(conn, &keys::messages_due(), id, seen).await?,
    };
    Ok(())
}
