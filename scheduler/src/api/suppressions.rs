//! `/v1/suppressions`: addresses that are never sent to (scope `all`), or not sent campaigns
//! (`campaigns`) or the campaigns of one list (`list`); see `sluice_shared::suppression`.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use futures::TryStreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_shared::{
    keys,
    redis::scripts::suppression::{self as script, Unsubscribe},
    suppression::{self, Scope},
    validate,
};
use tokio_util::{codec::FramedRead, io::StreamReader};

use super::{AppState, error::ApiError};
use crate::{
    campaign::ndjson::{self, LineRejection, UploadLines},
    field_error::FieldError,
    suppression::{
        export::{self, Cursor, Filter},
        import,
    },
};

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Field(FieldError::invalid(field, message))
}

/// The suppression key of an address: the whole address, lower-cased, domain IDNA-normalised.
pub fn suppression_key(email: &str) -> Result<String, ApiError> {
    validate::email(email).map(|e| e.address.to_ascii_lowercase()).map_err(|m| invalid("email", m))
}

fn scope_of(scope: Option<&str>, list: Option<&str>) -> Result<Scope, ApiError> {
    Scope::parse(scope, list).map_err(|(field, m)| invalid(field, m))
}

/// Why and for what an address is suppressed (`PUT /v1/suppressions/{email}`; the body may
/// be empty).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    reason: Option<String>,
    /// `all` (the default): nothing is sent; `campaigns`: no campaign is, transactional
    /// messages still are; `list`: no campaign of `list` is.
    scope: Option<String>,
    list: Option<String>,
}

#[utoipa::path(put, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address")),
    request_body = PutBody,
    responses((status = 201, description = "Suppressed", body = Object), (status = 200, description = "Already suppressed in this scope (scope all: updated)", body = Object)))]
pub async fn put(
    State(state): State<AppState>,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = suppression_key(&email)?;
    let input: PutBody = if body.iter().all(u8::is_ascii_whitespace) {
        PutBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid("body", e.to_string()))?
    };
    if input.reason.as_ref().is_some_and(|r| r.len() > 256 || r.chars().any(char::is_control)) {
        return Err(invalid("reason", "must be at most 256 bytes without control characters"));
    }
    let scope = scope_of(input.scope.as_deref(), input.list.as_deref())?;
    let mut record = suppression::entry(input.reason.as_deref().unwrap_or("manual"), "api", None, None);
    let mut conn = state.conn().await?;
    let added = match &scope {
        Scope::All => {
            let added: i64 =
                conn.hset(keys::suppressed(), &key, record.to_string()).await.map_err(|e| ApiError::Store(e.into()))?;
            added == 1
        }
        _ => {
            if scope == Scope::Campaigns {
                record["scope"] = "campaigns".into();
            }
            let entry_json = record.to_string();
            let one = Unsubscribe { address: &key, list: scope.list(), entry_json: &entry_json };
            script::unsubscribe(&mut conn, &[one]).await? == 1
        }
    };
    let code = if added { StatusCode::CREATED } else { StatusCode::OK };
    record["email"] = key.into();
    record["scope"] = scope.name().into();
    if let Some(l) = scope.list() {
        record["list"] = l.into();
    }
    Ok((code, Json(record)))
}

#[utoipa::path(get, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address")),
    responses((status = 200, description = "The broadest suppression's fields, and every one in `entries`", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(email): Path<String>) -> Result<Json<Value>, ApiError> {
    let key = suppression_key(&email)?;
    let mut conn = state.conn().await?;
    let (all, unsubscribed): (Option<String>, Option<String>) = redis::pipe()
        .hget(keys::suppressed(), &key)
        .hget(keys::unsubscribed(), &key)
        .query_async(&mut *conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    let entries = suppression::entries(&key, all.as_deref(), unsubscribed.as_deref());
    let Some(first) = entries.first() else { return Err(ApiError::NotFound(format!("suppression for {key:?}"))) };
    let mut shown = first.clone();
    shown["entries"] = entries.into();
    Ok(Json(shown))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Only this scope (`all`, `campaigns`, `list`); default: every suppression of the address.
    scope: Option<String>,
    list: Option<String>,
}

#[utoipa::path(delete, path = "/suppressions/{email}", tag = "suppressions", params(("email" = String, Path, description = "The address"), DeleteQuery),
    responses((status = 204, description = "Removed")))]
pub async fn delete(
    State(state): State<AppState>,
    Path(email): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let key = suppression_key(&email)?;
    let scope = match (q.scope.as_deref(), q.list.as_deref()) {
        (None, None) => None,
        (scope, list) => Some(scope_of(scope, list)?),
    };
    let mut conn = state.conn().await?;
    let mut removed = 0;
    if matches!(scope, None | Some(Scope::All)) {
        let n: u64 = conn.hdel(keys::suppressed(), &key).await.map_err(|e| ApiError::Store(e.into()))?;
        removed += n;
    }
    if scope != Some(Scope::All) {
        let list = scope.as_ref().and_then(Scope::list);
        removed += script::resubscribe(&mut conn, &[Unsubscribe { address: &key, list, entry_json: "" }]).await?;
    }
    if removed == 0 {
        return Err(ApiError::NotFound(format!("suppression for {key:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which suppressions to read.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    limit: Option<usize>,
    /// Only this scope: `all`, `campaigns` or `list`.
    scope: Option<String>,
    /// Only unsubscribes from this list.
    list: Option<String>,
}

impl ListQuery {
    /// Like a scope, except that `scope=list` alone shows every list.
    fn filter(&self) -> Result<Filter, ApiError> {
        let scope = match (self.scope.as_deref(), self.list.as_deref()) {
            (Some("list"), None) => Some("list".to_string()),
            (None, None) => None,
            (scope, list) => Some(scope_of(scope, list)?.name().to_string()),
        };
        Ok(Filter { scope, list: self.list.clone() })
    }
}

/// A page of suppressions (HSCAN order: scope `all`, then unsubscribes); `next_cursor` is
/// null on the last page. A page may hold fewer or more items than `limit`.
#[utoipa::path(get, path = "/suppressions", tag = "suppressions", params(ListQuery),
    responses((status = 200, description = "A page of suppressions: items, next_cursor", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(q.limit, 100, 1000)?;
    let filter = q.filter()?;
    let cursor = match &q.cursor {
        Some(c) => Cursor::parse(c).ok_or_else(|| invalid("cursor", "is not a cursor this list gave"))?,
        None => Cursor::START,
    };
    let mut conn = state.conn().await?;
    let (items, next) = export::page(&mut conn, &filter, cursor, limit).await?;
    Ok(Json(json!({"items": items, "next_cursor": next.map(Cursor::text)})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `ndjson` (default) or `csv`.
    format: Option<String>,
    /// Only this scope: `all`, `campaigns` or `list`.
    scope: Option<String>,
    /// Only unsubscribes from this list.
    list: Option<String>,
}

#[utoipa::path(get, path = "/suppressions/export", tag = "suppressions", params(ExportQuery),
    responses((status = 200, description = "Every suppression, streamed as NDJSON or CSV (what the import reads)",
        content((String = "application/x-ndjson"), (String = "text/csv")))))]
pub async fn export(State(state): State<AppState>, Query(q): Query<ExportQuery>) -> Result<Response, ApiError> {
    let format = crate::csv::Format::parse(q.format.as_deref()).map_err(|m| invalid("format", m))?;
    let filter = ListQuery { cursor: None, limit: None, scope: q.scope, list: q.list }.filter()?;
    Ok(super::streamed(format, export::start(state.pool.clone(), filter, format)))
}

/// The answer to an import.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportReply {
    /// Lines that suppressed an address in their scope.
    added: u64,
    /// Lines whose address was already suppressed in their scope (kept as it was).
    existing: u64,
    rejected_count: usize,
    /// The first 1,000 refused lines: line number, email when known, why.
    #[schema(value_type = Vec<Object>)]
    rejected: Vec<LineRejection>,
}

const MAX_REPORTED: usize = 1000;

/// Streams a CSV (`Content-Type: text/csv`, a header line first) or NDJSON body into the
/// suppression lists, a chunk at a time.
#[utoipa::path(post, path = "/suppressions/import", tag = "suppressions",
    request_body(description = "CSV with a header line (columns email, scope, list, reason, source, created_at, campaign, detail), or NDJSON with the same fields",
        content((String = "text/csv"), (String = "application/x-ndjson"))),
    responses((status = 200, description = "Added, existing and refused counts, the first 1,000 refusals", body = ImportReply)))]
pub async fn import(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<ImportReply>, ApiError> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let csv = match content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "text/csv" => true,
        "application/x-ndjson" | "application/json" => false,
        other => {
            return Err(invalid(
                "Content-Type",
                format!("{other:?} is not text/csv or application/x-ndjson (one suppression per line)"),
            ));
        }
    };
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let mut lines = FramedRead::new(reader, UploadLines::default());
    let mut reply = ImportReply { added: 0, existing: 0, rejected_count: 0, rejected: Vec::new() };
    let mut columns = None;
    let mut chunk = Vec::with_capacity(import::CHUNK);
    let mut conn = state.conn().await?;
    let mut number = 0;
    loop {
        let line = match ndjson::next_text_line(&mut lines, &mut number, |r| refuse(&mut reply, r)).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                let done = reply.added + reply.existing;
                return Err(invalid("body", format!("import interrupted after {done} lines were written: {e}")));
            }
        };
        let row = match (&columns, csv) {
            (None, true) => {
                columns = Some(import::Columns::from_header(&line).map_err(|m| invalid("header", m))?);
                continue;
            }
            (Some(c), true) => import::csv_line(number, &line, c),
            (_, false) => import::ndjson_line(number, &line),
        };
        match row {
            Ok(Some(row)) => chunk.push(row),
            Ok(None) => {}
            Err(refused) => refuse(&mut reply, refused),
        }
        if chunk.len() >= import::CHUNK {
            write(&mut conn, &mut chunk, &mut reply).await?;
        }
    }
    write(&mut conn, &mut chunk, &mut reply).await?;
    if csv && columns.is_none() {
        return Err(invalid("body", "is empty: a CSV import starts with a header line naming its columns"));
    }
    tracing::info!(
        added = reply.added,
        existing = reply.existing,
        rejected = reply.rejected_count,
        "suppressions imported"
    );
    Ok(Json(reply))
}

fn refuse(reply: &mut ImportReply, refused: LineRejection) {
    reply.rejected_count += 1;
    if reply.rejected.len() < MAX_REPORTED {
        reply.rejected.push(refused);
    }
}

async fn write(
    conn: &mut sluice_shared::redis::Pooled,
    chunk: &mut Vec<import::Row>,
    reply: &mut ImportReply,
) -> Result<(), ApiError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let (added, existing) = import::write(conn, chunk).await?;
    reply.added += added;
    reply.existing += existing;
    chunk.clear();
    Ok(())
}
