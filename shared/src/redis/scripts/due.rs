//! Scripts on a due set (a sorted set of members scored by when they are next due): the ready
//! sets of destinations, the messages' due index, the feed's pending sources. A caller that
//! read a member's score (its lease or version) changes it only if it is still that score, so
//! a newer mark is never lost.

use redis::ToRedisArgs;

use super::lua;
use crate::redis::{
    Conn, StoreResult,
    replicas::{ReplicaAcks, Replicated},
};

lua!(MARK, "mark_ready", Clock, &["due"]);
lua!(UNREADY, "unready", Clock, &["due"]);
lua!(RESCHEDULE, "reschedule", Clock, &["due"]);

/// Marks `members` of due set `due` as due now (Redis clock); returns that time.
pub async fn mark(conn: &mut Conn, due: &str, members: &[&str]) -> StoreResult<i64> {
    Ok(MARK.on(due).arg(members).invoke_async(conn).await?)
}

/// [`mark`], and waits for a replica to have the mark (as [`ReplicaAcks::script`]): a mark
/// lost in a failover leaves its members unvisited until they are marked again.
pub async fn mark_replicated(
    conn: &mut Conn,
    (replicas, step): (&ReplicaAcks, &'static str),
    due: &str,
    members: &[&str],
) -> StoreResult<Replicated> {
    let (_, replicated): (i64, _) = replicas.script(conn, due, step, MARK.on(due).arg(members)).await?;
    Ok(replicated)
}

/// Removes `member` from `due` if its score is still `score_read` (a number, or its text as
/// read); whether it did.
pub async fn remove_if(conn: &mut Conn, due: &str, member: &str, score_read: impl ToRedisArgs) -> StoreResult<bool> {
    let removed: i64 = UNREADY.on(due).arg(member).arg(score_read).invoke_async(conn).await?;
    Ok(removed == 1)
}

/// Sets `member` of `due` due at `due_ms` if its score is still `score_read`; whether it did.
pub async fn reschedule_if(
    conn: &mut Conn,
    due: &str,
    member: &str,
    score_read: i64,
    due_ms: i64,
) -> StoreResult<bool> {
    let set: i64 = RESCHEDULE.on(due).arg(member).arg(score_read).arg(due_ms).invoke_async(conn).await?;
    Ok(set == 1)
}
