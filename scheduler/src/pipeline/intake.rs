//! The Redis intake: external systems XADD campaigns to `sluice:intake` (field `campaign`).
//! Schedulers read it through one consumer group, so each entry is handled once; an entry
//! without an `id` gets `intake-<entry id>`, so handling it again after a crash is a replay.
//! Rejected entries are recorded on `sluice:intake:errors`.

use sluice_shared::redis::Conn;

use redis::{AsyncCommands, streams::StreamReadReply};
use sluice_shared::{
    config::Config,
    keys,
    redis::{StoreResult, scripts::stream},
};

use crate::campaign::submit::{SubmitError, submit};

const BATCH: usize = 20;
/// Rejection records kept (approximately).
const ERRORS_MAXLEN: usize = 10_000;

pub async fn prepare(conn: &mut Conn) -> StoreResult<()> {
    sluice_shared::redis::ensure_group(conn, &keys::intake(), keys::INTAKE_GROUP).await
}

/// Handles up to one batch of intake entries (reclaimed ones first); returns how many.
pub async fn poll(conn: &mut Conn, consumer: &str, config: &Config) -> StoreResult<usize> {
    let reclaim_idle = config.scheduler.reclaim_idle.get();
    let claimed: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(keys::intake())
        .arg(keys::INTAKE_GROUP)
        .arg(consumer)
        .arg(reclaim_idle.as_millis() as u64)
        .arg("0-0")
        .arg("COUNT")
        .arg(BATCH)
        .query_async(conn)
        .await?;
    let mut entries = claimed.claimed;
    if entries.is_empty() {
        let opts = redis::streams::StreamReadOptions::default().group(keys::INTAKE_GROUP, consumer).count(BATCH);
        let reply: Option<StreamReadReply> = conn.xread_options(&[keys::intake()], &[">"], &opts).await?;
        entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
    }
    if !entries.is_empty() {
        sluice_shared::crash::point("scheduler::intake_read");
    }
    let mut handled = Vec::with_capacity(entries.len());
    for entry in &entries {
        let body: Option<String> = entry.get("campaign");
        let outcome = match &body {
            Some(body) => {
                let fallback = format!("intake-{}", entry.id);
                submit(conn, config, body.as_bytes(), move || fallback, "stream").await.map(|_| ())
            }
            None => Err(SubmitError::Field(crate::field_error::FieldError::invalid(
                "campaign",
                "entry has no `campaign` field",
            ))),
        };
        match outcome {
            Ok(()) => {}
            Err(SubmitError::Store(e)) => return Err(e),
            Err(rejected) => record_rejection(conn, &entry.id, &rejected, body.as_deref().unwrap_or("")).await?,
        }
        handled.push(entry.id.clone());
    }
    if !handled.is_empty() {
        stream::ack(conn, &keys::intake(), keys::INTAKE_GROUP, &handled).await?;
    }
    Ok(handled.len())
}

async fn record_rejection(conn: &mut Conn, entry: &str, error: &SubmitError, body: &str) -> StoreResult<()> {
    let (field, message) = match error {
        SubmitError::Field(f) => (f.field.clone(), f.message.clone()),
        other => ("id".to_string(), other.to_string()),
    };
    tracing::warn!(entry, field, message, "intake entry rejected");
    metrics::counter!(sluice_shared::metrics::INTAKE_ERRORS).increment(1);
    let excerpt: String = body.chars().take(4096).collect();
    redis::cmd("XADD")
        .arg(keys::intake_errors())
        .arg("MAXLEN")
        .arg("~")
        .arg(ERRORS_MAXLEN)
        .arg("*")
        .arg(&[
            ("entry", entry),
            ("field", field.as_str()),
            ("error", message.as_str()),
            ("campaign", excerpt.as_str()),
        ])
        .query_async::<()>(conn)
        .await?;
    Ok(())
}
