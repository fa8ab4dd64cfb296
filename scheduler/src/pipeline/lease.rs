//! Leases: one scheduler at a time does a job that must not run twice at once (copying events
//! into the feed, delivering one webhook endpoint). A lease is a key holding its owner's name
//! with a time to live; the owner renews it, and another scheduler takes over once it lapses.

use sluice_shared::redis::{Conn, StoreResult};

const HOLD: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
";

/// Takes or renews the lease `key` for `owner`; true if `owner` holds it for `ttl_ms` more.
pub async fn hold(conn: &mut Conn, key: &str, owner: &str, ttl_ms: u64) -> StoreResult<bool> {
    static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(HOLD));
    let held: i64 = SCRIPT.key(key).arg(owner).arg(ttl_ms).invoke_async(conn).await?;
    Ok(held == 1)
}
