//! Scripts on any stream with a consumer group: acknowledging handled entries, deleting swept
//! ones and removing consumers that are gone.

use super::lua;
use crate::redis::{Conn, StoreResult};

lua!(ACK, "ack", Clock, &["stream"]);
lua!(PRUNE_CONSUMERS, "prune_consumers", Clock, &["stream"]);

/// Acknowledges and deletes `ids` of `stream` for `group`, in one step; how many were deleted.
pub async fn ack(conn: &mut Conn, stream: &str, group: &str, ids: &[String]) -> StoreResult<i64> {
    Ok(ACK.on(stream).arg(group).arg(ids).invoke_async(conn).await?)
}

/// Deletes `ids` from `stream` (entries swept out before any worker was handed them); how
/// many were still there.
pub async fn delete(conn: &mut Conn, stream: &str, ids: &[String]) -> StoreResult<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(redis::cmd("XDEL").arg(stream).arg(ids).query_async(conn).await?)
}

/// Removes consumers of `group` that hold nothing and were idle for `idle_ms`; how many.
pub async fn prune_consumers(conn: &mut Conn, stream: &str, group: &str, idle_ms: u64) -> StoreResult<i64> {
    Ok(PRUNE_CONSUMERS.on(stream).arg(group).arg(idle_ms).invoke_async(conn).await?)
}
