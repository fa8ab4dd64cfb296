//! List hygiene from the scheduler's side: which of a chunk's recipients are dormant (skipped
//! and counted at expansion), a recipient's engagement record for the API, real opens and
//! clicks, and the export of every dormant address.

use std::collections::BTreeMap;

use sluice_shared::{
    config::HygieneConfig,
    engagement::{self, Record},
    keys,
    redis::{Conn, StoreResult, scripts::engagement as script},
};

/// For each of `addresses` (lower-case), whether it is dormant and skipped; every other one
/// counts a send today. All false without engagement tracking.
pub async fn screen(
    conn: &mut Conn,
    cfg: &HygieneConfig,
    addresses: &[&str],
    include_dormant: bool,
) -> StoreResult<Vec<bool>> {
    let mut dormant = vec![false; addresses.len()];
    if !cfg.tracks() || addresses.is_empty() {
        return Ok(dormant);
    }
    let today = engagement::day(chrono::Utc::now());
    let sunset = script::Sunset {
        after_sends: cfg.sunset_after_sends.unwrap_or(0),
        after_days: cfg.sunset_after_days.unwrap_or(0),
        include_dormant,
    };
    let mut by_group: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, a) in addresses.iter().enumerate() {
        by_group.entry(engagement::group(engagement::bucket(a))).or_default().push(i);
    }
    for positions in by_group.values() {
        let chunk: Vec<&str> = positions.iter().map(|i| addresses[*i]).collect();
        let flags = script::expand(conn, today, &sunset, &chunk).await?;
        for (i, flag) in positions.iter().zip(flags) {
            dormant[*i] = flag;
        }
    }
    Ok(dormant)
}

/// The engagement record of `address` (lower-case), if any.
pub async fn record(conn: &mut Conn, address: &str) -> StoreResult<Option<Record>> {
    let key = keys::engagement_bucket(engagement::bucket(address));
    let stored: Option<Vec<u8>> = redis::cmd("HGET").arg(key).arg(address).query_async(conn).await?;
    Ok(stored.as_deref().and_then(Record::from_bytes))
}

/// Records a real open or a click (tracking calls this; prefetched opens do not count).
pub async fn engaged(conn: &mut Conn, cfg: &HygieneConfig, address: &str, click: bool) -> StoreResult<()> {
    if !cfg.tracks() {
        return Ok(());
    }
    script::touch(conn, &address.to_ascii_lowercase(), click, engagement::day(chrono::Utc::now())).await
}

/// Forgets `address` (lower-case): an erase leaves no engagement behind.
pub async fn forget(conn: &mut Conn, address: &str) -> StoreResult<bool> {
    let key = keys::engagement_bucket(engagement::bucket(address));
    let removed: i64 = redis::cmd("HDEL").arg(key).arg(address).query_async(conn).await?;
    Ok(removed == 1)
}

/// Buckets read per round trip of an export.
const BUCKETS_PER_STEP: u32 = 256;

/// The dormant addresses of buckets `[from, from + BUCKETS_PER_STEP)` under `policy`, with their
/// records; and the next bucket to read (None at the end).
pub async fn dormant_step(
    conn: &mut Conn,
    policy: &HygieneConfig,
    from: u32,
) -> StoreResult<(Vec<(String, Record)>, Option<u32>)> {
    let total = engagement::BUCKETS_PER_GROUP * engagement::GROUPS;
    let end = (from + BUCKETS_PER_STEP).min(total);
    let mut pipe = redis::pipe();
    for b in from..end {
        pipe.cmd("HGETALL").arg(keys::engagement_bucket(b));
    }
    let buckets: Vec<Vec<(String, Vec<u8>)>> = pipe.query_async(conn).await?;
    let today = engagement::day(chrono::Utc::now());
    let found = buckets
        .into_iter()
        .flatten()
        .filter_map(|(address, bytes)| Record::from_bytes(&bytes).map(|r| (address, r)))
        .filter(|(_, r)| r.is_dormant(policy, today))
        .collect();
    Ok((found, (end < total).then_some(end)))
}
