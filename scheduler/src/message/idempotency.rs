//! Idempotency keys: a key a client sends again (per API key, for
//! `messages.idempotency_window`) maps to the message id its first use got, with a digest of
//! what was sent, so a retried send is recognised instead of sent twice. HTTP takes the key
//! from the `Idempotency-Key` header, SMTP submission from the message's `Message-ID`.

use sha2::{Digest, Sha256};
use sluice_shared::{keys, redis::Conn};

/// What a key names.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: the message gets this new id.
    First(String),
    /// Used before with the same digest: the first message's id.
    Replay(String),
    /// Used before with a different digest: that message's id.
    Conflict(String),
}

/// Claims `key` of API key `key_id` for a message with `digest` (hex), under a new id.
pub async fn claim(
    conn: &mut Conn,
    window_ms: u64,
    key_id: &str,
    key: &str,
    digest: &str,
) -> redis::RedisResult<Claim> {
    let redis_key = keys::idempotency(key_id, &hex::encode(Sha256::digest(key.as_bytes())));
    let id = super::new_id();
    let set: Option<String> = redis::cmd("SET")
        .arg(&redis_key)
        .arg(format!("{id} {digest}"))
        .arg("NX")
        .arg("PX")
        .arg(window_ms)
        .query_async(conn)
        .await?;
    if set.is_some() {
        return Ok(Claim::First(id));
    }
    let stored: Option<String> = redis::cmd("GET").arg(&redis_key).query_async(conn).await?;
    let (first_id, first_digest) = stored.as_deref().and_then(|s| s.split_once(' ')).unwrap_or(("", ""));
    Ok(match first_id {
        // Expired between the two calls: this is a first use after all.
        "" => Claim::First(id),
        first if first_digest == digest => Claim::Replay(first.to_string()),
        first => Claim::Conflict(first.to_string()),
    })
}
