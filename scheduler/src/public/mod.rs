//! The public listener (`public.listen`): what recipients' mail clients and mailbox providers
//! reach, without authentication: RFC 8058 one-click unsubscribe at `/u/{token}`, the open
//! pixel at `/o/{token}` and tracked links at `/c/{token}`.
//! Kept apart from the admin API so the two can be exposed differently. Each client is held
//! to `http.public_rate_per_client` (429 past it), so one flooding client delays nobody else.

mod tracking;
mod unsubscribe;
mod unsubscribe_text;

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use sluice_shared::{config::Config, redis::Pool, tokens::TokenKey};

use crate::http::{
    client::{self, ClientAddr, Clients},
    rate::PerClient,
};

#[derive(Clone)]
pub struct PublicState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub tokens: TokenKey,
    limit: Arc<PerClient>,
}

impl PublicState {
    pub fn new(pool: Pool, config: Arc<Config>, tokens: TokenKey) -> PublicState {
        let h = &config.http;
        let limit = Arc::new(PerClient::new(h.public_rate_per_client.per_second(), h.public_burst_per_client));
        PublicState { pool, config, tokens, limit }
    }
}

/// The public router.
pub fn app(state: PublicState) -> Router {
    Router::new()
        .route("/u/{token}", get(unsubscribe::confirm_page).post(unsubscribe::one_click))
        .route("/o/{token}", get(tracking::open))
        .route("/c/{token}", get(tracking::click))
        .route("/healthz", get(|| async { "ok" }))
        .layer(middleware::from_fn_with_state(state.clone(), per_client_limit))
        .layer(middleware::from_fn_with_state(Clients::new(state.config.http.proxies()), client::resolve))
        .with_state(state)
}

/// 429 once a client has spent its bucket.
async fn per_client_limit(State(state): State<PublicState>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<ClientAddr>().copied();
    if client.is_some_and(|c| !state.limit.allow(c.0)) {
        metrics::counter!(sluice_shared::metrics::PUBLIC_RATE_LIMITED).increment(1);
        let headers = [(header::RETRY_AFTER, "1"), (header::CACHE_CONTROL, "no-store")];
        return (StatusCode::TOO_MANY_REQUESTS, headers, "too many requests, slow down").into_response();
    }
    next.run(request).await
}
