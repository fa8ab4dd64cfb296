//! `/v1/campaigns` handlers.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::StatusCode,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_shared::model::CampaignStatus;
use tokio_util::{codec::FramedRead, io::StreamReader};

use super::{AppState, error::ApiError};
use crate::{
    campaign::{
        ndjson::{self, LineRejection},
        store::{self, Action, StageRefused, Transition},
        submit::{Submitted, submit},
    },
    field_error::FieldError,
};

#[utoipa::path(post, path = "/campaigns", tag = "campaigns",
    request_body = crate::campaign::request::CampaignInput,
    responses((status = 201, description = "Created", body = Object), (status = 200, description = "The same id and body again: the first answer", body = Object)))]
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let mut conn = state.conn().await?;
    let new_id = || uuid::Uuid::now_v7().simple().to_string();
    let done = submit(&mut conn, &state.config, &body, new_id, "api").await?;
    let code = if done.replay { StatusCode::OK } else { StatusCode::CREATED };
    Ok((code, Json(done)))
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign, its status and counts", body = Object)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<store::CampaignView>, ApiError> {
    let mut conn = state.conn().await?;
    store::get(&mut conn, &id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("campaign {id:?}")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(Page),
    responses((status = 200, description = "A page of campaigns, newest first: items, next_cursor", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let offset = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::Field(FieldError::invalid("cursor", "must be a cursor from a previous page")))?,
    };
    let limit = super::page_limit(page.limit, 50, 500)?;
    let mut conn = state.conn().await?;
    let (items, next) = store::list(&mut conn, offset, limit).await?;
    Ok(Json(json!({"items": items, "next_cursor": next.map(|n| n.to_string())})))
}

#[utoipa::path(post, path = "/campaigns/{id}/{action}", tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id"), ("action" = String, Path, description = "start, pause, resume or cancel")),
    responses((status = 200, description = "The campaign's id and status", body = Object)))]
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let Some(action) = Action::parse(&action) else {
        return Err(ApiError::NotFound(format!("action {action:?} (use start, pause, resume or cancel)")));
    };
    let mut conn = state.conn().await?;
    let transition = store::transition(&mut conn, &id, action, state.config.campaigns.events_maxlen).await?;
    if matches!(transition, Transition::Done(_)) && action == Action::Resume {
        crate::reputation::start_over(&mut conn, &id).await?;
    }
    match transition {
        Transition::Done(s) | Transition::Unchanged(s) => {
            tracing::info!(campaign = %id, action = action.as_str(), status = %s, "campaign transition");
            Ok(Json(json!({"id": id, "status": s})))
        }
        Transition::Refused(s) => Err(ApiError::Conflict(format!("cannot {} a campaign that is {s}", action.as_str()))),
        Transition::Missing => Err(ApiError::NotFound(format!("campaign {id:?}"))),
    }
}

#[derive(Serialize)]
pub struct UploadReply {
    id: String,
    accepted: usize,
    rejected_count: usize,
    /// The first rejections (at most [`MAX_REPORTED`]).
    rejected: Vec<LineRejection>,
}

const CHUNK: usize = 1000;
const MAX_REPORTED: usize = 1000;

/// Streams an NDJSON body into a draft campaign in chunks, at bounded memory.
#[utoipa::path(post, path = "/campaigns/{id}/recipients", tag = "campaigns", params(("id" = String, Path, description = "A draft campaign's id")),
    request_body(content = String, content_type = "application/x-ndjson", description = "One recipient object per line: {\"email\": ..., \"vars\": {...}}"),
    responses((status = 200, description = "Accepted and rejected counts, the first 1,000 rejections", body = Object)))]
pub async fn upload_recipients(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<UploadReply>, ApiError> {
    let mut conn = state.conn().await?;
    let current = store::get(&mut conn, &id).await?.ok_or_else(|| ApiError::NotFound(format!("campaign {id:?}")))?;
    if current.status != CampaignStatus::Draft {
        return Err(ApiError::Conflict(format!(
            "recipients can be uploaded only to a draft campaign; this one is {}",
            current.status
        )));
    }
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let mut lines = FramedRead::new(reader, ndjson::UploadLines::default());
    let mut reply = UploadReply { id: id.clone(), accepted: 0, rejected_count: 0, rejected: Vec::new() };
    let mut chunk: Vec<String> = Vec::with_capacity(CHUNK);
    let mut number = 0;
    loop {
        let line = match ndjson::next_text_line(&mut lines, &mut number, |r| reject(&mut reply, r)).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::Field(FieldError::invalid(
                    "body",
                    format!("upload interrupted after {} accepted recipients: {e}", reply.accepted),
                )));
            }
        };
        match ndjson::recipient_line(number, &line) {
            Ok(Some(staged)) => chunk.push(serde_json::to_string(&staged).expect("serialises")),
            Ok(None) => {}
            Err(refused) => reject(&mut reply, refused),
        }
        if chunk.len() >= CHUNK {
            flush(&mut conn, &id, &mut chunk, &mut reply).await?;
        }
    }
    flush(&mut conn, &id, &mut chunk, &mut reply).await?;
    tracing::info!(campaign = %id, accepted = reply.accepted, rejected = reply.rejected_count, "recipients uploaded");
    Ok(Json(reply))
}

fn reject(reply: &mut UploadReply, refused: LineRejection) {
    reply.rejected_count += 1;
    if reply.rejected.len() < MAX_REPORTED {
        reply.rejected.push(refused);
    }
}

async fn flush(
    conn: &mut sluice_shared::redis::Pooled,
    id: &str,
    chunk: &mut Vec<String>,
    reply: &mut UploadReply,
) -> Result<(), ApiError> {
    if chunk.is_empty() {
        return Ok(());
    }
    match store::stage(conn, id, chunk).await? {
        Ok(n) => reply.accepted += n,
        Err(StageRefused::Missing) => return Err(ApiError::NotFound(format!("campaign {id:?}"))),
        Err(StageRefused::NotDraft(s)) => {
            return Err(ApiError::Conflict(format!(
                "campaign became {s} during the upload; {} recipients were accepted before that",
                reply.accepted
            )));
        }
    }
    metrics::counter!(sluice_shared::metrics::INTAKE_RECIPIENTS, "result" => "accepted").increment(chunk.len() as u64);
    chunk.clear();
    Ok(())
}
