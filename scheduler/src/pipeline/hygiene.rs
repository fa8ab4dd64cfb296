//! Keeping Redis from growing without bound: finished campaigns expire after
//! `campaigns.retention`, drafts and paused campaigns nobody touched for
//! `campaigns.idle_expiry` are cancelled (then expire like any other), dead letters are capped
//! by count and age, and consumers that are gone (idle past `scheduler.consumer_expiry`
//! with nothing pending) are removed from every group. Acked job entries are deleted by the
//! workers as they ack, and event streams are capped by `campaigns.events_maxlen`.

use redis::AsyncCommands;
use sluice_shared::{
    config::Config,
    keys,
    lane::Lane,
    redis::{
        Conn, StoreResult,
        scripts::{campaign, stream},
    },
};

/// Whether draft or paused campaign `id` was last touched (created, given recipients, or
/// moved) longer than `campaigns.idle_expiry` ago.
pub async fn idle_too_long(conn: &mut Conn, id: &str, config: &Config) -> StoreResult<bool> {
    let (created, updated): (Option<i64>, Option<i64>) =
        redis::cmd("HMGET").arg(keys::campaign_meta(id)).arg("created_at").arg("updated_at").query_async(conn).await?;
    let touched = created.max(updated).unwrap_or(i64::MAX);
    let now = chrono::Utc::now().timestamp_millis();
    Ok(now.saturating_sub(touched) > config.campaigns.idle_expiry.as_millis() as i64)
}

/// Drops dead letters past `scheduler.dead_letters_max` (oldest first) or older than
/// `scheduler.dead_letter_retention`. Their recipients are already counted failed; a dropped
/// one can no longer be requeued.
pub async fn trim_dead_letters(conn: &mut Conn, config: &Config) -> StoreResult<()> {
    let s = &config.scheduler;
    let oldest = chrono::Utc::now().timestamp_millis() - s.dead_letter_retention.as_millis() as i64;
    redis::pipe()
        .cmd("XTRIM")
        .arg(keys::dead_letters())
        .arg("MAXLEN")
        .arg(s.dead_letters_max)
        .ignore()
        .cmd("XTRIM")
        .arg(keys::dead_letters())
        .arg("MINID")
        .arg(oldest.max(0))
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// Sets every key of a finished campaign to expire after the retention period.
pub async fn expire_campaign(conn: &mut Conn, id: &str, config: &Config) -> StoreResult<()> {
    expire_keys(conn, id, config.campaigns.retention.as_millis()).await
}

/// Sets every key of a finished campaign or message to expire after `ms`.
pub async fn expire_keys(conn: &mut Conn, id: &str, ms: u64) -> StoreResult<()> {
    let mut pipe = redis::pipe();
    for key in [
        keys::campaign_meta(id),
        keys::campaign_counts(id),
        keys::campaign_staged(id),
        keys::campaign_state(id),
        keys::campaign_retry(id),
        keys::campaign_events(id),
        keys::campaign_late_events(id),
    ] {
        pipe.pexpire(key, ms as i64).ignore();
    }
    pipe.query_async::<()>(conn).await?;
    Ok(())
}

/// Staged recipients a cancel dropped get their `cancelled` events this many per script call
/// (a few ms of Redis time), and up to this many calls per campaign per round.
const CANCEL_STAGED_CHUNK: usize = 2_000;
const CANCEL_STAGED_CALLS: usize = 10;

/// Gives the staged recipients a cancel dropped their events; how many still wait for theirs
/// (the campaign stays active, and comes back next round, until none do).
pub async fn cancel_staged(conn: &mut Conn, id: &str, config: &Config) -> StoreResult<i64> {
    let mut left = 0;
    for _ in 0..CANCEL_STAGED_CALLS {
        left = campaign::cancel_staged(conn, id, config.campaigns.events_maxlen, CANCEL_STAGED_CHUNK).await?;
        if left == 0 {
            break;
        }
    }
    Ok(left)
}

/// Fails jobs of a paused campaign that have waited past their max age (checked every few
/// seconds, up to 1,000 per campaign per pass).
pub async fn expire_waiting(conn: &mut Conn, id: &str, config: &Config) -> StoreResult<i64> {
    campaign::expire_waiting(conn, id, config.retry.max_age.as_millis(), config.campaigns.events_maxlen, 1000).await
}

/// Removes gone consumers from the domain streams and the intake stream, and stale heartbeats.
pub async fn prune_consumers(conn: &mut Conn, config: &Config) -> StoreResult<usize> {
    let idle = config.scheduler.consumer_expiry.as_millis();
    let mut removed = 0;
    let domains: Vec<String> = conn.smembers(keys::domains()).await?;
    let streams = domains
        .iter()
        .flat_map(|d| Lane::ALL.map(|lane| (keys::lane_stream(d, lane), keys::WORKER_GROUP)))
        .chain([(keys::intake(), keys::INTAKE_GROUP)]);
    for (name, group) in streams {
        let n = stream::prune_consumers(conn, &name, group, idle).await?;
        removed += n as usize;
    }
    let cutoff = chrono::Utc::now().timestamp_millis() - idle as i64;
    let _: i64 = conn.zrembyscore(keys::workers(), "-inf", cutoff).await?;
    if removed > 0 {
        tracing::info!(removed, "removed consumers that were gone and held nothing");
    }
    Ok(removed)
}
