//! Delivery to one endpoint: read the feed after the endpoint's cursor, POST the next batch of
//! wanted events, advance the cursor only on a 2xx. On failure wait `retry_initial`, doubling
//! up to `retry_max`; events older than `give_up_after` are dropped and counted. Its state
//! (cursor, backlog, last success, last error) is kept in Redis for the API and in metrics.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use sluice_shared::{
    config::Config,
    keys, metrics as m,
    redis::{Conn, Pool, StoreResult},
    shutdown::Shutdown,
};

use super::{endpoints::Endpoint, guard, signature};
use crate::events::{
    self,
    feed::{self, FeedEvent, Position},
};

const LEASE_MS: u64 = 15_000;
/// Feed entries looked at per step (each a run of one source's events).
const SCAN_ENTRIES: usize = 20;
const IDLE: Duration = Duration::from_millis(50);

pub struct Deliverer {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub http: reqwest::Client,
    pub policy: Arc<sluice_shared::netguard::AddressPolicy>,
    pub owner: String,
    pub endpoint: Endpoint,
}

/// What one step did.
enum Step {
    /// Nothing new: wait a little.
    Idle,
    /// Progress: go on at once.
    Progress,
    /// Wait this long (another scheduler holds the lease, or a retry is not due).
    Wait(Duration),
}

impl Deliverer {
    pub async fn run(self, shutdown: Shutdown) {
        let id = self.endpoint.id.clone();
        m::webhook_series(&id);
        while !shutdown.is_triggered() {
            let step = async {
                let mut conn = (*self.pool.get().await?).clone();
                if !crate::pipeline::lease::hold(&mut conn, &keys::webhook_lease(&id), &self.owner, LEASE_MS).await? {
                    return Ok(Step::Wait(Duration::from_millis(LEASE_MS / 3)));
                }
                self.step(&mut conn).await
            };
            match step.await {
                Ok(Step::Progress) => {}
                Ok(Step::Idle) => {
                    shutdown.sleep(IDLE).await;
                }
                Ok(Step::Wait(d)) => {
                    shutdown.sleep(d.min(Duration::from_secs(1))).await;
                }
                Err(e) => {
                    tracing::warn!(endpoint = %id, error = %e, "webhook step failed on Redis; retrying");
                    shutdown.sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn step(&self, conn: &mut Conn) -> StoreResult<Step> {
        let id = &self.endpoint.id;
        let label = id.clone();
        let state_key = keys::webhook_state(id);
        let state: HashMap<String, String> = redis::cmd("HGETALL").arg(&state_key).query_async(conn).await?;
        let num = |k: &str| state.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let now = chrono::Utc::now().timestamp_millis();
        let seqs = feed_seqs(conn).await?;
        metrics::gauge!(m::WEBHOOK_BACKLOG, "endpoint" => label.clone()).set(backlog(&state, &seqs) as f64);
        if num("next_attempt_at") > now {
            return Ok(Step::Wait(Duration::from_millis((num("next_attempt_at") - now) as u64)));
        }
        if !state.contains_key("cursor") {
            // A config endpoint seen for the first time starts now, like one made over the API.
            start_cursor(conn, id, true).await?;
            return Ok(Step::Progress);
        }
        let after = state.get("cursor").and_then(|c| Position::parse(c)).unwrap_or_default();
        let (events, end) = feed::read(conn, &after, SCAN_ENTRIES).await?;
        if events.is_empty() {
            return Ok(Step::Idle);
        }
        // Events trimmed from a shard before this endpoint read them are lost to it: count them.
        let gap = trimmed_before(&state, &after, &events);
        if gap > 0 {
            self.count(conn, "dropped", gap).await?;
        }
        let (batch, through) = self.batch_of(after, &events);
        if batch.is_empty() {
            self.advance(conn, &through, 0).await?;
            return Ok(if end { Step::Idle } else { Step::Progress });
        }
        let body = body_of(conn, &batch).await?;
        match self.post(&body).await {
            Ok(()) => {
                self.advance(conn, &through, batch.len()).await?;
                metrics::counter!(m::WEBHOOK_DELIVERIES, "endpoint" => label.clone(), "result" => "ok").increment(1);
                metrics::gauge!(m::WEBHOOK_LAST_SUCCESS, "endpoint" => label).set(now as f64 / 1000.0);
                Ok(Step::Progress)
            }
            Err(error) => {
                metrics::counter!(m::WEBHOOK_DELIVERIES, "endpoint" => label, "result" => "error").increment(1);
                self.failed(conn, num("attempts") + 1, &batch, &through, error).await
            }
        }
    }

    /// The batch: wanted events up to `webhooks.batch`, and how far the cursor may move (it
    /// may pass unwanted ones).
    fn batch_of<'e>(&self, after: Position, events: &'e [FeedEvent]) -> (Vec<&'e FeedEvent>, Through) {
        let mut batch = Vec::new();
        let mut through = Through { position: after, n: BTreeMap::new() };
        for e in events {
            if !e.entry.kind.is_empty() && self.endpoint.wants(&e.entry.kind) {
                if batch.len() == self.config.webhooks.batch {
                    break;
                }
                batch.push(e);
            }
            through.position.advance(e);
            through.n.insert(e.shard, e.n);
        }
        (batch, through)
    }

    /// After a failed POST: drop the batch if its oldest event is past `webhooks.give_up_after`,
    /// else wait with exponential backoff (attempt `attempts`) and keep the error.
    async fn failed(
        &self,
        conn: &mut Conn,
        attempts: i64,
        batch: &[&FeedEvent],
        through: &Through,
        error: String,
    ) -> StoreResult<Step> {
        let id = &self.endpoint.id;
        let now = chrono::Utc::now().timestamp_millis();
        let oldest_ms = sluice_shared::redis::entry_id::millis(&batch[0].entry.id).unwrap_or(now);
        if now - oldest_ms > self.config.webhooks.give_up_after.as_millis() as i64 {
            tracing::warn!(endpoint = %id, events = batch.len(), %error, "webhook events older than webhooks.give_up_after dropped");
            self.advance(conn, through, 0).await?;
            self.count(conn, "dropped", batch.len() as i64).await?;
            return Ok(Step::Progress);
        }
        let w = &self.config.webhooks;
        let wait = (w.retry_initial.as_millis() as i64)
            .saturating_mul(1i64 << (attempts - 1).min(30))
            .min(w.retry_max.as_millis() as i64);
        tracing::info!(endpoint = %id, attempts, retry_in_ms = wait, %error, "webhook delivery failed");
        redis::cmd("HSET")
            .arg(keys::webhook_state(id))
            .arg(&[
                ("attempts", attempts.to_string()),
                ("next_attempt_at", (now + wait).to_string()),
                ("last_error", error),
                ("last_error_at", now.to_string()),
            ])
            .query_async::<()>(conn)
            .await?;
        Ok(Step::Wait(Duration::from_millis(wait as u64)))
    }

    /// POSTs one signed batch; the error says what went wrong (the answer's status, or the
    /// kind of transport failure) without naming any address.
    async fn post(&self, body: &[u8]) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.endpoint.url).map_err(|_| "the endpoint URL does not parse".to_string())?;
        guard::check_literal(&self.policy, &url)?;
        let t = chrono::Utc::now().timestamp();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(signature::HEADER, signature::sign(&self.endpoint.secret, t, body))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                tracing::info!(endpoint = %self.endpoint.id, error = %e, "webhook request failed");
                guard::describe(&e)
            })?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(guard::describe_status(status)) }
    }

    /// Moves the cursor past `through`, counts `delivered`, and clears the retry state.
    async fn advance(&self, conn: &mut Conn, through: &Through, delivered: usize) -> StoreResult<()> {
        let key = keys::webhook_state(&self.endpoint.id);
        let mut pipe = redis::pipe();
        let mut fields = vec![("cursor".to_string(), through.position.to_string())];
        fields.extend(through.n.iter().map(|(shard, n)| (format!("cursor_n:{shard}"), n.to_string())));
        pipe.hset_multiple(&key, &fields).ignore();
        pipe.hdel(&key, &["attempts", "next_attempt_at"]).ignore();
        if delivered > 0 {
            let now = chrono::Utc::now().timestamp_millis();
            pipe.hincr(&key, "delivered", delivered).ignore();
            pipe.hset(&key, "last_success_at", now).ignore();
        }
        pipe.query_async::<()>(conn).await?;
        Ok(())
    }

    async fn count(&self, conn: &mut Conn, field: &str, n: i64) -> StoreResult<()> {
        redis::cmd("HINCRBY")
            .arg(keys::webhook_state(&self.endpoint.id))
            .arg(field)
            .arg(n)
            .query_async::<()>(conn)
            .await?;
        metrics::counter!(m::WEBHOOK_DROPPED, "endpoint" => self.endpoint.id.clone()).increment(n as u64);
        Ok(())
    }
}

/// How far a delivery got: the feed position, and each shard's sequence number there.
struct Through {
    position: Position,
    n: BTreeMap<usize, i64>,
}

/// The sequence number of the last event the endpoint was moved past in `shard`.
/// How many events of the shards in `after` were trimmed before this endpoint read them.
fn trimmed_before(state: &HashMap<String, String>, after: &Position, events: &[FeedEvent]) -> i64 {
    let mut gap = 0;
    for shard in after.0.keys() {
        if let Some(first) = events.iter().find(|e| e.shard == *shard) {
            gap += (first.n - cursor_n(state, *shard) - 1).max(0);
        }
    }
    gap
}

/// The POST body for `batch`: each event as the events API shows it.
async fn body_of(conn: &mut Conn, batch: &[&FeedEvent]) -> StoreResult<Vec<u8>> {
    let mut extras: HashMap<String, events::Extras> = HashMap::new();
    let mut items = Vec::with_capacity(batch.len());
    for e in batch {
        if !extras.contains_key(&e.source) {
            let found = events::extras_of(conn, &e.source).await?;
            extras.insert(e.source.clone(), found);
        }
        items.push(events::to_json(&e.source, &e.entry, &extras[&e.source]));
    }
    Ok(serde_json::to_vec(&json!({"events": items})).expect("events serialise"))
}

fn cursor_n(state: &HashMap<String, String>, shard: usize) -> i64 {
    state.get(&format!("cursor_n:{shard}")).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Events in the feed the endpoint has not been moved past yet.
fn backlog(state: &HashMap<String, String>, seqs: &[i64]) -> i64 {
    seqs.iter().enumerate().map(|(shard, seq)| (seq - cursor_n(state, shard)).max(0)).sum()
}

/// Sets where endpoint `id` starts reading: after the feed's newest event (`at_tail`), so it
/// receives only what happens from now on, or at the feed's start (backfill: every event the
/// feed still holds, up to `events.feed_retention`).
pub async fn start_cursor(conn: &mut Conn, id: &str, at_tail: bool) -> StoreResult<()> {
    let key = keys::webhook_state(id);
    let mut fields = vec![("cursor".to_string(), String::new())];
    if at_tail {
        let (position, n) = feed::tail(conn).await?;
        fields[0].1 = position.to_string();
        fields.extend(n.iter().map(|(shard, n)| (format!("cursor_n:{shard}"), n.to_string())));
    }
    redis::cmd("HSET").arg(&key).arg(fields).query_async::<()>(conn).await?;
    Ok(())
}

/// Each feed shard's count of events copied so far.
pub async fn feed_seqs(conn: &mut Conn) -> StoreResult<Vec<i64>> {
    let mut pipe = redis::pipe();
    for shard in 0..keys::FEED_SHARDS {
        pipe.get(keys::feed_seq(shard));
    }
    let seqs: Vec<Option<i64>> = pipe.query_async(conn).await?;
    Ok(seqs.into_iter().map(Option::unwrap_or_default).collect())
}

/// The state of an endpoint as the API shows it.
pub fn view(endpoint: &Endpoint, state: &HashMap<String, String>, seqs: &[i64]) -> Value {
    let num = |k: &str| state.get(k).and_then(|v| v.parse::<i64>().ok());
    let time = |k: &str| {
        num(k)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "source": endpoint.source,
        "backlog": backlog(state, seqs),
        "delivered": num("delivered").unwrap_or(0),
        "dropped": num("dropped").unwrap_or(0),
        "failed_attempts": num("attempts").unwrap_or(0),
        "next_attempt_at": time("next_attempt_at"),
        "last_success_at": time("last_success_at"),
        "last_error": state.get("last_error"),
        "last_error_at": time("last_error_at"),
    })
}
