//! `/v1/dead-letters`: jobs that kept killing or stalling their workers. Listing and requeue.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::{
    keys,
    model::Job,
    redis::{
        StoreError,
        scripts::campaign::{self, Requeue},
    },
};

use super::{AppState, error::ApiError};
use crate::field_error::FieldError;

type Fields = HashMap<String, redis::Value>;

fn view(id: &str, fields: &Fields) -> Value {
    let text = |k: &str| fields.get(k).and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
    let ms = sluice_shared::redis::entry_id::millis(id);
    json!({
        "id": id,
        "campaign": text("c"),
        "index": text("i").and_then(|i| i.parse::<u64>().ok()),
        "recipient": text("r"),
        "domain": text("domain"),
        "attempt": text("a").and_then(|a| a.parse::<u32>().ok()),
        "deliveries": text("deliveries").and_then(|d| d.parse::<u64>().ok()),
        "dead_lettered_at": ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339()),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Oldest first; `next_cursor` is the last id of the page, `null` on the last page.
#[utoipa::path(get, path = "/dead-letters", tag = "operations", params(Page),
    responses((status = 200, description = "A page of dead-lettered jobs: items, next_cursor", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(page.limit, 100, 1000)?;
    let start = match page.cursor.as_deref() {
        None | Some("") => "-".to_string(),
        Some(c) if sluice_shared::redis::entry_id::is_valid(c) => format!("({c}"),
        Some(_) => return Err(ApiError::Field(FieldError::invalid("cursor", "must be a cursor from a previous page"))),
    };
    let mut conn = state.conn().await?;
    let entries: Vec<(String, Fields)> = redis::cmd("XRANGE")
        .arg(keys::dead_letters())
        .arg(&start)
        .arg("+")
        .arg("COUNT")
        .arg(limit + 1)
        .query_async(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let more = entries.len() > limit;
    let items: Vec<Value> = entries.iter().take(limit).map(|(id, f)| view(id, f)).collect();
    let next = more.then(|| entries[limit - 1].0.clone());
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

/// Puts a dead-lettered job back: the recipient's state is restored and the job waits in its
/// campaign's retry set, due now, with a fresh max age.
#[utoipa::path(post, path = "/dead-letters/{id}/requeue", tag = "operations", params(("id" = String, Path, description = "Dead letter id")),
    responses((status = 200, description = "Requeued", body = Object)))]
pub async fn requeue(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let mut conn = state.conn().await?;
    let found: Vec<(String, Fields)> = redis::cmd("XRANGE")
        .arg(keys::dead_letters())
        .arg(&id)
        .arg(&id)
        .query_async(&mut *conn)
        .await
        .map_err(|_| ApiError::NotFound(format!("dead letter {id:?}")))?;
    let Some((_, fields)) = found.first() else { return Err(ApiError::NotFound(format!("dead letter {id:?}"))) };
    let job = Job::from_fields(fields).map_err(|e| ApiError::Store(StoreError::Reply(e)))?;
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let member = Job { queued_at_ms: now, parked: false, ..job.clone() }.member();
    let requeued = campaign::requeue(&mut conn, &job.campaign, job.index, job.attempt, &member).await?;
    let drop_record = || async {
        let mut conn = state.conn().await?;
        redis::cmd("XDEL")
            .arg(keys::dead_letters())
            .arg(&id)
            .query_async::<i64>(&mut *conn)
            .await
            .map_err(|e| ApiError::Store(e.into()))
    };
    match requeued {
        Requeue::Requeued(status) => {
            // A message goes back to the messages' due index, a campaign to the active set.
            sluice_shared::attention::look_after(&mut conn, &job.campaign).await?;
            drop_record().await?;
            tracing::info!(campaign = %job.campaign, index = job.index, "dead letter requeued");
            Ok(Json(
                json!({"id": id, "campaign": job.campaign, "index": job.index, "status": "requeued", "campaign_status": status}),
            ))
        }
        Requeue::NotPoisoned => {
            drop_record().await?;
            Err(ApiError::Conflict(format!("dead letter {id:?} was already requeued or handled")))
        }
        Requeue::Cancelled => Err(ApiError::Conflict(format!("campaign {:?} is cancelled", job.campaign))),
        Requeue::Missing => Err(ApiError::NotFound(format!("campaign {:?}", job.campaign))),
    }
}
