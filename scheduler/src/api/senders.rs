//! `GET /v1/senders/{domain}`: a From domain's reputation as the guard sees it.

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::Value;
use sluice_shared::validate;

use super::{AppState, error::ApiError};
use crate::field_error::FieldError;

/// Hard-bounce, complaint and deferral rates over about the last `reputation.window` attempts,
/// overall and per provider, with what they say (`ok`, `warn`, `pause`).
#[utoipa::path(get, path = "/senders/{domain}", tag = "senders", params(("domain" = String, Path, description = "A From domain")),
    responses((status = 200, description = "counts, rates_percent, findings, status, providers", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(domain): Path<String>) -> Result<Json<Value>, ApiError> {
    let domain = validate::domain(&domain).map_err(|m| ApiError::Field(FieldError::invalid("domain", m)))?;
    let mut conn = state.conn().await?;
    match crate::reputation::sender(&mut conn, &state.config.reputation, &domain).await? {
        Some(view) => Ok(Json(view)),
        None => {
            Err(ApiError::NotFound(format!("outcomes of From domain {domain:?} (none counted in the last 30 days)")))
        }
    }
}
