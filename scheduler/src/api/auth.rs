//! Who is calling and what they may do. A Bearer token is hashed (SHA-256) and looked up among
//! `[[api.keys]]`; legacy plaintext `api.tokens` carry every scope. No token, or an unknown
//! one: 401. A known key without the route's scope: 403.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::{self, Next},
    response::Response,
    routing::MethodRouter,
};
use sha2::{Digest, Sha256};
use std::time::Duration;

use sluice_shared::{
    config::{ApiConfig, ApiKey, Scope},
    metrics as m,
    redis::{Conn, StoreResult, scripts::records},
    tokens::constant_time_eq,
    units::Rate,
};

use super::{AppState, error::ApiError};

/// The caller, once authenticated; put in the request's extensions.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub scopes: Vec<Scope>,
    /// How fast this key may send messages (`[[api.keys]] send_rate`), cluster-wide.
    pub send_rate: Option<Rate>,
}

impl Principal {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| *s == scope || *s == Scope::Admin)
    }

    /// Takes one send from the key's `send_rate`, shared by every scheduler and by HTTP and
    /// SMTP alike. Past it, the refusal (counted) and how long until the next send may go.
    pub async fn over_send_rate(&self, conn: &mut Conn) -> StoreResult<Option<(String, Duration)>> {
        let Some(rate) = self.send_rate else { return Ok(None) };
        let burst = ApiKey::send_burst(rate);
        let Some(retry_after) = records::send_rate(conn, &self.id, rate.per_second(), burst).await? else {
            return Ok(None);
        };
        metrics::counter!(m::SEND_RATE_LIMITED, "key" => self.id.clone()).increment(1);
        let wait = retry_after.as_secs_f64().ceil().max(1.0);
        Ok(Some((format!("API key {:?} is over its send_rate ({rate}); retry after {wait}s", self.id), retry_after)))
    }
}

/// The accepted credentials, prepared once.
pub struct Keys {
    hashed: Vec<([u8; 32], Principal)>,
    plain: Vec<(String, Principal)>,
}

impl Keys {
    pub fn new(config: &ApiConfig) -> Keys {
        let hashed = config
            .keys
            .iter()
            .filter_map(|k| {
                let bytes: [u8; 32] = hex::decode(&k.sha256).ok()?.try_into().ok()?;
                Some((bytes, Principal { id: k.id.clone(), scopes: k.scopes.clone(), send_rate: k.send_rate }))
            })
            .collect();
        let plain = config
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    t.trim().to_string(),
                    Principal { id: format!("token-{i}"), scopes: vec![Scope::Admin], send_rate: None },
                )
            })
            .collect();
        Keys { hashed, plain }
    }

    /// The key named `id` if `token` is its token (SMTP AUTH: user name and password). Every
    /// key's hash is compared, so the time taken tells nothing about which ids exist.
    pub fn login(&self, id: &str, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, p) in &self.hashed {
            if constant_time_eq(hash, &digest) & constant_time_eq(p.id.as_bytes(), id.as_bytes()) {
                found = Some(p);
            }
        }
        found
    }

    fn find(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared in full, so timing does not reveal which one matched.
        let mut found = None;
        for (hash, p) in &self.hashed {
            if constant_time_eq(hash, &digest) {
                found = Some(p);
            }
        }
        for (plain, p) in &self.plain {
            if constant_time_eq(plain.as_bytes(), token.as_bytes()) {
                found = Some(p);
            }
        }
        found
    }
}

/// Authenticates every `/v1` call.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let principal = presented.and_then(|t| state.keys.find(t)).cloned().ok_or(ApiError::Unauthorized)?;
    request.extensions_mut().insert(principal.clone());
    // The audit log, outside this layer, reads the caller from the response.
    let mut response = next.run(request).await;
    response.extensions_mut().insert(principal);
    Ok(response)
}

/// `route` answers only callers holding `scope` (or admin).
pub fn scoped(scope: Scope, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn(move |request: Request, next: Next| async move {
        match request.extensions().get::<Principal>() {
            Some(p) if p.allows(scope) => Ok(next.run(request).await),
            Some(p) => Err(ApiError::Forbidden(format!("key {:?} lacks the {} scope", p.id, scope.as_str()))),
            None => Err(ApiError::Unauthorized),
        }
    }))
}
