//! `GET /v1/warmup`: each From domain on a warm-up plan, with today's cap and what it sent.

use axum::{Json, extract::State};
use serde_json::{Value, json};
use sluice_shared::keys;

use super::{AppState, error::ApiError};

pub async fn progress(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = chrono::Utc::now();
    let warmup = &state.config.warmup;
    let mut conn = state.conn().await?;
    let mut senders = Vec::new();
    for (domain, sender) in &warmup.senders {
        let Some(today) = warmup.today(domain, now) else { continue };
        let sent: Option<u64> = redis::cmd("GET")
            .arg(keys::warmup_sent(domain, &today.date.to_string()))
            .query_async(&mut *conn)
            .await
            .map_err(|e| ApiError::Store(e.into()))?;
        let sent = sent.unwrap_or(0);
        senders.push(json!({
            "sender": domain,
            "plan": today.plan,
            "start": sender.start.to_string(),
            "day": today.day,
            "date": today.date.to_string(),
            "cap": today.cap,
            "sent_today": sent,
            "remaining_today": today.cap.map(|c| c.saturating_sub(sent)),
            "complete": today.cap.is_none(),
        }));
    }
    Ok(Json(json!({"senders": senders})))
}
