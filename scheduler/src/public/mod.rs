//! The public listener (`public.listen`): what recipients' mail clients and mailbox providers
//! reach, without authentication: RFC 8058 one-click unsubscribe at `/u/{token}`, the open
//! pixel at `/o/{token}` and tracked links at `/c/{token}`.
//! Kept apart from the admin API so the two can be exposed differently.

mod tracking;
mod unsubscribe;

use std::sync::Arc;

use axum::{Router, routing::get};
use sluice_shared::{config::Config, redis::Pool, tokens::TokenKey};

#[derive(Clone)]
pub struct PublicState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub tokens: TokenKey,
}

/// The public router.
pub fn app(state: PublicState) -> Router {
    Router::new()
        .route("/u/{token}", get(unsubscribe::confirm_page).post(unsubscribe::one_click))
        .route("/o/{token}", get(tracking::open))
        .route("/c/{token}", get(tracking::click))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
