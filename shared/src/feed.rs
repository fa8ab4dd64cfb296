//! The event feed's one rule for writers: write a campaign's (or message's) events through
//! [`write_events`], which bumps the source's version in its shard's pending set (`sluice:{e:K}:pending`) before and
//! after. The schedulers copy every pending source's new events into the feed and drop a
//! source only if its version did not change meanwhile. The bump after the write is what makes
//! that safe: a pump that read the source before the write landed sees a new version and looks
//! again. The bump before keeps a writer that dies mid-write from leaving events unmarked. A
//! crash in between only means a copy is made twice; events carry stable ids. On a cluster the
//! pending set and the source live in different slots, so no script can do both.

use crate::{
    keys,
    redis::{
        Conn, StoreResult,
        replicas::{ReplicaAcks, Replicated},
    },
};

/// Runs `script`, which writes `source`'s events, between two marks (see the module doc).
pub async fn write_events<T: redis::FromRedisValue>(
    conn: &mut Conn,
    source: &str,
    script: &redis::ScriptInvocation<'_>,
) -> StoreResult<T> {
    mark(conn, source).await?;
    let written = script.invoke_async(conn).await?;
    mark(conn, source).await?;
    Ok(written)
}

/// [`write_events`] for a write a step hands off, waited on as [`ReplicaAcks::script`] does;
/// `source`'s keys are a campaign's (or message's).
pub async fn write_events_replicated<T: redis::FromRedisValue>(
    conn: &mut Conn,
    source: &str,
    script: &redis::ScriptInvocation<'_>,
    (replicas, step): (&ReplicaAcks, &'static str),
) -> StoreResult<(T, Replicated)> {
    mark(conn, source).await?;
    let written = replicas.script(conn, &keys::campaign_state(source), step, script).await?;
    mark(conn, source).await?;
    Ok(written)
}

/// Marks `source` as having (or about to have) events not yet in the feed.
async fn mark(conn: &mut Conn, source: &str) -> StoreResult<()> {
    let pending = keys::feed_pending(keys::feed_shard_of(source));
    redis::cmd("ZINCRBY").arg(pending).arg(1).arg(source).query_async::<()>(conn).await?;
    Ok(())
}
