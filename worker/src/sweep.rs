//! Sweeps a campaign that is not running out of one lane's stream in bulk. When a batch meets
//! a job that was parked (campaign paused) or dropped (cancelled), the campaign's other
//! entries that no worker was handed yet are settled on the campaign a chunk at a time
//! (decide.lua: parked in stream order, or cancelled with one event each) and deleted from the
//! stream. They cost the destination no token and no wait, so other campaigns behind them are
//! next in line at once, and a cancelled campaign's counts settle.
//!
//! One worker sweeps a lane for a campaign at a time (a lease in Redis), yet a sweep is safe
//! alongside anyone reading the same entries (a worker's batch, a sweep whose lease ran out):
//! a job is settled once (decide.lua skips one that is no longer current), a parked job's
//! member is the same whoever parks it, and a sweep stops as soon as the campaign runs again.

use std::time::{Duration, Instant};

use sluice_shared::{
    keys,
    lane::Lane,
    metrics as m,
    redis::{
        Conn, StoreResult,
        scripts::{
            destination,
            jobs::{self, Decision, Source},
            stream,
        },
    },
};

use crate::{context::Ctx, transport::Transport};

/// Entries looked at per step (one script call, a few ms of Redis time at most).
const SCAN: usize = 2_000;
/// The campaign's entries settled per step.
const CHUNK: usize = 500;
/// One sweep stops here; whatever is left is met, and swept, by a later batch.
const TIME_BUDGET: Duration = Duration::from_secs(10);
/// The lease outlives the budget by this much, for the last step's round trips.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// What one sweep settled.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub parked: usize,
    pub cancelled: usize,
    /// Expired (failed) or already handled.
    pub other: usize,
}

/// Sweeps `campaign`'s unhanded entries out of `domain`'s `lane` stream, unless another
/// worker (or this one) is at it: one sweeper per lane and campaign holds a lease in Redis.
/// `None` when someone else holds it.
pub async fn sweep<T: Transport>(ctx: &Ctx<T>, domain: &str, lane: Lane, campaign: &str) -> StoreResult<Option<Swept>> {
    let mut conn = ctx.conn().await?;
    let lease = keys::lane_sweep_lease(domain, lane, campaign);
    let ms = (TIME_BUDGET + LEASE_MARGIN).as_millis() as u64;
    let leased: Option<String> =
        redis::cmd("SET").arg(&lease).arg(&ctx.consumer).arg("NX").arg("PX").arg(ms).query_async(&mut conn).await?;
    if leased.is_none() {
        return Ok(None);
    }
    let mut swept = Swept::default();
    let done = sweep_leased(ctx, &mut conn, (domain, lane), campaign, &mut swept).await;
    // A lease left behind (a crash, Redis gone) expires on its own.
    let _: Result<i64, _> = redis::cmd("DEL").arg(&lease).query_async(&mut conn).await;
    // What was settled before a failure is counted too.
    swept.report(domain, campaign);
    done.map(|()| Some(swept))
}

async fn sweep_leased<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    (domain, lane): (&str, Lane),
    campaign: &str,
    swept: &mut Swept,
) -> StoreResult<()> {
    let (maxlen, max_age) = (ctx.config.campaigns.events_maxlen, ctx.config.retry.max_age.as_millis());
    let stream_key = keys::lane_stream(domain, lane);
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    while started.elapsed() < TIME_BUDGET {
        let scanned = destination::scan_campaign(
            conn,
            (domain, lane),
            keys::WORKER_GROUP,
            campaign,
            cursor.as_deref(),
            (SCAN, CHUNK),
        )
        .await?;
        if !scanned.entries.is_empty() {
            // Settled before deleted: a crash in between leaves entries whose jobs are
            // settled, which the next reader skips or parks again (the same member); and the
            // settling reaches a replica first, so a failover cannot take it back (unconfirmed,
            // the entries stay for the next sweep, which settles them again or skips them).
            let waited = (&ctx.replicas, "sweep");
            let (decisions, replicated) =
                jobs::decide_replicated(conn, waited, campaign, (maxlen, max_age), Source::Swept, &scanned.entries)
                    .await?;
            if decisions.contains(&Decision::Leave) || !replicated.confirmed() {
                break; // running again (its entries go the normal way), or not yet safe
            }
            let ids: Vec<String> = scanned.entries.iter().map(|e| e.id.clone()).collect();
            stream::delete(conn, &stream_key, &ids).await?;
            swept.count(&decisions);
        }
        if scanned.done {
            break;
        }
        cursor = Some(scanned.cursor);
    }
    Ok(())
}

impl Swept {
    fn count(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match d {
                Decision::Parked => self.parked += 1,
                Decision::Dropped => self.cancelled += 1,
                _ => self.other += 1,
            }
        }
    }

    fn report(&self, domain: &str, campaign: &str) {
        for (outcome, n) in [("parked", self.parked), ("cancelled", self.cancelled), ("other", self.other)] {
            if n > 0 {
                metrics::counter!(m::SWEPT, "outcome" => outcome).increment(n as u64);
            }
        }
        if *self != Swept::default() {
            tracing::info!(%domain, %campaign, parked = self.parked, cancelled = self.cancelled, other = self.other, "swept a campaign that is not running out of a destination stream");
        }
    }
}
