//! Small records kept by one script each: template versions, how far a source was copied into
//! the event feed, a sender's warm-up count for the day, an API key's send rate, and the
//! reputation guard's rolling counts.

use super::lua;
use crate::{
    keys,
    redis::{Conn, StoreResult},
};

lua!(TEMPLATE_PUT, "template_put", Clock, &["template"]);
lua!(FEED_CURSOR, "feed_cursor", Clock, &["meta"]);
lua!(WARMUP_TAKE, "warmup_take", Clock, &["counter"]);
lua!(SEND_RATE, "send_rate", Clock, &["tat"]);
lua!(REPUTATION_ADD, "reputation_add", Clock, &["stats"]);

/// Stores a new version of template `id` (`version_json` without its number); the number.
pub async fn template_put(conn: &mut Conn, id: &str, version_json: &str) -> StoreResult<u64> {
    Ok(TEMPLATE_PUT.on(&keys::template(id)).arg(version_json).invoke_async(conn).await?)
}

/// Remembers that `source`'s events were copied up to `last`, unless the source is gone;
/// whether it was still there.
pub async fn feed_cursor(conn: &mut Conn, source: &str, last: &str) -> StoreResult<bool> {
    let kept: i64 = FEED_CURSOR.on(&keys::campaign_meta(source)).arg(last).invoke_async(conn).await?;
    Ok(kept == 1)
}

/// Takes up to `want` sends from the day's `counter` under `cap`: (granted, sent today).
pub async fn warmup_take(
    conn: &mut Conn,
    counter: &str,
    cap: u64,
    want: usize,
    ttl_ms: u64,
) -> StoreResult<(usize, u64)> {
    Ok(WARMUP_TAKE.on(counter).arg(cap).arg(want).arg(ttl_ms).invoke_async(conn).await?)
}

/// Takes one send from API key `key_id`'s rate of `per_second` (bursts of `burst`), shared by
/// every scheduler: `None` if it may go now, else how long until it may.
pub async fn send_rate(
    conn: &mut Conn,
    key_id: &str,
    per_second: f64,
    burst: u32,
) -> StoreResult<Option<std::time::Duration>> {
    let interval_ms = 1000.0 / per_second;
    let wait: i64 = SEND_RATE.on(&keys::key_send_rate(key_id)).arg(interval_ms).arg(burst).invoke_async(conn).await?;
    Ok((wait > 0).then(|| std::time::Duration::from_millis(wait as u64)))
}

/// Adds `add` to the rolling counts at `key` (kept `ttl_ms` past the last write); the totals
/// over the last one to two `window`s of attempts.
pub async fn reputation_add(
    conn: &mut Conn,
    key: &str,
    window: u64,
    ttl_ms: u64,
    add: &crate::reputation::Counts,
) -> StoreResult<crate::reputation::Counts> {
    let mut invocation = REPUTATION_ADD.on(key);
    invocation.arg(window).arg(ttl_ms);
    for n in add.as_array() {
        invocation.arg(n);
    }
    let totals: Vec<u64> = invocation.invoke_async(conn).await?;
    crate::reputation::Counts::from_slice(&totals)
        .ok_or_else(|| crate::redis::StoreError::Reply(format!("reputation_add: five totals expected, got {totals:?}")))
}
