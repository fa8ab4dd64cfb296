//! `/v1/suppressions`: addresses that are never sent to.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::{keys, validate};

use super::{AppState, error::ApiError};
use crate::field_error::FieldError;

/// The suppression key of an address: the whole address, lower-cased, domain IDNA-normalised.
pub fn suppression_key(email: &str) -> Result<String, ApiError> {
    validate::email(email)
        .map(|e| e.address.to_ascii_lowercase())
        .map_err(|m| ApiError::Field(FieldError::invalid("email", m)))
}

/// Why an address is suppressed (`PUT /v1/suppressions/{email}`; the body may be empty).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    reason: Option<String>,
}

#[utoipa::path(put, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address")),
    request_body = PutBody,
    responses((status = 201, description = "Suppressed", body = Object), (status = 200, description = "Already suppressed; updated", body = Object)))]
pub async fn put(
    State(state): State<AppState>,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = suppression_key(&email)?;
    let input: PutBody = if body.iter().all(u8::is_ascii_whitespace) {
        PutBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Field(FieldError::invalid("body", e.to_string())))?
    };
    let record = sluice_shared::suppression::entry(input.reason.as_deref().unwrap_or("manual"), "api", None, None);
    let mut conn = state.conn().await?;
    let added: i64 =
        conn.hset(keys::suppressed(), &key, record.to_string()).await.map_err(|e| ApiError::Store(e.into()))?;
    let code = if added == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(with_email(&key, record))))
}

fn with_email(email: &str, mut record: Value) -> Value {
    record["email"] = Value::String(email.to_string());
    record
}

#[utoipa::path(get, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address")),
    responses((status = 200, description = "The suppression", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(email): Path<String>) -> Result<Json<Value>, ApiError> {
    let key = suppression_key(&email)?;
    let mut conn = state.conn().await?;
    let found: Option<String> = conn.hget(keys::suppressed(), &key).await.map_err(|e| ApiError::Store(e.into()))?;
    let record = found.ok_or_else(|| ApiError::NotFound(format!("suppression for {key:?}")))?;
    Ok(Json(with_email(&key, serde_json::from_str(&record).unwrap_or(Value::Null))))
}

#[utoipa::path(delete, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address")),
    responses((status = 204, description = "Removed")))]
pub async fn delete(State(state): State<AppState>, Path(email): Path<String>) -> Result<StatusCode, ApiError> {
    let key = suppression_key(&email)?;
    let mut conn = state.conn().await?;
    let removed: i64 = conn.hdel(keys::suppressed(), &key).await.map_err(|e| ApiError::Store(e.into()))?;
    if removed == 0 {
        return Err(ApiError::NotFound(format!("suppression for {key:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    cursor: Option<u64>,
    limit: Option<usize>,
}

/// A page of suppressions (HSCAN order); `next_cursor` is null on the last page.
#[utoipa::path(get, path = "/suppressions", tag = "suppressions", params(Page),
    responses((status = 200, description = "A page of suppressions: items, next_cursor", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(page.limit, 100, 1000)?;
    let mut conn = state.conn().await?;
    let (next, pairs): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
        .arg(keys::suppressed())
        .arg(page.cursor.unwrap_or(0))
        .arg("COUNT")
        .arg(limit)
        .query_async(&mut *conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    let items: Vec<Value> =
        pairs.into_iter().map(|(k, v)| with_email(&k, serde_json::from_str(&v).unwrap_or(Value::Null))).collect();
    Ok(Json(json!({"items": items, "next_cursor": (next != 0).then(|| next.to_string())})))
}
