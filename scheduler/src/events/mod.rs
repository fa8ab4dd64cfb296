//! Events as the API and webhooks show them. Each campaign and message records its events in
//! its own stream (`sluice:{c:ID}:events`, written by the same scripts that change its
//! state); an event's id is the source id and the stream entry id, unique and stable, so
//! receivers dedupe by it.

pub mod feed;
pub mod pump;

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

/// One event as its source's stream keeps it: the entry id and the fields readers use (`type`,
/// `r`, `data`; a missing one reads as empty). Parsed straight from the reply, with no map per
/// entry: the pump reads every event once, the API, webhooks and history once more each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub data: String,
}

impl redis::FromRedisValue for Entry {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        let redis::Value::Array(parts) = v else { return Err("a stream entry is an array".into()) };
        let [id, fields] = <[redis::Value; 2]>::try_from(parts).map_err(|_| "a stream entry is an id and fields")?;
        let pairs = match fields {
            redis::Value::Array(flat) => flat,
            redis::Value::Map(map) => map.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => return Err("a stream entry's fields are an array".into()),
        };
        let mut entry = Entry { id: redis::from_redis_value(id)?, ..Entry::default() };
        let mut pairs = pairs.into_iter();
        while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
            let redis::Value::BulkString(name) = name else { continue };
            let slot = match name.as_slice() {
                b"type" => &mut entry.kind,
                b"r" => &mut entry.recipient,
                b"data" => &mut entry.data,
                _ => continue,
            };
            *slot = redis::from_redis_value(value)?;
        }
        Ok(entry)
    }
}

/// The event's public form.
pub fn to_json(source: &str, entry: &Entry, extras: &Extras) -> Value {
    let at_ms = entry_id::millis(&entry.id).unwrap_or(0);
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let data = serde_json::from_str(&entry.data).unwrap_or_else(|_| json!({}));
    let mut event = Map::new();
    event.insert("id".into(), format!("{source}:{}", entry.id).into());
    event.insert("type".into(), entry.kind.clone().into());
    event.insert("at".into(), at.into());
    let owner = if lane::is_message(source) { "message_id" } else { "campaign_id" };
    event.insert(owner.into(), source.into());
    event.insert("recipient".into(), entry.recipient.clone().into());
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

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::Entry;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn an_entry_reads_its_fields_in_either_protocol_and_ignores_the_rest() {
        let flat = Value::Array(vec![
            bulk("5-1"),
            Value::Array(["type", "sent", "i", "3", "r", "a@b.example", "data", "{\"code\":250}"].map(bulk).to_vec()),
        ]);
        let expected = Entry {
            id: "5-1".into(),
            kind: "sent".into(),
            recipient: "a@b.example".into(),
            data: "{\"code\":250}".into(),
        };
        assert_eq!(redis::from_redis_value::<Entry>(flat).unwrap(), expected);
        let map = Value::Array(vec![bulk("5-1"), Value::Map(vec![(bulk("type"), bulk("sent"))])]);
        let sparse = redis::from_redis_value::<Entry>(map).unwrap();
        assert_eq!(sparse, Entry { id: "5-1".into(), kind: "sent".into(), ..Entry::default() }, "missing: empty");
        assert!(redis::from_redis_value::<Entry>(bulk("5-1")).is_err());
        assert!(redis::from_redis_value::<Entry>(Value::Array(vec![bulk("5-1")])).is_err());
    }
}
