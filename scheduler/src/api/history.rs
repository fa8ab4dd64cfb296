//! The history routes (`[history]`, PostgreSQL): search every event kept, one recipient's
//! timeline, a campaign's report, and an export of a time range. Without a history store they
//! answer 404 saying so; while it is unreachable, 503.

use axum::{
    Json,
    extract::{Path, Query, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::lane;

use super::{AppState, error::ApiError, page_limit};
use crate::{
    events,
    field_error::FieldError,
    history::{
        History, HistoryError, export,
        row::parse_id,
        search::{self, Filter},
    },
};

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Field(FieldError::invalid(field, message))
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        ApiError::Unavailable(format!("history store unavailable; retry later ({})", kind(&e)))
    }
}

/// What went wrong, without internals.
fn kind(e: &HistoryError) -> &'static str {
    match e {
        HistoryError::NotReady => "not ready",
        HistoryError::Pool(_) => "no connection",
        HistoryError::Postgres(p) if p.as_db_error().is_some_and(|d| d.code().code() == "57014") => {
            "query took too long"
        }
        HistoryError::Postgres(_) => "query failed",
    }
}

fn store(state: &AppState) -> Result<&History, ApiError> {
    state.history.as_ref().ok_or_else(|| ApiError::NotFound("history store (set [history] url)".into()))
}

/// An RFC 3339 time parameter.
fn time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid(field, "must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z"))
        })
        .transpose()
}

/// A recipient address as the history keeps it (lower-cased); also what an erase takes.
pub(super) fn address(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.len() > 320 || !v.contains('@') || v.chars().any(char::is_control) {
        return Err(invalid(field, "must be an email address (at most 320 characters)"));
    }
    Ok(v.to_lowercase())
}

fn types(value: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(list) => {
            let wanted: Vec<String> = list.split(',').map(|t| t.trim().to_string()).collect();
            if let Some(bad) = wanted.iter().find(|t| !events::TYPES.contains(&t.as_str())) {
                return Err(invalid("type", format!("unknown type {bad:?}; one of {}", events::TYPES.join(", "))));
            }
            Ok(Some(wanted))
        }
    }
}

fn source_id(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(invalid(field, "must be an id of at most 200 characters"));
    }
    Ok(value.to_string())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only events of this address (any case).
    recipient: Option<String>,
    campaign: Option<String>,
    message: Option<String>,
    /// Comma-separated event types.
    #[serde(rename = "type")]
    types: Option<String>,
    /// RFC 3339; events at or after.
    from: Option<String>,
    /// RFC 3339; events before.
    to: Option<String>,
    /// 1-1000, default 100.
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

impl HistoryQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let source = match (&self.campaign, &self.message) {
            (Some(_), Some(_)) => return Err(invalid("campaign", "give campaign or message, not both")),
            (Some(c), None) if lane::is_message(c) => return Err(invalid("campaign", "is a message id; use message=")),
            (None, Some(m)) if !lane::is_message(m) => return Err(invalid("message", "message ids start with msg_")),
            (Some(c), None) => Some(source_id("campaign", c)?),
            (None, Some(m)) => Some(source_id("message", m)?),
            (None, None) => None,
        };
        let (from, to) = (time("from", self.from.as_deref())?, time("to", self.to.as_deref())?);
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(invalid("to", "must be after from"));
        }
        let before = self
            .cursor
            .as_deref()
            .map(|c| parse_id(c).ok_or_else(|| invalid("cursor", "must be the `next` of a previous page")))
            .transpose()?;
        Ok(Filter {
            recipient: self.recipient.as_deref().map(|r| address("recipient", r)).transpose()?,
            source,
            types: types(self.types.as_deref())?,
            from,
            to,
            before,
            limit: page_limit(self.limit, 100, 1000)?,
        })
    }
}

async fn search_page(state: &AppState, filter: Filter) -> Result<Json<Value>, ApiError> {
    let history = store(state)?;
    let client = history.client().await?;
    let (events, next) = search::page(&client, &filter).await?;
    Ok(Json(json!({"events": events, "next": next})))
}

#[utoipa::path(get, path = "/history/events", tag = "history", params(HistoryQuery),
    responses((status = 200, description = "Events kept in the history, newest first: events, next", body = Object)))]
pub async fn search(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Result<Json<Value>, ApiError> {
    let filter = q.filter()?;
    search_page(&state, filter).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    #[serde(rename = "type")]
    types: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/recipients/{email}/timeline", tag = "history",
    params(("email" = String, Path, description = "The address (any case)"), TimelineQuery),
    responses((status = 200, description = "Everything that happened to the address, newest first: events, next", body = Object)))]
pub async fn timeline(
    State(state): State<AppState>,
    Path(email): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Json<Value>, ApiError> {
    let all = HistoryQuery {
        recipient: Some(email),
        campaign: None,
        message: None,
        types: q.types,
        from: q.from,
        to: q.to,
        limit: q.limit,
        cursor: q.cursor,
    };
    let filter = all.filter().map_err(|e| match e {
        ApiError::Field(f) if f.field == "recipient" => invalid("email", f.message),
        other => other,
    })?;
    search_page(&state, filter).await
}

#[utoipa::path(get, path = "/campaigns/{id}/report", tag = "history",
    params(("id" = String, Path, description = "Campaign (or message) id")),
    responses((status = 200, description = "Totals, rates, per destination and per hour, from the history", body = Object)))]
pub async fn report(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = source_id("id", &id)?;
    let history = store(&state)?;
    let client = history.client().await?;
    let providers = state.config.limits.providers();
    match crate::history::report::build(&client, &id, &providers).await? {
        Some(report) => Ok(Json(report)),
        None => Err(ApiError::NotFound(format!("campaign {id:?} in the history"))),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// RFC 3339, required.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    /// `ndjson` (default) or `csv`.
    format: Option<String>,
}

#[utoipa::path(get, path = "/history/export", tag = "history", params(ExportQuery),
    responses((status = 200, description = "Every event in [from, to), oldest first, streamed as NDJSON or CSV",
        content((String = "application/x-ndjson"), (String = "text/csv")))))]
pub async fn export(State(state): State<AppState>, Query(q): Query<ExportQuery>) -> Result<Response, ApiError> {
    let from = time("from", q.from.as_deref())?.ok_or_else(|| invalid("from", "is required (RFC 3339)"))?;
    let to = time("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    if from >= to {
        return Err(invalid("to", "must be after from"));
    }
    let format = export::Format::parse(q.format.as_deref()).map_err(|m| invalid("format", m))?;
    let history = store(&state)?;
    Ok(super::streamed(format, export::start(history, from, to, format).await?))
}
