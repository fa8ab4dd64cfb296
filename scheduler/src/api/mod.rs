//! The admin HTTP API. [`app`] builds the router apart from `main`, so handlers are tested
//! without a socket. Every `/v1` route needs `Authorization: Bearer <token>` of a key holding
//! the route's scope ([`auth`]); mutating calls, refused ones and reads of personal data are
//! audited with the client's address ([`audit`]); every call gets a request id
//! ([`request_id`]).

mod audit;
pub mod auth;
mod campaigns;
mod dead_letters;
mod destinations;
pub mod error;
mod events;
mod history;
mod hygiene;
mod inbound;
mod messages;
pub mod openapi;
mod recipients;
mod request_id;
mod senders;
mod suppressions;
mod templates;
mod warmup;
mod webhooks;

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, middleware, routing::get};
use sluice_shared::config::Config;
use sluice_shared::redis::Pool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::client::{self, Clients};
use error::ApiError;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    /// What reading inbound reports needs; None without `[public]`.
    pub inbound: Option<Arc<crate::inbound::InboundParts>>,
    /// Accepted API keys.
    pub keys: Arc<auth::Keys>,
    /// Queues a transactional message's jobs at once, without waiting for a scheduler round.
    pub enqueuer: Arc<crate::pipeline::enqueue::Enqueuer>,
    /// The PostgreSQL history store; None without `[history] url`.
    pub history: Option<crate::history::History>,
}

impl AppState {
    pub fn new(pool: Pool, config: Arc<Config>, enqueuer: Arc<crate::pipeline::enqueue::Enqueuer>) -> AppState {
        let inbound = crate::inbound::InboundParts::from_config(&config);
        if !config.api.tokens.is_empty() {
            tracing::warn!(
                "api.tokens holds plaintext tokens with every scope; move them to [[api.keys]] (hashes, scopes)"
            );
        }
        let keys = Arc::new(auth::Keys::new(&config.api));
        AppState { pool, config, inbound, keys, enqueuer, history: None }
    }
}

impl AppState {
    /// The same state reading the history from `history`.
    pub fn with_history(self, history: Option<crate::history::History>) -> AppState {
        AppState { history, ..self }
    }

    pub async fn conn(&self) -> Result<sluice_shared::redis::Pooled, ApiError> {
        self.pool.get().await.map_err(ApiError::Store)
    }
}

/// Largest inbound report accepted (a DSN carrying the whole original message).
const INBOUND_MAX: usize = 10 * 1024 * 1024;

/// The whole admin API, and at `GET /v1/openapi.json` its OpenAPI document, built from the
/// same registrations ([`openapi`]).
pub fn app(state: AppState) -> Router {
    let (v1, paths) = OpenApiRouter::with_openapi(openapi::base()).nest("/v1", v1_routes()).split_for_parts();
    let v1 = v1
        // Outermost last: the audit sees every answer, refused authentication included.
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record));
    let document = openapi::Served::new(&paths);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/openapi.json", get(move || async move { document.response() }))
        .merge(v1)
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn_with_state(Clients::new(state.config.http.proxies()), client::resolve))
        .with_state(state)
}

/// Every `/v1` route, its scope and its document.
fn v1_routes() -> OpenApiRouter<AppState> {
    // Inline recipients (up to 10,000) make large bodies legitimate; NDJSON uploads stream.
    let create_limit = 64 * 1024 * 1024;
    use openapi::{scoped, with};
    use sluice_shared::config::Scope::{Admin, CampaignsRead, CampaignsWrite, Privacy, Send, Suppressions};
    OpenApiRouter::new()
        .routes(with(scoped(CampaignsWrite, routes!(campaigns::create)), |r| {
            r.layer(DefaultBodyLimit::max(create_limit))
        }))
        .routes(scoped(CampaignsRead, routes!(campaigns::list)))
        .routes(scoped(CampaignsRead, routes!(campaigns::get_one)))
        .routes(with(scoped(CampaignsWrite, routes!(campaigns::upload_recipients)), |r| {
            r.layer(DefaultBodyLimit::disable())
        }))
        .routes(scoped(CampaignsWrite, routes!(campaigns::act)))
        .routes(scoped(CampaignsRead, routes!(events::list)))
        .routes(scoped(CampaignsRead, routes!(history::search)))
        .routes(scoped(CampaignsRead, routes!(history::timeline)))
        .routes(scoped(Privacy, routes!(recipients::erase_one)))
        .routes(scoped(CampaignsRead, routes!(recipients::get_one)))
        .routes(scoped(Suppressions, routes!(hygiene::dormant)))
        .routes(scoped(CampaignsRead, routes!(history::report)))
        .routes(scoped(CampaignsRead, routes!(history::export)))
        .routes(scoped(Admin, routes!(webhooks::list, webhooks::create)))
        .routes(scoped(Admin, routes!(webhooks::get_one, webhooks::delete)))
        .routes(scoped(Send, routes!(messages::send)))
        .routes(scoped(Send, routes!(messages::get_one)))
        .routes(scoped(CampaignsRead, routes!(templates::list)))
        .routes(scoped(CampaignsRead, routes!(templates::get_one)))
        .routes(scoped(CampaignsWrite, routes!(templates::put, templates::delete)))
        .routes(scoped(Admin, routes!(dead_letters::list)))
        .routes(scoped(Admin, routes!(dead_letters::requeue)))
        .routes(with(scoped(Admin, routes!(inbound::receive)), |r| r.layer(DefaultBodyLimit::max(INBOUND_MAX))))
        .routes(scoped(Admin, routes!(audit::list)))
        .routes(scoped(CampaignsRead, routes!(warmup::progress)))
        .routes(scoped(CampaignsRead, routes!(destinations::list)))
        .routes(scoped(CampaignsRead, routes!(destinations::get_one)))
        .routes(scoped(CampaignsRead, routes!(senders::get_one)))
        .routes(scoped(Suppressions, routes!(suppressions::list)))
        .routes(scoped(Suppressions, routes!(suppressions::export)))
        .routes(with(scoped(Suppressions, routes!(suppressions::import)), |r| r.layer(DefaultBodyLimit::disable())))
        .routes(scoped(Suppressions, routes!(suppressions::get_one, suppressions::put, suppressions::delete)))
}

/// An export's answer: the chunks `receiver` yields, as they come (an error cuts the body off).
fn streamed(
    format: crate::csv::Format,
    mut receiver: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let chunks = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    ([(axum::http::header::CONTENT_TYPE, format.content_type())], axum::body::Body::from_stream(chunks)).into_response()
}

/// The `limit` query parameter of a paged list: `default` when absent, else 1..=`max`.
pub fn page_limit(given: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::Field(crate::field_error::FieldError::invalid("limit", format!("must be 1-{max}"))));
    }
    Ok(limit)
}
