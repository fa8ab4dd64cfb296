//! `/v1/messages`: send one transactional message; read its status and events.
//! An `Idempotency-Key` header makes a retried send safe: the key (per API key, for
//! `messages.idempotency_window`) maps to the first request's message id and body digest; the
//! same body again answers with that id, a different body is refused.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_shared::lane;

use super::{
    AppState,
    auth::Principal,
    error::{ApiError, ErrorBody},
};
use crate::{
    field_error::FieldError,
    message::{
        self,
        idempotency::{self, Claim},
    },
};

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[utoipa::path(post, path = "/messages", tag = "messages",
    request_body(content = Object, description = "A transactional message: from, to, subject, html and/or text (or template, template_version), vars, headers, tags, metadata, tracking, reply_to, charset (utf-8, iso-2022-jp), locale"),
    responses((status = 202, description = "Queued: the message id and recipient count", body = Object), (status = 200, description = "The same Idempotency-Key and body again", body = Object), (status = 429, description = "The API key is over its send_rate; Retry-After says when to try again", body = ErrorBody)))]
pub async fn send(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut conn = state.conn().await?;
    if let Some((message, retry_after)) = principal.over_send_rate(&mut conn).await? {
        return Err(ApiError::RateLimited { message, retry_after });
    }
    let idempotency = idempotency_key(&headers)?;
    let (id, replayed) = match &idempotency {
        None => (message::new_id(), false),
        Some(key) => claim_key(&state, &mut conn, &principal.id, key, &body).await?,
    };
    let accepted = message::send(&mut conn, &state.config, &state.enqueuer, &body, &id).await?;
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if replayed {
        response.headers_mut().insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let bad = || ApiError::Field(FieldError::invalid(IDEMPOTENCY_HEADER, "must be 1-255 printable ASCII characters"));
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// The message id for this key: a new one (first use), or the first request's (a replay).
async fn claim_key(
    state: &AppState,
    conn: &mut sluice_shared::redis::Pooled,
    key_id: &str,
    key: &str,
    body: &[u8],
) -> Result<(String, bool), ApiError> {
    let digest = hex::encode(Sha256::digest(body));
    let window = state.config.messages.idempotency_window.as_millis();
    let claimed =
        idempotency::claim(conn, window, key_id, key, &digest).await.map_err(|e| ApiError::Store(e.into()))?;
    match claimed {
        Claim::First(id) => Ok((id, false)),
        Claim::Replay(id) => Ok((id, true)),
        Claim::Conflict(first_id) => Err(ApiError::Conflict(format!(
            "{IDEMPOTENCY_HEADER} was first used with a different body (message {first_id})"
        ))),
    }
}

#[utoipa::path(get, path = "/messages/{id}", tag = "messages", params(("id" = String, Path, description = "Message id (msg_...)")),
    responses((status = 200, description = "The message and its recipients' state", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if !lane::is_message(&id) {
        return Err(ApiError::NotFound(format!("message {id:?}")));
    }
    let mut conn = state.conn().await?;
    message::view::get(&mut conn, &id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("message {id:?}")))
}
