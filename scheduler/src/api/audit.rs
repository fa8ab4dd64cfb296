//! The audit log: every mutating `/v1` call, every call refused for its credentials (401, 403)
//! and every read of recipients' data in bulk (events, suppressions, dead letters, a
//! message's recipients, the history and a recipient's timeline), with who (key), from where (client address), what, when and the
//! result, appended to the stream `sluice:audit`, readable with the admin scope at
//! `GET /v1/audit`.

use axum::{
    Json,
    extract::{OriginalUri, Query, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::keys;

use super::{AppState, auth::Principal, error::ApiError, page_limit, request_id::RequestId};
use crate::http::client::ClientAddr;

/// Entries kept (oldest trimmed first).
const AUDIT_MAXLEN: usize = 100_000;

/// Paths whose GET answers with recipients' addresses in bulk.
const PERSONAL_DATA: &[&str] = &[
    "/v1/events",
    "/v1/suppressions",
    "/v1/dead-letters",
    "/v1/messages/",
    "/v1/history/",
    "/v1/recipients/",
    "/v1/hygiene/",
];

/// Records the call after it is answered, with its status, when it changed something, was
/// refused, or read personal data.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // Inside the /v1 nest the URI is stripped; the original keeps the whole path.
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path().to_string(), |u| u.0.path().to_string());
    let client = request.extensions().get::<ClientAddr>().map_or_else(|| "-".into(), |c| c.0.to_string());
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let path = without_erased_address(&method, path);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let reads = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let personal = PERSONAL_DATA.iter().any(|p| path.starts_with(p));
    if reads && !personal && !matches!(status, 401 | 403) {
        return response;
    }
    let key = response.extensions().get::<Principal>().map(|p| p.id.clone()).unwrap_or_else(|| "-".into());
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let write = async {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("XADD")
            .arg(keys::audit())
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_MAXLEN)
            .arg("*")
            .arg(&[
                ("at", at),
                ("key", key),
                ("client", client),
                ("method", method.to_string()),
                ("path", path),
                ("status", status.to_string()),
                ("request_id", request_id),
            ])
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(e) = write.await {
        tracing::error!(error = %e, status, "audit record could not be written");
    }
    response
}

/// An erase (`DELETE /v1/recipients/{email}`) is recorded under the address's hash, so the
/// audit log never keeps the address it was asked to forget.
fn without_erased_address(method: &Method, path: String) -> String {
    match path.strip_prefix("/v1/recipients/") {
        Some(email) if method == Method::DELETE => {
            let email = email.trim_end_matches('/').replace("%40", "@");
            format!("/v1/recipients/{}", sluice_shared::suppression::erased_token(&email))
        }
        _ => path,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Entries after this stream id (exclusive); default: from the start.
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/audit?after=&limit=`: oldest first, `next` is the cursor for the following page.
#[utoipa::path(get, path = "/audit", tag = "operations", params(Page),
    responses((status = 200, description = "Audit entries oldest first: items, next", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(page.limit, 100, 1000)?;
    let start = match &page.after {
        Some(a) if sluice_shared::redis::entry_id::is_valid(a) => format!("({a}"),
        Some(_) => {
            return Err(ApiError::Field(crate::field_error::FieldError::invalid(
                "after",
                "must be an audit entry id like 1795690000000-0",
            )));
        }
        None => "-".into(),
    };
    let mut conn = state.conn().await?;
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(keys::audit())
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(limit)
        .query_async(&mut *conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    let next = (entries.len() == limit).then(|| entries.last().map(|(id, _)| id.clone())).flatten();
    let items: Vec<Value> = entries
        .into_iter()
        .map(|(id, fields)| {
            let mut item = serde_json::Map::new();
            item.insert("id".into(), id.into());
            for (k, v) in fields {
                let value = if k == "status" {
                    v.parse::<u64>().map(Value::from).unwrap_or(Value::String(v))
                } else {
                    Value::String(v)
                };
                item.insert(k, value);
            }
            Value::Object(item)
        })
        .collect();
    Ok(Json(json!({"items": items, "next": next})))
}
