//! `GET /v1/hygiene/dormant` (scope `suppressions`): every address the sunset policy calls
//! dormant, streamed as NDJSON or CSV, for review or a CRM's own cleanup.

use axum::{
    extract::{Query, State},
    response::Response,
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sluice_shared::{config::HygieneConfig, engagement};
use tokio::sync::mpsc;

use super::{AppState, error::ApiError};
use crate::{csv::Format, field_error::FieldError};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DormantQuery {
    /// `ndjson` (default) or `csv`.
    format: Option<String>,
    /// Sends since the last engagement; default `hygiene.sunset_after_sends`.
    sends: Option<u32>,
    /// Days since the last engagement; default `hygiene.sunset_after_days`.
    days: Option<u32>,
}

const CSV_HEADER: &str = "email,first_seen,last_sent,last_open,last_click,sends_since_engagement\r\n";

#[utoipa::path(get, path = "/hygiene/dormant", tag = "suppressions", params(DormantQuery),
    responses((status = 200, description = "Every dormant address with its engagement record, streamed",
        content((String = "application/x-ndjson"), (String = "text/csv")))))]
pub async fn dormant(State(state): State<AppState>, Query(q): Query<DormantQuery>) -> Result<Response, ApiError> {
    let invalid = |field: &str, m: &str| ApiError::Field(FieldError::invalid(field, m));
    let format = Format::parse(q.format.as_deref()).map_err(|m| invalid("format", m))?;
    let base = &state.config.hygiene;
    let policy = HygieneConfig {
        sunset_after_sends: q.sends.or(base.sunset_after_sends),
        sunset_after_days: q.days.or(base.sunset_after_days),
        ..base.clone()
    };
    if !policy.sunsets() {
        return Err(invalid(
            "sends",
            "no sunset policy: set hygiene.sunset_after_sends or _days, or pass sends= or days=",
        ));
    }
    if q.sends == Some(0) || q.days == Some(0) {
        return Err(invalid(if q.sends == Some(0) { "sends" } else { "days" }, "must be at least 1"));
    }
    let (send, receive) = mpsc::channel(4);
    let pool = state.pool.clone();
    tokio::spawn(async move {
        if let Err(e) = pump(&pool, &policy, format, &send).await {
            tracing::warn!(error = %e, "dormant export cut off");
            let _ = send.send(Err(std::io::Error::other("dormant export failed"))).await;
        }
    });
    Ok(super::streamed(format, receive))
}

async fn pump(
    pool: &sluice_shared::redis::Pool,
    policy: &HygieneConfig,
    format: Format,
    send: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    if format == Format::Csv && send.send(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))).await.is_err() {
        return Ok(());
    }
    let today = engagement::day(chrono::Utc::now());
    let mut next = Some(0);
    while let Some(from) = next {
        let (found, after) = crate::hygiene::dormant_step(&mut conn, policy, from).await?;
        next = after;
        let mut chunk = String::new();
        for (address, record) in &found {
            let v = record.view(policy, today);
            match format {
                Format::Ndjson => {
                    chunk.push_str(&json!({"email": address, "engagement": v}).to_string());
                    chunk.push('\n');
                }
                Format::Csv => {
                    let date = |d: &Option<String>| d.clone().unwrap_or_default();
                    let cells = [
                        address.clone(),
                        date(&v.first_seen),
                        date(&v.last_sent),
                        date(&v.last_open),
                        date(&v.last_click),
                        v.sends_since_engagement.to_string(),
                    ];
                    let line: Vec<String> = cells.iter().map(|c| crate::csv::cell(c)).collect();
                    chunk.push_str(&line.join(","));
                    chunk.push_str("\r\n");
                }
            }
        }
        if !chunk.is_empty() && send.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
