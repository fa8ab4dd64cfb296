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
use sluice_shared::{keys, lane};

use super::{AppState, error::ApiError, page_limit};
use crate::{
    campaign::request::FieldError,
    events::{self, Entry, Extras},
};

#[derive(Deserialize)]
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
    if let Some(after) = &q.after
        && !events::is_entry_id(after)
    {
        return Err(invalid("after", "must be a cursor from a previous page (`next`)"));
    }
    let source = match (&q.campaign, &q.message) {
        (Some(_), Some(_)) => return Err(invalid("campaign", "give campaign or message, not both")),
        (Some(c), None) if lane::is_message(c) => return Err(invalid("campaign", "is a message id; use message=")),
        (None, Some(m)) if !lane::is_message(m) => return Err(invalid("message", "message ids start with msg_")),
        (c, m) => c.clone().or(m.clone()),
    };
    let mut conn = state.conn().await?;
    let matches = |t: &str| types.as_ref().is_none_or(|w| w.iter().any(|x| x == t));
    let mut out = Vec::new();
    let mut extras: HashMap<String, Extras> = HashMap::new();
    let mut cursor = q.after.clone();
    let mut scanned = 0;
    let chunk = (limit * 2).max(100);
    'pages: while scanned < SCAN_MAX {
        let page: Vec<(String, Entry)> = match &source {
            Some(s) => events::read_source(&mut conn, s, cursor.as_deref(), chunk)
                .await?
                .into_iter()
                .map(|e| (s.clone(), e))
                .collect(),
            None => read_feed(&mut conn, cursor.as_deref(), chunk).await?,
        };
        let n = page.len();
        for (from, entry) in page {
            cursor = Some(entry.1.get(FEED_ID).cloned().unwrap_or_else(|| entry.0.clone()));
            if !matches(entry.1.get("type").map(String::as_str).unwrap_or_default()) {
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
        scanned += n;
        if n < chunk {
            break;
        }
    }
    Ok(Json(json!({"events": out, "next": cursor})))
}

/// Where a feed entry's own id is kept among the fields of the source entry it stands for.
const FEED_ID: &str = "_feed_id";

/// Feed entries after `after`, as (source, its own entry) with the feed id kept in [`FEED_ID`].
async fn read_feed(
    conn: &mut sluice_shared::redis::Pooled,
    after: Option<&str>,
    count: usize,
) -> Result<Vec<(String, Entry)>, ApiError> {
    let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
    let raw: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(keys::feed())
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut **conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    Ok(raw.into_iter().map(|(feed_id, f)| feed_entry(feed_id, f)).collect())
}

/// A feed entry as its source's entry (the shape `events::to_json` reads).
pub fn feed_entry(feed_id: String, mut f: HashMap<String, String>) -> (String, Entry) {
    let source = f.remove("s").unwrap_or_default();
    let id = f.remove("e").unwrap_or_default();
    let mut fields = HashMap::new();
    fields.insert("type".to_string(), f.remove("t").unwrap_or_default());
    fields.insert("r".to_string(), f.remove("r").unwrap_or_default());
    fields.insert("data".to_string(), f.remove("d").unwrap_or_default());
    fields.insert(FEED_ID.to_string(), feed_id);
    (source, (id, fields))
}
