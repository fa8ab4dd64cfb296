//! `DELETE /v1/recipients/{email}` (scope `privacy`): erase an address from everything Sluice
//! keeps ([`crate::erase`]). The audit log records the call under the address's hash, never
//! the address.

use axum::{
    Json,
    extract::{Path, State},
};

use super::{AppState, error::ApiError};
use crate::erase::{self, EraseError, Erased};

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
