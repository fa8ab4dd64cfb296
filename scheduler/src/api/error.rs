//! API errors: JSON bodies that name the field and the problem, never internals.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use sluice_shared::redis::StoreError;

use crate::campaign::{
    request::{ErrorKind, FieldError},
    submit::SubmitError,
};

#[derive(Debug)]
pub enum ApiError {
    Field(FieldError),
    NotFound(String),
    Conflict(String),
    Unauthorized,
    /// Authenticated, but the key lacks the scope.
    Forbidden(String),
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Field(f) => ApiError::Field(f),
            SubmitError::Conflict(id) => {
                ApiError::Conflict(format!("campaign {id:?} already exists with a different body"))
            }
            SubmitError::Store(s) => ApiError::Store(s),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Field(f) => {
                let status = match f.kind {
                    ErrorKind::Malformed => StatusCode::BAD_REQUEST,
                    ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                };
                (status, json!({"error": {"field": f.field, "message": f.message}}))
            }
            ApiError::NotFound(what) => {
                (StatusCode::NOT_FOUND, json!({"error": {"message": format!("{what} not found")}}))
            }
            ApiError::Conflict(message) => (StatusCode::CONFLICT, json!({"error": {"message": message}})),
            ApiError::Unauthorized => {
                let body = json!({"error": {"message": "missing or invalid Bearer token"}});
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(body)).into_response();
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, json!({"error": {"message": message}})),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage error in API call");
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": {"message": "storage unavailable; retry later"}}))
            }
        };
        (status, Json(body)).into_response()
    }
}
