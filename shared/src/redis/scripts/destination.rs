//! Scripts on one destination's keys (`{d:DOMAIN}`): a worker's visit to a lane (take.lua:
//! tokens from the cluster-wide bucket, then reclaimed and new jobs), a throttling reply's
//! shape on the rate (shape.lua, read back by shape_read.lua for the API), whether a lane
//! still holds work (has_work.lua), and leasing due destinations from a ready set
//! (pick_domains.lua).

use std::collections::HashMap;

use redis::Value;

use super::lua;
use crate::{
    classify::DestinationAction,
    keys,
    lane::Lane,
    model::{Entry, Job},
    redis::{Conn, StoreError, StoreResult},
};

lua!(TAKE, "take", Destination, &["bucket", "stream", "marker", "shape"]);
lua!(SHAPE, "shape", Destination, &["shape"]);
lua!(SHAPE_READ, "shape_read", Destination, &["shape"]);
lua!(HAS_WORK, "has_work", Clock, &["stream"]);
lua!(PICK, "pick_domains", Clock, &["ready"]);
lua!(GIVE_BACK, "give_back", Clock, &["bucket"]);
lua!(SCAN_CAMPAIGN, "scan_campaign", Clock, &["stream"]);

/// What a worker asks of one lane of one destination.
pub struct Visit<'a> {
    pub domain: &'a str,
    pub lane: Lane,
    /// At most this many jobs.
    pub want: usize,
    pub per_second: f64,
    pub burst: u32,
    pub group: &'a str,
    pub consumer: &'a str,
    /// Entries pending this long belong to a worker presumed dead.
    pub reclaim_idle_ms: u64,
    /// Look for such entries at most this often.
    pub reclaim_every_ms: u64,
    /// `limits.transactional_share`.
    pub share: f64,
    /// Take the entries pending under `consumer`'s own name first: the worker holds no batch
    /// of this lane, so they are orphans (a take whose reply was lost, a batch that failed).
    pub retake_own: bool,
}

/// What a visit took.
#[derive(Debug, Default)]
pub struct Took {
    pub now_ms: i64,
    /// How long until a token comes (0: none was missing).
    pub wait_ms: i64,
    /// The lane holds more than was taken.
    pub more: bool,
    /// Entries in flight in the lane (any worker's).
    pub pending: i64,
    /// How many of the taken entries were a dead worker's.
    pub reclaimed: i64,
    /// How many were the consumer's own orphans (`retake_own`).
    pub retaken: i64,
    /// The consumer may have orphans left: `retake_own` was asked and not every one was
    /// looked at (too few tokens).
    pub own_rest: bool,
    /// Jobs taken, each with how often its entry was handed out (1 for a new one).
    pub entries: Vec<(Entry, u64)>,
    /// Ids of taken entries that are not jobs (to be acked and dropped).
    pub malformed: Vec<String>,
    /// The share of the rate in force (x1000) and how long the destination stays suspended.
    pub factor_x1000: i64,
    pub suspended_ms: i64,
}

/// One visit of a worker to one lane of one destination. A lane whose consumer group is
/// missing answers with Redis's `NOGROUP` error.
pub async fn take(conn: &mut Conn, visit: &Visit<'_>) -> StoreResult<Took> {
    let (domain, lane) = (visit.domain, visit.lane);
    let mut invocation = TAKE.invocation(|name| match name {
        "bucket" => keys::domain_bucket(domain),
        "stream" => keys::lane_stream(domain, lane),
        "marker" => keys::lane_reclaim_marker(domain, lane),
        "shape" => keys::domain_shape(domain),
        other => unreachable!("take.lua takes no key {other}"),
    });
    invocation.arg(visit.want).arg(visit.per_second).arg(visit.burst).arg(visit.group).arg(visit.consumer);
    invocation.arg(visit.reclaim_idle_ms).arg(visit.reclaim_every_ms).arg(lane.as_str()).arg(visit.share);
    invocation.arg(u8::from(visit.retake_own));
    let reply: Vec<Value> = invocation.invoke_async(conn).await?;
    let deliveries = array(&reply, 6).iter().map(|c| redis::from_redis_value_ref(c).unwrap_or(1));
    let (entries, malformed) = parse_entries(array(&reply, 5), deliveries);
    Ok(Took {
        now_ms: int(&reply, 0)?,
        wait_ms: int(&reply, 1)?,
        more: int(&reply, 2)? == 1,
        pending: int(&reply, 3)?,
        reclaimed: int(&reply, 4)?,
        entries,
        malformed,
        factor_x1000: int(&reply, 7)?,
        suspended_ms: int(&reply, 8)?,
        retaken: int(&reply, 9)?,
        own_rest: int(&reply, 10)? == 1,
    })
}

fn int(values: &[Value], i: usize) -> StoreResult<i64> {
    values
        .get(i)
        .and_then(|v| redis::from_redis_value_ref::<i64>(v).ok())
        .ok_or_else(|| StoreError::Reply(format!("expected a number at {i}")))
}

/// The array at `i` of a reply (empty if there is none).
fn array(values: &[Value], i: usize) -> &[Value] {
    match values.get(i) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// Stream entries as `[id, [field, value, ...]]`, each with its delivery count; entries that
/// do not parse as jobs are returned by id so they are acked (and logged) rather than retried
/// forever.
fn parse_entries(items: &[Value], deliveries: impl Iterator<Item = u64>) -> (Vec<(Entry, u64)>, Vec<String>) {
    let mut entries = Vec::new();
    let mut malformed = Vec::new();
    for (item, count) in items.iter().zip(deliveries) {
        let Value::Array(parts) = item else { continue };
        let Some(id) = parts.first().and_then(|v| redis::from_redis_value_ref::<String>(v).ok()) else { continue };
        let fields: HashMap<String, Value> = match parts.get(1) {
            Some(Value::Array(kv)) => kv
                .chunks(2)
                .filter_map(|p| Some((redis::from_redis_value_ref::<String>(p.first()?).ok()?, p.get(1)?.clone())))
                .collect(),
            _ => Default::default(),
        };
        match Job::from_fields(&fields) {
            Ok(job) => entries.push((Entry { id, job }, count)),
            Err(e) => {
                tracing::error!(entry = %id, error = %e, "malformed job entry; dropping it");
                malformed.push(id);
            }
        }
    }
    (entries, malformed)
}

/// Gives back `n` tokens taken from `domain`'s bucket for entries of `lane` that were not
/// sent (cancelled, parked, stale), so they cost the destination nothing; the tokens now held.
pub async fn give_back(conn: &mut Conn, domain: &str, lane: Lane, n: usize) -> StoreResult<i64> {
    Ok(GIVE_BACK.on(&keys::domain_bucket(domain)).arg(n).arg(lane.as_str()).invoke_async(conn).await?)
}

/// One look along a lane's stream for a campaign's entries no worker was handed yet.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The campaign's jobs found, in stream order.
    pub entries: Vec<Entry>,
    /// The last entry looked at: where the next look starts.
    pub cursor: String,
    /// The stream's end was reached.
    pub done: bool,
}

/// Looks at up to `scan` entries of `domain`'s `lane` stream past `after` (or, if `None`,
/// past what `group` was last handed) and returns up to `limit` of them that are jobs of
/// `campaign`. Reads only.
pub async fn scan_campaign(
    conn: &mut Conn,
    (domain, lane): (&str, Lane),
    group: &str,
    campaign: &str,
    after: Option<&str>,
    (scan, limit): (usize, usize),
) -> StoreResult<Scanned> {
    let mut invocation = SCAN_CAMPAIGN.on(&keys::lane_stream(domain, lane));
    invocation.arg(group).arg(campaign).arg(after.unwrap_or("")).arg(scan).arg(limit);
    let reply: Vec<Value> = invocation.invoke_async(conn).await?;
    // Entries that are not jobs are left for the lane's readers, which ack and log them.
    let (entries, _) = parse_entries(array(&reply, 2), std::iter::repeat(1));
    Ok(Scanned {
        entries: entries.into_iter().map(|(e, _)| e).collect(),
        cursor: reply.first().and_then(|v| redis::from_redis_value_ref::<String>(v).ok()).unwrap_or_default(),
        done: int(&reply, 1)? == 1,
    })
}

/// Slows or suspends `domain` for every worker, as a throttling reply asked; the factor in force now (x1000) and the end of
/// the suspension (ms, 0 if none).
pub async fn shape(conn: &mut Conn, domain: &str, action: DestinationAction) -> StoreResult<(i64, i64)> {
    let (kind, factor) = match action {
        DestinationAction::Slow { factor, .. } => ("slow", factor),
        DestinationAction::Suspend { .. } => ("suspend", 0.0),
    };
    let key = keys::domain_shape(domain);
    Ok(SHAPE.on(&key).arg(kind).arg(factor).arg(action.duration().as_millis()).invoke_async(conn).await?)
}

/// A destination's shape as take.lua applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub now_ms: i64,
    pub factor_x1000: i64,
    /// 0: not slowed.
    pub slowed_until_ms: i64,
    pub ramp_ms: i64,
    /// 0: not suspended.
    pub suspend_until_ms: i64,
}

impl Shape {
    fn from_reply(reply: &Value) -> StoreResult<Shape> {
        let numbers: Vec<i64> = redis::from_redis_value_ref(reply).map_err(|e| StoreError::Reply(e.to_string()))?;
        let [now_ms, factor_x1000, slowed_until_ms, ramp_ms, suspend_until_ms] = numbers[..] else {
            return Err(StoreError::Reply("shape_read: 5 numbers expected".into()));
        };
        Ok(Shape { now_ms, factor_x1000, slowed_until_ms, ramp_ms, suspend_until_ms })
    }
}

/// One destination's queue depth per lane and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub bulk: i64,
    pub priority: i64,
    pub shape: Shape,
}

/// Queue depths and shapes of `domains`, in one round trip.
pub async fn depths(conn: &mut Conn, domains: &[String]) -> StoreResult<Vec<Depth>> {
    // Loaded first so the pipeline can call it by hash.
    SHAPE_READ.script.prepare_invoke().load_async(conn).await?;
    let mut pipe = redis::pipe();
    for d in domains {
        pipe.cmd("XLEN").arg(keys::lane_stream(d, Lane::Bulk));
        pipe.cmd("XLEN").arg(keys::lane_stream(d, Lane::Priority));
        pipe.cmd("EVALSHA").arg(SHAPE_READ.script.get_hash()).arg(1).arg(keys::domain_shape(d));
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    replies
        .chunks(3)
        .map(|three| {
            Ok(Depth {
                bulk: redis::from_redis_value_ref(&three[0]).unwrap_or(0),
                priority: redis::from_redis_value_ref(&three[1]).unwrap_or(0),
                shape: Shape::from_reply(&three[2])?,
            })
        })
        .collect()
}

/// Whether `domain`'s lane holds entries its group was not given yet, or pending ones.
pub async fn has_work(conn: &mut Conn, domain: &str, lane: Lane, group: &str) -> StoreResult<bool> {
    let stream = keys::lane_stream(domain, lane);
    let work: i64 = HAS_WORK.on(&stream).arg(group).invoke_async(conn).await?;
    Ok(work == 1)
}

/// Destinations leased from one ready-set shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub now_ms: i64,
    /// The lease: each picked destination is due again then unless rescheduled.
    pub lease_until_ms: i64,
    /// When the next destination comes due, if any.
    pub next_due_ms: Option<i64>,
    pub domains: Vec<String>,
}

/// Leases up to `k` due destinations of `lane`'s ready-set shard `shard`, oldest first.
pub async fn pick(conn: &mut Conn, lane: Lane, shard: usize, k: usize, lease_ms: u64) -> StoreResult<Picked> {
    let ready = keys::ready_for(lane, shard);
    let reply: Vec<Value> = PICK.on(&ready).arg(k).arg(lease_ms).invoke_async(conn).await?;
    let domains = reply
        .iter()
        .skip(3)
        .map(redis::from_redis_value_ref)
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Reply(e.to_string()))?;
    let next_due = int(&reply, 2)?;
    Ok(Picked {
        now_ms: int(&reply, 0)?,
        lease_until_ms: int(&reply, 1)?,
        next_due_ms: (next_due >= 0).then_some(next_due),
        domains,
    })
}
