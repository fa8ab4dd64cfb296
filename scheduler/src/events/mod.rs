//! Events as the API and webhooks show them. Each campaign and message records its events in
//! its own stream (`sluice:{c:ID}:events`, written by the same scripts that change its
//! state); an event's id is the source id and the stream entry id, unique and stable, so
//! receivers dedupe by it.

pub mod feed;
pub mod pump;

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sluice_shared::{
    keys, lane,
    model::CampaignSpec,
    redis::{Conn, StoreResult, entry_id},
};

/// Every event type, in lifecycle order.
pub use sluice_shared::validate::EVENT_TYPES as TYPES;

/// What a source adds to each of its events: the caller's tags and metadata.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub tags: Vec<String>,
    pub metadata: Option<Value>,
}

impl From<&CampaignSpec> for Extras {
    fn from(spec: &CampaignSpec) -> Self {
        Extras { tags: spec.tags.clone(), metadata: spec.metadata.clone() }
    }
}

/// One raw stream entry: its id and fields.
pub type Entry = (String, HashMap<String, String>);

/// The event's public form.
pub fn to_json(source: &str, entry: &Entry, extras: &Extras) -> Value {
    let (id, fields) = entry;
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let at_ms = entry_id::millis(id).unwrap_or(0);
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let data = fields.get("data").and_then(|d| serde_json::from_str(d).ok()).unwrap_or_else(|| json!({}));
    let mut event = Map::new();
    event.insert("id".into(), format!("{source}:{id}").into());
    event.insert("type".into(), get("type").into());
    event.insert("at".into(), at.into());
    let owner = if lane::is_message(source) { "message_id" } else { "campaign_id" };
    event.insert(owner.into(), source.into());
    event.insert("recipient".into(), get("r").into());
    event.insert("data".into(), data);
    if !extras.tags.is_empty() {
        event.insert("tags".into(), extras.tags.clone().into());
    }
    if let Some(m) = &extras.metadata {
        event.insert("metadata".into(), m.clone());
    }
    Value::Object(event)
}

/// Up to `count` entries of a source's stream after `after` (exclusive; from the start if None).
pub async fn read_source(conn: &mut Conn, source: &str, after: Option<&str>, count: usize) -> StoreResult<Vec<Entry>> {
    let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
    Ok(redis::cmd("XRANGE")
        .arg(keys::campaign_events(source))
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?)
}

/// The tags and metadata of a source, from its spec (empty if it is gone).
pub async fn extras_of(conn: &mut Conn, source: &str) -> StoreResult<Extras> {
    let spec: Option<String> =
        redis::cmd("HGET").arg(keys::campaign_meta(source)).arg("spec").query_async(conn).await?;
    Ok(spec.and_then(|s| serde_json::from_str::<CampaignSpec>(&s).ok()).map(|s| Extras::from(&s)).unwrap_or_default())
}
