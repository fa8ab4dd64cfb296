//! The admin API's router in-process (`tower::ServiceExt::oneshot` on `api::app`): no socket,
//! no binary. Routing, authentication, scopes and the error shape, answered before any handler
//! needs Redis; the one call that does reach Redis finds it refusing connections and answers
//! 503 without internals.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_scheduler::{api, pipeline::enqueue::Enqueuer};
use sluice_shared::config::{Config, Role};
use sluice_testkit::{api_key_toml, config_toml_for};
use tower::ServiceExt;

const ADMIN: &str = "router-admin-token";
const SENDER: &str = "router-send-token";

/// The router over a Redis nobody listens on (port 1 refuses at once).
fn app() -> Router {
    let sender = api_key_toml("crm", SENDER, "\"send\"");
    let toml = config_toml_for("url = \"redis://127.0.0.1:1/0\"", 1, 1, ADMIN, &sender);
    let config = Arc::new(Config::from_toml(&toml, Role::Scheduler).expect("a valid config"));
    let pool = sluice_shared::redis::pool(&config.redis).expect("pools connect lazily");
    let enqueuer = Arc::new(Enqueuer::new(config.clone()).unwrap());
    api::app(api::AppState::new(pool, config, enqueuer))
}

/// Status, headers and the body as JSON (or as a string when it is not JSON).
async fn call(method: &str, path: &str, token: Option<&str>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, json)
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}"))
}

#[tokio::test]
async fn health_and_the_document_need_no_token() {
    let (status, _, body) = call("GET", "/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ok")));
    let (status, headers, doc) = call("GET", "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn no_token_or_an_unknown_one_is_401_in_the_error_shape() {
    for token in [None, Some("nobody-knows-this")] {
        let (status, headers, body) = call("GET", "/v1/campaigns", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(headers.contains_key("x-request-id"));
        assert_eq!(message(&body), "missing or invalid Bearer token");
    }
}

#[tokio::test]
async fn a_key_without_the_scope_is_403_naming_it() {
    let (status, _, body) = call("GET", "/v1/audit", Some(SENDER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("lacks the admin scope"), "{body}");
    let (status, _, body) = call("DELETE", "/v1/suppressions/a@x.example", Some(SENDER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("suppressions"), "{body}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let (status, _, body) = call("GET", "/v1/no-such-thing", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    message(&body);
    let (status, headers, body) = call("PATCH", "/v1/campaigns", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers[header::ALLOW].to_str().unwrap().contains("POST"), "{headers:?}");
    message(&body);
    let (status, _, body) = call("GET", "/v1/campaigns?limit=0", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "limit");
    let (status, _, body) = call("GET", "/v1/campaigns?limit=many", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    message(&body);
}

#[tokio::test]
async fn redis_unreachable_is_503_without_internals() {
    let (status, _, body) = call("GET", "/v1/campaigns", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(message(&body), "storage unavailable; retry later");
}
