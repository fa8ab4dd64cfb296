//! `GET /v1/warmup`: each From domain and each sending address on a warm-up plan, with today's
//! cap and what it sent.

use axum::{Json, extract::State};
use serde_json::{Value, json};
use sluice_shared::{
    config::{WarmupDay, WarmupSender},
    keys,
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

pub async fn progress(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = chrono::Utc::now();
    let warmup = &state.config.warmup;
    // (label, plan entry, today, counter key)
    let mut rows = Vec::new();
    for (domain, sender) in &warmup.senders {
        if let Some(today) = warmup.today(domain, now) {
            let key = keys::warmup_sent(domain, &today.date.to_string());
            rows.push((domain.clone(), sender, today, key));
        }
    }
    for (address, sender) in &warmup.ips {
        if let Some(today) = warmup.today_ip(*address, now) {
            let key = keys::warmup_ip_sent(&address.to_string(), &today.date.to_string());
            rows.push((format!("ip:{address}"), sender, today, key));
        }
    }
    let mut conn = state.conn().await?;
    let mut senders = Vec::new();
    for (name, sender, today, key) in rows {
        let sent: Option<u64> =
            redis::cmd("GET").arg(&key).query_async(&mut *conn).await.map_err(|e| ApiError::Store(e.into()))?;
        senders.push(entry(name, sender, &today, sent.unwrap_or(0)));
    }
    Ok(Json(json!({"senders": senders})))
}
