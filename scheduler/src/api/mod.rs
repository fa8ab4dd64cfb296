//! The admin HTTP API. [`app`] builds the router apart from `main`, so handlers are tested
//! without a socket. Every `/v1` route needs `Authorization: Bearer <token>` of a key holding
//! the route's scope ([`auth`]); mutating calls, refused ones and reads of personal data are
//! audited with the client's address ([`audit`]); every call gets a request id
//! ([`request_id`]).

mod audit;
mod auth;
mod campaigns;
mod dead_letters;
mod destinations;
pub mod error;
mod events;
mod inbound;
mod messages;
mod request_id;
mod suppressions;
mod templates;
mod warmup;
mod webhooks;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post, put},
};
use sluice_shared::config::Config;
use sluice_shared::redis::Pool;

use crate::http::client::{self, Clients};
use error::ApiError;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    /// What reading inbound reports needs; None without `[public]`.
    pub inbound: Option<Arc<InboundParts>>,
    /// Accepted API keys.
    pub keys: Arc<auth::Keys>,
    /// Queues a transactional message's jobs at once, without waiting for a scheduler round.
    pub enqueuer: Arc<crate::enqueue::Enqueuer>,
}

/// The link secret (unsubscribe, VERP and trace tokens) and the reply rules, built once;
/// shared by the admin API, the public listener and the inbound listener.
pub struct InboundParts {
    pub tokens: sluice_shared::tokens::TokenKey,
    pub rules: sluice_shared::classify::Classifier,
}

impl InboundParts {
    /// Built when `[public]` is configured (its secret signs the links).
    pub fn from_config(config: &Config) -> Option<Arc<InboundParts>> {
        config.public.as_ref().map(|p| {
            Arc::new(InboundParts {
                tokens: sluice_shared::tokens::TokenKey::new(&p.secret),
                rules: config.bounces.classifier().expect("rules were checked when the config was validated"),
            })
        })
    }
}

impl AppState {
    pub fn new(pool: Pool, config: Arc<Config>, enqueuer: Arc<crate::enqueue::Enqueuer>) -> AppState {
        let inbound = InboundParts::from_config(&config);
        if !config.api.tokens.is_empty() {
            tracing::warn!(
                "api.tokens holds plaintext tokens with every scope; move them to [[api.keys]] (hashes, scopes)"
            );
        }
        let keys = Arc::new(auth::Keys::new(&config.api));
        AppState { pool, config, inbound, keys, enqueuer }
    }
}

impl AppState {
    pub async fn conn(&self) -> Result<sluice_shared::redis::Pooled, ApiError> {
        self.pool.get().await.map_err(ApiError::Store)
    }
}

/// Largest inbound report accepted (a DSN carrying the whole original message).
const INBOUND_MAX: usize = 10 * 1024 * 1024;

/// The whole admin API.
pub fn app(state: AppState) -> Router {
    // Inline recipients (up to 10,000) make large bodies legitimate; NDJSON uploads stream.
    let create_limit = 64 * 1024 * 1024;
    use auth::scoped;
    use sluice_shared::config::Scope::{Admin, CampaignsRead, CampaignsWrite, Send, Suppressions};
    let v1 = Router::new()
        .route(
            "/campaigns",
            scoped(CampaignsWrite, post(campaigns::create))
                .merge(scoped(CampaignsRead, get(campaigns::list)))
                .layer(DefaultBodyLimit::max(create_limit)),
        )
        .route("/campaigns/{id}", scoped(CampaignsRead, get(campaigns::get_one)))
        .route(
            "/campaigns/{id}/recipients",
            scoped(CampaignsWrite, post(campaigns::upload_recipients)).layer(DefaultBodyLimit::disable()),
        )
        .route("/campaigns/{id}/{action}", scoped(CampaignsWrite, post(campaigns::act)))
        .route("/events", scoped(CampaignsRead, get(events::list)))
        .route("/webhooks", scoped(Admin, get(webhooks::list).post(webhooks::create)))
        .route("/webhooks/{id}", scoped(Admin, get(webhooks::get_one).delete(webhooks::delete)))
        .route("/messages", scoped(Send, post(messages::send)))
        .route("/messages/{id}", scoped(Send, get(messages::get_one)))
        .route("/templates", scoped(CampaignsRead, get(templates::list)))
        .route(
            "/templates/{id}",
            scoped(CampaignsRead, get(templates::get_one))
                .merge(scoped(CampaignsWrite, put(templates::put).delete(templates::delete))),
        )
        .route("/dead-letters", scoped(Admin, get(dead_letters::list)))
        .route("/dead-letters/{id}/requeue", scoped(Admin, post(dead_letters::requeue)))
        .route("/inbound", scoped(Admin, post(inbound::receive)).layer(DefaultBodyLimit::max(INBOUND_MAX)))
        .route("/audit", scoped(Admin, get(audit::list)))
        .route("/warmup", scoped(CampaignsRead, get(warmup::progress)))
        .route("/destinations", scoped(CampaignsRead, get(destinations::list)))
        .route("/destinations/{domain}", scoped(CampaignsRead, get(destinations::get_one)))
        .route("/suppressions", scoped(Suppressions, get(suppressions::list)))
        .route(
            "/suppressions/{email}",
            scoped(Suppressions, get(suppressions::get_one).put(suppressions::put).delete(suppressions::delete)),
        )
        // Outermost last: the audit sees every answer, refused authentication included.
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/v1", v1)
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn_with_state(Clients::new(state.config.http.proxies()), client::resolve))
        .with_state(state)
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
