//! Erasing one address from everything Sluice keeps (GDPR article 17, APPI): the right to be
//! forgotten. What remains is its SHA-256 on the suppression list, so it is still never
//! mailed. Where it was:
//!
//! - each campaign's and message's events (deleted) and recipients not yet expanded (replaced
//!   by the hash, which expansion suppresses); a message's envelope (`to`, replaced);
//! - the event feed (its events keep their place, without the address or their data);
//! - the audit log (the address in a path replaced), dead letters, inbound reports that were
//!   not matched, rejected intake entries (deleted); its soft-bounce counter and engagement record;
//! - the suppression list (the address replaced by its hash);
//! - the PostgreSQL history (its rows deleted).
//!
//! Refused with nothing changed while mail to the address is in flight (queued or deferred in
//! a campaign that is not done): erase after it is sent, or cancel the campaign first; and
//! while the history is configured but PostgreSQL cannot be reached. Erasing twice is
//! harmless: the second finds nothing.

use serde::Serialize;
use serde_json::Value;
use sluice_shared::{
    keys, lane,
    model::CampaignSpec,
    redis::{
        Conn, StoreError, scan,
        scripts::erase::{self, Naming, SourceErased},
    },
    suppression,
};

use crate::history::{History, HistoryError};

/// What was removed where.
#[derive(Debug, Default, Serialize)]
pub struct Erased {
    /// What stands for the address from now on (on the suppression list).
    pub erased: String,
    pub suppressed: bool,
    pub redis: RedisRemoved,
    /// Rows deleted from the history; None without `[history]`.
    pub postgres: Option<PostgresRemoved>,
}

#[derive(Debug, Default, Serialize)]
pub struct RedisRemoved {
    pub events: i64,
    pub feed_events_redacted: i64,
    pub recipients_not_yet_sent: i64,
    pub messages: i64,
    pub audit_entries_redacted: i64,
    pub dead_letters: i64,
    pub inbound_unmatched: i64,
    pub intake_errors: i64,
    pub soft_bounce_counter: i64,
    /// Its engagement record (list hygiene).
    pub engagement_record: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct PostgresRemoved {
    pub events: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("mail to this address is in flight in {0:?}; erase it once sent, or cancel first")]
    InFlight(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl From<redis::RedisError> for EraseError {
    fn from(e: redis::RedisError) -> Self {
        EraseError::Store(e.into())
    }
}

/// Every campaign and message with records in Redis.
async fn sources(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    let metas = scan::keys(conn, "sluice:{c:*}:meta").await?;
    Ok(metas.iter().filter_map(|k| k.strip_prefix("sluice:{c:")?.strip_suffix("}:meta").map(String::from)).collect())
}

/// Erases `address` everywhere (see the module doc).
pub async fn erase(conn: &mut Conn, history: Option<&History>, address: &str) -> Result<Erased, EraseError> {
    let address = address.trim().to_lowercase();
    let token = suppression::erased_token(&address);
    let sources = sources(conn).await?;
    let in_flight = in_flight(conn, &sources, &address).await?;
    if !in_flight.is_empty() {
        return Err(EraseError::InFlight(in_flight));
    }
    if let Some(h) = history {
        // Refused before anything changes when PostgreSQL cannot be reached.
        drop(h.client().await?);
    }
    let written_before = writer_positions(conn).await?;
    let mut out = Erased { erased: token.clone(), ..Erased::default() };
    out.suppressed = suppress(conn, &address, &token).await?;
    for id in &sources {
        if let SourceErased::Done { events, staged } = erase::source(conn, id, &address, &token).await? {
            out.redis.events += events;
            out.redis.recipients_not_yet_sent += staged;
            if events + staged > 0 && lane::is_message(id) && redact_envelope(conn, id, &address, &token).await? {
                out.redis.messages += 1;
            }
        }
    }
    for shard in 0..keys::FEED_SHARDS {
        out.redis.feed_events_redacted += erase::feed(conn, shard, &address).await?;
    }
    let r = &mut out.redis;
    let encoded = address.replace('@', "%40");
    for needle in [address.as_str(), encoded.as_str()] {
        r.audit_entries_redacted +=
            erase::stream_text(conn, &keys::audit(), "path", needle, Naming::Redact(&token)).await?;
    }
    r.dead_letters = erase::stream_text(conn, &keys::dead_letters(), "r", &address, Naming::Delete).await?;
    r.inbound_unmatched = erase::stream_text(conn, &keys::inbound_unmatched(), "raw", &address, Naming::Delete).await?;
    r.intake_errors = erase::stream_text(conn, &keys::intake_errors(), "entry", &address, Naming::Delete).await?;
    r.soft_bounce_counter = redis::cmd("DEL").arg(keys::soft_bounces(&address)).query_async(conn).await?;
    r.engagement_record = crate::hygiene::forget(conn, &address).await?;
    if let Some(h) = history {
        // A writer may hold a batch it read before the feed was redacted: once each has moved
        // on (or caught up), no row with the address can arrive after this delete.
        settle_writers(conn, &written_before).await?;
        out.postgres = Some(PostgresRemoved { events: erase_history(h, &address).await? });
    }
    Ok(out)
}

/// Each feed shard's history writer position (`n`) and the shard's newest event number.
async fn writer_positions(conn: &mut Conn) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut pipe = redis::pipe();
    for shard in 0..keys::FEED_SHARDS {
        pipe.cmd("HGET").arg(keys::history_state(shard)).arg("n");
        pipe.cmd("GET").arg(keys::feed_seq(shard));
    }
    let raw: Vec<Option<i64>> = pipe.query_async(conn).await?;
    Ok(raw.chunks(2).map(|p| (p[0].unwrap_or(0), p[1].unwrap_or(0))).collect())
}

/// Waits (at most 10 s) until every shard's writer has moved past where it was before the
/// feed was redacted, or had nothing left to write then.
async fn settle_writers(conn: &mut Conn, before: &[(i64, i64)]) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = writer_positions(conn).await?;
        let settled = before.iter().zip(&now).all(|((n0, newest0), (n, _))| n0 >= newest0 || n > n0);
        if settled || tokio::time::Instant::now() > deadline {
            if !settled {
                tracing::warn!("history writers did not move within 10 s of an erase; deleting from PostgreSQL anyway");
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The sources where mail to `address` is still in flight (a read-only pass, before anything
/// changes).
async fn in_flight(conn: &mut Conn, sources: &[String], address: &str) -> Result<Vec<String>, StoreError> {
    let mut busy = Vec::new();
    for id in sources {
        if erase::check_source(conn, id, address).await? {
            busy.push(id.clone());
        }
    }
    Ok(busy)
}

/// Moves the address's suppression entry (or a new one) under its token, in scope `all`; its
/// unsubscribes go (the token's entry keeps everything away); true once done.
async fn suppress(conn: &mut Conn, address: &str, token: &str) -> Result<bool, StoreError> {
    let existing: Option<String> = redis::cmd("HGET").arg(keys::suppressed()).arg(address).query_async(conn).await?;
    let mut entry = existing
        .and_then(|e| serde_json::from_str::<Value>(&e).ok())
        .unwrap_or_else(|| suppression::entry("erased", "erase", None, None));
    // Whatever evidence the entry kept (an SMTP reply, a report) may quote the address.
    if let Some(o) = entry.as_object_mut() {
        o.remove("detail");
        o.insert("erased_at".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
    }
    redis::pipe()
        .hset(keys::suppressed(), token, entry.to_string())
        .ignore()
        .hdel(keys::suppressed(), address)
        .ignore()
        .hdel(keys::unsubscribed(), address)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(true)
}

/// Replaces `address` by `token` in message `id`'s envelope; true if it was there.
async fn redact_envelope(conn: &mut Conn, id: &str, address: &str, token: &str) -> Result<bool, StoreError> {
    let spec: Option<String> = redis::cmd("HGET").arg(keys::campaign_meta(id)).arg("spec").query_async(conn).await?;
    let Some(mut spec) = spec.and_then(|s| serde_json::from_str::<CampaignSpec>(&s).ok()) else { return Ok(false) };
    let mut changed = false;
    for to in spec.to.iter_mut().filter(|t| t.to_lowercase() == address) {
        *to = token.to_string();
        changed = true;
    }
    if changed {
        let json = serde_json::to_string(&spec).expect("a spec serialises");
        redis::cmd("HSET").arg(keys::campaign_meta(id)).arg("spec").arg(json).query_async::<()>(conn).await?;
    }
    Ok(changed)
}

async fn erase_history(history: &History, address: &str) -> Result<u64, HistoryError> {
    let client = history.client().await?;
    Ok(client
        .execute(
            "DELETE FROM events WHERE hashtextextended(recipient, 0) = hashtextextended($1, 0) AND recipient = $1",
            &[&address],
        )
        .await?)
}
