//! `/v1/webhooks` (admin): list endpoints with their delivery state, add and remove
//! endpoints made over the API. Config endpoints are listed but not removable here.

use std::collections::HashMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::{keys, validate};

use super::{AppState, error::ApiError};
use crate::{
    field_error::{ErrorKind, FieldError},
    webhook::{deliver, endpoints, guard},
};

/// A webhook endpoint to create (`POST /v1/webhooks`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    id: String,
    url: String,
    #[serde(default)]
    events: Vec<String>,
    secret: Option<String>,
    /// Also deliver the events still in the feed from before the endpoint existed.
    #[serde(default)]
    backfill: bool,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Field(FieldError::invalid(field, message))
}

#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    request_body = NewEndpoint,
    responses((status = 201, description = "Created; the secret is shown only here", body = Object)))]
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: NewEndpoint = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Field(FieldError {
            field: "body".into(),
            message: format!("invalid JSON: {e}"),
            kind: ErrorKind::Malformed,
        })
    })?;
    validate::webhook_id(&input.id).map_err(|m| invalid("id", m))?;
    validate::webhook_url(&input.url, state.config.webhooks.allow_http).map_err(|m| invalid("url", m))?;
    // Parsed as the delivery will parse it, so every spelling of an internal address
    // (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) is refused here already.
    let url = reqwest::Url::parse(&input.url).map_err(|e| invalid("url", format!("does not parse: {e}")))?;
    guard::check_literal(&state.config.webhooks.address_policy(), &url).map_err(|m| invalid("url", m))?;
    validate::event_types(&input.events).map_err(|m| invalid("events", m))?;
    let secret = match input.secret {
        Some(s) if s.len() < 16 => return Err(invalid("secret", "needs at least 16 characters")),
        Some(s) => s,
        None => {
            use rand::Rng;
            hex::encode(rand::rng().random::<[u8; 32]>())
        }
    };
    if state.config.webhooks.endpoints.iter().any(|e| e.id == input.id) {
        return Err(ApiError::Conflict(format!("webhook {:?} is defined in the config file", input.id)));
    }
    let endpoint =
        endpoints::Endpoint { id: input.id, url: input.url, secret, events: input.events, source: "api".into() };
    let mut conn = state.conn().await?;
    if !endpoints::create(&mut conn, &endpoint).await? {
        return Err(ApiError::Conflict(format!("webhook {:?} already exists", endpoint.id)));
    }
    // A new endpoint receives what happens from now on, unless it asks for the past too.
    deliver::start_cursor(&mut conn, &endpoint.id, !input.backfill).await?;
    // The secret is shown once, here.
    let body = json!({"id": endpoint.id, "url": endpoint.url, "events": endpoint.events, "secret": endpoint.secret});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn views(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let mut conn = state.conn().await?;
    let list = endpoints::all(&mut conn, &state.config).await?;
    let seqs = deliver::feed_seqs(&mut conn).await?;
    let mut out = Vec::new();
    for e in &list {
        let st: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::webhook_state(&e.id))
            .query_async(&mut *conn)
            .await
            .map_err(|e| ApiError::Store(e.into()))?;
        out.push(deliver::view(e, &st, &seqs));
    }
    Ok(out)
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every endpoint and its delivery state", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": views(&state).await?})))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "One endpoint and its delivery state", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let found = views(&state).await?.into_iter().find(|v| v["id"] == id.as_str());
    found.map(Json).ok_or(ApiError::NotFound(format!("webhook {id:?}")))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.config.webhooks.endpoints.iter().any(|e| e.id == id) {
        return Err(ApiError::Conflict(format!("webhook {id:?} is defined in the config file; remove it there")));
    }
    let mut conn = state.conn().await?;
    if endpoints::delete(&mut conn, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("webhook {id:?}")))
    }
}
