//! Moves staged recipients of running campaigns into per-domain streams, skipping suppressed
//! addresses (see [`crate::suppression::blocked`]). Safe with several schedulers: the commit is a compare-and-set on the cursor.

use sluice_shared::redis::Conn;
use sluice_shared::{
    config::Config,
    lane,
    model::{Expansion, Job, Staged},
    redis::{StoreError, StoreResult, scripts::campaign},
};

use super::enqueue::Enqueuer;

/// What one expansion step saw.
pub struct Peeked {
    pub status: String,
    pub moved: usize,
}

/// Expands at most one chunk of campaign `id`.
pub async fn expand_chunk(conn: &mut Conn, enqueuer: &Enqueuer, config: &Config, id: &str) -> StoreResult<Peeked> {
    let (cfg, events_maxlen, hygiene) = (&config.scheduler, config.campaigns.events_maxlen, &config.hygiene);
    let peek = campaign::expand_peek(conn, id, cfg.expand_chunk, cfg.expand_window).await?;
    if peek.staged.is_empty() {
        return Ok(Peeked { status: peek.status, moved: 0 });
    }
    let (first, now) = (peek.cursor, peek.now_ms);
    let recipients: Vec<Staged> = peek
        .staged
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Reply(format!("staged recipient: {e}")))?;
    let expansion = Expansion::from_stored(&peek.expansion).map_err(StoreError::Reply)?;
    let addresses: Vec<String> = recipients.iter().map(|r| r.recipient.to_ascii_lowercase()).collect();
    let message = lane::is_message(id);
    let blocked = crate::suppression::blocked(conn, &addresses, message, &expansion).await?;
    // Transactional messages are never skipped as dormant nor counted as sends.
    let open: Vec<&str> =
        addresses.iter().zip(&blocked).filter(|(_, b)| !**b && !message).map(|(a, _)| a.as_str()).collect();
    let sleeping = crate::hygiene::screen(conn, hygiene, &open, expansion.include_dormant).await?;
    let mut sleeping = sleeping.into_iter();
    let mut jobs = Vec::with_capacity(recipients.len());
    let (mut suppressed, mut dormant) = (Vec::new(), Vec::new());
    for (k, r) in recipients.into_iter().enumerate() {
        let index = first + k as u64;
        if blocked[k] {
            suppressed.push((index, r.recipient));
            continue;
        }
        if !message && sleeping.next().unwrap_or(false) {
            dormant.push((index, r.recipient));
            continue;
        }
        jobs.push(Job::from_staged(id, index, r, now));
    }
    enqueuer.push(conn, &jobs, "expand").await?;
    let queued: Vec<(u64, &str)> = jobs.iter().map(|j| (j.index, j.recipient.as_str())).collect();
    let chunk = campaign::Expanded {
        cursor: first,
        moved: peek.staged.len(),
        events_maxlen,
        suppressed: &suppressed,
        dormant: &dormant,
        queued: &queued,
    };
    if !campaign::expand_commit(conn, id, &chunk).await? {
        tracing::debug!(campaign = %id, "chunk expanded concurrently by another scheduler");
    }
    Ok(Peeked { status: peek.status, moved: peek.staged.len() })
}
