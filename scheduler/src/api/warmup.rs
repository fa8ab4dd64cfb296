//! `GET /v1/warmup`: each From domain and each sending address on a warm-up plan, with today's
//! cap and what it sent.

use axum::{Json, extract::State};
use serde_json::{Value, json};
use sluice_shared::{
    config::{WarmupDay, WarmupSender},
    warmup::Sender,
};

use super::{AppState, error::ApiError};

fn entry(name: String, sender: &WarmupSender, today: &WarmupDay, sent: u64) -> Value {
    json!({
        "sender": name,
        "plan": today.plan,
        "start": sender.start.to_string(),
        "day": today.day,
        "date": today.date.to_string(),
        "cap": today.cap,
        "sent_today": sent,
        "remaining_today": today.cap.map(|c| c.saturating_sub(sent)),
        "complete": today.cap.is_none(),
    })
}

#[utoipa::path(get, path = "/warmup", tag = "operations",
    responses((status = 200, description = "Each sender's warm-up day, cap and what it sent today", body = Object)))]
pub async fn progress(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = chrono::Utc::now();
    let warmup = &state.config.warmup;
    let mut rows = Vec::new();
    for (domain, sender) in &warmup.senders {
        if let Some(today) = warmup.today(domain, now) {
            rows.push((Sender::Domain(domain), sender, today));
        }
    }
    for (address, sender) in &warmup.ips {
        if let Some(today) = warmup.today_ip(*address, now) {
            rows.push((Sender::Ip(*address), sender, today));
        }
    }
    let mut conn = state.conn().await?;
    let mut senders = Vec::new();
    for (who, sender, today) in rows {
        let sent: Option<u64> = redis::cmd("GET")
            .arg(who.counter(&today))
            .query_async(&mut *conn)
            .await
            .map_err(|e| ApiError::Store(e.into()))?;
        senders.push(entry(who.label(), sender, &today, sent.unwrap_or(0)));
    }
    Ok(Json(json!({"senders": senders})))
}
