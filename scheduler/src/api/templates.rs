//! `/v1/templates`: stored, versioned templates (see `crate::template`).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::validate;

use super::{AppState, error::ApiError};
use crate::{field_error::FieldError, template};

fn check_id(id: &str) -> Result<(), ApiError> {
    validate::template_id(id).map_err(|m| ApiError::Field(FieldError::invalid("id", m)))
}

fn view(id: &str, v: &template::Version) -> Value {
    let created = chrono::DateTime::from_timestamp_millis(v.created_at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    json!({"id": id, "version": v.version, "created_at": created, "subject": v.subject, "html": v.html, "text": v.text})
}

#[utoipa::path(put, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "Template id")),
    request_body = crate::template::VersionInput,
    responses((status = 201, description = "Created (version 1)", body = Object), (status = 200, description = "A new version", body = Object)))]
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_id(&id)?;
    let version = template::parse(&body, state.config.campaigns.max_body_bytes).map_err(ApiError::Field)?;
    let mut conn = state.conn().await?;
    let n = template::put(&mut conn, &id, &version).await?;
    let code = if n == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(json!({"id": id, "version": n}))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    version: Option<u64>,
}

#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "Template id"), VersionQuery),
    responses((status = 200, description = "The template (latest or the given version)", body = Object)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let mut conn = state.conn().await?;
    let found = template::get(&mut conn, &id, q.version).await?;
    let what = match q.version {
        Some(v) => format!("template {id:?} version {v}"),
        None => format!("template {id:?}"),
    };
    found.map(|v| Json(view(&id, &v))).ok_or(ApiError::NotFound(what))
}

#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "Template id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    let mut conn = state.conn().await?;
    if template::delete(&mut conn, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("template {id:?}")))
    }
}

#[utoipa::path(get, path = "/templates", tag = "templates",
    responses((status = 200, description = "Every template's latest version", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut conn = state.conn().await?;
    let items: Vec<Value> =
        template::list(&mut conn, 1000).await?.into_iter().map(|(id, n)| json!({"id": id, "version": n})).collect();
    Ok(Json(json!({"items": items})))
}
