//! API errors: JSON bodies that name the field and the problem, never internals.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sluice_shared::redis::StoreError;

use crate::{
    campaign::submit::SubmitError,
    field_error::{ErrorKind, FieldError},
};

/// Every error answer: `{"error": {"field": ..., "message": ...}}`; also the OpenAPI
/// document's schema for them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The request field at fault, for 400, 413 and 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    pub message: String,
}

impl ErrorBody {
    fn new(field: Option<String>, message: impl Into<String>) -> Json<ErrorBody> {
        Json(ErrorBody { error: ErrorDetail { field, message: message.into() } })
    }
}

#[derive(Debug)]
pub enum ApiError {
    Field(FieldError),
    NotFound(String),
    Conflict(String),
    Unauthorized,
    /// Authenticated, but the key lacks the scope.
    Forbidden(String),
    /// The key is over its `send_rate`: try again after this long.
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    Store(StoreError),
    /// A store other than Redis (the history) cannot answer now: 503 with this message.
    Unavailable(String),
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
                (status, ErrorBody::new(Some(f.field), f.message))
            }
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, ErrorBody::new(None, format!("{what} not found"))),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, ErrorBody::new(None, message)),
            ApiError::Unauthorized => {
                let body = ErrorBody::new(None, "missing or invalid Bearer token");
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, ErrorBody::new(None, message)),
            ApiError::RateLimited { message, retry_after } => {
                let seconds = retry_after.as_secs_f64().ceil().max(1.0).to_string();
                let body = ErrorBody::new(None, message);
                return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds)], body).into_response();
            }
            ApiError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, ErrorBody::new(None, message)),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage error in API call");
                (StatusCode::SERVICE_UNAVAILABLE, ErrorBody::new(None, "storage unavailable; retry later"))
            }
        };
        (status, body).into_response()
    }
}

/// Errors that axum answers by itself (a body over the route's limit, a malformed path or
/// query, a method not allowed) come as plain text; they are rewritten into the same JSON
/// shape as ours, so every error a client sees has one form.
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().chars().take(300).collect::<String>();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorBody::new(Some("body".into()), format!("request body too large: {message}"))
    } else {
        ErrorBody::new(None, message)
    };
    let mut rewritten = (status, error).into_response();
    for (name, value) in
        parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH)
    {
        rewritten.headers_mut().insert(name.clone(), value.clone());
    }
    rewritten
}
