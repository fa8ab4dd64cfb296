//! A request id on every API call: the caller's `X-Request-Id` if it is sane, else a new
//! UUIDv7. It is echoed in the response, kept in the audit log, and every log line written
//! while the call runs carries it (a tracing span).

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

/// The id of the call being handled.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub async fn assign(mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(String::from);
    let id = given.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let (method, path) = (request.method().clone(), loggable(request.uri().path()));
    let span = tracing::info_span!("api", request_id = %id, %method, %path);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| tracing::info!(status, ms = started.elapsed().as_millis() as u64, "api call"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

/// The path for logs: segments holding an address (`/v1/suppressions/ann@x.example`) are
/// replaced, since recipient addresses never go to info-level logs.
fn loggable(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.contains('@') || seg.contains("%40") { "<address>" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_kept_out_of_logged_paths() {
        assert_eq!(super::loggable("/v1/suppressions/ann@x.example"), "/v1/suppressions/<address>");
        assert_eq!(super::loggable("/v1/suppressions/ann%40x.example"), "/v1/suppressions/<address>");
        assert_eq!(super::loggable("/v1/campaigns/c1/start"), "/v1/campaigns/c1/start");
    }
}
