//! `GET /v1/messages/{id}`: a message's status, each recipient's state and its events.

use std::collections::HashMap;

use serde_json::{Value, json};
use sluice_shared::{
    keys,
    model::CampaignSpec,
    redis::{Conn, StoreError, StoreResult},
};

use crate::events;

/// Most events shown with a message (a message has a handful; retries add a few each).
const EVENTS_MAX: usize = 1000;

/// A recipient's state code (see `keys::campaign_state`) in words; no code yet: queued.
fn recipient_status(code: Option<&str>) -> &'static str {
    match code.and_then(|c| c.chars().next()) {
        None | Some('q') => "queued",
        Some('d') => "deferred",
        Some('s') => "sent",
        Some('b') => "bounced",
        Some('f') => "failed",
        Some('p') => "dead_lettered",
        Some('u') => "suppressed",
        Some('z') => "dormant",
        Some('x') => "cancelled",
        Some(_) => "unknown",
    }
}

/// The message's overall status from its recipients': `queued` while any is on its way,
/// then `sent` (all sent), `failed` (none sent) or `partially_sent`.
fn overall(statuses: &[&str]) -> &'static str {
    if statuses.iter().any(|s| matches!(*s, "queued" | "deferred" | "dead_lettered")) {
        return "queued";
    }
    match statuses.iter().filter(|s| **s == "sent").count() {
        n if n == statuses.len() => "sent",
        0 => "failed",
        _ => "partially_sent",
    }
}

/// The message as the API shows it; `None` if there is no such message.
pub async fn get(conn: &mut Conn, id: &str) -> StoreResult<Option<Value>> {
    let (meta, states): (HashMap<String, String>, HashMap<String, String>) =
        redis::pipe().hgetall(keys::campaign_meta(id)).hgetall(keys::campaign_state(id)).query_async(conn).await?;
    let Some(spec) = meta.get("spec") else { return Ok(None) };
    let spec: CampaignSpec = serde_json::from_str(spec).map_err(|e| StoreError::Reply(e.to_string()))?;
    let statuses: Vec<&str> =
        (0..spec.to.len()).map(|i| recipient_status(states.get(&i.to_string()).map(String::as_str))).collect();
    let recipients: Vec<Value> =
        spec.to.iter().zip(&statuses).map(|(email, status)| json!({"email": email, "status": status})).collect();
    let extras = events::Extras::from(&spec);
    let entries = events::read_source(conn, id, None, EVENTS_MAX).await?;
    let events: Vec<Value> = entries.iter().map(|e| events::to_json(id, e, &extras)).collect();
    let time = |field: &str| {
        meta.get(field)
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let status =
        if meta.get("status").map(String::as_str) == Some("cancelled") { "cancelled" } else { overall(&statuses) };
    Ok(Some(json!({
        "id": id,
        "status": status,
        "created_at": time("created_at"),
        "completed_at": time("completed_at"),
        "from": spec.from.email,
        "subject": spec.subject,
        "template": spec.template,
        "tags": spec.tags,
        "metadata": spec.metadata,
        "recipients": recipients,
        "events": events,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_status_follows_the_recipients() {
        assert_eq!(overall(&["sent", "queued"]), "queued");
        assert_eq!(overall(&["sent", "sent"]), "sent");
        assert_eq!(overall(&["sent", "bounced"]), "partially_sent");
        assert_eq!(overall(&["suppressed"]), "failed");
        assert_eq!(recipient_status(Some("q0:1-1")), "queued");
        assert_eq!(recipient_status(Some("d2")), "deferred");
        assert_eq!(recipient_status(None), "queued");
    }
}
