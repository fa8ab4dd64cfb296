//! The admin HTTP API. [`app`] builds the router apart from `main`, so handlers are tested
//! without a socket. Every `/v1` route needs `Authorization: Bearer <token>`.

mod campaigns;
mod dead_letters;
mod destinations;
pub mod error;
mod inbound;
mod suppressions;
mod warmup;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::header,
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use sluice_shared::config::Config;
use sluice_shared::redis::Pool;

use error::ApiError;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    /// What reading inbound reports needs; None without `[public]`.
    pub inbound: Option<Arc<InboundParts>>,
}

/// The link secret and the reply rules, built once.
pub struct InboundParts {
    pub tokens: sluice_shared::tokens::TokenKey,
    pub rules: sluice_shared::classify::Classifier,
}

impl AppState {
    pub fn new(pool: Pool, config: Arc<Config>) -> AppState {
        let inbound = config.public.as_ref().map(|p| {
            Arc::new(InboundParts {
                tokens: sluice_shared::tokens::TokenKey::new(&p.secret),
                rules: config.bounces.classifier().expect("rules were checked when the config was validated"),
            })
        });
        AppState { pool, config, inbound }
    }
}

impl AppState {
    pub async fn conn(&self) -> Result<sluice_shared::redis::Pooled, ApiError> {
        self.pool.get().await.map_err(|e| ApiError::Store(e.into()))
    }
}

/// Largest inbound report accepted (a DSN carrying the whole original message).
const INBOUND_MAX: usize = 10 * 1024 * 1024;

/// The whole admin API.
pub fn app(state: AppState) -> Router {
    // Inline recipients (up to 10,000) make large bodies legitimate; NDJSON uploads stream.
    let create_limit = 64 * 1024 * 1024;
    let v1 = Router::new()
        .route("/campaigns", post(campaigns::create).get(campaigns::list).layer(DefaultBodyLimit::max(create_limit)))
        .route("/campaigns/{id}", get(campaigns::get_one))
        .route("/campaigns/{id}/recipients", post(campaigns::upload_recipients).layer(DefaultBodyLimit::disable()))
        .route("/campaigns/{id}/{action}", post(campaigns::act))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/{id}/requeue", post(dead_letters::requeue))
        .route("/inbound", post(inbound::receive).layer(DefaultBodyLimit::max(INBOUND_MAX)))
        .route("/warmup", get(warmup::progress))
        .route("/destinations", get(destinations::list))
        .route("/destinations/{domain}", get(destinations::get_one))
        .route("/suppressions", get(suppressions::list))
        .route("/suppressions/{email}", get(suppressions::get_one).put(suppressions::put).delete(suppressions::delete))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().route("/healthz", get(|| async { "ok" })).nest("/v1", v1).with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if state.config.api.tokens.iter().any(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) => {
            Ok(next.run(request).await)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// The `limit` query parameter of a paged list: `default` when absent, else 1..=`max`.
pub fn page_limit(given: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::Field(crate::campaign::request::FieldError::invalid(
            "limit",
            format!("must be 1-{max}"),
        )));
    }
    Ok(limit)
}

/// Compares without an early exit, so response time does not reveal a token prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
