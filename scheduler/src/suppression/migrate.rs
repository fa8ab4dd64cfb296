//! Before suppressions had scopes, an unsubscribe went to the suppression list like a bounce
//! and kept the address from transactional mail too. Each scheduler, on start, moves such
//! entries to the unsubscribed hash (scope `campaigns`) until the version key says it is done.
//! Safe with several schedulers at once: each move checks the entry is still the one it read.

use sluice_shared::{
    keys,
    redis::{Conn, StoreResult, scripts::suppression},
};

/// The entries' current form: unsubscribes kept apart.
const VERSION: u32 = 2;

/// Moves every old unsubscribe entry; how many this call moved.
pub async fn run(conn: &mut Conn) -> StoreResult<u64> {
    let version: Option<u32> = redis::cmd("GET").arg(keys::suppression_version()).query_async(conn).await?;
    if version.is_some_and(|v| v >= VERSION) {
        return Ok(0);
    }
    let (mut cursor, mut moved) = (0u64, 0u64);
    loop {
        let (next, pairs): (u64, Vec<(String, String)>) =
            redis::cmd("HSCAN").arg(keys::suppressed()).arg(cursor).arg("COUNT").arg(1000).query_async(conn).await?;
        for (address, entry) in pairs.iter().filter(|(_, e)| made_by_an_unsubscribe(e)) {
            moved += u64::from(suppression::migrate(conn, address, entry).await?);
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    redis::cmd("SET").arg(keys::suppression_version()).arg(VERSION).query_async::<()>(conn).await?;
    if moved > 0 {
        tracing::info!(
            moved,
            "unsubscribes moved out of the suppression list: they keep addresses from campaigns only"
        );
    }
    Ok(moved)
}

fn made_by_an_unsubscribe(entry: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(entry).is_ok_and(|e| e["source"] == "unsubscribed")
}

/// [`run`] until it succeeds (Redis may not answer yet) or the scheduler stops.
pub async fn run_until_done(pool: sluice_shared::redis::Pool, shutdown: sluice_shared::shutdown::Shutdown) {
    loop {
        let attempt = async {
            let mut conn = pool.get().await?;
            run(&mut conn).await
        };
        match attempt.await {
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, "moving old unsubscribe entries failed; trying again"),
        }
        if shutdown.sleep(std::time::Duration::from_secs(5)).await.is_none() {
            return;
        }
    }
}
