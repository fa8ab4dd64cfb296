//! `GET /v1/events?campaign=&message=&type=&after=&limit=`: events oldest first, paged by
//! cursor. With `campaign` or `message`, from that source's own stream; otherwise from the
//! feed of every source. `next` is the cursor after the last event looked at: pass it as
//! `after` to read on (also later, to follow new events).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_shared::lane;

use super::{AppState, error::ApiError, page_limit};
use crate::{
    events::{
        self, Entry, Extras,
        feed::{self, Position},
    },
    field_error::FieldError,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    campaign: Option<String>,
    message: Option<String>,
    #[serde(rename = "type")]
    types: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Entries looked at per page at most, whatever the filter matches.
const SCAN_MAX: usize = 10_000;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Field(FieldError::invalid(field, message))
}

#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery),
    responses((status = 200, description = "Events oldest first: events, next", body = Object)))]
pub async fn list(State(state): State<AppState>, Query(q): Query<EventQuery>) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let types: Option<Vec<String>> = match q.types.as_deref() {
        None | Some("") => None,
        Some(list) => {
            let wanted: Vec<String> = list.split(',').map(|t| t.trim().to_string()).collect();
            if let Some(bad) = wanted.iter().find(|t| !events::TYPES.contains(&t.as_str())) {
                return Err(invalid("type", format!("unknown type {bad:?}; one of {}", events::TYPES.join(", "))));
            }
            Some(wanted)
        }
    };
    let source = match (&q.campaign, &q.message) {
        (Some(_), Some(_)) => return Err(invalid("campaign", "give campaign or message, not both")),
        (Some(c), None) if lane::is_message(c) => return Err(invalid("campaign", "is a message id; use message=")),
        (None, Some(m)) if !lane::is_message(m) => return Err(invalid("message", "message ids start with msg_")),
        (c, m) => c.clone().or(m.clone()),
    };
    // A source's cursor is its stream entry id; the feed's, a feed entry id and an index per shard.
    let after_ok = q.after.as_deref().is_none_or(|a| match &source {
        Some(_) => sluice_shared::redis::entry_id::is_valid(a),
        None => Position::parse(a).is_some(),
    });
    if !after_ok {
        return Err(invalid("after", "must be a cursor from a previous page (`next`)"));
    }
    let mut conn = state.conn().await?;
    let matches = |t: &str| types.as_ref().is_none_or(|w| w.iter().any(|x| x == t));
    let mut out = Vec::new();
    let mut extras: HashMap<String, Extras> = HashMap::new();
    let mut cursor = q.after.clone();
    let mut scanned = 0;
    'pages: while scanned < SCAN_MAX {
        let (page, exhausted) = read(&mut conn, source.as_deref(), cursor.as_deref(), limit).await?;
        scanned += page.len().max(1);
        for (from, position, entry) in page {
            cursor = Some(position);
            if !matches(&entry.kind) {
                continue;
            }
            if !extras.contains_key(&from) {
                let found = events::extras_of(&mut conn, &from).await?;
                extras.insert(from.clone(), found);
            }
            out.push(events::to_json(&from, &entry, &extras[&from]));
            if out.len() == limit {
                break 'pages;
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(Json(json!({"events": out, "next": cursor})))
}

/// The next events after `after` as (source, cursor after it, entry), and whether the end was
/// reached: from `source`'s own stream, or from the feed.
async fn read(
    conn: &mut sluice_shared::redis::Pooled,
    source: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<(String, String, Entry)>, bool), ApiError> {
    let chunk = (limit * 2).max(100);
    match source {
        Some(s) => {
            let page = events::read_source(conn, s, after, chunk).await?;
            let exhausted = page.len() < chunk;
            Ok((page.into_iter().map(|e| (s.to_string(), e.id.clone(), e)).collect(), exhausted))
        }
        None => {
            const ENTRIES: usize = 10;
            let mut at = after.and_then(Position::parse).unwrap_or_default();
            let store = |e: redis::RedisError| ApiError::Store(e.into());
            let (page, exhausted) = feed::read(conn, &at, ENTRIES).await.map_err(store)?;
            let page = page.into_iter().map(|e| {
                at.advance(&e);
                (e.source, at.to_string(), e.entry)
            });
            Ok((page.collect(), exhausted))
        }
    }
}
