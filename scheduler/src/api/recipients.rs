//! `GET /v1/recipients/{email}` (scope `campaigns:read`): what Sluice keeps about an address
//! for list hygiene (its engagement record) and its suppressions. `DELETE /v1/recipients/{email}`
//! (scope `privacy`): erase an address from everything Sluice keeps ([`crate::erase`]). The
//! audit log records the erase under the address's hash, never the address.

use axum::{
    Json,
    extract::{Path, State},
};
use redis::AsyncCommands;
use serde_json::{Value, json};
use sluice_shared::{engagement, keys, suppression};

use super::{AppState, error::ApiError};
use crate::erase::{self, EraseError, Erased};

#[utoipa::path(get, path = "/recipients/{email}", tag = "history",
    params(("email" = String, Path, description = "The address (any case)")),
    responses((status = 200, description = "email, engagement (first_seen, last_sent, last_open, last_click, sends_since_engagement, dormant) and suppressions", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(email): Path<String>) -> Result<Json<Value>, ApiError> {
    let email = super::history::address("email", &email)?;
    let mut conn = state.conn().await?;
    let record = crate::hygiene::record(&mut conn, &email).await?;
    let all: Option<String> = conn.hget(keys::suppressed(), &email).await.map_err(|e| ApiError::Store(e.into()))?;
    let unsubscribed: Option<String> =
        conn.hget(keys::unsubscribed(), &email).await.map_err(|e| ApiError::Store(e.into()))?;
    let suppressions = suppression::entries(&email, all.as_deref(), unsubscribed.as_deref());
    if record.is_none() && suppressions.is_empty() {
        return Err(ApiError::NotFound(format!("recipient {email:?} (no engagement record, no suppression)")));
    }
    let today = engagement::day(chrono::Utc::now());
    let engagement = record.map(|r| r.view(&state.config.hygiene, today));
    Ok(Json(json!({"email": email, "engagement": engagement, "suppressions": suppressions})))
}

#[utoipa::path(delete, path = "/recipients/{email}", tag = "history",
    params(("email" = String, Path, description = "The address to erase (any case)")),
    responses((status = 200, description = "What was removed where; the address stays suppressed under its SHA-256", body = Object),
        (status = 409, description = "Mail to the address is in flight: erase once it is sent, or cancel first", body = Object)))]
pub async fn erase_one(State(state): State<AppState>, Path(email): Path<String>) -> Result<Json<Erased>, ApiError> {
    let email = super::history::address("email", &email)?;
    let mut conn = state.conn().await?;
    match erase::erase(&mut conn, state.history.as_ref(), &email).await {
        Ok(done) => {
            tracing::info!(erased = %done.erased, "address erased");
            Ok(Json(done))
        }
        Err(EraseError::InFlight(sources)) => Err(ApiError::Conflict(format!(
            "mail to this address is in flight in {}; erase it once sent, or cancel first (nothing was changed)",
            sources.join(", ")
        ))),
        Err(EraseError::Store(e)) => Err(ApiError::Store(e)),
        Err(EraseError::History(e)) => Err(e.into()),
    }
}
