//! The reconcile duty: repairs what a failover or a lost second of AOF can leave behind. One
//! scheduler at a time (a lease) watches the counts of the running campaigns and unfinished
//! messages; one whose counts did not move for `campaigns.reconcile_after` is looked at whole:
//! - a recipient that is queued, deferred or in flight while no destination stream, retry set
//!   or pending list holds its job is put back (due now in the retry set, with a `requeued`
//!   event, see reconcile.lua);
//! - a job in a stream whose recipient is already recorded, and which no worker has read yet,
//!   is deleted (a worker would skip it; this spares the read and the token).
//!
//! What was repaired is logged and counted (`sluice_reconciled_jobs_total`). The campaign is
//! looked at again only after a further `reconcile_after` without movement.

mod snapshot;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use redis::AsyncCommands;
use sluice_shared::{
    config::Config,
    keys,
    lane::Lane,
    model::{Job, Staged},
    redis::{Conn, Pool, StoreError, StoreResult, scripts::campaign},
    shutdown::Shutdown,
};
use tokio::time::Instant;

use snapshot::{Found, Snapshot};

/// Jobs put back per script call.
const CHUNK: usize = 500;

/// Runs until shutdown on every scheduler; only the lease holder works.
pub async fn run(pool: Pool, config: Arc<Config>, owner: String, shutdown: Shutdown) {
    let after = config.campaigns.reconcile_after.get();
    let every = (after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    // Long enough that a holder busy with a large repair keeps it between renewals.
    let lease_ms = after.max(Duration::from_secs(10)).as_millis() as u64;
    let mut watch = Watch::default();
    while !shutdown.is_triggered() {
        let round = async {
            let mut conn = (*pool.get().await?).clone();
            if !crate::pipeline::lease::hold(&mut conn, keys::reconcile_lease(), &owner, lease_ms).await? {
                // Another scheduler watches; a takeover starts its own watch.
                watch.since.clear();
                return Ok(());
            }
            let stalled = watch.stalled(&mut conn, after).await?;
            if !stalled.is_empty() {
                repair(&mut conn, &config, &stalled).await?;
                for id in &stalled {
                    watch.restart(id);
                }
            }
            Ok::<_, StoreError>(())
        };
        if let Err(e) = round.await {
            metrics::counter!(sluice_shared::metrics::REDIS_ERRORS, "op" => "reconcile").increment(1);
            tracing::warn!(error = %e, "reconcile round failed; retrying");
        }
        shutdown.sleep(every).await;
    }
}

/// A campaign's counts, sorted by name.
type Counts = Vec<(String, i64)>;

/// The running campaigns' counts as last seen, and since when they have not moved.
#[derive(Default)]
struct Watch {
    since: HashMap<String, (Counts, Instant)>,
}

impl Watch {
    /// The running campaigns and unfinished messages with work outstanding whose counts stood
    /// still for `after`.
    async fn stalled(&mut self, conn: &mut Conn, after: Duration) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = conn.smembers(keys::active_campaigns()).await?;
        let messages: Vec<String> = conn.zrange(keys::messages_due(), 0, -1).await?;
        ids.extend(messages);
        let mut running = HashSet::new();
        let mut stalled = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hget(keys::campaign_meta(id), "status").hgetall(keys::campaign_counts(id));
            }
            let replies: Vec<(Option<String>, Counts)> = pipe.query_async(conn).await?;
            for (id, (status, mut counts)) in chunk.iter().zip(replies) {
                if status.as_deref() != Some("running") {
                    continue;
                }
                counts.sort();
                let outstanding = counts.iter().any(|(k, n)| (k == "queued" || k == "deferred") && *n > 0);
                match self.since.get(id) {
                    Some((seen, at)) if *seen == counts => {
                        if outstanding && at.elapsed() >= after {
                            stalled.push(id.clone());
                        }
                    }
                    _ => {
                        self.since.insert(id.clone(), (counts, Instant::now()));
                    }
                }
                running.insert(id.clone());
            }
        }
        self.since.retain(|id, _| running.contains(id));
        Ok(stalled)
    }

    /// Starts `id`'s wait over, so it is looked at again only after a further stretch.
    fn restart(&mut self, id: &str) {
        if let Some((_, at)) = self.since.get_mut(id) {
            *at = Instant::now();
        }
    }
}

/// Looks at the stalled campaigns `ids` whole and repairs what is missing or stale.
async fn repair(conn: &mut Conn, config: &Config, ids: &[String]) -> StoreResult<()> {
    let started = Instant::now();
    let mut snapshots = Vec::with_capacity(ids.len());
    for id in ids {
        snapshots.push(Snapshot::read(conn, id).await?);
    }
    // One pass over the lanes' streams serves every stalled campaign.
    let lanes: HashSet<Lane> = ids.iter().map(|id| Lane::of(id)).collect();
    let destinations: Vec<String> = conn.smembers(keys::domains()).await?;
    let streams: Vec<String> =
        destinations.iter().flat_map(|d| lanes.iter().map(|lane| keys::lane_stream(d, *lane))).collect();
    let campaigns: HashSet<String> = ids.iter().cloned().collect();
    let found = snapshot::find_jobs(conn, &streams, &campaigns).await?;
    for snap in &snapshots {
        let requeued = put_back(conn, config, snap, &found).await?;
        let dropped = drop_stale(conn, snap, &found).await?;
        metrics::counter!(sluice_shared::metrics::RECONCILED, "action" => "requeued").increment(requeued.len() as u64);
        metrics::counter!(sluice_shared::metrics::RECONCILED, "action" => "dropped").increment(dropped);
        let first: Vec<u64> = requeued.iter().take(10).copied().collect();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match (requeued.len(), dropped) {
            (0, 0) => tracing::info!(
                campaign = %snap.id, elapsed_ms,
                "campaign stalled: every outstanding job is queued; nothing to repair"
            ),
            (n, dropped) => tracing::warn!(
                campaign = %snap.id, requeued = n, ?first, dropped, elapsed_ms,
                "campaign stalled: lost jobs put back, stale ones dropped"
            ),
        }
    }
    Ok(())
}

/// Puts `snap`'s lost jobs back from the staged list (which keeps every recipient while the
/// campaign runs); the indexes put back.
async fn put_back(conn: &mut Conn, config: &Config, snap: &Snapshot, found: &Found) -> StoreResult<Vec<u64>> {
    let lost = snap.lost(found);
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    // A campaign expanded by an older version trimmed its staged list as it went: an index no
    // longer finds its recipient there, so nothing is rebuilt from it.
    let (len, total): (u64, Option<u64>) = redis::pipe()
        .llen(keys::campaign_staged(&snap.id))
        .hget(keys::campaign_counts(&snap.id), "total")
        .query_async(conn)
        .await?;
    if Some(len) != total {
        tracing::warn!(campaign = %snap.id, lost = lost.len(), len, ?total,
            "lost jobs found, but the staged list does not hold every recipient (expanded by an older version); not put back");
        return Ok(Vec::new());
    }
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let now_ms = secs * 1000 + micros / 1000;
    let mut requeued = Vec::new();
    for chunk in lost.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for (index, _, _) in chunk {
            pipe.cmd("LINDEX").arg(keys::campaign_staged(&snap.id)).arg(*index);
        }
        let staged: Vec<Option<String>> = pipe.query_async(conn).await?;
        let mut jobs = Vec::with_capacity(chunk.len());
        for ((index, seen, attempt), line) in chunk.iter().zip(staged) {
            let Some(line) = line else {
                tracing::warn!(campaign = %snap.id, index, "lost job's recipient is not in the staged list; not put back");
                continue;
            };
            let staged: Staged =
                serde_json::from_str(&line).map_err(|e| StoreError::Reply(format!("staged recipient: {e}")))?;
            let parked = !seen.starts_with('d');
            let job = Job { attempt: *attempt, parked, ..Job::from_staged(&snap.id, *index, staged, now_ms) };
            jobs.push((*index, *seen, job));
        }
        let lost: Vec<campaign::Lost> = jobs
            .iter()
            .map(|(index, seen, job)| campaign::Lost {
                index: *index,
                seen,
                member: job.member(),
                address: &job.recipient,
            })
            .collect();
        let maxlen = config.campaigns.events_maxlen;
        requeued.extend(campaign::reconcile(conn, &snap.id, (maxlen, &snap.updated_at), &lost).await?);
    }
    Ok(requeued)
}

/// Deletes `snap`'s stale entries no worker has read; how many.
async fn drop_stale(conn: &mut Conn, snap: &Snapshot, found: &Found) -> StoreResult<u64> {
    let mut dropped = 0;
    for (stream, id) in snap.stale(found) {
        let n: u64 = conn.xdel(stream, &[id]).await?;
        dropped += n;
    }
    Ok(dropped)
}
