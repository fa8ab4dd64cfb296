//! The writers: one per feed shard, each under a lease so one scheduler writes a shard at a
//! time. A writer reads the shard after its cursor (`sluice:{e:K}:history`, the same cursor form
//! a webhook endpoint keeps), writes up to `history.batch` events with one `COPY` into a
//! staging table and one insert of the rows not there yet, then moves the cursor. A crash
//! between the commit and the cursor move replays the batch, which adds nothing: rows are
//! unique by event id. PostgreSQL failing only holds the cursor (retried with backoff, counted);
//! events trimmed from the feed before the writer got to them are counted as dropped.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures::pin_mut;
use sluice_shared::{
    keys, metrics as m,
    redis::{Conn, Pool, StoreError},
    shutdown::Shutdown,
};
use tokio_postgres::{binary_copy::BinaryCopyInWriter, types::Type};

use super::{
    History, HistoryError,
    partitions::{self, Known},
    row::Row,
    sources::{self, Recorded},
};
use crate::events::feed::{self, Cursor};

const LEASE_MS: u64 = 15_000;
/// Feed entries read per step (each a run of up to about a thousand events).
const ENTRIES: usize = 8;
const IDLE: Duration = Duration::from_millis(100);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Prepares the schema (waiting for PostgreSQL as long as it takes), then runs a writer per
/// feed shard until `shutdown`.
pub async fn run(pool: Pool, history: History, owner: String, shutdown: Shutdown) {
    if !history.prepare(&shutdown).await {
        return;
    }
    let writers = (0..keys::FEED_SHARDS).map(|shard| {
        let writer = ShardWriter {
            shard,
            pool: pool.clone(),
            history: history.clone(),
            owner: owner.clone(),
            partitions: Known::default(),
            recorded: Recorded::default(),
            failures: 0,
            retention_due: Instant::now(),
        };
        writer.run(shutdown.clone())
    });
    futures::future::join_all(writers).await;
}

struct ShardWriter {
    shard: usize,
    pool: Pool,
    history: History,
    owner: String,
    partitions: Known,
    recorded: Recorded,
    /// PostgreSQL failures in a row (the backoff).
    failures: u32,
    /// When shard 0's writer next drops expired days.
    retention_due: Instant,
}

enum Step {
    Idle,
    Progress,
    Wait(Duration),
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Redis(#[from] StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl From<redis::RedisError> for StepError {
    fn from(e: redis::RedisError) -> Self {
        StepError::Redis(e.into())
    }
}

impl From<tokio_postgres::Error> for StepError {
    fn from(e: tokio_postgres::Error) -> Self {
        StepError::History(e.into())
    }
}

impl ShardWriter {
    async fn run(mut self, shutdown: Shutdown) {
        while !shutdown.is_triggered() {
            let step = async {
                let mut conn = (*self.pool.get().await?).clone();
                let lease = keys::history_lease(self.shard);
                if !crate::pipeline::lease::hold(&mut conn, &lease, &self.owner, LEASE_MS).await? {
                    // Another scheduler writes this shard: its gauges are the ones that count.
                    self.gauges(0.0, 0);
                    return Ok(Step::Wait(Duration::from_millis(LEASE_MS / 3)));
                }
                self.expire_old_days().await;
                self.step(&mut conn).await
            };
            let wait = match step.await {
                Ok(Step::Progress) => continue,
                Ok(Step::Idle) => IDLE,
                Ok(Step::Wait(d)) => d,
                Err(StepError::History(e)) => {
                    metrics::counter!(m::HISTORY_ERRORS).increment(1);
                    self.failures += 1;
                    let wait = Duration::from_millis(500 << self.failures.min(6)).min(Duration::from_secs(30));
                    tracing::warn!(shard = self.shard, error = %e, retry_in = ?wait, "history write failed; the events wait in the feed");
                    wait
                }
                Err(StepError::Redis(e)) => {
                    tracing::warn!(shard = self.shard, error = %e, "history writer failed on Redis; retrying");
                    Duration::from_secs(1)
                }
            };
            shutdown.sleep(wait).await;
        }
    }

    async fn step(&mut self, conn: &mut Conn) -> Result<Step, StepError> {
        let state_key = keys::history_state(self.shard);
        let state: HashMap<String, String> = redis::cmd("HGETALL").arg(&state_key).query_async(conn).await?;
        let after = state.get("cursor").and_then(|c| Cursor::parse(c));
        let done: Option<i64> = state.get("n").and_then(|n| n.parse().ok());
        let events = feed::read_shard(conn, self.shard, after.as_ref(), ENTRIES).await?;
        let newest: i64 =
            redis::cmd("GET").arg(keys::feed_seq(self.shard)).query_async::<Option<i64>>(conn).await?.unwrap_or(0);
        let done = match done {
            Some(n) => n,
            None => {
                // A shard met for the first time: what the feed holds now is where history
                // starts; from here on a gap in the numbers is a loss, counted.
                let start = events.first().map_or(newest, |e| e.n - 1);
                redis::cmd("HSET").arg(&state_key).arg("n").arg(start).query_async::<()>(conn).await?;
                start
            }
        };
        let Some(first) = events.first() else {
            self.gauges(0.0, 0);
            return Ok(Step::Idle);
        };
        // Trimmed from the feed before this writer read them; counted with the cursor's move,
        // so a failed write does not count them twice.
        let lost = (first.n - done - 1).max(0);
        let newest: i64 =
            redis::cmd("GET").arg(keys::feed_seq(self.shard)).query_async::<Option<i64>>(conn).await?.unwrap_or(0);
        let oldest_ms = sluice_shared::redis::entry_id::millis(&first.entry.id).unwrap_or_default();
        let lag = (Utc::now().timestamp_millis() - oldest_ms).max(0) as f64 / 1000.0;
        self.gauges(lag, newest - first.n + 1);
        let batch = &events[..events.len().min(self.history.config.batch)];
        let rows: Vec<Row> = batch
            .iter()
            .filter_map(Row::from_feed)
            .filter(|r| partitions::kept(r.at, self.history.config.retention.get()))
            .collect();
        let missing = self.recorded.missing(rows.iter().map(|r| r.source.as_str()));
        let records = sources::fetch(conn, &missing).await?;
        let inserted = self.write(&rows, &records).await?;
        self.failures = 0;
        self.recorded.add(missing);
        metrics::counter!(m::HISTORY_WRITTEN).increment(inserted);
        let last = batch.last().expect("a batch is never empty");
        let mut pipe = redis::pipe();
        pipe.hset_multiple(&state_key, &[("cursor", last.cursor.to_string()), ("n", last.n.to_string())]).ignore();
        pipe.hincr(&state_key, "written", inserted).ignore();
        pipe.hincr(&state_key, "dropped", lost).ignore();
        pipe.query_async::<()>(conn).await?;
        if lost > 0 {
            tracing::error!(
                shard = self.shard,
                lost,
                "events trimmed from the feed before the history writer read them"
            );
            metrics::counter!(m::HISTORY_DROPPED).increment(lost as u64);
        }
        self.gauges(if last.n >= newest { 0.0 } else { lag }, newest - last.n);
        Ok(Step::Progress)
    }

    /// Writes `rows` not already there, and `records`, in one transaction; returns the rows added.
    async fn write(&mut self, rows: &[Row], records: &[sources::Record]) -> Result<u64, HistoryError> {
        let mut client = self.history.client().await?;
        self.partitions.ensure(&mut client, rows.iter().map(|r| partitions::day_of(r.at))).await?;
        let tx = client.transaction().await?;
        let inserted = match (rows.iter().map(|r| r.at).min(), rows.iter().map(|r| r.at).max()) {
            (Some(from), Some(to)) => insert(&tx, rows, from, to).await?,
            _ => 0,
        };
        sources::record(&tx, records).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Shard 0's writer drops the days past retention, hourly.
    async fn expire_old_days(&mut self) {
        if self.shard != 0 || Instant::now() < self.retention_due {
            return;
        }
        self.retention_due = Instant::now() + RETENTION_EVERY;
        let dropped = async {
            let mut client = self.history.client().await?;
            Ok::<_, HistoryError>(partitions::drop_expired(&mut client, self.history.config.retention.get()).await?)
        };
        match dropped.await {
            Ok(days) if !days.is_empty() => tracing::info!(?days, "history days past retention dropped"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "history retention could not run; trying again in a minute");
                self.retention_due = Instant::now() + Duration::from_secs(60);
            }
        }
    }

    fn gauges(&self, lag_seconds: f64, backlog: i64) {
        let shard = self.shard.to_string();
        metrics::gauge!(m::HISTORY_LAG, "shard" => shard.clone()).set(lag_seconds);
        metrics::gauge!(m::HISTORY_BACKLOG, "shard" => shard).set(backlog.max(0) as f64);
    }
}

/// COPYs `rows` into the session's staging table and moves those not in `events` yet (by
/// event id) into it. `from`..=`to` bounds their times, so only those days' partitions are
/// searched for duplicates.
async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[Row],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS history_incoming (at timestamptz, source text COLLATE \"C\", seq integer, \
         type text COLLATE \"C\", recipient text COLLATE \"C\", data json) ON COMMIT DELETE ROWS",
    )
    .await?;
    let sink =
        tx.copy_in("COPY history_incoming (at, source, seq, type, recipient, data) FROM STDIN (FORMAT binary)").await?;
    let types = [Type::TIMESTAMPTZ, Type::TEXT, Type::INT4, Type::TEXT, Type::TEXT, Type::JSON];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for r in rows {
        writer.as_mut().write(&[&r.at, &r.source, &r.seq, &r.kind, &r.recipient, &r.data]).await?;
    }
    writer.finish().await?;
    // Statistics for the staging table, so the planner probes the index row by row instead
    // of scanning the days' partitions.
    tx.batch_execute("ANALYZE history_incoming").await?;
    tx.execute(
        "INSERT INTO events (at, source, seq, type, recipient, data) \
         SELECT DISTINCT ON (i.source, i.at, i.seq) i.at, i.source, i.seq, i.type, i.recipient, i.data \
         FROM history_incoming i WHERE NOT EXISTS (SELECT 1 FROM events e \
           WHERE hashtextextended(e.source, 0) = hashtextextended(i.source, 0) AND e.at = i.at AND e.seq = i.seq \
           AND e.source = i.source AND e.at BETWEEN $1 AND $2)",
        &[&from, &to],
    )
    .await
}
